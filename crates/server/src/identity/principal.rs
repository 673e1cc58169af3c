//! Who is making a request, once their credentials have been checked: a signed-in session
//! (`Principal`, from an access token) or, for data routes, either that or an API key acting for its
//! owner (`Caller`).

use security::authz::{Role, Scope, Tier};

/// A signed-in user's session, as its access token proves it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub session_id: String,
    pub role: Role,
    pub tier: Tier,
    pub email_verified: bool,
    pub auth_time: u64,
    pub amr: Vec<String>,
    pub jti: String,
    pub expires_at: u64,
}

impl Principal {
    /// Whether the session's login (or its latest step-up) included a second factor.
    pub fn used_second_factor(&self) -> bool {
        self.amr.iter().any(|m| m == "otp")
    }
}

/// What an API key grants.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    pub scopes: Vec<Scope>,
    /// The owner's 2FA state when the key was checked (staff owners need it).
    pub owner_mfa_enabled: bool,
}

/// The credential behind a `Caller`.
#[derive(Debug, Clone)]
pub enum CallerCredential {
    Session(Principal),
    ApiKey(KeyGrant),
}

/// Whoever makes a data request, acting as `user_id` with that user's role and tier.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    pub tier: Tier,
    pub email_verified: bool,
    pub credential: CallerCredential,
}

impl Caller {
    /// Whether the credential may be used for `scope`: a user's own session holds every scope, an API
    /// key only those it was created with.
    pub fn has_scope(&self, scope: Scope) -> bool {
        match &self.credential {
            CallerCredential::Session(_) => true,
            CallerCredential::ApiKey(grant) => grant.scopes.contains(&scope),
        }
    }

    pub fn api_key_id(&self) -> Option<&str> {
        match &self.credential {
            CallerCredential::ApiKey(grant) => Some(&grant.key_id),
            CallerCredential::Session(_) => None,
        }
    }

    pub fn session(&self) -> Option<&Principal> {
        match &self.credential {
            CallerCredential::Session(principal) => Some(principal),
            CallerCredential::ApiKey(_) => None,
        }
    }
}

impl From<Principal> for Caller {
    fn from(principal: Principal) -> Self {
        Self {
            user_id: principal.user_id.clone(),
            role: principal.role,
            tier: principal.tier,
            email_verified: principal.email_verified,
            credential: CallerCredential::Session(principal),
        }
    }
}
