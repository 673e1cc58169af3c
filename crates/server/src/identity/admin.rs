//! Staff operations on other users' accounts. Authorisation (which role may call what) is enforced by
//! the extractors in `crate::api`; the rules here are about the change itself.

use security::authz::{Role, Tier};
use store::identity::UserRecord;
use store::identity::users::AdminChange;

use super::audit::Event;
use super::{Identity, IdentityError, Principal, RequestMeta, now};

/// A requested change, already parsed.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub tier: Option<Tier>,
    pub disabled: Option<bool>,
}

impl Identity {
    pub async fn admin_list_users(
        &self,
        q: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserRecord>, i64), IdentityError> {
        Ok(self.db.list_users(q, limit, offset).await?)
    }

    pub async fn admin_user(&self, id: &str) -> Result<UserRecord, IdentityError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(IdentityError::NotFound);
        }
        self.db.user_by_id(id).await?.ok_or(IdentityError::NotFound)
    }

    /// `PATCH /admin/users/{id}` (super_admin): effective on the user's next request.
    pub async fn admin_update_user(
        &self,
        actor: &Principal,
        id: &str,
        change: UserChange,
        meta: &RequestMeta,
    ) -> Result<UserRecord, IdentityError> {
        let target = self.admin_user(id).await?;
        if target.id == actor.user_id {
            if change.role.is_some_and(|r| r != Role::SuperAdmin) {
                return Err(IdentityError::Forbidden("You cannot change your own role."));
            }
            if change.disabled == Some(true) {
                return Err(IdentityError::Forbidden(
                    "You cannot disable your own account.",
                ));
            }
        }
        let stored = AdminChange {
            role: change.role.map(|r| r.as_str().to_string()),
            tier: change.tier.map(|t| t.as_str().to_string()),
            disabled: change.disabled,
        };
        if !self
            .db
            .admin_update_user(&target.id, &stored, &security::random::token(16), now())
            .await?
        {
            return Err(IdentityError::NotFound);
        }
        if change.disabled == Some(true) {
            self.revoke_user_sessions(&target.id, None, "account_disabled")
                .await?;
            self.db.retire_one_time_tokens(&target.id, now()).await?;
        } else if change.role.is_some() || change.tier.is_some() {
            self.invalidate_access_tokens(&target.id).await?;
        }
        if stored
            .role
            .as_ref()
            .is_some_and(|role| *role != target.role)
        {
            self.observe(
                "privilege_change",
                &target.id,
                Some(&target.id),
                serde_json::json!({
                    "role": stored.role,
                    "previous_role": target.role,
                    "actor_id": actor.user_id,
                }),
                meta,
            )
            .await;
        }
        self.audit(
            Event::success("admin.user.updated")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(serde_json::json!({
                    "role": stored.role,
                    "tier": stored.tier,
                    "disabled": stored.disabled,
                    "previous_role": target.role,
                    "previous_tier": target.tier,
                })),
            meta,
        )
        .await;
        self.admin_user(&target.id).await
    }

    /// `POST /admin/users/{id}/unlock` (support staff).
    pub async fn admin_unlock(
        &self,
        actor: &Principal,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<bool, IdentityError> {
        let target = self.admin_user(id).await?;
        let was_locked = self
            .guard
            .unlock(&super::abuse::account_of(&target.email))
            .await
            .map_err(|e| IdentityError::Internal(e.into()))?;
        self.audit(
            Event::success("admin.user.unlocked")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(serde_json::json!({"was_locked": was_locked})),
            meta,
        )
        .await;
        self.audit(
            Event::success("auth.unlock")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(serde_json::json!({"by": "support"})),
            meta,
        )
        .await;
        Ok(was_locked)
    }

    /// `POST /admin/users/{id}/revoke-sessions`.
    pub async fn admin_revoke_sessions(
        &self,
        actor: &Principal,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<usize, IdentityError> {
        let target = self.admin_user(id).await?;
        let count = self
            .revoke_user_sessions(&target.id, None, "admin_revoked")
            .await?;
        // Incident response: keys made with the account end with its sessions.
        self.revoke_all_api_keys(&target.id, Some(&actor.user_id), "admin_revoked", meta)
            .await?;
        self.audit(
            Event::success("session.revoked")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(serde_json::json!({"sessions": count, "by": "admin"})),
            meta,
        )
        .await;
        Ok(count)
    }

    /// `POST /admin/users/{id}/reset-2fa` (super_admin, step-up): removes the user's 2FA for account
    /// recovery. Every session of the user ends at once, so whoever held them must sign in again; the
    /// action is audited and the user is told.
    pub async fn admin_reset_mfa(
        &self,
        actor: &Principal,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let target = self.admin_user(id).await?;
        if target.id == actor.user_id {
            return Err(IdentityError::Forbidden(
                "You cannot reset your own two-factor authentication; ask another administrator.",
            ));
        }
        if !target.has_mfa() {
            return Err(IdentityError::Conflict(
                "This user has no two-factor authentication to reset.",
            ));
        }
        // Sessions and keys first: should the reset then fail, nothing opened without the second
        // factor survives it.
        let revoked = self
            .revoke_user_sessions(&target.id, None, "mfa_reset")
            .await?;
        let keys = self
            .revoke_all_api_keys(&target.id, Some(&actor.user_id), "mfa_reset", meta)
            .await?;
        self.db
            .remove_mfa(&target.id, &security::random::token(16), now())
            .await?;
        self.audit(
            Event::success("admin.user.mfa_reset")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(
                    serde_json::json!({"sessions_revoked": revoked, "api_keys_revoked": keys}),
                ),
            meta,
        )
        .await;
        self.audit(
            Event::success("auth.mfa.disabled")
                .actor(&actor.user_id)
                .subject(&target.id)
                .details(serde_json::json!({"by": "admin"})),
            meta,
        )
        .await;
        self.send_mail(self.mfa_disabled_email(&target.email, true, meta));
        Ok(())
    }
}
