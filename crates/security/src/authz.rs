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
}
