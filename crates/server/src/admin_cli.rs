//! `tradesignal admin …`: creating the first administrator and importing users from the previous
//! system. Passwords come from standard input, never from arguments (which other users can see).

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use security::authz::{Role, Tier};
use security::password::PasswordPolicy;
use store::Database;
use store::identity::NewUser;

use crate::app;
use crate::commands::runtime;
use crate::config::Settings;
use crate::identity::now;

fn parse_role_tier(role: &str, tier: &str) -> Result<(Role, Tier), String> {
    let role = role
        .parse::<Role>()
        .map_err(|()| format!("unknown role {role:?} (user, support, super_admin)"))?;
    let tier = tier
        .parse::<Tier>()
        .map_err(|()| format!("unknown tier {tier:?} (free, pro, enterprise)"))?;
    Ok((role, tier))
}

/// Runs `work` with a connected database on a fresh runtime, then closes the database (so SQLite
/// checkpoints its log before the process exits).
pub(crate) fn with_database<F, Fut>(settings: &Settings, work: F) -> ExitCode
where
    F: FnOnce(Database) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        match app::connect(settings).await {
            Ok((db, _)) => {
                let code = work(db.clone()).await;
                db.close().await;
                code
            }
            Err(e) => {
                eprintln!("tradesignal: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// A verified account (created by an operator or imported from the previous system).
fn verified_user(email: String, password_hash: String, role: Role, tier: Tier) -> NewUser {
    NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        email,
        password_hash,
        full_name: None,
        role: role.as_str().into(),
        tier: tier.as_str().into(),
        verified_at: Some(now()),
        security_stamp: security::random::token(16),
        now: now(),
    }
}

/// `admin create-user`.
pub fn create_user(settings: Settings, email: &str, role: &str, tier: &str) -> ExitCode {
    let email = match security::email::normalize(email) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tradesignal: --email: {e}");
            return ExitCode::from(1);
        }
    };
    let (role, tier) = match parse_role_tier(role, tier) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tradesignal: {e}");
            return ExitCode::from(1);
        }
    };
    let mut password = String::new();
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        eprintln!("tradesignal: cannot read the password from standard input");
        return ExitCode::from(1);
    }
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let assessment = PasswordPolicy::new(settings.password_profile).assess(&password, Some(&email));
    if !assessment.acceptable {
        eprintln!("tradesignal: the password does not meet the policy:");
        for v in assessment.violations {
            eprintln!("  - {}", v.message);
        }
        return ExitCode::from(1);
    }
    let hash = match security::password::hash_password(&password) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("tradesignal: {e}");
            return ExitCode::from(1);
        }
    };
    with_database(&settings, |db| async move {
        let user = verified_user(email.clone(), hash, role, tier);
        match db.insert_user(&user).await {
            Ok(true) => {
                println!(
                    "created {} ({}, {}) with id {}",
                    email,
                    role.as_str(),
                    tier.as_str(),
                    user.id
                );
                if role.is_staff() {
                    println!(
                        "{} is a staff role: until this account enrols two-factor authentication \
                         (POST /api/v1/auth/2fa/totp/setup, then /totp/enable) and signs in with a code, \
                         its tokens reach only /api/v1/auth — not the admin API.",
                        role.as_str()
                    );
                }
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("tradesignal: an account with this email already exists");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("tradesignal: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// A bcrypt hash as the previous system wrote it: `$2a$`, `$2b$` or `$2y$`, cost, 53 characters of salt
/// and hash.
fn is_bcrypt_hash(hash: &str) -> bool {
    let valid_prefix = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    let cost_ok = hash
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| (4..=security::password::hash::MAX_BCRYPT_COST).contains(&c));
    valid_prefix
        && cost_ok
        && hash.len() == 60
        && hash.as_bytes().get(6) == Some(&b'$')
        && hash[7..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

/// One CSV row, validated.
fn import_row(record: &csv::StringRecord) -> Result<(String, String, Role, Tier), String> {
    let field = |i: usize, name: &str| {
        record
            .get(i)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(format!("missing {name}"))
    };
    let email = security::email::normalize(field(0, "email")?).map_err(|e| e.to_string())?;
    let hash = field(1, "bcrypt_hash")?;
    if let Some(cost) = security::password::hash::bcrypt_cost(hash)
        .filter(|c| *c > security::password::hash::MAX_BCRYPT_COST)
    {
        return Err(format!(
            "bcrypt cost {cost} is above {}: such a hash takes too long to verify (re-hash it in the old system first)",
            security::password::hash::MAX_BCRYPT_COST
        ));
    }
    if !is_bcrypt_hash(hash) {
        return Err("not a bcrypt hash ($2a$/$2b$/$2y$)".into());
    }
    let (role, tier) = parse_role_tier(
        record.get(2).map(str::trim).unwrap_or("user"),
        record.get(3).map(str::trim).unwrap_or("free"),
    )?;
    Ok((email, hash.to_string(), role, tier))
}

/// `admin import-users FILE.csv`: verified accounts keyed by the bcrypt hash; each is re-hashed to
/// argon2id at its first successful login. Re-running skips existing emails.
pub fn import_users(settings: Settings, file: &Path) -> ExitCode {
    let mut reader = match csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(file)
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tradesignal: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    with_database(&settings, |db| async move {
        let (mut imported, mut skipped, mut failed) = (0u64, 0u64, 0u64);
        for (index, record) in reader.records().enumerate() {
            let line = index + 1;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    failed += 1;
                    eprintln!("line {line}: unreadable: {e}");
                    continue;
                }
            };
            if line == 1
                && record
                    .get(0)
                    .is_some_and(|f| f.trim().eq_ignore_ascii_case("email"))
            {
                continue;
            }
            let (email, hash, role, tier) = match import_row(&record) {
                Ok(row) => row,
                Err(reason) => {
                    failed += 1;
                    eprintln!("line {line}: {reason}");
                    continue;
                }
            };
            let user = verified_user(email, hash, role, tier);
            match db.insert_user(&user).await {
                Ok(true) => imported += 1,
                Ok(false) => skipped += 1,
                Err(e) => {
                    failed += 1;
                    eprintln!("line {line}: {e}");
                }
            }
        }
        println!("imported {imported}, skipped {skipped} (email exists), failed {failed}");
        if failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_shapes() {
        let hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert!(is_bcrypt_hash(hash));
        assert!(!is_bcrypt_hash("$argon2id$v=19$m=19456,t=2,p=1$abc$def"));
        assert!(!is_bcrypt_hash(
            "$2b$99$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
        ));
        assert!(!is_bcrypt_hash(&hash[..59]));
        assert!(!is_bcrypt_hash("plaintext-password"));
    }
}
