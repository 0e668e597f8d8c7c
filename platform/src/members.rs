//! Members of one merchant's mall (SPEC M1, M2): registration by phone or e-mail with a
//! password or a one-time code, login, password reset. Rows live in the tenant schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::codes::{self, Purpose};
use crate::auth::{passwords, secrets};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::sender::Sender;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub nickname: String,
    pub external_id: Option<String>,
    /// This member's own invitation code.
    pub invite_code: String,
    pub invited_by: Option<i64>,
    pub status: String,
    pub avatar_url: Option<String>,
    /// {"order_updates": bool, "expiry_reminders": bool, "marketing": bool}
    pub notifications: serde_json::Value,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When the phone was proven (a one-time code, or vouched for by the merchant's
    /// systems); an unproven phone cannot reach shared alliance points.
    pub phone_proven_at: Option<DateTime<Utc>>,
    pub email_proven_at: Option<DateTime<Utc>>,
    /// The member's birthday, gender and city as they gave them (rules read them as
    /// `member.profile`).
    pub birthday: Option<chrono::NaiveDate>,
    /// female, male or other.
    pub gender: Option<String>,
    pub city: Option<String>,
}

const COLUMNS: &str = "id, phone, email, nickname, external_id, invite_code, invited_by, status, avatar_url, notifications, \
     last_active_at, created_at, phone_proven_at, email_proven_at, birthday, gender, city";

pub use crate::auth::identifier::Identifier;
use crate::auth::identifier::PhoneOrEmail;
use crate::urls::HttpsUrl;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Phone number or e-mail address; it is the account.
    #[schema(value_type = PhoneOrEmail)]
    pub identifier: String,
    /// A password (8-128 characters) …
    #[serde(default)]
    #[schema(value_type = Option<crate::auth::passwords::Password>)]
    pub password: Option<String>,
    /// … or a code sent with purpose `register`. At least one of the two.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub nickname: Option<String>,
    /// Invitation code of the member who invited this one.
    #[serde(default)]
    pub invite_code: Option<String>,
}

/// A sign-up in the OpenAPI document: a `Registration` with a password or a code.
pub struct RegistrationRequest;

impl utoipa::PartialSchema for RegistrationRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::doc::{requiring, text};
        requiring("Registration", [("password", text()), ("code", text())], false, "A password, a code, or both")
    }
}
impl utoipa::ToSchema for RegistrationRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((Registration::name().into(), Registration::schema()));
        <Registration as ToSchema>::schemas(schemas);
    }
}

/// An account found by its phone or e-mail, with its password hash and whether that
/// identifier is proven.
struct Account {
    member: Member,
    password_hash: Option<String>,
    proven: bool,
}

fn identifier_column(id: &Identifier) -> (&'static str, &'static str) {
    match id {
        Identifier::Phone(_) => ("phone", "phone_proven_at"),
        Identifier::Email(_) => ("email", "email_proven_at"),
    }
}

async fn fetch_by_identifier(db: &Db, tenant: &Tenant, id: &Identifier) -> Result<Option<Account>> {
    let (column, proven_column) = identifier_column(id);
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let row: Option<(i64, Option<String>, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, password_hash, {proven_column} IS NOT NULL FROM members WHERE {column} = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((member_id, password_hash, proven)) = row else {
        return Ok(None);
    };
    let member = get_in(&mut tx, member_id).await?;
    tx.commit().await?;
    Ok(Some(Account { member, password_hash, proven }))
}

/// Takes a phone or e-mail away from the account that holds it unproven: someone has
/// just proven it (a code sent to it, or the merchant vouching), so the unproven claim
/// must not block them. The old account keeps its points and its sessions but can no
/// longer be reached by that identifier; `released_identifier` records it.
pub(crate) async fn release_unproven(conn: &mut sqlx::PgConnection, id: &Identifier) -> Result<Option<i64>> {
    let (column, proven_column) = identifier_column(id);
    let released: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE members SET released_identifier = {column}, {column} = NULL, updated_at = now() \
         WHERE {column} = $1 AND {proven_column} IS NULL RETURNING id"
    )))
    .bind(id.as_str())
    .fetch_optional(conn)
    .await?;
    if let Some(member) = released {
        tracing::info!(member, "an unproven phone or e-mail was released to the member who proved it");
    }
    Ok(released)
}

