//! Members' shipping addresses (M3). At most `ADDRESSES_PER_MEMBER_MAX` per member and
//! one default: both enforced by the database (tenant migration 0008: a trigger that
//! locks the member's row and counts, and a unique index on the default), so racing
//! requests cannot pass them.

use serde::{Deserialize, Serialize};

use crate::auth::identifier::Identifier;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
pub use crate::limits::mall::ADDRESSES_PER_MEMBER_MAX;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Address {
    /// Ignored in a request.
    #[serde(default)]
    pub id: i64,
    #[schema(min_length = 1, max_length = 50, pattern = "\\S")]
    pub name: String,
    /// Stored in E.164 (+86 for a mainland number without a country code).
    #[schema(value_type = crate::auth::identifier::PhoneNumber)]
    pub phone: String,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub region: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub detail: String,
    /// The first address is the default; a new default replaces the old one.
    #[serde(default)]
    pub is_default: bool,
}

const COLUMNS: &str = "id, name, phone, region, detail, is_default";

/// The member's addresses, the default first.
pub async fn list(db: &Db, tenant: &Tenant, member_id: i64) -> Result<Vec<Address>> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let a = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM addresses WHERE member_id = $1 ORDER BY is_default DESC, id"
    )))
    .bind(member_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// Checks an address; returns its phone in E.164.
fn checked(a: &Address) -> Result<String> {
    let mut v = Validator::new();
    v.check(!a.name.trim().is_empty() && a.name.chars().count() <= 50, "name", "1 to 50 characters");
    v.check(!a.region.trim().is_empty() && a.region.chars().count() <= 100, "region", "1 to 100 characters");
    v.check(!a.detail.trim().is_empty() && a.detail.chars().count() <= 200, "detail", "1 to 200 characters");
    let phone = Identifier::parse_phone(&a.phone, "phone");
    v.check(phone.is_ok(), "phone", "a phone number");
    v.finish()?;
    phone
}

/// Adds an address; the first one, or one marked default, becomes the default.
pub async fn add(db: &Db, tenant: &Tenant, member_id: i64, a: &Address) -> Result<Address> {
    let phone = checked(a)?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    take_turn(&mut tx, member_id, a.is_default.then_some(None)).await?;
    let out: Address = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO addresses (member_id, name, phone, region, detail, is_default) \
         VALUES ($1, $2, $3, $4, $5, $6 OR NOT EXISTS (SELECT 1 FROM addresses WHERE member_id = $1 AND is_default)) \
         RETURNING {COLUMNS}"
    )))
    .bind(member_id)
    .bind(a.name.trim())
    .bind(phone)
    .bind(a.region.trim())
    .bind(a.detail.trim())
    .bind(a.is_default)
    .fetch_one(&mut *tx)
    .await
    .map_err(refused)?;
    tx.commit().await?;
    Ok(out)
}

/// Changes one of the member's addresses (every field as sent). Marking it default makes
/// it the one default; the default stays the default until another one is marked.
pub async fn update(db: &Db, tenant: &Tenant, member_id: i64, id: i64, a: &Address) -> Result<Address> {
    let phone = checked(a)?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    take_turn(&mut tx, member_id, a.is_default.then_some(Some(id))).await?;
    let out: Option<Address> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE addresses SET name = $3, phone = $4, region = $5, detail = $6, is_default = is_default OR $7 \
         WHERE id = $1 AND member_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(member_id)
    .bind(a.name.trim())
    .bind(phone)
    .bind(a.region.trim())
    .bind(a.detail.trim())
    .bind(a.is_default)
    .fetch_optional(&mut *tx)
    .await
    .map_err(refused)?;
    let out = out.ok_or_else(|| Error::not_found("address_not_found", "no such address"))?;
    tx.commit().await?;
    Ok(out)
}

/// One address change of a member at a time (the trigger would refuse a racing insert
/// past the bound anyway; this makes racing defaults wait instead of fail). With
/// `new_default` (`Some(None)` for an address about to be added, `Some(Some(id))` for
/// address `id`), the member's other addresses stop being the default.
async fn take_turn(conn: &mut sqlx::PgConnection, member_id: i64, new_default: Option<Option<i64>>) -> Result<()> {
    sqlx::query("SELECT 1 FROM members WHERE id = $1 FOR UPDATE").bind(member_id).execute(&mut *conn).await?;
    if let Some(keep) = new_default {
        sqlx::query(
            "UPDATE addresses SET is_default = false \
             WHERE member_id = $1 AND is_default AND ($2::bigint IS NULL OR id <> $2)",
        )
        .bind(member_id)
        .bind(keep)
        .execute(conn)
        .await?;
    }
    Ok(())
}

fn refused(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        match d.constraint() {
            Some("addresses_per_member_max") => {
                return Error::conflict(
                    "too_many_addresses",
                    format!("at most {ADDRESSES_PER_MEMBER_MAX} addresses; delete one first"),
                );
            }
            // Two requests made a default at the same moment: the other one won.
            Some("addresses_one_default_idx") => {
                return Error::conflict("address_conflict", "another address was saved at the same time; try again");
            }
            _ => {}
        }
    }
    Error::Database(e)
}

/// Deletes one of the member's addresses.
pub async fn delete(db: &Db, tenant: &Tenant, member_id: i64, id: i64) -> Result<()> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let n = sqlx::query("DELETE FROM addresses WHERE id = $1 AND member_id = $2")
        .bind(id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    if n == 0 {
        return Err(Error::not_found("address_not_found", "no such address"));
    }
    Ok(())
}
