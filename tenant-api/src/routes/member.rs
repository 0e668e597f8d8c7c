//! Member routes: `/v1/tenants/{tenant}/auth/...` and `/v1/tenants/{tenant}/me`.

use axum::extract::State;
use axum::http::StatusCode;
use platform::Error;
use platform::alliance::{identity, link};
use platform::auth::codes::Purpose;
use platform::auth::identifier::PhoneOrEmail;
use platform::auth::tokens::{Audience, TokenPair, subject_id};
use platform::members::{self, IdentifierKind, Member, ProfileUpdate, Registration, RegistrationRequest};
use platform::rules::pipeline::{self, IncomingEvent};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use super::{RefreshRequest, tokens};
use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug, TooMany, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{ClientAddr, Json, MemberAuth, TenantPath, bearer_token};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        register;
        login;
        send_code;
        login_with_code;
        reset_password;
        refresh;
        logout;
        me, update_me;
        alliance_handoff;
        send_link_code;
        link_account;
        send_proof_code;
        prove;
    ]
}

#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    member: Member,
    tokens: TokenPair,
}

/// Registers a member by phone or e-mail, with a password or a `register` code (M1).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/register", tag = "members", params(TenantSlug),
    request_body = RegistrationRequest, responses((status = 201, body = Registered), Unauthorized, Conflict, Invalid))]
async fn register(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<Registration>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let member = members::register(&state.db, &tenant, &body).await?;
    let tokens = tokens::member_pair(&state, &tenant, member.id).await?;
    // Sign-up bonuses and invitation rewards run through the rules; their outcome is
    // recorded with the events and never undoes the registration.
    let mut events = vec![IncomingEvent {
        id: format!("registered:{}", member.id),
        kind: "registered".into(),
        member_id: member.id,
        occurred_at: None,
        data: serde_json::json!({}),
    }];
    if let Some(inviter) = member.invited_by {
        events.push(IncomingEvent {
            id: format!("invited_registered:{}", member.id),
            kind: "invited_registered".into(),
            member_id: inviter,
            occurred_at: None,
            data: serde_json::json!({"invitee_id": member.id}),
        });
    }
    if let Err(e) = pipeline::process(&state.db, &state.rules, &tenant, "system", &events).await {
        tracing::error!(error = %e, member = member.id, "registration events failed");
    }
    Ok((StatusCode::CREATED, Json(Registered { member, tokens })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordLogin {
    /// Phone number or e-mail.
    identifier: String,
    password: String,
}

/// Logs a member in with a password (M2). Throttled per account and address.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/login", tag = "members", params(TenantSlug),
    request_body = PasswordLogin, responses((status = 200, body = TokenPair), Unauthorized, TooMany))]
async fn login(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<PasswordLogin>,
) -> ApiResult<Json<TokenPair>> {
    // Every spelling of one phone is one account, and one counter.
    let normalized = members::Identifier::parse(&body.identifier)
        .map(|i| i.as_str().to_string())
        .unwrap_or_else(|_| body.identifier.trim().to_lowercase());
    let account = format!("{}:member:{normalized}", tenant.id);
    let login = members::authenticate_password(&state.db, &tenant, &body.identifier, &body.password);
    let m = tokens::throttled(&state, &account, &addr, login).await?;
    members::signed_in(&state.db, &tenant, m.id).await?;
    state.drain_soon(&tenant);
    Ok(Json(tokens::member_pair(&state, &tenant, m.id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    #[schema(value_type = PhoneOrEmail)]
    identifier: String,
    #[schema(value_type = platform::auth::codes::CodePurpose)]
    purpose: Purpose,
}

/// Sends a one-time code by SMS or e-mail (through the configured sender). The answer
/// is the same whether or not the account exists.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/codes", tag = "members", params(TenantSlug),
    request_body = CodeRequest, responses((status = 202), Invalid, TooMany))]
async fn send_code(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<CodeRequest>,
) -> ApiResult<StatusCode> {
    members::send_code(&state.db, state.sender.as_ref(), &tenant, &body.identifier, body.purpose).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeLogin {
    #[schema(value_type = PhoneOrEmail)]
    identifier: String,
    code: String,
}

/// Logs a member in with a `login` code.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/login-with-code", tag = "members", params(TenantSlug),
    request_body = CodeLogin, responses((status = 200, body = TokenPair), Unauthorized))]
async fn login_with_code(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<CodeLogin>,
) -> ApiResult<Json<TokenPair>> {
    let m = members::authenticate_code(&state.db, &tenant, &body.identifier, &body.code).await?;
    members::signed_in(&state.db, &tenant, m.id).await?;
    state.drain_soon(&tenant);
    Ok(Json(tokens::member_pair(&state, &tenant, m.id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    #[schema(value_type = PhoneOrEmail)]
    identifier: String,
    /// A code sent with purpose `reset_password`.
    code: String,
    #[schema(value_type = platform::auth::passwords::Password)]
    new_password: String,
}

/// Sets a new password with a `reset_password` code; every session of the account ends.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/reset-password", tag = "members", params(TenantSlug),
    request_body = PasswordReset, responses((status = 204), Unauthorized, Invalid))]
async fn reset_password(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<PasswordReset>,
) -> ApiResult<StatusCode> {
    members::reset_password(&state.db, &tenant, &body.identifier, &body.code, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Exchanges a refresh token for a new pair (the old one is used up).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/refresh", tag = "members", params(TenantSlug),
    request_body = RefreshRequest, responses((status = 200, body = TokenPair), Unauthorized))]
async fn refresh(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    Ok(Json(tokens::member_refresh(&state, &tenant, &body.refresh_token).await?))
}

/// Ends the session of a refresh token (idempotent).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/logout", tag = "members", params(TenantSlug),
    request_body = RefreshRequest, responses((status = 204)))]