async fn get_in(conn: &mut sqlx::PgConnection, id: i64) -> Result<Member> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM members WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("member_not_found", "no such member"))
}

/// One member of the tenant.
pub async fn get(db: &Db, tenant: &Tenant, id: i64) -> Result<Member> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// A member as the mall's staff see it (M5): the account, its tags and its level.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberRecord {
    #[serde(flatten)]
    pub member: Member,
    /// The member's tags, in alphabetical order.
    pub tags: Vec<String>,
    /// The member's level, if the mall has reached one for it.
    pub level: Option<LevelRef>,
}

/// A level by id and name.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LevelRef {
    pub id: i64,
    pub name: String,
}

/// One member with tags and level, for the staff.
pub async fn record(tx: &mut crate::tx::TenantTx, id: i64) -> Result<MemberRecord> {
    let member = get_in(tx, id).await?;
    let tags = sqlx::query_scalar("SELECT tag FROM member_tags WHERE member_id = $1 ORDER BY tag")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    let level = sqlx::query_as("SELECT l.id, l.name FROM members m JOIN levels l ON l.id = m.level_id WHERE m.id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(MemberRecord { member, tags, level })
}

/// Registers a member (one phone or e-mail, one account). With a `register` code the
/// identifier is proven, and an unproven account holding it gives it up; with a password
/// only, the account is made with the identifier unproven.
pub async fn register(db: &Db, tenant: &Tenant, reg: &Registration) -> Result<Member> {
    let ident = Identifier::parse(&reg.identifier)?;
    if let Some(n) = &reg.nickname
        && n.chars().count() > 64
    {
        return Err(Error::invalid_field("nickname", "at most 64 characters"));
    }
    let password = match (&reg.password, &reg.code) {
        (None, None) => {
            return Err(Error::invalid_field("password", "give a password or a verification code"));
        }
        (Some(p), _) => {
            passwords::check_policy(p)?;
            Some(p)
        }
        (None, Some(_)) => None,
    };
    let proven = match &reg.code {
        Some(code) => {
            codes::verify(db, tenant, ident.as_str(), Purpose::Register, code).await?;
            true
        }
        None => false,
    };
    let hash = match password {
        Some(p) => Some(passwords::hash(p).await?),
        None => None,
    };
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let invited_by = inviter(&mut tx, reg.invite_code.as_deref()).await?;
    if proven {
        release_unproven(&mut tx, &ident).await?;
    }
    let new = NewMember { ident: &ident, proven, password_hash: hash.as_deref(), nickname: reg.nickname.as_deref() };
    let member = insert(&mut tx, &new, invited_by).await.map_err(|e| {
        on_phone_or_email_taken(
            e,
            Error::conflict(
                "account_exists",
                "an account with this phone number or e-mail already exists; log in instead",
            ),
        )
    })?;
    announce_registered(&mut tx, member.id, None, "sign_up").await?;
    tx.commit().await?;
    Ok(member)
}

/// Tells the mall's webhooks of a new member (`member.registered`): how it came
/// (`sign_up`, `partner` sync, `alliance` hand-off); personal data stays out.
pub async fn announce_registered(
    conn: &mut sqlx::PgConnection,
    member_id: i64,
    external_id: Option<&str>,
    source: &str,
) -> Result<()> {
    let data = serde_json::json!({"member_id": member_id, "external_id": external_id, "source": source});
    crate::webhooks::enqueue::event(conn, "member.registered", data).await
}

async fn inviter(conn: &mut sqlx::PgConnection, code: Option<&str>) -> Result<Option<i64>> {
    let Some(code) = code else { return Ok(None) };
    let id = sqlx::query_scalar("SELECT id FROM members WHERE invite_code = $1")
        .bind(code.trim().to_uppercase())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::invalid_field("invite_code", "no member has this invitation code"))?;
    Ok(Some(id))
}

struct NewMember<'a> {
    ident: &'a Identifier,
    proven: bool,
    password_hash: Option<&'a str>,
    nickname: Option<&'a str>,
}

