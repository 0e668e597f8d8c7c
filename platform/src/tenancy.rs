//! Tenant lifecycle (SPEC T1, T2): provisioning a merchant's schema atomically,
//! suspending and resuming. Alliances are created here too (their schema comes with
//! the alliance issue).

use migrations::Migration;
use serde::Deserialize;
use sqlx::PgPool;

use crate::audit::{self, Actor};
use crate::db::{Db, MAIN_CLUSTER, select_schema};
use crate::directory::{ALLIANCE_COLUMNS, Tenant, TenantStatus, find_by_slug};
pub use crate::directory::{Alliance, find_alliance, list_alliances, slug_is_valid};
use crate::error::{Error, Result, Validator, on_unique};
use crate::ids::{AllianceId, TenantId};
use crate::notify;
use crate::schema::apply_pending;
use crate::settings::{TenantLimits, TenantSettings};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// URL name of the mall: `^[a-z][a-z0-9-]{1,39}$`.
    #[schema(value_type = crate::directory::Slug)]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Alliance to join (by slug), if any.
    #[serde(default)]
    pub alliance: Option<String>,
    /// Cluster to place the schema on; `main` by default.
    #[serde(default)]
    pub cluster: Option<String>,
}

impl NewTenant {
    pub fn validate(&self) -> Result<()> {
        Validator::new()
            .check(slug_is_valid(&self.slug), "slug", "2-40 characters: a-z, 0-9 and -, starting with a letter")
            .check(!self.name.trim().is_empty() && self.name.chars().count() <= 200, "name", "1 to 200 characters")
            .finish()
    }
}

/// Creates the directory row and the tenant's schema, migrated to the latest version,
/// in one transaction: a failure at any step leaves neither (SPEC T1).
pub async fn create_tenant(db: &Db, new: &NewTenant, actor: &Actor) -> Result<Tenant> {
    create_tenant_with(db, new, actor, migrations::TENANT).await
}

/// `create_tenant` with an explicit migration list (tests inject a failing one).
pub async fn create_tenant_with(db: &Db, new: &NewTenant, actor: &Actor, list: &[Migration]) -> Result<Tenant> {
    new.validate()?;
    let cluster = new.cluster.clone().unwrap_or_else(|| MAIN_CLUSTER.to_string());
    if cluster != MAIN_CLUSTER {
        // The directory supports other clusters (T5); provisioning on them needs a
        // two-phase step that is not built yet.
        return Err(Error::invalid_field("cluster", "only the main cluster can be provisioned on today"));
    }
    let mut tx = db.control().begin().await?;
    let alliance: Option<Alliance> = match &new.alliance {
        None => None,
        Some(slug) => Some(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ALLIANCE_COLUMNS} FROM control.alliances WHERE slug = $1"
            )))
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::invalid_field("alliance", "no such alliance"))?,
        ),
    };
    let alliance_id = alliance.as_ref().map(|a| a.id);
    let settings = serde_json::to_value(TenantSettings::default()).map_err(anyhow::Error::from)?;
    // The schema name derives from the generated id, never from input.
    let id: TenantId = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('control.tenants', 'id'))")
        .fetch_one(&mut *tx)
        .await?;
    let schema = format!("t_{id}");
    sqlx::query(
        "INSERT INTO control.tenants (id, slug, name, schema_name, cluster, alliance_id, settings, schema_version) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&new.slug)
    .bind(new.name.trim())
    .bind(&schema)
    .bind(&cluster)
    .bind(alliance_id)
    .bind(settings)
    .bind(list.last().map_or(0, |m| m.version))
    .execute(&mut *tx)
    .await
    .map_err(slug_refused)?;
    // The name is "t_" and digits from the sequence: nothing from input reaches this SQL.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).execute(&mut *tx).await?;
    select_schema(&mut tx, &schema).await?;
    apply_pending(&mut tx, list).await?;
    if let Some(a) = &alliance {
        crate::alliance::schema::join(&mut tx, a).await?;
    }
    audit::record(
        &mut tx,
        actor,
        Some(id),
        "tenant.create",
        &new.slug,
        serde_json::json!({"name": new.name, "alliance": new.alliance, "cluster": cluster}),
    )
    .await?;
    tx.commit().await?;
    find_by_slug(db.control(), &new.slug)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("tenant vanished right after creation")))
}

