//! Staff accounts of every level: the platform operator, alliance admins and merchant
//! staff (SPEC B5). Accounts live in the control schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, Actor};
use crate::auth::passwords;
use crate::error::{Error, Result, Validator};
use crate::ids::{AllianceId, StaffId, TenantId};
use crate::rbac::Role;

/// Which level an account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Alliance(AllianceId),
    Tenant(TenantId),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffUser {
    pub id: StaffId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub tenant_id: Option<TenantId>,
    #[serde(skip)]
    pub alliance_id: Option<AllianceId>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: StaffId,
    email: String,
    display_name: String,
    role: String,
    disabled: bool,
    created_at: DateTime<Utc>,
    tenant_id: Option<TenantId>,
    alliance_id: Option<AllianceId>,
    password_hash: String,
}

impl Row {
    fn user(self) -> (StaffUser, String) {
        (
            StaffUser {
                id: self.id,
                email: self.email,
                display_name: self.display_name,
                role: Role::parse(&self.role).unwrap_or(Role::Auditor),
                disabled: self.disabled,
                created_at: self.created_at,
                tenant_id: self.tenant_id,
                alliance_id: self.alliance_id,
            },
            self.password_hash,
        )
    }
}

const COLUMNS: &str = "id, email, display_name, role, disabled, created_at, tenant_id, alliance_id, password_hash";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    #[schema(value_type = crate::auth::identifier::EmailAddress)]
    pub email: String,
    #[schema(value_type = crate::auth::passwords::Password)]
    pub password: String,
    /// A merchant's staff role (the routes that take this body create merchant staff).
    #[schema(value_type = crate::rbac::TenantRole)]
    pub role: Role,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub display_name: String,
}

/// A new alliance admin (the role is implied).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAllianceAdmin {
    #[schema(value_type = crate::auth::identifier::EmailAddress)]
    pub email: String,
    #[schema(value_type = crate::auth::passwords::Password)]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub display_name: String,
}

impl NewAllianceAdmin {
    pub fn staff(&self) -> NewStaff {
        NewStaff {
            email: self.email.clone(),
            password: self.password.clone(),
            role: Role::AllianceAdmin,
            display_name: self.display_name.clone(),
        }
    }
}

pub use crate::auth::identifier::normalize_email;

/// Creates a staff account at the given level; audited.
pub async fn create(conn: &mut PgConnection, scope: Scope, new: &NewStaff, actor: &Actor) -> Result<StaffUser> {
    let email = normalize_email(&new.email);
    let role_ok = match scope {
        Scope::Platform => new.role == Role::PlatformAdmin,
        Scope::Alliance(_) => new.role == Role::AllianceAdmin,
        Scope::Tenant(_) => new.role.is_tenant_role(),
    };
    Validator::new()
        .check(email.is_some(), "email", "not a valid e-mail address")
        .check(role_ok, "role", "this role does not exist at this level")
        .check(new.display_name.chars().count() <= 64, "display_name", "at most 64 characters")
        .finish()?;
    passwords::check_policy(&new.password)?;
    let email = email.unwrap_or_default();
    let hash = passwords::hash(&new.password).await?;
    let (scope_name, tenant_id, alliance_id) = match scope {
        Scope::Platform => ("platform", None, None),
        Scope::Alliance(a) => ("alliance", None, Some(a)),
        Scope::Tenant(t) => ("tenant", Some(t), None),
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.staff_users (scope, tenant_id, alliance_id, email, display_name, password_hash, role) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(scope_name)
    .bind(tenant_id)
    .bind(alliance_id)
    .bind(&email)
    .bind(new.display_name.trim())
    .bind(hash)
    .bind(new.role.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match &e {
        // Three partial unique indexes, one per level: any of them means "taken here".
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict("email_taken", "a staff account with this e-mail already exists here")
        }
        _ => Error::Database(e),
    })?;
    let (user, _) = row.user();
    let details = serde_json::json!({"email": user.email, "role": user.role.as_str()});
    match scope {
        Scope::Alliance(a) => {
            audit::record_alliance(conn, actor, a, "staff.create", &user.id.to_string(), details).await?
        }
        _ => audit::record(conn, actor, tenant_id, "staff.create", &user.id.to_string(), details).await?,
    }
    Ok(user)
}