async fn insert(
    conn: &mut sqlx::PgConnection,
    new: &NewMember<'_>,
    invited_by: Option<i64>,
) -> std::result::Result<Member, sqlx::Error> {
    let (phone, email) = match new.ident {
        Identifier::Phone(p) => (Some(p.as_str()), None),
        Identifier::Email(e) => (None, Some(e.as_str())),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO members (phone, email, password_hash, nickname, invite_code, invited_by, level_id, \
             phone_proven_at, email_proven_at) \
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM levels WHERE NOT retired AND threshold = 0), \
             CASE WHEN $7 AND $1::text IS NOT NULL THEN now() END, CASE WHEN $7 AND $2::text IS NOT NULL THEN now() END) \
         RETURNING {COLUMNS}"
    )))
    .bind(phone)
    .bind(email)
    .bind(new.password_hash)
    .bind(new.nickname.unwrap_or("").trim())
    .bind(secrets::random_hex(5).to_uppercase())
    .bind(invited_by)
    .bind(new.proven)
    .fetch_one(conn)
    .await
}

/// `then` when `e` is the unique phone or e-mail of `members` (of a mall or an alliance).
pub(crate) fn on_phone_or_email_taken(e: sqlx::Error, then: Error) -> Error {
    match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation() && matches!(d.constraint(), Some("members_phone_key" | "members_email_key")) =>
        {
            then
        }
        _ => Error::Database(e),
    }
}

/// Checks identifier and password. Unknown accounts, accounts without a password and
/// wrong passwords take the same time (one argon2 verification) and answer alike.
pub async fn authenticate_password(db: &Db, tenant: &Tenant, identifier: &str, password: &str) -> Result<Member> {
    let bad = || Error::unauthenticated("invalid_credentials", "wrong account or password");
    let found = match Identifier::parse(identifier) {
        Ok(id) => fetch_by_identifier(db, tenant, &id).await?,
        Err(_) => None,
    };
    let hash = found.as_ref().and_then(|a| a.password_hash.clone());
    let ok = passwords::verify(password, hash.as_deref().unwrap_or(passwords::dummy_hash())).await?;
    match found {
        Some(a) if ok && hash.is_some() => {
            if a.member.status != "active" {
                return Err(Error::forbidden("account_disabled", "this account is disabled"));
            }
            Ok(a.member)
        }
        _ => Err(bad()),
    }
}

/// Sends a one-time code. The send limit is counted first, for every destination alike;
/// then a code goes out only where it can be used: `register` where no account holds the
/// identifier proven, `login` and `reset_password` where one does. The answer is the same
/// either way, so accounts cannot be discovered this way.
pub async fn send_code(
    db: &Db,
    sender: &dyn Sender,
    tenant: &Tenant,
    identifier: &str,
    purpose: Purpose,
) -> Result<()> {
    let ident = Identifier::parse(identifier)?;
    match purpose {
        Purpose::Verify => {
            return Err(Error::invalid_field("purpose", "verify codes are sent from /me/verification-codes"));
        }
        Purpose::Link => {
            return Err(Error::invalid_field("purpose", "link codes are sent from /me/alliance-links/codes"));
        }
        _ => {}
    }
    codes::throttle(db, tenant, ident.as_str(), purpose).await?;
    let proven_holder = fetch_by_identifier(db, tenant, &ident).await?.is_some_and(|a| a.proven);
    let should_send = match purpose {
        Purpose::Register => !proven_holder,
        Purpose::Login | Purpose::ResetPassword | Purpose::Verify | Purpose::Link => proven_holder,
    };
    if should_send {
        codes::issue(db, sender, tenant, ident.as_str(), purpose).await?;
    }
    Ok(())
}

/// Sends a `link` code to the account of `tenant` that holds `identifier` proven, for a
/// member of another mall of the alliance who links it (`alliance::link`). Counted like
/// every code first; the answer is the same whether or not such an account exists. An
/// account holding it unproven gets nothing: a phone number alone never links.
pub async fn send_link_code(db: &Db, sender: &dyn Sender, tenant: &Tenant, identifier: &str) -> Result<()> {
    let ident = Identifier::parse(identifier)?;
    codes::throttle(db, tenant, ident.as_str(), Purpose::Link).await?;
    if fetch_by_identifier(db, tenant, &ident).await?.is_some_and(|a| a.proven) {
        codes::issue(db, sender, tenant, ident.as_str(), Purpose::Link).await?;
    }
    Ok(())
}

