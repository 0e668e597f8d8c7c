//! Levels (SPEC V1-V3): thresholds with titles on the level-driving currency
//! (experience by default), benefits as data for rules and the catalog. A change of
//! level is recorded and emitted as a `level_changed` event.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::{Result, Validator};
use crate::ids::EntryId;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Level {
    /// Ignored in a request (levels are matched by threshold).
    #[serde(default)]
    pub id: i64,
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub name: String,
    /// Level-currency balance from which this level applies.
    #[schema(minimum = 0)]
    pub threshold: i64,
    /// E.g. {"earn_multiplier": 1.5, "monthly_gift": 100, "member_only": true}.
    #[serde(default)]
    #[schema(value_type = Option<crate::doc::JsonObject>)]
    pub benefits: serde_json::Value,
}

/// Levels at most in a table.
pub const LEVELS_MAX: usize = 50;

/// A level table in the OpenAPI document: 1 to `LEVELS_MAX` levels, one of them at
/// threshold 0 (`contains`). Thresholds must differ, which a schema cannot say.
pub struct LevelTable;

impl utoipa::PartialSchema for LevelTable {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::ArrayBuilder;
        let mut table = ArrayBuilder::new()
            .items(Ref::from_schema_name(Level::name()))
            .min_items(Some(1))
            .max_items(Some(LEVELS_MAX))
            .description(Some("The whole level table: one level at threshold 0, thresholds all different."))
            .build();
        // utoipa has no `contains`; extensions are written as they are named.
        let mut extensions = utoipa::openapi::extensions::Extensions::default();
        extensions.insert(
            "contains".into(),
            serde_json::json!({"type": "object", "required": ["threshold"], "properties": {"threshold": {"const": 0}}}),
        );
        table.extensions = Some(extensions);
        table.into()
    }
}
impl utoipa::ToSchema for LevelTable {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((Level::name().into(), Level::schema()));
        <Level as utoipa::ToSchema>::schemas(schemas);
    }
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Level>> {
    Ok(sqlx::query_as("SELECT id, name, threshold, benefits FROM levels WHERE NOT retired ORDER BY threshold")
        .fetch_all(conn)
        .await?)
}

/// Replaces the level table; members are re-levelled by their current balance. Audited.
pub async fn replace(tx: &mut crate::tx::TenantTx, levels: &[Level]) -> Result<Vec<Level>> {
    let table = store(tx, levels).await?;
    tx.audit("levels.replace", "", serde_json::to_value(&table).unwrap_or_default()).await?;
    Ok(table)
}

async fn store(conn: &mut PgConnection, levels: &[Level]) -> Result<Vec<Level>> {
    let mut v = Validator::new();
    v.check(!levels.is_empty() && levels.len() <= LEVELS_MAX, "levels", "1 to 50 levels");
    v.check(levels.iter().any(|l| l.threshold == 0), "levels", "one level must start at 0");
    for l in levels {
        v.check(!l.name.trim().is_empty() && l.name.chars().count() <= 32, "name", "1 to 32 characters");
        v.check(l.threshold >= 0, "threshold", "0 or more");
        v.check(l.benefits.is_object() || l.benefits.is_null(), "benefits", "a JSON object");
    }
    let mut thresholds: Vec<i64> = levels.iter().map(|l| l.threshold).collect();
    thresholds.sort();
    thresholds.dedup();
    v.check(thresholds.len() == levels.len(), "threshold", "thresholds must differ");
    v.finish()?;
    let names: Vec<&str> = levels.iter().map(|l| l.name.trim()).collect();
    let ths: Vec<i64> = levels.iter().map(|l| l.threshold).collect();
    let benefits: Vec<serde_json::Value> =
        levels.iter().map(|l| if l.benefits.is_null() { serde_json::json!({}) } else { l.benefits.clone() }).collect();
    // Levels whose threshold goes away are retired (history keeps pointing at them);
    // the others keep their id.
    sqlx::query("UPDATE levels SET retired = true WHERE NOT retired AND threshold <> ALL($1)")
        .bind(&ths)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO levels (name, threshold, benefits) SELECT n, t, b FROM unnest($1::text[], $2::bigint[], $3::jsonb[]) AS x(n, t, b) \
         ON CONFLICT (threshold) WHERE NOT retired DO UPDATE SET name = EXCLUDED.name, benefits = EXCLUDED.benefits",
    )
    .bind(&names)
    .bind(&ths)
    .bind(&benefits)
    .execute(&mut *conn)
    .await?;
    let out = list(conn).await?;
    // Re-level everyone by the level currency.
    let members: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT m.id, coalesce(a.balance, 0) FROM members m \
         LEFT JOIN accounts a ON a.member_id = m.id AND a.currency = (SELECT code FROM currencies WHERE drives_level LIMIT 1)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (member_id, balance) in members {
        recompute(conn, member_id, balance, None).await?;
    }
    Ok(out)
}

