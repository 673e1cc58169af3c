//! Who is making a request, once their credentials have been checked.

use security::authz::{Role, Scope, Tier};

/// An authenticated caller (an access token today; API keys will produce the same type, with the
/// key's scopes in `scopes`).
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
    /// `None` for the user's own session (every scope); an API key's scopes otherwise.
    pub scopes: Option<Vec<Scope>>,
}

impl Principal {
    /// Whether the credential may be used for `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes
            .as_ref()
            .is_none_or(|granted| granted.contains(&scope))
    }
}
