//! Member segments (SPEC M5): a filter over the mall's members — tag, level, inactivity,
//! balance range, registration days, a search — used by the staff member list, the
//! member export and the merchant's messages; and saved segments, named filters kept
//! for reuse. A segment is evaluated when it is used, so it means "who matches now".

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Validator};
use crate::tx::TenantTx;

/// Who belongs to a segment. Every field narrows it; none means every member.
///
/// As query parameters it sits beside others (paging), so unknown names are ignored
/// there; in a saved segment's body and in storage an unknown name is refused
/// (`strict`): a misspelt `balance_mn` must not quietly mean every member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
pub struct MemberFilter {
    /// Members with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    #[param(min_length = 1, max_length = 64, pattern = "\\S")]
    pub tag: Option<String>,
    /// Members at this level (a level id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    #[param(minimum = 1)]
    pub level_id: Option<i64>,
    /// Members not active for at least this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    #[param(minimum = 1, maximum = 3650)]
    pub inactive_days: Option<i32>,
    /// The currency of `balance_min` and `balance_max` (default "points").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z][a-z0-9_]{1,31}$")]
    #[param(pattern = "^[a-z][a-z0-9_]{1,31}$")]
    pub currency: Option<String>,
    /// Members holding at least this balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    #[param(minimum = 0)]
    pub balance_min: Option<i64>,
    /// Members holding at most this balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    #[param(minimum = 0)]
    pub balance_max: Option<i64>,
    /// Members registered on or after this day (the mall's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_from: Option<NaiveDate>,
    /// Members registered on or before this day (the mall's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_to: Option<NaiveDate>,
    /// Phone, e-mail or nickname containing this (as a query parameter, NUL characters
    /// are dropped from it, like every search text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    #[param(min_length = 1, max_length = 64)]
    pub q: Option<String>,
}

/// The names of `MemberFilter`'s fields.
const FIELDS: [&str; 9] = [
    "tag",
    "level_id",
    "inactive_days",
    "currency",
    "balance_min",
    "balance_max",
    "registered_from",
    "registered_to",
    "q",
];

/// A filter from JSON that names only `MemberFilter`'s fields.
fn strict(v: serde_json::Value) -> std::result::Result<MemberFilter, String> {
    let Some(map) = v.as_object() else { return Err("filter: an object".into()) };
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("filter: unknown field `{k}`, expected one of {}", FIELDS.join(", ")));
    }
    serde_json::from_value(v).map_err(|e| format!("filter: {e}"))
}

/// A filter as stored (a segment's, a broadcast's); one that no longer reads is an
/// error, never "every member".
pub fn stored(what: &str, v: serde_json::Value) -> Result<MemberFilter> {
    strict(v).map_err(|e| Error::Internal(anyhow::anyhow!("{what} is unreadable: {e}")))
}

