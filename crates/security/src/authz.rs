//! Roles and tiers, the vocabulary of authorisation decisions.

use std::str::FromStr;

/// What a user may do beyond their own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    Support,
    SuperAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Support => "support",
            Self::SuperAdmin => "super_admin",
        }
    }

    /// Staff roles must use 2FA and may reach the admin API.
    pub fn is_staff(self) -> bool {
        self != Self::User
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "user" => Ok(Self::User),
            "support" => Ok(Self::Support),
            "super_admin" => Ok(Self::SuperAdmin),
            _ => Err(()),
        }
    }
}

/// The subscription level, which sets quotas and data access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Free,
    Pro,
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Tier {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "free" => Ok(Self::Free),
            "pro" => Ok(Self::Pro),
            "enterprise" => Ok(Self::Enterprise),
            _ => Err(()),
        }
    }
}

/// What an API key may be limited to (API.md "API keys"). A user's own session holds every scope;
/// a key holds the ones it was created with and never more than its owner can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    MarketRead,
    WatchlistsRead,
    WatchlistsWrite,
    AlertsRead,
    AlertsWrite,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Self::MarketRead,
        Self::WatchlistsRead,
        Self::WatchlistsWrite,
        Self::AlertsRead,
        Self::AlertsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketRead => "market:read",
            Self::WatchlistsRead => "watchlists:read",
            Self::WatchlistsWrite => "watchlists:write",
            Self::AlertsRead => "alerts:read",
            Self::AlertsWrite => "alerts:write",
        }
    }
}

impl FromStr for Scope {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for role in [Role::User, Role::Support, Role::SuperAdmin] {
            assert_eq!(role.as_str().parse(), Ok(role));
        }
        for tier in [Tier::Free, Tier::Pro, Tier::Enterprise] {
            assert_eq!(tier.as_str().parse(), Ok(tier));
        }
        assert!("SUPER_ADMIN".parse::<Role>().is_err());
        assert!("admin".parse::<Role>().is_err());
        assert!(!Role::User.is_staff() && Role::Support.is_staff());
    }

    #[test]
    fn scopes_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse(), Ok(scope));
        }
        assert_eq!("market:write".parse::<Scope>(), Err(()));
        assert_eq!("MARKET:READ".parse::<Scope>(), Err(()));
    }
}