/// A new mall's slug refused: taken by a mall (409 `slug_taken`) or by a deleted one,
/// kept as a tombstone (409 `slug_tombstoned`).
pub fn slug_refused(e: sqlx::Error) -> Error {
    match on_unique(e, "tenants_slug_key", Error::conflict("slug_taken", "a mall with this slug already exists")) {
        Error::Database(e) => on_unique(
            e,
            "tenants_slug_tombstoned",
            Error::conflict("slug_tombstoned", "this slug belonged to a deleted mall and cannot be used again"),
        ),
        other => other,
    }
}

/// An existing mall joins an alliance (SPEC A1): the shared currency appears in it, and
/// its members get alliance identities on first need (a proven phone or e-mail). A mall
/// belongs to one alliance at most (409 `already_in_alliance`); a mall with a currency
/// of its own under the alliance's code is refused (409 `currency_code_taken`). One
/// transaction, audited, announced to every server.
pub async fn join_alliance(db: &Db, slug: &str, alliance_slug: &str, actor: &Actor) -> Result<Tenant> {
    let t =
        find_by_slug(db.control(), slug).await?.ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
    let a = crate::directory::find_alliance(db.control(), alliance_slug)
        .await
        .map_err(|_| Error::invalid_field("alliance", "no such alliance"))?;
    if t.cluster != MAIN_CLUSTER || a.cluster != MAIN_CLUSTER {
        return Err(Error::invalid_field("alliance", "only malls and alliances of the main cluster can join today"));
    }
    let mut tx = db.control().begin().await?;
    // Its members' identities and its old orders' shared points are in the alliance it
    // left: joining another one would send their refunds to the wrong ledger.
    if let Some(left) = crate::alliance::membership::last_left(&mut tx, t.id).await?
        && left != a.id
    {
        return Err(Error::conflict(
            "left_another_alliance",
            "this mall left another alliance; it can only join that one again",
        ));
    }
    let joined = sqlx::query(
        "UPDATE control.tenants SET alliance_id = $2, updated_at = now() WHERE id = $1 AND alliance_id IS NULL",
    )
    .bind(t.id)
    .bind(a.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if joined == 0 {
        return Err(Error::conflict("already_in_alliance", "this mall already belongs to an alliance"));
    }
    select_schema(&mut tx, &t.schema_name).await?;
    crate::alliance::schema::join(&mut tx, &a).await?;
    // A mall that left and joins again issues from its old budget again.
    select_schema(&mut tx, &a.schema_name).await?;
    crate::alliance::membership::reopen_budget(&mut tx, t.id).await?;
    let details = serde_json::json!({"alliance": a.slug});
    audit::record(&mut tx, actor, Some(t.id), "tenant.alliance.join", &t.slug, details).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: t.slug.clone() }).await?;
    tx.commit().await?;
    find_by_slug(db.control(), slug).await?.ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))
}

/// Suspends or resumes a tenant; its data is kept either way (SPEC T2).
pub async fn set_status(db: &Db, slug: &str, status: TenantStatus, actor: &Actor) -> Result<Tenant> {
    let mut tx = db.control().begin().await?;
    let id: Option<TenantId> =
        sqlx::query_scalar("UPDATE control.tenants SET status = $2, updated_at = now() WHERE slug = $1 RETURNING id")
            .bind(slug)
            .bind(status.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let id = id.ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
    let action = match status {
        TenantStatus::Active => "tenant.resume",
        TenantStatus::Suspended => "tenant.suspend",
    };
    audit::record(&mut tx, actor, Some(id), action, slug, serde_json::json!({})).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: slug.to_string() }).await?;
    tx.commit().await?;
    find_by_slug(db.control(), slug).await?.ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))
}

