//! Search terms: what members searched the catalog for, and which searches found
//! nothing. The catalog's list counts each request with a keyword (`q`) in memory with
//! the page views (`reports::visits`), under its normalised term (`normalise`); a
//! request for the first page that found no product counts as a search without result
//! (a later page that is empty says nothing about the search). Written per local day
//! about once a second; never a write per request.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use unicode_normalization::UnicodeNormalization;

use super::bounds;
use crate::error::{Error, Result};
use crate::tx::TenantTx;

/// The term a search is counted under: compatibility-normalised (full-width letters and
/// digits become ASCII, NFKC), lower case, runs of white space as one space, trimmed,
/// at most `bounds::SEARCH_TERM_CHARS` characters; `None` when nothing is left.
pub fn normalise(q: &str) -> Option<String> {
    let folded: String = q.nfkc().flat_map(char::to_lowercase).collect();
    let words: Vec<&str> =
        folded.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let term: String = words.join(" ").chars().take(bounds::SEARCH_TERM_CHARS).collect();
    let term = term.trim_end().to_string();
    (!term.is_empty()).then_some(term)
}

/// A term and how often it was searched in the period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TermCount {
    pub term: String,
    /// Requests with this term.
    pub searches: i64,
    /// Of those, first pages that found no product.
    pub without_result: i64,
}

/// The search terms of the local days `from..=to`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    /// Every search of the period, and those without result.
    pub searches: i64,
    pub without_result: i64,
    /// Distinct terms searched.
    pub terms: i64,
    /// The most searched terms (most first, then by term).
    pub top: Vec<TermCount>,
    /// The terms that most often found nothing.
    pub no_result: Vec<TermCount>,
    pub generated_at: DateTime<Utc>,
}

/// Searches counted in memory: (local day, term) → (searches, first pages without result).
pub type Counted = ((NaiveDate, String), (i64, i64));

const WRITE: &str = "INSERT INTO search_terms (day, term, searches, empty) \
     SELECT * FROM unnest($1::date[], $2::text[], $3::bigint[], $4::bigint[])";

const TOTALS: &str = "SELECT COALESCE(sum(searches), 0)::bigint, COALESCE(sum(empty), 0)::bigint, \
     count(DISTINCT term)::bigint FROM search_terms WHERE day >= $1 AND day <= $2";

const TOP: &str = "SELECT term, sum(searches)::bigint AS n, sum(empty)::bigint FROM search_terms \
     WHERE day >= $1 AND day <= $2 GROUP BY term ORDER BY n DESC, term LIMIT $3";

const NO_RESULT: &str = "SELECT term, sum(searches)::bigint, sum(empty)::bigint AS e FROM search_terms \
     WHERE day >= $1 AND day <= $2 GROUP BY term HAVING sum(empty) > 0 ORDER BY e DESC, term LIMIT $3";

const FOLD: &str = "WITH keys AS (SELECT DISTINCT day, term FROM search_terms WHERE NOT compacted), \
     gone AS (DELETE FROM search_terms r USING keys k WHERE r.day = k.day AND r.term = k.term \
              RETURNING r.day, r.term, r.searches, r.empty) \
     INSERT INTO search_terms (day, term, searches, empty, compacted) \
     SELECT day, term, sum(searches), sum(empty), true FROM gone GROUP BY 1, 2";

/// Adds counted searches: per (local day, term), requests and first pages without result.
pub async fn write(conn: &mut PgConnection, counted: &[Counted]) -> Result<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let days: Vec<NaiveDate> = counted.iter().map(|c| c.0.0).collect();
    let terms: Vec<&str> = counted.iter().map(|c| c.0.1.as_str()).collect();
    let searches: Vec<i64> = counted.iter().map(|c| c.1.0).collect();
    let empty: Vec<i64> = counted.iter().map(|c| c.1.1).collect();
    sqlx::query(WRITE).bind(&days).bind(&terms).bind(&searches).bind(&empty).execute(conn).await?;
    Ok(())
}

/// The search report of the `days` local days ending with `to`, `limit` terms per list.
pub async fn get(
    tx: &mut TenantTx,
    to: Option<NaiveDate>,
    days: Option<i64>,
    limit: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SearchReport> {
    let limit = limit.unwrap_or(bounds::SEARCH_TERMS_DEFAULT);
    if !(1..=bounds::SEARCH_TERMS_MAX).contains(&limit) {
        return Err(Error::invalid_field("limit", format!("1 to {}", bounds::SEARCH_TERMS_MAX)));
    }
    let tz = tx.tenant().settings.tz();
    let range = super::period(tz, to, days, now)?;
    super::without_jit(tx).await?;
    let (searches, without_result, terms): (i64, i64, i64) =
        sqlx::query_as(TOTALS).bind(range.from).bind(range.to).fetch_one(&mut **tx).await?;
    let list = |rows: Vec<(String, i64, i64)>| -> Vec<TermCount> {
        rows.into_iter().map(|(term, searches, without_result)| TermCount { term, searches, without_result }).collect()
    };
    let top = sqlx::query_as(TOP).bind(range.from).bind(range.to).bind(limit).fetch_all(&mut **tx).await?;
    let none = sqlx::query_as(NO_RESULT).bind(range.from).bind(range.to).bind(limit).fetch_all(&mut **tx).await?;
    Ok(SearchReport {
        from: range.from,
        to: range.to,
        time_zone: tz.name().to_string(),
        searches,
        without_result,
        terms,
        top: list(top),
        no_result: list(none),
        generated_at: now,
    })
}

/// Folds the fresh rows into one per day and term.
pub async fn compact(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query(FOLD).execute(conn).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_folded_to_one_spelling() {
        assert_eq!(normalise("  Green   TEA "), Some("green tea".into()));
        assert_eq!(normalise("ＭＵＧ　杯"), Some("mug 杯".into()), "full-width letters and space");
        assert_eq!(normalise("\t\n "), None);
        assert_eq!(normalise("茶\u{0}叶"), Some("茶 叶".into()));
        let long = "长".repeat(80);
        assert_eq!(normalise(&long).unwrap().chars().count(), bounds::SEARCH_TERM_CHARS);
        assert_eq!(normalise(&format!("{} x", "a".repeat(49))), Some("a".repeat(49)), "no trailing space");
    }
}
