//! Who is making a request, once their credentials have been checked.

use security::authz::{Role, Tier};

/// An authenticated caller (an access token today; API keys will produce the same type).
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