fn strict_filter<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<MemberFilter, D::Error> {
    strict(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// The condition of a filter on `members m`, parameters `$3` to `$11` (the statements
/// using it keep `$1` and `$2` for their own values).
pub const MATCH: &str = "($3::text IS NULL OR EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = $3)) \
     AND ($4::int IS NULL OR coalesce(m.last_active_at, m.created_at) < now() - make_interval(days => $4)) \
     AND ($5::text IS NULL OR m.phone LIKE $5 OR m.email LIKE $5 OR m.nickname LIKE $5) \
     AND ($6::bigint IS NULL OR m.level_id = $6) \
     AND (($8::bigint IS NULL AND $9::bigint IS NULL) OR coalesce((SELECT a.balance FROM accounts a \
          WHERE a.member_id = m.id AND a.currency = $7), 0) BETWEEN coalesce($8, 0) AND coalesce($9, 9223372036854775807)) \
     AND ($10::timestamptz IS NULL OR m.created_at >= $10) AND ($11::timestamptz IS NULL OR m.created_at < $11)";

/// A filter checked and turned into the values of `MATCH`.
#[derive(Debug, Clone)]
pub struct Bound {
    tag: Option<String>,
    inactive_days: Option<i32>,
    pattern: Option<String>,
    level_id: Option<i64>,
    currency: String,
    balance_min: Option<i64>,
    balance_max: Option<i64>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl MemberFilter {
    /// Checks every field (422 naming the first bad ones).
    pub fn validate(&self) -> Result<()> {
        let mut v = Validator::new();
        let text_ok = |s: &Option<String>| s.as_ref().is_none_or(|s| !s.trim().is_empty() && s.chars().count() <= 64);
        v.check(text_ok(&self.tag), "tag", "1 to 64 characters");
        v.check(text_ok(&self.q), "q", "1 to 64 characters");
        v.check(self.level_id.is_none_or(|l| l >= 1), "level_id", "a level id");
        v.check(self.inactive_days.is_none_or(|d| (1..=3650).contains(&d)), "inactive_days", "1 to 3650");
        v.check(self.currency.as_deref().is_none_or(currency_code_ok), "currency", "a currency code such as points");
        v.check(self.balance_min.is_none_or(|b| b >= 0), "balance_min", "0 or more");
        v.check(self.balance_max.is_none_or(|b| b >= 0), "balance_max", "0 or more");
        v.check(
            !matches!((self.balance_min, self.balance_max), (Some(lo), Some(hi)) if lo > hi),
            "balance_max",
            "at least balance_min",
        );
        v.check(
            !matches!((self.registered_from, self.registered_to), (Some(a), Some(b)) if a > b),
            "registered_to",
            "on or after registered_from",
        );
        v.finish()
    }

    /// This filter with every field `over` sets replacing this one's.
    pub fn overridden_by(&self, over: &MemberFilter) -> MemberFilter {
        MemberFilter {
            tag: over.tag.clone().or_else(|| self.tag.clone()),
            level_id: over.level_id.or(self.level_id),
            inactive_days: over.inactive_days.or(self.inactive_days),
            currency: over.currency.clone().or_else(|| self.currency.clone()),
            balance_min: over.balance_min.or(self.balance_min),
            balance_max: over.balance_max.or(self.balance_max),
            registered_from: over.registered_from.or(self.registered_from),
            registered_to: over.registered_to.or(self.registered_to),
            q: over.q.clone().or_else(|| self.q.clone()),
        }
    }

    /// Checks the filter and resolves its days in the mall's time zone `tz`.
    pub fn bind(&self, tz: chrono_tz::Tz) -> Result<Bound> {
        self.validate()?;
        let like = |s: &str| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        Ok(Bound {
            tag: self.tag.as_deref().map(|t| t.trim().to_string()),
            inactive_days: self.inactive_days,
            pattern: self.q.as_deref().map(like),
            level_id: self.level_id,
            currency: self.currency.clone().unwrap_or_else(|| "points".into()),
            balance_min: self.balance_min,
            balance_max: self.balance_max,
            from: self.registered_from.map(|d| crate::localtime::start_of(tz, d)),
            until: self.registered_to.and_then(|d| d.succ_opt()).map(|d| crate::localtime::start_of(tz, d)),
        })
    }
}

impl Bound {
    /// Binds `$3` to `$11` of `MATCH` to a query that has bound `$1` and `$2`.
    pub fn apply<'q, O>(
        &'q self,
        q: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        q.bind(&self.tag)
            .bind(self.inactive_days)
            .bind(&self.pattern)
            .bind(self.level_id)
            .bind(&self.currency)
            .bind(self.balance_min)
            .bind(self.balance_max)
            .bind(self.from)
            .bind(self.until)
    }
}

/// A currency code as the ledger writes them: `^[a-z][a-z0-9_]{1,31}$`.
fn currency_code_ok(c: &str) -> bool {
    let b = c.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || *x == b'_')
}

/// A saved segment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub filter: MemberFilter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What staff send to save a segment.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    /// 1 to 64 characters, unique in the mall.
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub name: String,
    #[serde(deserialize_with = "strict_filter")]
    pub filter: MemberFilter,
}

/// A segment and how many members match it now (counted up to `COUNT_CAP`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentCount {
    pub members: i64,
    /// True when at least `COUNT_CAP` members match (counting stopped there).
    pub capped: bool,
}

pub use crate::limits::members::SEGMENT_COUNT_CAP as COUNT_CAP;
use crate::limits::members::SEGMENTS_PER_TENANT_MAX;

type Row = (i64, String, serde_json::Value, DateTime<Utc>, DateTime<Utc>);

fn from_row((id, name, filter, created_at, updated_at): Row) -> Result<Segment> {
    let filter = stored(&format!("segment {id}"), filter)?;
    Ok(Segment { id, name, filter, created_at, updated_at })
}

