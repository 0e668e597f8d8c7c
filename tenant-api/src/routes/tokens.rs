//! Issuing token pairs and the shared login/refresh/logout steps.

use platform::auth::sessions::{self, Store};
use platform::auth::tokens::{Audience, TokenPair};
use platform::directory::Tenant;
use platform::staff::StaffUser;
use platform::{Error, staff};

use crate::error::ApiResult;
use crate::state::AppState;

fn staff_audience(user: &StaffUser) -> Audience {
    match (user.tenant_id, user.alliance_id) {
        (Some(_), _) => Audience::Staff,
        (None, Some(_)) => Audience::Alliance,
        (None, None) => Audience::Platform,
    }
}

/// Opens a session for a staff account and returns its tokens.
pub async fn staff_pair(state: &AppState, user: &StaffUser) -> ApiResult<TokenPair> {
    let (access_token, expires_in) = state.tokens.issue(
        staff_audience(user),
        user.id,
        user.tenant_id,
        user.alliance_id,
        Some(user.role.as_str()),
    )?;
    let mut conn = state.db.control().acquire().await.map_err(Error::from)?;
    let (refresh_token, refresh_expires_at) = sessions::open(&mut conn, Store::Staff, user.id).await?;
    Ok(TokenPair { access_token, token_type: "Bearer", expires_in, refresh_token, refresh_expires_at })
}

/// Rotates a staff refresh token; `belongs` checks the account is of this route group.
pub async fn staff_refresh(
    state: &AppState,
    token: &str,
    belongs: impl Fn(&StaffUser) -> bool,
) -> ApiResult<TokenPair> {
    let mut tx = state.db.control().begin().await.map_err(Error::from)?;
    let staff_id = sessions::consume(&mut tx, Store::Staff, token).await?;
    let user = staff::find(state.db.control(), staff_id).await?;
    if !belongs(&user) || user.disabled {
        // Not committed: a token presented at the wrong door is not used up.
        return Err(Error::unauthenticated(
            "refresh_token_invalid",
            "the refresh token is unknown, used, revoked or expired",
        )
        .into());
    }
    tx.commit().await.map_err(Error::from)?;
    staff_pair(state, &user).await
}

/// Ends a staff session. Unknown tokens are accepted silently (logout is idempotent).
pub async fn staff_logout(state: &AppState, token: &str) -> ApiResult<()> {
    let mut conn = state.db.control().acquire().await.map_err(Error::from)?;
    let _ = sessions::consume(&mut conn, Store::Staff, token).await;
    Ok(())
}

/// Opens a member session and returns its tokens.
pub async fn member_pair(state: &AppState, tenant: &Tenant, member_id: i64) -> ApiResult<TokenPair> {
    let (access_token, expires_in) = state.tokens.issue(Audience::Member, member_id, Some(tenant.id), None, None)?;
    let mut tx = state.db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let (refresh_token, refresh_expires_at) = sessions::open(&mut tx, Store::Member, member_id).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(TokenPair { access_token, token_type: "Bearer", expires_in, refresh_token, refresh_expires_at })
}
