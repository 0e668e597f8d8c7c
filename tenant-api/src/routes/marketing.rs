//! Marketing and members' own data: the lottery wheel (K3), the check-in calendar and
//! its reward table (K1), favorites (M3), tags (M5), webview hand-off (M4), member sync
//! by external id (P4).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use platform::audit::Actor;
use platform::auth::identifier::PhoneNumber;
use platform::auth::tokens::TokenPair;
use platform::auth::webview;
use platform::marketing::checkin::{self, Calendar, CheckinOverview, CheckinRewards};
use platform::marketing::favorites::{self, Favorite};
use platform::marketing::lottery::{self, Draw, DrawRecord, Lottery, NewLottery};
use platform::members::{self, Member};
use platform::rbac::Permission;
use platform::rules::pipeline::Outcome;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use super::tokens;
use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{Json, MemberAuth, PartnerAuth, PathId, Query, StaffAuth, TenantPath};
use crate::idempotent::{self, IdempotencyKey, IdempotentEmpty};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        lotteries;
        draw;
        staff_lotteries, create_lottery;
        get_lottery, update_lottery;
        lottery_draws;
        checkin_overview, set_checkin_rewards;
        calendar, check_in;
        favorites;
        add_favorite, remove_favorite;
        set_member_profile;
        tag_member, untag_member;
        webview_secret;
        webview_login;
        upsert_member;
    ]
}

/// Running lotteries with their prize tables (chances in basis points, stock, won).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/lotteries", tag = "mall", params(TenantSlug),
    responses((status = 200, body = Vec<Lottery>)))]
async fn lotteries(State(state): State<AppState>, TenantPath(tenant): TenantPath) -> ApiResult<Json<Vec<Lottery>>> {
    let l = state.db.read(&tenant, &Actor::public(), async |tx| lottery::list_active(tx).await).await?;
    Ok(Json(l))
}

/// Spends the cost and draws a prize, on the server. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/lotteries/{id}/draws", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "lottery id"), IdempotencyKey),
    responses((status = 201, body = Draw), Conflict))]
async fn draw(auth: MemberAuth, PathId(id): PathId<i64>, req: IdempotentEmpty) -> ApiResult<Response> {
    let idem = req.open()?;
    let (tenant, member) = (auth.tenant.clone(), auth.member_id);
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        lottery::draw(tx, &tenant, id, member, Utc::now()).await
    })
    .await
}

/// Creates a lottery with its prize table. Needs `catalog_write`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/lotteries", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewLottery, responses((status = 201, body = Lottery), Invalid))]
async fn create_lottery(auth: StaffAuth, Json(body): Json<NewLottery>) -> ApiResult<(StatusCode, Json<Lottery>)> {
    let l = auth.write(Permission::CatalogWrite, async |tx| lottery::create(tx, &body).await).await?;
    Ok((StatusCode::CREATED, Json(l)))
}

/// A lottery with how many of each prize were won. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/lotteries/{id}", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "lottery id")),
    responses((status = 200, body = Lottery), NotFound))]
async fn get_lottery(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Lottery>> {
    let l = auth.read(Permission::CatalogRead, async |tx| lottery::get(tx, id).await).await?;
    Ok(Json(l))
}

/// Every lottery, running or not, newest first. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/lotteries", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, PageQuery), responses((status = 200, body = Page<Lottery>), Forbidden))]
async fn staff_lotteries(auth: StaffAuth, Query(page): Query<PageQuery>) -> ApiResult<Json<Page<Lottery>>> {
    auth.require(Permission::CatalogRead)?;
    let (before, limit) = page.bounds()?;
    let items =
        auth.state.db.read(&auth.tenant, &auth.actor(), async |tx| lottery::list(tx, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |l| l.id)))
}

/// Changes a lottery: name, cost, daily limit, status, window and its whole prize table
/// (a prize named by `id` keeps what it has won; one left out is removed, or retired if
/// it was won). Needs `catalog_write`; audited.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/lotteries/{id}", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "lottery id")), request_body = NewLottery,
    responses((status = 200, body = Lottery), NotFound, Invalid))]