/// Reads a tenant's settings.
pub async fn settings(pool: &PgPool, tenant_id: TenantId) -> Result<TenantSettings> {
    let v: serde_json::Value = sqlx::query_scalar("SELECT settings FROM control.tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(pool)
        .await?;
    TenantSettings::from_stored(v)
}

/// How a staff write treats the settings it does not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsWrite {
    /// PUT: a field not sent takes its default; `limits` sent are ignored (the stored
    /// ones are kept: only the platform operator sets them, `set_limits`).
    Replace,
    /// PATCH: a field not sent keeps its value (a nested object is replaced whole);
    /// `limits` sent are refused.
    Merge,
}

/// Writes a mall's name and settings (T6) as its staff may: `body` is a JSON object of
/// `name` (the mall's name, kept when absent) and fields of `TenantSettings`. Validated
/// as a whole and audited; returns the mall's name and settings as now stored. `decode`
/// reads the merged settings (the HTTP edge passes its strict reader, whose 422s name
/// the field).
pub async fn write_mall_settings(
    pool: &PgPool,
    tenant: &Tenant,
    body: &serde_json::Value,
    mode: SettingsWrite,
    actor: &Actor,
    decode: impl FnOnce(serde_json::Value) -> Result<TenantSettings>,
) -> Result<(String, TenantSettings)> {
    let Some(fields) = body.as_object() else {
        return Err(Error::invalid_field("body", "a JSON object of settings"));
    };
    if mode == SettingsWrite::Merge && fields.contains_key("limits") {
        return Err(Error::invalid_field("limits", "set by the platform operator"));
    }
    let name = match fields.get("name") {
        None => None,
        Some(serde_json::Value::String(n)) if name_is_valid(n) => Some(n.trim().to_string()),
        Some(_) => return Err(Error::invalid_field("name", "1 to 200 characters")),
    };
    let mut tx = pool.begin().await?;
    let (stored, old_name): (serde_json::Value, String) =
        sqlx::query_as("SELECT settings, name FROM control.tenants WHERE id = $1 FOR UPDATE")
            .bind(tenant.id)
            .fetch_one(&mut *tx)
            .await?;
    let stored = TenantSettings::from_stored(stored)?;
    let mut merged = match mode {
        SettingsWrite::Replace => serde_json::json!({}),
        SettingsWrite::Merge => serde_json::to_value(&stored).map_err(anyhow::Error::from)?,
    };
    if let Some(m) = merged.as_object_mut() {
        for (k, v) in fields.iter().filter(|(k, _)| !matches!(k.as_str(), "name" | "limits")) {
            m.insert(k.clone(), v.clone());
        }
    }
    let mut new = decode(merged)?;
    new.limits = stored.limits;
    new.validate()?;
    if new.time_zone != stored.time_zone {
        zone_known_to_database(&mut tx, &new.time_zone).await?;
    }
    let name = name.unwrap_or(old_name);
    let value = serde_json::to_value(&new).map_err(anyhow::Error::from)?;
    sqlx::query("UPDATE control.tenants SET settings = $2, name = $3, updated_at = now() WHERE id = $1")
        .bind(tenant.id)
        .bind(&value)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    let details = serde_json::json!({ "name": name, "settings": value });
    audit::record(&mut tx, actor, Some(tenant.id), "tenant.settings.update", &tenant.slug, details).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: tenant.slug.clone() }).await?;
    tx.commit().await?;
    Ok((name, new))
}

/// Refuses a zone PostgreSQL does not know (the reports' rollups compute local days in
/// the database with it, so a name only chrono-tz reads would fail every ledger write).
async fn zone_known_to_database(conn: &mut sqlx::PgConnection, zone: &str) -> Result<()> {
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
        .bind(zone)
        .fetch_one(conn)
        .await?;
    if known { Ok(()) } else { Err(Error::invalid_field("time_zone", "an IANA time zone such as Asia/Shanghai")) }
}

