//! Alliance admin routes: `/v1/alliances/{alliance}/...` (SPEC A5; settlement and shared
//! rules come with the alliance issue).

use axum::extract::State;
use axum::http::StatusCode;
use platform::alliance::counts::{self, AllianceMemberCounts};
use platform::alliance::membership::{self, Departure};
use platform::auth::tokens::TokenPair;
use platform::directory::{self, Tenant};
use platform::staff::{self, NewAllianceAdmin, Scope, StaffUser};
use platform::tenancy::{self, Alliance};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use super::{StaffLogin, tokens};
use crate::doc::{AllianceSlug, Conflict, Forbidden, Invalid, NotFound, TooMany, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{AllianceAuth, ClientAddr, Json, Path, PathId};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        login;
        overview;
        malls;
        invite_admin;
        remove_mall;
        member_counts;
    ]
}

/// Alliance admin login.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/auth/login", tag = "alliance",
    params(("alliance" = String, Path, description = "alliance slug")), request_body = StaffLogin,
    responses((status = 200, body = TokenPair), Unauthorized, NotFound, TooMany))]
async fn login(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<StaffLogin>,
) -> ApiResult<Json<TokenPair>> {
    let alliance = tenancy::find_alliance(state.db.control(), &slug).await?;
    let account = format!("alliance:{}:{}", alliance.id, tokens::email_key(&body.email));
    let login = staff::authenticate(state.db.control(), Scope::Alliance(alliance.id), &body.email, &body.password);
    let user = tokens::throttled(&state, &account, &addr, login).await?;
    Ok(Json(tokens::staff_pair(&state, &user).await?))
}

/// An alliance admin invites another admin of the same alliance (role `alliance_admin`).
#[utoipa::path(post, path = "/v1/alliances/{alliance}/admins", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = NewAllianceAdmin,
    responses((status = 201, body = StaffUser), Unauthorized, Forbidden, Conflict, Invalid))]
async fn invite_admin(
    auth: AllianceAuth,
    Json(body): Json<NewAllianceAdmin>,
) -> ApiResult<(StatusCode, Json<StaffUser>)> {
    let (scope, actor, new) = (Scope::Alliance(auth.alliance.id), auth.actor(), body.staff());
    let user = auth.state.db.control_write(async |tx| staff::create(tx, scope, &new, &actor).await).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// An alliance admin removes a mall from the alliance: its shared products are delisted,
/// its issuing budget is closed (what is left stays visible), its members keep their
/// shared balance in the other malls. The mall can join again later.
#[utoipa::path(delete, path = "/v1/alliances/{alliance}/malls/{tenant}", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("tenant" = String, Path, description = "mall slug")),
    responses((status = 200, body = Departure), Unauthorized, Forbidden, NotFound))]
async fn remove_mall(auth: AllianceAuth, PathId(slug): PathId<String>) -> ApiResult<Json<Departure>> {
    let t = directory::find_by_slug(auth.state.db.control(), &slug)
        .await?
        .filter(|t| t.alliance_id == Some(auth.alliance.id))
        .ok_or_else(|| platform::Error::not_found("not_in_alliance", "this mall is not in this alliance"))?;
    let d = membership::leave(&auth.state.db, &auth.alliance, &t, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(d))
}

#[derive(Serialize, utoipa::ToSchema)]
struct LeftMall {
    slug: String,
    name: String,
    left_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Overview {
    alliance: Alliance,
    merchants: Vec<Tenant>,
    /// Malls that left the alliance (and did not join again), with when they last left.
    departed: Vec<LeftMall>,
}

/// The alliance and its merchants.
#[utoipa::path(get, path = "/v1/alliances/{alliance}", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), responses((status = 200, body = Overview), Unauthorized, Forbidden))]
async fn overview(auth: AllianceAuth) -> ApiResult<Json<Overview>> {
    let merchants = directory::list(auth.state.db.control())
        .await?
        .into_iter()
        .filter(|t| t.alliance_id == Some(auth.alliance.id))
        .collect();
    let departed = membership::departed(auth.state.db.control(), auth.alliance.id)
        .await?
        .into_iter()
        .map(|(t, left_at)| LeftMall { slug: t.slug, name: t.name, left_at })
        .collect();
    Ok(Json(Overview { alliance: auth.alliance, merchants, departed }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Mall {
    slug: String,
    name: String,
    /// The mall's public catalog; products there are priced in the mall's own points or
    /// in the alliance's shared currency (their `currency`).
    products: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Malls {
    alliance: String,
    name: String,
    /// Code of the shared currency in every mall of the alliance.
    currency_code: String,
    currency_name: String,
    malls: Vec<Mall>,
}

/// The malls of an alliance (C6), for a member who moves between them (see
/// `POST /v1/tenants/{tenant}/auth/alliance-handoff`). Public.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/malls", tag = "alliance",
    params(("alliance" = String, Path, description = "alliance slug")),
    responses((status = 200, body = Malls), NotFound))]
async fn malls(State(state): State<AppState>, Path(slug): Path<String>) -> ApiResult<Json<Malls>> {
    let a = tenancy::find_alliance(state.db.control(), &slug).await?;
    let malls = directory::list(state.db.control())
        .await?
        .into_iter()
        .filter(|t| t.alliance_id == Some(a.id) && t.status == directory::TenantStatus::Active)
        .map(|t| Mall { products: format!("/v1/tenants/{}/products", t.slug), slug: t.slug, name: t.name })
        .collect();
    Ok(Json(Malls {
        alliance: a.slug,
        name: a.name,
        currency_code: a.currency_code,
        currency_name: a.currency_name,
        malls,
    }))
}

/// How many members each mall shares with the alliance: members linked to an alliance
/// identity and those holding shared points, with the alliance's totals. Counts only.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/member-counts", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), responses((status = 200, body = AllianceMemberCounts), Unauthorized, Forbidden))]
async fn member_counts(auth: AllianceAuth) -> ApiResult<Json<AllianceMemberCounts>> {
    Ok(Json(counts::of_alliance(&auth.state.db, &auth.alliance).await?))
}
