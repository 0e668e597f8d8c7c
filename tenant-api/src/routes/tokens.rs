//! Issuing token pairs and the shared login/refresh/logout steps.
//!
//! A login opens a session family; a refresh continues it (the presented token is used
//! up in the same transaction as its successor is written); a used token presented
//! again revokes the family; logout ends the family. Access tokens carry the family id
//! and are checked against it on every request (`extract`).

use platform::audit::Actor;
use platform::auth::sessions::{self, Opened, Presented, Store};
use platform::auth::tokens::{Audience, TokenPair};
use platform::directory::Tenant;
use platform::staff::StaffUser;
use platform::{Error, staff};

use crate::error::ApiResult;
use crate::state::AppState;

/// Runs a login attempt under the login limiter: counted before it runs, so concurrent
/// attempts cannot pass the bound; a success clears the account's count.
pub async fn throttled<T>(
    state: &AppState,
    account: &str,
    addr: &str,
    attempt: impl std::future::Future<Output = Result<T, Error>>,
) -> ApiResult<T> {
    state.limiter.attempt(state.db.control(), account, addr).await?;
    let done = attempt.await?;
    state.limiter.succeeded(state.db.control(), account, addr).await?;
    Ok(done)
}

/// The throttle key part of a staff e-mail (normalized like the account's).
pub fn email_key(raw: &str) -> String {
    staff::normalize_email(raw).unwrap_or_else(|| raw.trim().to_lowercase())
}

fn staff_audience(user: &StaffUser) -> Audience {
    match (user.tenant_id, user.alliance_id) {
        (Some(_), _) => Audience::Staff,
        (None, Some(_)) => Audience::Alliance,
        (None, None) => Audience::Platform,
    }
}

fn staff_tokens(state: &AppState, user: &StaffUser, session: Opened) -> ApiResult<TokenPair> {
    let (access_token, expires_in) = state.tokens.issue(
        staff_audience(user),
        user.id.get(),
        user.tenant_id,
        user.alliance_id,
        Some(user.role.as_str()),
        session.family,
    )?;
    Ok(pair(access_token, expires_in, session))
}

fn pair(access_token: String, expires_in: i64, session: Opened) -> TokenPair {
    TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: session.token,
        refresh_expires_at: session.expires_at,
    }
}

/// Opens a session for a staff account and returns its tokens.
pub async fn staff_pair(state: &AppState, user: &StaffUser) -> ApiResult<TokenPair> {
    let session = state.db.control_write(async |tx| sessions::open(tx, Store::Staff, user.id.get()).await).await?;
    staff_tokens(state, user, session)
}

/// Rotates a staff refresh token; `belongs` checks the account is of this route group.
pub async fn staff_refresh(
    state: &AppState,
    token: &str,
    belongs: impl Fn(&StaffUser) -> bool,
) -> ApiResult<TokenPair> {
    // A reused token ends its whole sign-in (committed), then is refused. A token
    // presented at the wrong door is not used up (rolled back).
    let control = state.db.control();
    let rotated = state
        .db
        .control_write(async |tx| {
            let (staff_id, family) = match sessions::present(tx, Store::Staff, token).await? {
                Presented::Live { principal, family } => (principal, family),
                Presented::Reused { family, .. } => return Ok(Err(family)),
            };
            let user = staff::find(control, platform::ids::StaffId::new(staff_id)).await?;
            if !belongs(&user) || user.disabled {
                return Err(Error::unauthenticated(
                    "refresh_token_invalid",
                    "the refresh token is unknown, used, revoked or expired",
                ));
            }
            let session = sessions::rotate(tx, Store::Staff, staff_id, family).await?;
            Ok(Ok((user, session)))
        })
        .await?;
    match rotated {
        Ok((user, session)) => staff_tokens(state, &user, session),
        Err(family) => {
            sessions::forget(&[family]);
            Err(sessions::reused_error().into())
        }
    }
}

/// Ends a staff sign-in. Unknown tokens are accepted silently (logout is idempotent).
pub async fn staff_logout(state: &AppState, token: &str) -> ApiResult<()> {
    let ended = state.db.control_write(async |tx| sessions::logout(tx, Store::Staff, token).await).await?;
    sessions::forget(&ended);
    Ok(())
}

/// Opens a member session and returns its tokens.
pub async fn member_pair(state: &AppState, tenant: &Tenant, member_id: i64) -> ApiResult<TokenPair> {
    let session = state
        .db
        .write(tenant, &Actor::member(member_id), async |tx| sessions::open(tx, Store::Member, member_id).await)
        .await?;
    member_tokens(state, tenant, member_id, session)
}

fn member_tokens(state: &AppState, tenant: &Tenant, member_id: i64, session: Opened) -> ApiResult<TokenPair> {
    let (access_token, expires_in) =
        state.tokens.issue(Audience::Member, member_id, Some(tenant.id), None, None, session.family)?;
    Ok(pair(access_token, expires_in, session))
}

/// Rotates a member refresh token (a reused one ends its sign-in).
pub async fn member_refresh(state: &AppState, tenant: &Tenant, token: &str) -> ApiResult<TokenPair> {
    // A reused token ends its whole sign-in (committed), then is refused.
    let rotated = state
        .db
        .write(tenant, &Actor::public(), async |tx| match sessions::present(tx, Store::Member, token).await? {
            Presented::Live { principal, family } => {
                Ok(Ok((principal, sessions::rotate(tx, Store::Member, principal, family).await?)))
            }
            Presented::Reused { family, .. } => Ok(Err(family)),
        })
        .await?;
    match rotated {
        Ok((member_id, session)) => member_tokens(state, tenant, member_id, session),
        Err(family) => {
            sessions::forget(&[family]);
            Err(sessions::reused_error().into())
        }
    }
}

/// Ends a member sign-in (idempotent).
pub async fn member_logout(state: &AppState, tenant: &Tenant, token: &str) -> ApiResult<()> {
    let ended =
        state.db.write(tenant, &Actor::public(), async |tx| sessions::logout(tx, Store::Member, token).await).await?;
    sessions::forget(&ended);
    Ok(())
}
