//! Password hashing with argon2id (v1.3, OWASP parameters), off the async runtime, at
//! most one hash per core at a time: each takes 19 MiB, and unbounded concurrency (200
//! logins at once) left gigabytes resident. Excess requests wait for a slot, for at
//! most `PASSWORD_HASH_WAIT_MS`, then are answered 429.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};
use crate::limits;

fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: OWASP's minimum recommendation for argon2id.
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password policy (length only: long passphrases beat composition rules).
pub fn check_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(limits::PASSWORD_MIN_CHARS..=limits::PASSWORD_MAX_CHARS).contains(&n) {
        return Err(Error::invalid_field(
            "password",
            format!("must be {} to {} characters", limits::PASSWORD_MIN_CHARS, limits::PASSWORD_MAX_CHARS),
        ));
    }
    Ok(())
}

/// A new password in the OpenAPI document (`check_policy`): `PASSWORD_MIN_CHARS` to
/// `PASSWORD_MAX_CHARS` characters.
pub struct Password;

impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(limits::PASSWORD_MIN_CHARS))
            .max_length(Some(limits::PASSWORD_MAX_CHARS))
            .description(Some("8 to 128 characters"))
            .into()
    }
}
impl utoipa::ToSchema for Password {}

fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)))
}

async fn slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    let wait = std::time::Duration::from_millis(limits::PASSWORD_HASH_WAIT_MS);
    match tokio::time::timeout(wait, slots().acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(Error::Internal(anyhow::anyhow!("password hashing slots closed"))),
        Err(_) => Err(Error::RateLimited { retry_after_secs: 2 }),
    }
}

/// Hashes a password to a PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: &str) -> Result<String> {
    let password = password.to_string();
    let _slot = slot().await?;
    tokio::task::spawn_blocking(move || {
        let h: Result<PasswordHash, _> = hasher().hash_password(password.as_bytes());
        h.map(|h| h.to_string()).map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

/// Verifies a password against a stored PHC string. A malformed hash verifies false;
/// no free hashing slot within the wait is a 429.
pub async fn verify(password: &str, phc: &str) -> Result<bool> {
    let password = password.to_string();
    let phc = phc.to_string();
    let _slot = slot().await?;
    Ok(tokio::task::spawn_blocking(move || match PasswordHash::new(&phc) {
        Ok(parsed) => {
            PasswordVerifier::<PasswordHash>::verify_password(&hasher(), password.as_bytes(), &parsed).is_ok()
        }
        Err(_) => false,
    })
    .await
    .unwrap_or(false))
}

/// A hash of a random password, verified against when an account does not exist, so
/// that "no such account" and "wrong password" take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let h: Result<PasswordHash, _> = hasher().hash_password(crate::auth::secrets::random_token(16).as_bytes());
        h.map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h).await.unwrap());
        assert!(!verify("correct horse battery!", &h).await.unwrap());
        assert!(!verify("x", "not a hash").await.unwrap());
    }

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough").is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }
}
