//! The names of identity state in the key-value store. A session's version (`sv:`), a logged-out
//! token (`deny:`) and the user's tier rate-limit cell (`rl:user:`) carry the user's hash tag, so the
//! one script that spends the quota and reads the revocation state runs in one Redis Cluster slot.

use security::slot_tag;

pub(super) fn sv_key(user_id: &str, session_id: &str) -> String {
    format!("sv:{}:{session_id}", slot_tag(user_id))
}

pub(super) fn deny_key(user_id: &str, jti: &str) -> String {
    format!("deny:{}:{jti}", slot_tag(user_id))
}

/// The user's tier rate-limit cell (read in the same script as the two keys above).
pub fn user_rate_key(user_id: &str) -> String {
    format!("rl:user:{}", slot_tag(user_id))
}

/// The names the release before hash tags read. The upgrade is stop-start (see `kv_upgrade`), but
/// revocations are written under these names too, so that an instance of that release left running
/// by mistake still sees what this one revokes. Entries it wrote under them are not read here, which
/// is safe once it has stopped: an absent entry sends a request to the database, which holds every
/// revocation. They can go in the release after this one.
pub(super) fn legacy_sv_key(session_id: &str) -> String {
    format!("sv:{session_id}")
}

pub(super) fn legacy_deny_key(jti: &str) -> String {
    format!("deny:{jti}")
}

/// The user whose rate-limit cell `key` is: the inverse of `user_rate_key`.
pub fn user_of_rate_key(key: &str) -> Option<&str> {
    key.strip_prefix("rl:user:{")?.strip_suffix('}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_one_slot() {
        let (user, session, jti) = ("0b9f-user", "sess-1", "jti-1");
        let keys = [
            user_rate_key(user),
            sv_key(user, session),
            deny_key(user, jti),
        ];
        security::check_one_slot(keys.iter().map(String::as_str)).expect("one slot");
        assert_eq!(user_of_rate_key(&keys[0]), Some(user));
        assert_eq!(user_of_rate_key("rl:anon:10.0.0.0/24"), None);
    }
}