/// The account of `tenant` holding `identifier` proven, after checking a `link` code
/// sent to it (five wrong guesses use the code up).
pub async fn authenticate_link_code(db: &Db, tenant: &Tenant, identifier: &str, code: &str) -> Result<Member> {
    let ident = Identifier::parse(identifier)?;
    codes::verify(db, tenant, ident.as_str(), Purpose::Link, code).await?;
    proven_holder(db, tenant, &ident).await
}

/// The account that holds `ident` proven; a code for it was just checked. An account
/// holding it unproven is not the code holder's (it may be a squatter's).
async fn proven_holder(db: &Db, tenant: &Tenant, ident: &Identifier) -> Result<Member> {
    match fetch_by_identifier(db, tenant, ident).await? {
        Some(a) if a.proven => Ok(a.member),
        _ => Err(Error::unauthenticated("code_invalid", "the verification code is wrong, used or expired")),
    }
}

/// Logs in with a one-time code (only into the account whose identifier is proven).
pub async fn authenticate_code(db: &Db, tenant: &Tenant, identifier: &str, code: &str) -> Result<Member> {
    let ident = Identifier::parse(identifier)?;
    codes::verify(db, tenant, ident.as_str(), Purpose::Login, code).await?;
    let m = proven_holder(db, tenant, &ident).await?;
    if m.status != "active" {
        return Err(Error::forbidden("account_disabled", "this account is disabled"));
    }
    Ok(m)
}

/// Sets a new password after checking a `reset_password` code; ends every session.
pub async fn reset_password(db: &Db, tenant: &Tenant, identifier: &str, code: &str, new_password: &str) -> Result<()> {
    let ident = Identifier::parse(identifier)?;
    passwords::check_policy(new_password)?;
    codes::verify(db, tenant, ident.as_str(), Purpose::ResetPassword, code).await?;
    let m = proven_holder(db, tenant, &ident).await?;
    let hash = passwords::hash(new_password).await?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query("UPDATE members SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(m.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    let ended = crate::auth::sessions::revoke_all(&mut tx, crate::auth::sessions::Store::Member, m.id).await?;
    tx.commit().await?;
    crate::auth::sessions::forget(&ended);
    Ok(())
}

/// Which of a signed-in member's own identifiers to prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    Phone,
    Email,
}

async fn own_identifier(db: &Db, tenant: &Tenant, id: i64, kind: IdentifierKind) -> Result<(Identifier, bool)> {
    let m = get(db, tenant, id).await?;
    let (value, proven) = match kind {
        IdentifierKind::Phone => (m.phone.map(Identifier::Phone), m.phone_proven_at.is_some()),
        IdentifierKind::Email => (m.email.map(Identifier::Email), m.email_proven_at.is_some()),
    };
    let value = value.ok_or_else(|| Error::invalid_field("kind", "this account has no such identifier"))?;
    Ok((value, proven))
}

/// Sends a `verify` code to the signed-in member's own phone or e-mail (nothing to do
/// when it is proven already).
pub async fn send_proof_code(
    db: &Db,
    sender: &dyn Sender,
    tenant: &Tenant,
    id: i64,
    kind: IdentifierKind,
) -> Result<()> {
    let (ident, proven) = own_identifier(db, tenant, id, kind).await?;
    if proven {
        return Ok(());
    }
    codes::throttle(db, tenant, ident.as_str(), Purpose::Verify).await?;
    codes::issue(db, sender, tenant, ident.as_str(), Purpose::Verify).await
}

/// Proves the signed-in member's own phone or e-mail with a `verify` code.
pub async fn prove(db: &Db, tenant: &Tenant, id: i64, kind: IdentifierKind, code: &str) -> Result<Member> {
    let (ident, proven) = own_identifier(db, tenant, id, kind).await?;
    if !proven {
        codes::verify(db, tenant, ident.as_str(), Purpose::Verify, code).await?;
        let (column, proven_column) = identifier_column(&ident);
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE members SET {proven_column} = now(), updated_at = now() WHERE id = $1 AND {column} = $2"
        )))
        .bind(id)
        .bind(ident.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    get(db, tenant, id).await
}