/// Sets the member's level for `balance` of the level currency; records and emits a
/// change. Returns the new level id if it changed.
pub async fn recompute(
    conn: &mut PgConnection,
    member_id: i64,
    balance: i64,
    entry_id: Option<EntryId>,
) -> Result<Option<i64>> {
    let target: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM levels WHERE NOT retired AND threshold <= $1 ORDER BY threshold DESC LIMIT 1",
    )
    .bind(balance)
    .fetch_optional(&mut *conn)
    .await?;
    let target_id = target.as_ref().map(|t| t.0);
    let from: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE members m SET level_id = $2 FROM members old WHERE m.id = $1 AND old.id = m.id \
         AND old.level_id IS DISTINCT FROM $2 RETURNING old.level_id",
    )
    .bind(member_id)
    .bind(target_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(from) = from else { return Ok(None) };
    sqlx::query("INSERT INTO level_changes (member_id, from_level, to_level, entry_id) VALUES ($1, $2, $3, $4)")
        .bind(member_id)
        .bind(from)
        .bind(target_id)
        .bind(entry_id)
        .execute(&mut *conn)
        .await?;
    if let Some((_, name)) = &target {
        tell_member(conn, member_id, name).await?;
    }
    let data = serde_json::json!({"member_id": member_id, "from_level": from, "to_level": target_id,
        "to_name": target.as_ref().map(|t| &t.1), "balance": balance, "entry_id": entry_id});
    crate::webhooks::enqueue::event(conn, "level.changed", data).await?;
    sqlx::query("INSERT INTO events_outbox (kind, member_id, payload) VALUES ('level_changed', $1, $2)")
        .bind(member_id)
        .bind(serde_json::json!({"from_level": from, "to_level": target_id, "to_name": target.map(|t| t.1), "balance": balance}))
        .execute(&mut *conn)
        .await?;
    Ok(target_id)
}

/// `recompute` for many members at once (member, balance, entry): one statement finds
/// whose level changes (rare), then each of those is recomputed, in member order.
pub async fn recompute_many(conn: &mut PgConnection, moved: &[(i64, i64, Option<EntryId>)]) -> Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    let members: Vec<i64> = moved.iter().map(|m| m.0).collect();
    let balances: Vec<i64> = moved.iter().map(|m| m.1).collect();
    let changing: Vec<i64> = sqlx::query_scalar(
        "SELECT t.m FROM unnest($1::bigint[], $2::bigint[]) AS t(m, b) JOIN members mm ON mm.id = t.m \
         WHERE mm.level_id IS DISTINCT FROM \
             (SELECT id FROM levels WHERE NOT retired AND threshold <= t.b ORDER BY threshold DESC LIMIT 1) \
         ORDER BY t.m",
    )
    .bind(&members)
    .bind(&balances)
    .fetch_all(&mut *conn)
    .await?;
    for member_id in changing {
        if let Some(&(_, balance, entry_id)) = moved.iter().find(|m| m.0 == member_id) {
            recompute(conn, member_id, balance, entry_id).await?;
        }
    }
    Ok(())
}

/// Tells the member their new level (V3, K6), in the mall's language. Only the mall's
/// schema is at hand here, so its locale is read from the directory row of that schema.
async fn tell_member(conn: &mut PgConnection, member_id: i64, level: &str) -> Result<()> {
    use crate::i18n::{Arg, Lang, text};
    let locale: Option<String> =
        sqlx::query_scalar("SELECT settings->>'locale' FROM control.tenants WHERE schema_name = current_schema()")
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    let lang = locale.as_deref().map(Lang::of_locale).unwrap_or_default();
    let args = [("level", Arg::Str(level))];
    sqlx::query("INSERT INTO messages (member_id, kind, title, body) VALUES ($1, 'level_changed', $2, $3)")
        .bind(member_id)
        .bind(text(lang, "level-changed-title", &args))
        .bind(text(lang, "level-changed-body", &args))
        .execute(conn)
        .await?;
    Ok(())
}

/// A level change as shown in a member's history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LevelChange {
    pub id: i64,
    pub from_level: Option<String>,
    pub to_level: Option<String>,
    pub entry_id: Option<EntryId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn changes(conn: &mut PgConnection, member_id: i64, limit: i64) -> Result<Vec<LevelChange>> {
    Ok(sqlx::query_as(
        "SELECT c.id, f.name AS from_level, t.name AS to_level, c.entry_id, c.created_at FROM level_changes c \
         LEFT JOIN levels f ON f.id = c.from_level LEFT JOIN levels t ON t.id = c.to_level \
         WHERE c.member_id = $1 ORDER BY c.id DESC LIMIT $2",
    )
    .bind(member_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