fn checked(input: &SegmentInput) -> Result<(String, serde_json::Value)> {
    let name = input.name.trim();
    let mut v = Validator::new();
    v.check(!name.is_empty() && name.chars().count() <= 64, "name", "1 to 64 characters");
    v.finish()?;
    input.filter.validate()?;
    let json = serde_json::to_value(&input.filter).map_err(|e| Error::Internal(e.into()))?;
    Ok((name.to_string(), json))
}

fn name_taken(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict("segment_exists", "a segment with this name exists")
        }
        _ => Error::Database(e),
    }
}

/// The mall's saved segments, by name.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Segment>> {
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, name, filter, created_at, updated_at FROM segments ORDER BY name, id")
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter().map(from_row).collect()
}

/// One saved segment (404 when there is none).
pub async fn get(tx: &mut TenantTx, id: i64) -> Result<Segment> {
    let row: Option<Row> =
        sqlx::query_as("SELECT id, name, filter, created_at, updated_at FROM segments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    from_row(row.ok_or_else(|| Error::not_found("segment_not_found", "no such segment"))?)
}

/// Saves a new segment; audited.
pub async fn create(tx: &mut TenantTx, input: &SegmentInput) -> Result<Segment> {
    let (name, filter) = checked(input)?;
    // The limit holds under concurrent saves: they queue on this lock.
    sqlx::query("LOCK TABLE segments IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM segments").fetch_one(&mut **tx).await?;
    if saved >= SEGMENTS_PER_TENANT_MAX {
        return Err(Error::conflict("too_many_segments", "a mall keeps at most 200 saved segments"));
    }
    let row: Row = sqlx::query_as(
        "INSERT INTO segments (name, filter) VALUES ($1, $2) RETURNING id, name, filter, created_at, updated_at",
    )
    .bind(&name)
    .bind(&filter)
    .fetch_one(&mut **tx)
    .await
    .map_err(name_taken)?;
    tx.audit("segment.create", &format!("segment:{}", row.0), serde_json::json!({"name": name, "filter": filter}))
        .await?;
    from_row(row)
}

/// Replaces a segment's name and filter; audited.
pub async fn update(tx: &mut TenantTx, id: i64, input: &SegmentInput) -> Result<Segment> {
    let (name, filter) = checked(input)?;
    let row: Option<Row> = sqlx::query_as(
        "UPDATE segments SET name = $2, filter = $3, updated_at = now() WHERE id = $1 \
         RETURNING id, name, filter, created_at, updated_at",
    )
    .bind(id)
    .bind(&name)
    .bind(&filter)
    .fetch_optional(&mut **tx)
    .await
    .map_err(name_taken)?;
    let row = row.ok_or_else(|| Error::not_found("segment_not_found", "no such segment"))?;
    tx.audit("segment.update", &format!("segment:{id}"), serde_json::json!({"name": name, "filter": filter})).await?;
    from_row(row)
}

/// Deletes a segment (messages already written for it keep their copy of the filter);
/// audited.
pub async fn delete(tx: &mut TenantTx, id: i64) -> Result<()> {
    let name: Option<String> = sqlx::query_scalar("DELETE FROM segments WHERE id = $1 RETURNING name")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let name = name.ok_or_else(|| Error::not_found("segment_not_found", "no such segment"))?;
    tx.audit("segment.delete", &format!("segment:{id}"), serde_json::json!({"name": name})).await
}

/// How many members match `filter` now, counted up to `COUNT_CAP`.
pub async fn count(tx: &mut TenantTx, filter: &MemberFilter) -> Result<SegmentCount> {
    let bound = filter.bind(tx.tenant().settings.tz())?;
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM members m WHERE ($1::bigint IS NULL OR m.id < $1) AND {MATCH} LIMIT $2) s"
    );
    let (members,): (i64,) = bound
        .apply(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(None::<i64>).bind(COUNT_CAP))
        .fetch_one(&mut **tx)
        .await?;
    Ok(SegmentCount { members, capped: members >= COUNT_CAP })
}

/// A saved segment to start from, in a list's or export's query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct SegmentParam {
    /// A saved segment: its filter, with every filter parameter also given replacing
    /// that field of it.
    #[param(minimum = 1)]
    pub segment: Option<i64>,
}

/// The filter a request means: a saved segment's (when named) overridden by the given
/// fields, or the given fields alone.
pub async fn resolve(tx: &mut TenantTx, segment: &SegmentParam, given: &MemberFilter) -> Result<MemberFilter> {
    match segment.segment {
        Some(id) => Ok(get(tx, id).await?.filter.overridden_by(given)),
        None => Ok(given.clone()),
    }
}
