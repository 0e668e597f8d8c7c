//! Access tokens: short-lived HS256 JWTs, verified strictly — algorithm pinned, `exp`,
//! `iat`, `iss`, `aud` and `sid` required and checked, a lifetime (`exp - iat`) beyond
//! the configured maximum or an `iat` in the future refused; the caller then checks the
//! token's tenant against the addressed tenant and its session (`sid`) against the
//! database (`sessions::check_*`), so revocation bites on the next request.

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{AllianceId, TenantId};
use crate::limits;

pub const ISSUER: &str = "pointsmall";

/// Who a token is for; each audience has its own route group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// A member of one tenant's mall.
    Member,
    /// Merchant staff of one tenant.
    Staff,
    /// Alliance admin of one alliance.
    Alliance,
    /// The platform operator.
    Platform,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "pointsmall:member",
            Self::Staff => "pointsmall:staff",
            Self::Alliance => "pointsmall:alliance",
            Self::Platform => "pointsmall:platform",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    /// Member or staff id, as a string.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// Tenant id (member and staff tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<TenantId>,
    /// Alliance id (alliance tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aid: Option<AllianceId>,
    /// Staff role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The session family (one sign-in) this token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
}

/// Signing and verification keys.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= limits::JWT_SECRET_MIN_BYTES,
            "the JWT secret must be at least {} bytes",
            limits::JWT_SECRET_MIN_BYTES
        );
        Ok(Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) })
    }

    /// Issues an access token; returns it with its lifetime in seconds.
    pub fn issue(
        &self,
        aud: Audience,
        sub: i64,
        tid: Option<TenantId>,
        aid: Option<AllianceId>,
        role: Option<&str>,
        sid: uuid::Uuid,
    ) -> Result<(String, i64)> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: sub.to_string(),
            aud: aud.as_str().into(),
            exp: now + limits::ACCESS_TOKEN_TTL_SECS,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            tid,
            aid,
            role: role.map(str::to_string),
            sid: Some(sid),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(e.into()))?;
        Ok((token, limits::ACCESS_TOKEN_TTL_SECS))
    }

    /// Verifies signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str, aud: Audience) -> Result<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = limits::JWT_LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_audience(&[aud.as_str()]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => {
                    Error::unauthenticated("token_expired", "the access token has expired; refresh it")
                }
                ErrorKind::InvalidAudience => {
                    Error::unauthenticated("token_wrong_audience", "this token is not for this part of the API")
                }
                _ => Error::unauthenticated("token_invalid", "the access token is not valid"),
            }
        })?;
        if !lifetime_within(claims.iat, claims.exp, limits::ACCESS_TOKEN_TTL_SECS) || claims.sid.is_none() {
            return Err(Error::unauthenticated("token_invalid", "the access token is not valid"));
        }
        Ok(claims)
    }
}

/// Refuses a token issued in the future or living longer than `max_secs` (a token
/// signed with the real key but with `exp` in the year 9999 is still refused).
pub fn lifetime_within(iat: i64, exp: i64, max_secs: i64) -> bool {
    let now = Utc::now().timestamp();
    let leeway = limits::JWT_LEEWAY_SECS as i64;
    iat <= now + leeway && exp > iat && exp - iat <= max_secs && exp <= now + max_secs + leeway
}

/// The numeric subject of verified claims.
pub fn subject_id(claims: &Claims) -> Result<i64> {
    claims.sub.parse().map_err(|_| Error::unauthenticated("token_invalid", "the access token is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_audience_is_enforced() {
        let k = keys();
        let (t, ttl) =
            k.issue(Audience::Staff, 5, Some(TenantId::new(9)), None, Some("owner"), uuid::Uuid::new_v4()).unwrap();
        assert_eq!(ttl, limits::ACCESS_TOKEN_TTL_SECS);
        let c = k.verify(&t, Audience::Staff).unwrap();
        assert_eq!((c.sub.as_str(), c.tid, c.role.as_deref()), ("5", Some(TenantId::new(9)), Some("owner")));
        assert_eq!(k.verify(&t, Audience::Member).unwrap_err().code(), "token_wrong_audience");
    }

    #[test]
    fn another_key_is_refused() {
        let (t, _) =
            keys().issue(Audience::Member, 1, Some(TenantId::new(1)), None, None, uuid::Uuid::new_v4()).unwrap();
        let other = TokenKeys::new(&[8u8; 32]).unwrap();
        assert_eq!(other.verify(&t, Audience::Member).unwrap_err().code(), "token_invalid");
    }

    #[test]
    fn lifetimes_beyond_the_maximum_are_refused() {
        let now = Utc::now().timestamp();
        assert!(lifetime_within(now, now + 900, 900));
        assert!(!lifetime_within(now, 253_402_300_799, 900), "exp in the year 9999");
        assert!(!lifetime_within(now + 3600, now + 3900, 900), "issued an hour ahead");
        assert!(!lifetime_within(now - 10, now - 20, 900), "exp before iat");
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::new(b"short").is_err());
    }
}

/// What a login or refresh returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// One-time refresh token: use it to get a new pair.
    pub refresh_token: String,
    pub refresh_expires_at: chrono::DateTime<Utc>,
}