/// A mall's display name: 1 to 200 characters, no control characters.
pub fn name_is_valid(name: &str) -> bool {
    let n = name.trim().chars().count();
    (1..=200).contains(&n) && !name.chars().any(char::is_control)
}

/// Sets a tenant's concurrency limits (the platform operator's call). Audited; returns
/// the settings now stored.
pub async fn set_limits(pool: &PgPool, tenant: &Tenant, limits: TenantLimits, actor: &Actor) -> Result<TenantSettings> {
    write_settings(pool, tenant, actor, "tenant.limits.update", |stored| TenantSettings { limits, ..stored }).await
}

/// Reads the stored settings under lock, makes the new ones from them, validates and
/// stores them, and announces the change.
async fn write_settings(
    pool: &PgPool,
    tenant: &Tenant,
    actor: &Actor,
    action: &str,
    make: impl FnOnce(TenantSettings) -> TenantSettings,
) -> Result<TenantSettings> {
    let mut tx = pool.begin().await?;
    let stored: serde_json::Value = sqlx::query_scalar("SELECT settings FROM control.tenants WHERE id = $1 FOR UPDATE")
        .bind(tenant.id)
        .fetch_one(&mut *tx)
        .await?;
    let new = make(TenantSettings::from_stored(stored)?);
    new.validate()?;
    let value = serde_json::to_value(&new).map_err(anyhow::Error::from)?;
    sqlx::query("UPDATE control.tenants SET settings = $2, updated_at = now() WHERE id = $1")
        .bind(tenant.id)
        .bind(&value)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, actor, Some(tenant.id), action, &tenant.slug, value).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: tenant.slug.clone() }).await?;
    tx.commit().await?;
    Ok(new)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlliance {
    #[schema(value_type = crate::directory::Slug)]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Code of the shared currency (default `alliance_points`; not `points` nor `exp`).
    #[serde(default)]
    #[schema(value_type = Option<crate::ledger::currencies::CurrencyCode>)]
    pub currency_code: Option<String>,
    /// Its name (default 联盟积分).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub currency_name: Option<String>,
}

/// Creates the directory row and the alliance's schema with its shared currency, in one
/// transaction.
pub async fn create_alliance(pool: &PgPool, new: &NewAlliance, actor: &Actor) -> Result<Alliance> {
    let code = new.currency_code.as_deref().unwrap_or("alliance_points");
    let currency_name = new.currency_name.as_deref().map_or("联盟积分", str::trim);
    Validator::new()
        .check(slug_is_valid(&new.slug), "slug", "2-40 characters: a-z, 0-9 and -, starting with a letter")
        .check(!new.name.trim().is_empty() && new.name.chars().count() <= 200, "name", "1 to 200 characters")
        .check(
            crate::ledger::currencies::code_is_valid(code) && !matches!(code, "points" | "exp"),
            "currency_code",
            "2-32 characters: a-z, 0-9 and _, starting with a letter; not points or exp",
        )
        .check(!currency_name.is_empty() && currency_name.chars().count() <= 32, "currency_name", "1 to 32 characters")
        .finish()?;
    let mut tx = pool.begin().await?;
    let id: AllianceId = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('control.alliances', 'id'))")
        .fetch_one(&mut *tx)
        .await?;
    let a: Alliance = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.alliances (id, slug, name, schema_name, currency_code, currency_name) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ALLIANCE_COLUMNS}"
    )))
    .bind(id)
    .bind(&new.slug)
    .bind(new.name.trim())
    .bind(crate::alliance::schema_name(id))
    .bind(code)
    .bind(currency_name)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        on_unique(e, "alliances_slug_key", Error::conflict("slug_taken", "an alliance with this slug already exists"))
    })?;
    crate::alliance::schema::ensure(&mut tx, &a).await?;
    select_schema(&mut tx, "control").await?;
    audit::record_alliance(
        &mut tx,
        actor,
        a.id,
        "alliance.create",
        &a.slug,
        serde_json::json!({"name": a.name, "currency_code": a.currency_code}),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}