/// What a member may change of their profile (M3).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[schema(max_length = 64)]
    pub nickname: Option<String>,
    /// https URL of the avatar image.
    #[schema(value_type = Option<HttpsUrl>)]
    pub avatar_url: Option<String>,
    /// Any of order_updates, expiry_reminders, marketing (true/false).
    #[schema(value_type = Option<NotificationSettings>)]
    pub notifications: Option<serde_json::Map<String, serde_json::Value>>,
    /// From 1900-01-01 to today.
    pub birthday: Option<chrono::NaiveDate>,
    pub gender: Option<Gender>,
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub city: Option<String>,
}

/// A member's gender as they give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "female",
            Self::Male => "male",
            Self::Other => "other",
        }
    }
}

/// The profile fields the mall's staff and the merchant's systems may set as well as the
/// member (each left out is kept as it is). Rules read them as `member.profile`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileFields {
    /// From 1900-01-01 to today.
    #[serde(default)]
    pub birthday: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub gender: Option<Gender>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub city: Option<String>,
}

impl ProfileFields {
    pub fn is_empty(&self) -> bool {
        self.birthday.is_none() && self.gender.is_none() && self.city.is_none()
    }

    /// Checks each field sent; `prefix` names where the fields sit in the request.
    fn check(&self, v: &mut crate::error::Validator, tenant: &Tenant, prefix: &str) {
        let earliest = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
        let today = crate::localtime::day(tenant.settings.tz(), Utc::now());
        v.check(
            self.birthday.is_none_or(|b| (earliest..=today).contains(&b)),
            &format!("{prefix}birthday"),
            "from 1900-01-01 to today",
        );
        v.check(
            self.city.as_ref().is_none_or(|c| !c.trim().is_empty() && c.trim().chars().count() <= 64),
            &format!("{prefix}city"),
            "1 to 64 characters",
        );
    }

    /// Writes the fields sent to member `id` (whose schema is selected on `conn`).
    async fn write(&self, conn: &mut sqlx::PgConnection, id: i64) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE members SET birthday = coalesce($2, birthday), gender = coalesce($3, gender), \
                 city = coalesce($4, city), updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(self.birthday)
        .bind(self.gender.map(Gender::as_str))
        .bind(self.city.as_deref().map(str::trim))
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Staff set a member's profile fields (M5). Audited with what was sent.
pub async fn set_profile(tx: &mut crate::tx::TenantTx, id: i64, p: &ProfileFields) -> Result<Member> {
    let mut v = crate::error::Validator::new();
    p.check(&mut v, tx.tenant(), "");
    v.finish()?;
    get_in(tx, id).await?;
    p.write(tx, id).await?;
    tx.audit("member.profile", &format!("member:{id}"), serde_json::to_value(p).unwrap_or_default()).await?;
    get_in(tx, id).await
}

/// Which messages a member gets (each left out is kept as it is). The document's name for
/// what `update_profile` checks of `ProfileUpdate::notifications`.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NotificationSettings {
    #[serde(default)]
    order_updates: bool,
    #[serde(default)]
    expiry_reminders: bool,
    #[serde(default)]
    marketing: bool,
}