async fn update_lottery(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<NewLottery>,
) -> ApiResult<Json<Lottery>> {
    let l = auth.write(Permission::CatalogWrite, async |tx| lottery::update(tx, id, &body).await).await?;
    Ok(Json(l))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct DrawFilter {
    /// Only draws that won a prize.
    #[serde(default)]
    winners: bool,
}

/// A lottery's draws (or only its winners), newest first. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/lotteries/{id}/draws", tag = "mall",
    security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "lottery id"), DrawFilter, PageQuery),
    responses((status = 200, body = Page<DrawRecord>), NotFound))]
async fn lottery_draws(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Query(filter): Query<DrawFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<DrawRecord>>> {
    auth.require(Permission::CatalogRead)?;
    let (before, limit) = page.bounds()?;
    let items = auth
        .state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| lottery::draws(tx, id, filter.winners, before, limit).await)
        .await?;
    Ok(Json(Page::new(items, limit, |d| d.id)))
}

/// Check-ins as staff see them (K1): the reward table of the built-in check-in rule,
/// the mall's own check-in rules (an enabled one decides instead of the table), and the
/// members who checked in on each of the last 14 local days. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/checkin", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = CheckinOverview), Forbidden))]
async fn checkin_overview(auth: StaffAuth) -> ApiResult<Json<CheckinOverview>> {
    Ok(Json(auth.read(Permission::RulesRead, async |tx| checkin::overview(tx).await).await?))
}

/// Sets the check-in reward table (points per streak day, the 7th-day bonus); the next
/// check-in on every server instance uses it. Needs `rules_write`; audited.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/checkin", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = CheckinRewards,
    responses((status = 200, body = CheckinOverview), Forbidden, Invalid))]
async fn set_checkin_rewards(auth: StaffAuth, Json(body): Json<CheckinRewards>) -> ApiResult<Json<CheckinOverview>> {
    let o = auth.write(Permission::RulesWrite, async |tx| checkin::set_rewards(tx, &body).await).await?;
    auth.state.rules.evict(auth.tenant.id).await;
    Ok(Json(o))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct MonthQuery {
    /// YYYY-MM (default: this month).
    #[param(pattern = "^[0-9]{4}-(?:0[1-9]|1[0-2])$")]
    month: Option<String>,
}

/// The member's check-in calendar for a month, with the streak.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/checkins", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, MonthQuery), responses((status = 200, body = Calendar), Invalid))]
async fn calendar(auth: MemberAuth, Query(q): Query<MonthQuery>) -> ApiResult<Json<Calendar>> {
    let c = auth.read(async |tx| checkin::calendar(tx, auth.member_id, q.month.as_deref()).await).await?;
    Ok(Json(c))
}

/// Checks in for today (once a day: a second check-in returns the first result). The
/// reward comes from the mall's check-in rule, or the built-in streak table.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/checkins", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Outcome)))]
async fn check_in(auth: MemberAuth) -> ApiResult<Json<Outcome>> {
    Ok(Json(checkin::check_in(&auth.state.db, &auth.state.rules, &auth.tenant, auth.member_id).await?))
}

/// The member's favorite products.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/favorites", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Favorite>)))]
async fn favorites(auth: MemberAuth) -> ApiResult<Json<Vec<Favorite>>> {
    let member = auth.member_id;
    Ok(Json(auth.read(async |tx| favorites::list(tx, member).await).await?))
}

/// Adds a product to the member's favorites.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/me/favorites/{id}", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "product id")), responses((status = 204), NotFound))]
async fn add_favorite(auth: MemberAuth, PathId(id): PathId<i64>) -> ApiResult<StatusCode> {
    let member = auth.member_id;
    auth.write(async |tx| favorites::add(tx, member, id).await).await?;
    auth.state.drain_soon(&auth.tenant);
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a product from the member's favorites (404 for a product not in this mall).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/me/favorites/{id}", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "product id")), responses((status = 204), NotFound))]
async fn remove_favorite(auth: MemberAuth, PathId(id): PathId<i64>) -> ApiResult<StatusCode> {
    let member = auth.member_id;
    auth.write(async |tx| favorites::remove(tx, member, id).await).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TagBody {
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    tag: String,
}

/// Tags a member by hand (M5). Needs `members_write`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/members/{id}/tags", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "member id")), request_body = TagBody,
    responses((status = 204), NotFound, Invalid))]
async fn tag_member(auth: StaffAuth, PathId(id): PathId<i64>, Json(body): Json<TagBody>) -> ApiResult<StatusCode> {
    set_tag(&auth, id, &body.tag, true).await
}

/// Removes a tag from a member. Needs `members_write`; audited.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/staff/members/{id}/tags", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id")),
    request_body = TagBody, responses((status = 204), NotFound))]
