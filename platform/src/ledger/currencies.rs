//! Currencies of a tenant (L1): `points` (spendable), `exp` (experience, never
//! spendable, drives levels), and any the merchant defines.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::{Error, Result, Validator};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Currency {
    /// `^[a-z][a-z0-9_]{1,31}$`, e.g. "points", "exp", "coffee_stamps".
    #[schema(value_type = CurrencyCode)]
    pub code: String,
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub name: String,
    pub spendable: bool,
    #[serde(default)]
    pub transferable: bool,
    /// Whether the mall's expiry policy applies.
    #[serde(default = "yes")]
    pub expires: bool,
    #[serde(default)]
    pub drives_level: bool,
    /// The alliance's shared currency (SPEC A1): balances live in the alliance's ledger.
    /// Set by the alliance, never by a merchant.
    #[serde(default)]
    pub shared: bool,
}

fn yes() -> bool {
    true
}

const CODE_LENGTHS: std::ops::RangeInclusive<usize> = 2..=32;

/// A currency code: 2 to 32 characters, a-z, 0-9 and _, starting with a letter.
pub fn code_is_valid(code: &str) -> bool {
    crate::ident::is_lowercase_ident(code, CODE_LENGTHS, b'_')
}

/// A currency code in the OpenAPI document (`code_is_valid`).
pub struct CurrencyCode;

impl utoipa::PartialSchema for CurrencyCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::ident::schema(
            CODE_LENGTHS,
            b'_',
            "A currency code: 2 to 32 characters, a-z, 0-9 and _, starting with a letter",
        )
    }
}
impl utoipa::ToSchema for CurrencyCode {}

/// What a merchant sends to add a currency, in the OpenAPI document: a `Currency` whose
/// `drives_level` and `shared` are false (only the built-in experience currency drives
/// levels; a shared currency comes from the mall's alliance).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewCurrency {
    #[schema(value_type = CurrencyCode)]
    code: String,
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    name: String,
    spendable: bool,
    #[schema(required = false)]
    transferable: bool,
    /// Whether the mall's expiry policy applies (default true).
    #[schema(required = false)]
    expires: bool,
    #[schema(required = false, schema_with = always_false)]
    drives_level: bool,
    #[schema(required = false, schema_with = always_false)]
    shared: bool,
}

fn always_false() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([false])).description(Some("false")).build()
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Currency>> {
    Ok(sqlx::query_as("SELECT code, name, spendable, transferable, expires, drives_level, shared FROM currencies ORDER BY code = 'points' DESC, code = 'exp' DESC, created_at, code")
        .fetch_all(conn)
        .await?)
}

pub async fn get(conn: &mut PgConnection, code: &str) -> Result<Currency> {
    sqlx::query_as(
        "SELECT code, name, spendable, transferable, expires, drives_level, shared FROM currencies WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::invalid_field("currency", "no such currency in this mall"))
}

/// Adds a merchant-defined currency. Only one currency drives levels (`exp`).
/// Adds a merchant-defined currency; audited.
pub async fn create(tx: &mut crate::tx::TenantTx, c: &Currency) -> Result<Currency> {
    let created = insert(tx, c).await?;
    tx.audit("currency.create", &created.code, serde_json::json!({"name": created.name})).await?;
    Ok(created)
}

async fn insert(conn: &mut PgConnection, c: &Currency) -> Result<Currency> {
    let code_ok = code_is_valid(&c.code);
    Validator::new()
        .check(code_ok, "code", "2-32 characters: a-z, 0-9 and _, starting with a letter")
        .check(!c.name.trim().is_empty() && c.name.chars().count() <= 32, "name", "1 to 32 characters")
        .check(!c.drives_level, "drives_level", "only the built-in experience currency drives levels")
        .check(!c.shared, "shared", "a shared currency comes from the mall's alliance")
        .finish()?;
    sqlx::query_as(
        "INSERT INTO currencies (code, name, spendable, transferable, expires, drives_level) VALUES ($1, $2, $3, $4, $5, false) \
         RETURNING code, name, spendable, transferable, expires, drives_level, shared",
    )
    .bind(&c.code)
    .bind(c.name.trim())
    .bind(c.spendable)
    .bind(c.transferable)
    .bind(c.expires)
    .fetch_one(conn)
    .await
    .map_err(|e| crate::error::on_unique(e, "currencies_pkey", Error::conflict("currency_exists", "this currency code is taken")))
}