async fn logout(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    tokens::member_logout(&state, &tenant, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in member.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Member), Unauthorized, Forbidden))]
async fn me(auth: MemberAuth) -> ApiResult<Json<Member>> {
    Ok(Json(members::get(&auth.state.db, &auth.tenant, auth.member_id).await?))
}

/// Changes the signed-in member's profile: nickname, avatar, notification settings (M3).
/// The first time both nickname and avatar are set, `profile_completed` goes to the
/// rules and tasks.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/me", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), request_body = ProfileUpdate, responses((status = 200, body = Member), Unauthorized, Invalid))]
async fn update_me(auth: MemberAuth, Json(body): Json<ProfileUpdate>) -> ApiResult<Json<Member>> {
    let member = members::update_profile(&auth.state.db, &auth.tenant, auth.member_id, &body).await?;
    auth.state.drain_soon(&auth.tenant);
    Ok(Json(member))
}

/// Signs a member of one mall of an alliance into another mall of the same alliance,
/// without a second login (SPEC A2, C6): send the member's access token of the mall they
/// are in as `Authorization: Bearer …` (no body). The answer is a token pair for this
/// mall's member with the same alliance identity, made on first visit. Shared points are
/// one balance across the alliance's malls.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/auth/alliance-handoff", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "slug of the mall to sign in to")),
    responses((status = 200, body = TokenPair), Unauthorized, Forbidden, Conflict))]