/// Changes the member's profile.
pub async fn update_profile(db: &Db, tenant: &Tenant, id: i64, p: &ProfileUpdate) -> Result<Member> {
    let mut v = crate::error::Validator::new();
    v.check(p.nickname.as_ref().is_none_or(|n| n.chars().count() <= 64), "nickname", "at most 64 characters");
    v.check(
        p.avatar_url.as_ref().is_none_or(|u| crate::urls::https_url_ok(u)),
        "avatar_url",
        "an https URL of at most 2048 characters",
    );
    v.check(
        p.notifications.as_ref().is_none_or(|n| {
            n.iter().all(|(k, v)| {
                ["order_updates", "expiry_reminders", "marketing"].contains(&k.as_str()) && v.is_boolean()
            })
        }),
        "notifications",
        "order_updates, expiry_reminders, marketing: true or false",
    );
    let profile = ProfileFields { birthday: p.birthday, gender: p.gender, city: p.city.clone() };
    profile.check(&mut v, tenant, "");
    v.finish()?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let was_complete = profile_complete(&mut tx, id).await?;
    sqlx::query(
        "UPDATE members SET nickname = coalesce($2, nickname), avatar_url = coalesce($3, avatar_url), \
             notifications = notifications || coalesce($4, '{}'::jsonb), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(p.nickname.as_deref().map(str::trim))
    .bind(&p.avatar_url)
    .bind(p.notifications.clone().map(serde_json::Value::Object))
    .execute(&mut *tx)
    .await?;
    profile.write(&mut tx, id).await?;
    let m = get_in(&mut tx, id).await?;
    // Nickname and avatar both set for the first time: `profile_completed` for rules
    // and tasks ("complete your profile").
    if !was_complete && profile_complete(&mut tx, id).await? {
        crate::outbox::emit(&mut tx, "profile_completed", id, serde_json::json!({})).await?;
    }
    tx.commit().await?;
    Ok(m)
}

/// Whether the member's profile has a nickname and an avatar.
async fn profile_complete(conn: &mut sqlx::PgConnection, id: i64) -> Result<bool> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT nickname <> '' AND avatar_url IS NOT NULL FROM members WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(done.unwrap_or(false))
}

/// Records that the member was active now (segments such as "inactive 30 days").
pub async fn touch(db: &Db, tenant: &Tenant, id: i64) -> Result<()> {
    active(db, tenant, id, false).await
}

/// Records a sign-in: the member was active now, and `logged_in` goes to the rules.
pub async fn signed_in(db: &Db, tenant: &Tenant, id: i64) -> Result<()> {
    active(db, tenant, id, true).await
}

async fn active(db: &Db, tenant: &Tenant, id: i64, signed_in: bool) -> Result<()> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query("UPDATE members SET last_active_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
    if signed_in {
        crate::outbox::emit(&mut tx, "logged_in", id, serde_json::json!({})).await?;
    }
    tx.commit().await?;
    Ok(())
}

use crate::segments::MATCH;
pub use crate::segments::MemberFilter;