/// Checks e-mail and password at the given level. Unknown accounts cost the same time
/// as wrong passwords; both get the same error.
pub async fn authenticate(pool: &PgPool, scope: Scope, email: &str, password: &str) -> Result<StaffUser> {
    let bad = || Error::unauthenticated("invalid_credentials", "wrong e-mail or password");
    let email = normalize_email(email).unwrap_or_default();
    let row: Option<Row> =
        match scope {
            Scope::Platform => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM control.staff_users WHERE scope = 'platform' AND email = $1"
                )))
                .bind(&email)
                .fetch_optional(pool)
                .await?
            }
            Scope::Alliance(a) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM control.staff_users WHERE scope = 'alliance' AND alliance_id = $2 AND email = $1"
            )))
            .bind(&email)
            .bind(a)
            .fetch_optional(pool)
            .await?,
            Scope::Tenant(t) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM control.staff_users WHERE scope = 'tenant' AND tenant_id = $2 AND email = $1"
                )))
                .bind(&email)
                .bind(t)
                .fetch_optional(pool)
                .await?
            }
        };
    let Some(row) = row else {
        passwords::verify(password, passwords::dummy_hash()).await?;
        return Err(bad());
    };
    let (user, hash) = row.user();
    if !passwords::verify(password, &hash).await? {
        return Err(bad());
    }
    if user.disabled {
        return Err(Error::forbidden("account_disabled", "this staff account is disabled"));
    }
    Ok(user)
}

/// One account by id (for refresh).
pub async fn find(pool: &PgPool, id: StaffId) -> Result<StaffUser> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM control.staff_users WHERE id = $1")))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(|r| r.user().0).ok_or_else(|| Error::not_found("staff_not_found", "no such staff account"))
}

/// A merchant's staff, in id order.
pub async fn list_for_tenant(pool: &PgPool, tenant_id: TenantId) -> Result<Vec<StaffUser>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM control.staff_users WHERE scope = 'tenant' AND tenant_id = $1 ORDER BY id"
    )))
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.user().0).collect())
}

/// Changes a merchant staff member's role or disables the account; audited.
pub async fn update_in_tenant(
    pool: &PgPool,
    tenant_id: TenantId,
    staff_id: StaffId,
    role: Option<Role>,
    disabled: Option<bool>,
    actor: &Actor,
) -> Result<StaffUser> {
    if let Some(r) = role
        && !r.is_tenant_role()
    {
        return Err(Error::invalid_field("role", "this role does not exist at this level"));
    }
    if actor.id == Some(staff_id.get()) {
        return Err(Error::conflict("cannot_change_self", "ask another owner to change your own role or status"));
    }
    let mut tx = pool.begin().await?;
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE control.staff_users SET role = coalesce($3, role), disabled = coalesce($4, disabled) \
         WHERE id = $1 AND scope = 'tenant' AND tenant_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(staff_id)
    .bind(tenant_id)
    .bind(role.map(Role::as_str))
    .bind(disabled)
    .fetch_optional(&mut *tx)
    .await?;
    let user = row.map(|r| r.user().0).ok_or_else(|| Error::not_found("staff_not_found", "no such staff account"))?;
    // Disabling or a role change ends every sign-in: the next request with an old token
    // is refused, and the account signs in again with its new role.
    let ended = if disabled == Some(true) || role.is_some() {
        crate::auth::sessions::revoke_all(&mut tx, crate::auth::sessions::Store::Staff, staff_id.get()).await?
    } else {
        vec![]
    };
    audit::record(
        &mut tx,
        actor,
        Some(tenant_id),
        "staff.update",
        &staff_id.to_string(),
        serde_json::json!({"role": role.map(Role::as_str), "disabled": disabled}),
    )
    .await?;
    tx.commit().await?;
    crate::auth::sessions::forget(&ended);
    Ok(user)
}