async fn alliance_handoff(
    State(state): State<AppState>,
    TenantPath(to): TenantPath,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<TokenPair>> {
    let claims = state.tokens.verify(bearer_token(&headers)?, Audience::Member)?;
    let tid = claims.tid.ok_or_else(|| Error::unauthenticated("token_invalid", "this token names no mall"))?;
    let from = platform::directory::find_by_id(state.db.control(), tid)
        .await?
        .filter(|t| t.status == platform::directory::TenantStatus::Active)
        .ok_or_else(|| Error::forbidden("tenant_unavailable", "the mall this token was issued by is not open"))?;
    let from_member = subject_id(&claims)?;
    crate::extract::member_session(&state, &from, from_member, &claims).await?;
    let from_member = platform::ids::MemberId::new(from_member);
    let member = identity::member_in(&state.db, &from, from_member, &to).await?;
    Ok(Json(tokens::member_pair(&state, &to, member.get()).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProofCodeRequest {
    /// Which of the account's own identifiers to prove.
    kind: IdentifierKind,
}

/// Sends a `verify` code to the signed-in member's own phone or e-mail, to prove it.
/// An account registered with a password only has its identifier unproven: it cannot
/// sign in by code, and cannot use shared alliance points, until it is proven.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/verification-codes", tag = "members",
    security(("member_jwt" = [])), params(TenantSlug), request_body = ProofCodeRequest,
    responses((status = 202), Unauthorized, Invalid, TooMany))]
async fn send_proof_code(auth: MemberAuth, Json(body): Json<ProofCodeRequest>) -> ApiResult<StatusCode> {
    members::send_proof_code(&auth.state.db, auth.state.sender.as_ref(), &auth.tenant, auth.member_id, body.kind)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Proof {
    kind: IdentifierKind,
    /// The code sent by `/me/verification-codes`.
    code: String,
}

/// Proves the signed-in member's own phone or e-mail with the code sent to it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/verification", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), request_body = Proof, responses((status = 200, body = Member), Unauthorized, Invalid))]
async fn prove(auth: MemberAuth, Json(body): Json<Proof>) -> ApiResult<Json<Member>> {
    Ok(Json(members::prove(&auth.state.db, &auth.tenant, auth.member_id, body.kind, &body.code).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkCodeRequest {
    /// Slug of the other mall of the alliance, where the account to link is.
    #[schema(min_length = 1, max_length = 63)]
    mall: String,
    /// The phone number or e-mail of the account to link, as proven there.
    #[schema(value_type = PhoneOrEmail)]
    identifier: String,
}

/// Starts linking the signed-in member's account with their account in another mall of
/// the same alliance (SPEC A2): sends a `link` code to that account's proven phone or
/// e-mail. The answer is the same whether or not such an account exists; an account
/// holding the identifier unproven gets no code (a phone number alone never links).
/// An account with a password can be linked with it instead, without a code.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/alliance-links/codes", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "slug of the mall signed in at")),
    request_body = LinkCodeRequest, responses((status = 202), Unauthorized, Forbidden, NotFound, Invalid, TooMany))]
async fn send_link_code(auth: MemberAuth, Json(body): Json<LinkCodeRequest>) -> ApiResult<StatusCode> {
    let other = auth.state.directory.resolve_active(&body.mall).await?;
    link::check_malls(&auth.tenant, &other)?;
    members::send_link_code(&auth.state.db, auth.state.sender.as_ref(), &other, &body.identifier).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// Slug of the other mall of the alliance, where the account to link is.
    #[schema(min_length = 1, max_length = 63)]
    mall: String,
    /// The phone number or e-mail of the account to link.
    #[schema(value_type = PhoneOrEmail)]
    identifier: String,
    /// The code sent by `/me/alliance-links/codes` (or give `password`).
    code: Option<String>,
    /// The password of the account to link (or give `code`).
    password: Option<String>,
}

/// Links the signed-in member's account with their account in another mall of the same
/// alliance, proven by the code sent to it or its password: both become one alliance
/// identity, with one shared balance. When both already had one, the other's is merged
/// into this one's: its shared points move here, each keeping its expiry and the mall
/// that issued it. Refused: a wrong code or password (throttled like a sign-in at that
/// mall), a mall of another alliance (or of none), accounts already linked.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/alliance-links", tag = "members", security(("member_jwt" = [])),
    params(("tenant" = String, Path, description = "slug of the mall signed in at")), request_body = LinkRequest,
    responses((status = 200, body = link::Link), Unauthorized, Forbidden, NotFound, Conflict, Invalid, TooMany))]
async fn link_account(
    auth: MemberAuth,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<LinkRequest>,
) -> ApiResult<Json<link::Link>> {
    let other = auth.state.directory.resolve_active(&body.mall).await?;
    link::check_malls(&auth.tenant, &other)?;
    let member = match (&body.code, &body.password) {
        (Some(code), None) => members::authenticate_link_code(&auth.state.db, &other, &body.identifier, code).await?,
        (None, Some(password)) => {
            // The same counters as a password sign-in at that mall.
            let normalized = members::Identifier::parse(&body.identifier)
                .map(|i| i.as_str().to_string())
                .unwrap_or_else(|_| body.identifier.trim().to_lowercase());
            let account = format!("{}:member:{normalized}", other.id);
            let login = members::authenticate_password(&auth.state.db, &other, &body.identifier, password);
            tokens::throttled(&auth.state, &account, &addr, login).await?
        }
        _ => {
            return Err(
                Error::invalid_field("code", "give the code sent to the account to link, or its password").into()
            );
        }
    };
    let me = platform::ids::MemberId::new(auth.member_id);
    let done = link::link(&auth.state.db, &auth.tenant, me, &other, platform::ids::MemberId::new(member.id)).await?;
    Ok(Json(done))
}