/// A page of members matching `f`, newest first, before `before_id`.
pub async fn list(
    tx: &mut crate::tx::TenantTx,
    f: &MemberFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Member>> {
    let bound = f.bind(tx.tenant().settings.tz())?;
    let sql = format!(
        "SELECT {COLUMNS} FROM members m WHERE ($1::bigint IS NULL OR id < $1) AND {MATCH} ORDER BY id DESC LIMIT $2"
    );
    Ok(bound.apply(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(before_id).bind(limit)).fetch_all(&mut **tx).await?)
}

/// Tags (`on`) or untags a member by hand (M5); audited.
pub async fn set_tag(tx: &mut crate::tx::TenantTx, id: i64, tag: &str, on: bool) -> Result<()> {
    if tag.trim().is_empty() || tag.chars().count() > 64 {
        return Err(Error::invalid_field("tag", "1 to 64 characters"));
    }
    get_in(tx, id).await?;
    let sql = if on {
        "INSERT INTO member_tags (member_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM member_tags WHERE member_id = $1 AND tag = $2"
    };
    sqlx::query(sql).bind(id).bind(tag.trim()).execute(&mut **tx).await?;
    let action = if on { "member.tag" } else { "member.untag" };
    tx.audit(action, &format!("member:{id}"), serde_json::json!({"tag": tag})).await
}

/// Creates or updates a member by the partner's external id (P4). The merchant's own
/// system vouches for the phone it sends: it counts as proven, and an account holding
/// it unproven gives it up.
pub async fn upsert_external(
    db: &Db,
    tenant: &Tenant,
    external_id: &str,
    phone: Option<&str>,
    nickname: Option<&str>,
    profile: &ProfileFields,
) -> Result<Member> {
    Ok(upsert_external_created(db, tenant, external_id, phone, nickname, profile).await?.0)
}

/// `upsert_external`, and whether the member was created (else updated).
pub async fn upsert_external_created(
    db: &Db,
    tenant: &Tenant,
    external_id: &str,
    phone: Option<&str>,
    nickname: Option<&str>,
    profile: &ProfileFields,
) -> Result<(Member, bool)> {
    let phone = check_external(tenant, external_id, phone, nickname, profile)?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    if let Some(p) = &phone {
        sqlx::query(
            "UPDATE members SET released_identifier = phone, phone = NULL, updated_at = now() \
             WHERE phone = $1 AND phone_proven_at IS NULL AND external_id IS DISTINCT FROM $2",
        )
        .bind(p)
        .bind(external_id)
        .execute(&mut *tx)
        .await?;
    }
    let (id, inserted) = write_external(&mut tx, external_id, phone.as_deref(), nickname).await?;
    profile.write(&mut tx, id).await?;
    if inserted {
        announce_registered(&mut tx, id, Some(external_id), "partner").await?;
    }
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok((m, inserted))
}

/// Checks a partner's member fields; the phone in its stored form.
fn check_external(
    tenant: &Tenant,
    external_id: &str,
    phone: Option<&str>,
    nickname: Option<&str>,
    profile: &ProfileFields,
) -> Result<Option<String>> {
    if external_id.is_empty() || external_id.chars().count() > 128 {
        return Err(Error::invalid_field("external_id", "1 to 128 characters"));
    }
    let phone = match phone {
        Some(p) => match Identifier::parse(p)? {
            Identifier::Phone(p) => Some(p),
            Identifier::Email(_) => return Err(Error::invalid_field("phone", "a phone number")),
        },
        None => None,
    };
    if nickname.is_some_and(|n| n.chars().count() > 64) {
        return Err(Error::invalid_field("nickname", "at most 64 characters"));
    }
    let mut v = crate::error::Validator::new();
    profile.check(&mut v, tenant, "profile.");
    v.finish()?;
    Ok(phone)
}

/// Updates the member with this external id with what was sent, or creates it; (id,
/// created).
async fn write_external(
    conn: &mut sqlx::PgConnection,
    external_id: &str,
    phone: Option<&str>,
    nickname: Option<&str>,
) -> Result<(i64, bool)> {
    let refused = |e: sqlx::Error| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict("account_exists", "another member has this phone number")
        }
        sqlx::Error::Database(d) if d.is_check_violation() => {
            Error::invalid_field("phone", "a member needs a phone or e-mail")
        }
        _ => Error::Database(e),
    };
    // An update first: it changes only what was sent (an insert's row would be checked
    // whole, phone included, before its conflict turned it into an update).
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE members SET phone = coalesce($2, phone), \
             phone_proven_at = CASE WHEN $2::text IS NOT NULL THEN now() ELSE phone_proven_at END, \
             nickname = coalesce($3, nickname), updated_at = now() \
         WHERE external_id = $1 RETURNING id",
    )
    .bind(external_id)
    .bind(phone)
    .bind(nickname)
    .fetch_optional(&mut *conn)
    .await
    .map_err(refused)?;
    if let Some(id) = updated {
        return Ok((id, false));
    }
    sqlx::query_as(
        "INSERT INTO members (external_id, phone, nickname, invite_code, level_id, phone_proven_at) \
         VALUES ($1, $2, coalesce($3, ''), $4, (SELECT id FROM levels WHERE NOT retired AND threshold = 0), \
             CASE WHEN $2::text IS NOT NULL THEN now() END) \
         ON CONFLICT (external_id) DO UPDATE SET phone = coalesce(EXCLUDED.phone, members.phone), \
             phone_proven_at = coalesce(EXCLUDED.phone_proven_at, members.phone_proven_at), \
             nickname = CASE WHEN $3 IS NULL THEN members.nickname ELSE EXCLUDED.nickname END, updated_at = now() \
         RETURNING id, xmax = 0",
    )
    .bind(external_id)
    .bind(phone)
    .bind(nickname)
    .bind(secrets::random_hex(5).to_uppercase())
    .fetch_one(conn)
    .await
    .map_err(refused)
}

/// The member with this external id.
pub async fn by_external_id(db: &Db, tenant: &Tenant, external_id: &str) -> Result<Option<i64>> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let id = sqlx::query_scalar("SELECT id FROM members WHERE external_id = $1")
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The id of the member with this phone or e-mail, if any.
pub async fn find_id(db: &Db, tenant: &Tenant, id: &Identifier) -> Result<Option<i64>> {
    Ok(fetch_by_identifier(db, tenant, id).await?.map(|a| a.member.id))
}