async fn untag_member(auth: StaffAuth, PathId(id): PathId<i64>, Json(body): Json<TagBody>) -> ApiResult<StatusCode> {
    set_tag(&auth, id, &body.tag, false).await
}

/// Sets a member's birthday, gender or city (each left out is kept). Needs
/// `members_write`; audited.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/members/{id}/profile", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id")),
    request_body = members::ProfileFields, responses((status = 200, body = Member), NotFound, Invalid))]
async fn set_member_profile(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<members::ProfileFields>,
) -> ApiResult<Json<Member>> {
    let m = auth.write(Permission::MembersWrite, async |tx| members::set_profile(tx, id, &body).await).await?;
    Ok(Json(m))
}

/// Tags (`on`) or untags a member; audited.
async fn set_tag(auth: &StaffAuth, id: i64, tag: &str, on: bool) -> ApiResult<StatusCode> {
    auth.write(Permission::MembersWrite, async |tx| members::set_tag(tx, id, tag, on).await).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Secret {
    /// HS256 key the partner app signs webview hand-off tokens with; shown once.
    secret: String,
}

/// Creates (or replaces) the webview hand-off secret (M4). Needs `settings_write`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/webview-secret", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 201, body = Secret), Forbidden))]
async fn webview_secret(auth: StaffAuth) -> ApiResult<(StatusCode, Json<Secret>)> {
    auth.require(Permission::SettingsWrite)?;
    let secret = webview::rotate_secret(&auth.state.db, &auth.state.vault, &auth.tenant, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(Secret { secret })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WebviewLogin {
    /// HS256 JWT signed with the webview secret: {"aud": "pointsmall:webview", "external_id": "…",
    /// "jti": "…", "iat", "exp" (at most 5 minutes after iat)}.
    token: String,
}

/// Signs in the member a partner app names in a short-lived signed token, without a
/// second login (M4). A token works once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/webview", tag = "members", params(TenantSlug),
    request_body = WebviewLogin, responses((status = 200, body = TokenPair), Unauthorized))]
async fn webview_login(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<WebviewLogin>,
) -> ApiResult<Json<TokenPair>> {
    let member_id = webview::sign_in(&state.db, &state.vault, &tenant, &body.token).await?;
    members::touch(&state.db, &tenant, member_id).await?;
    Ok(Json(tokens::member_pair(&state, &tenant, member_id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberSync {
    #[serde(default)]
    #[schema(value_type = Option<PhoneNumber>)]
    phone: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    nickname: Option<String>,
    /// Birthday, gender, city: each sent is set, each left out is kept.
    #[serde(default)]
    profile: members::ProfileFields,
}

/// Creates or updates a member by the partner's own id (P4). Needs scope `members:write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/partner/members/by-external-id/{external_id}", tag = "partner",
    security(("api_key" = [])),
    params(TenantSlug,
        ("external_id" = String, Path, description = "the partner's member id (1 to 128 characters)", min_length = 1, max_length = 128)),
    request_body = MemberSync, responses((status = 200, body = Member), Conflict, Invalid))]
async fn upsert_member(
    auth: PartnerAuth,
    PathId(external_id): PathId<String>,
    Json(body): Json<MemberSync>,
) -> ApiResult<Json<Member>> {
    auth.key.require("members:write")?;
    let m = members::upsert_external(
        &auth.state.db,
        &auth.tenant,
        &external_id,
        body.phone.as_deref(),
        body.nickname.as_deref(),
        &body.profile,
    )
    .await?;
    Ok(Json(m))
}
