//! Drilling a statement's figure down to the ledger entries behind it: for one mall and
//! one figure, the alliance ledger's entry ids with the points each contributes (newest
//! first, paged by entry id).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Result;
use crate::ids::{EntryId, TenantId};

/// A figure of a statement's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    Issued,
    Revoked,
    Redeemed,
    Returned,
    Expired,
}

/// One entry behind a figure.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FigureEntry {
    /// The alliance ledger's entry (for a return whose points had all expired: the
    /// refunded spend).
    pub entry_id: EntryId,
    /// `earn`, `adjust`, `spend`, `refund`, `forfeited` (a return whose lot had expired)
    /// or `expire`.
    pub reason: String,
    /// What the entry adds to the figure.
    pub points: i64,
    pub created_at: DateTime<Utc>,
}

/// Which entries: statement, mall, figure, and for `redeemed`/`returned` optionally only
/// the points of one issuing mall (a cell of the pairwise matrix).
pub struct Drill {
    pub statement_id: i64,
    pub mall_id: TenantId,
    pub figure: Figure,
    pub issuer: Option<TenantId>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn entries(conn: &mut PgConnection, d: &Drill) -> Result<Vec<FigureEntry>> {
    let sql = match d.figure {
        Figure::Issued => {
            "SELECT e.id AS entry_id, e.reason, e.amount AS points, e.created_at \
             FROM settlement_marks m JOIN entries e ON e.id = m.entry_id \
             WHERE m.statement_id = $1 AND e.mall_id = $2 AND e.reason IN ('earn', 'adjust', 'release') AND e.amount > 0 \
               AND ($3::bigint IS NULL OR e.id < $3) AND ($5::bigint IS NULL OR $5 = $2) \
             ORDER BY e.id DESC LIMIT $4"
        }
        Figure::Revoked => {
            "SELECT e.id AS entry_id, e.reason, -e.amount AS points, e.created_at \
             FROM settlement_marks m JOIN entries e ON e.id = m.entry_id \
             WHERE m.statement_id = $1 AND e.mall_id = $2 AND e.reason = 'adjust' AND e.amount < 0 \
               AND ($3::bigint IS NULL OR e.id < $3) AND ($5::bigint IS NULL OR $5 = $2) \
             ORDER BY e.id DESC LIMIT $4"
        }
        Figure::Redeemed => {
            "SELECT e.id AS entry_id, e.reason, sum(a.amount)::bigint AS points, e.created_at \
             FROM settlement_marks m JOIN entries e ON e.id = m.entry_id \
             JOIN allocations a ON a.entry_id = e.id JOIN lots l ON l.id = a.lot_id JOIN entries i ON i.id = l.entry_id \
             WHERE m.statement_id = $1 AND e.mall_id = $2 AND e.reason = 'spend' \
               AND ($3::bigint IS NULL OR e.id < $3) AND ($5::bigint IS NULL OR coalesce(l.issuer_mall_id, i.mall_id) = $5) \
             GROUP BY e.id ORDER BY e.id DESC LIMIT $4"
        }
        Figure::Returned => {
            "SELECT coalesce(r.entry_id, r.debit_entry_id) AS entry_id, \
                    CASE WHEN bool_and(r.forfeited) THEN 'forfeited' ELSE 'refund' END AS reason, \
                    sum(r.amount)::bigint AS points, max(r.created_at) AS created_at \
             FROM lot_returns r JOIN entries d ON d.id = r.debit_entry_id AND d.reason = 'spend' \
             JOIN lots l ON l.id = r.lot_id JOIN entries i ON i.id = l.entry_id \
             WHERE r.statement_id = $1 AND d.mall_id = $2 \
               AND ($3::bigint IS NULL OR coalesce(r.entry_id, r.debit_entry_id) < $3) \
               AND ($5::bigint IS NULL OR (coalesce(l.issuer_mall_id, i.mall_id) = $5 AND d.reason = 'spend')) \
             GROUP BY 1 ORDER BY 1 DESC LIMIT $4"
        }
        Figure::Expired => {
            "SELECT entry_id, reason, sum(points)::bigint AS points, max(created_at) AS created_at FROM ( \
                 SELECT e.id AS entry_id, e.reason, a.amount AS points, e.created_at \
                 FROM settlement_marks m JOIN entries e ON e.id = m.entry_id AND e.reason = 'expire' \
                 JOIN allocations a ON a.entry_id = e.id JOIN lots l ON l.id = a.lot_id \
                 JOIN entries i ON i.id = l.entry_id WHERE m.statement_id = $1 AND coalesce(l.issuer_mall_id, i.mall_id) = $2 \
                 UNION ALL \
                 SELECT coalesce(r.entry_id, r.debit_entry_id), 'forfeited', r.amount, r.created_at \
                 FROM lot_returns r JOIN lots l ON l.id = r.lot_id JOIN entries i ON i.id = l.entry_id \
                 WHERE r.statement_id = $1 AND r.forfeited AND coalesce(l.issuer_mall_id, i.mall_id) = $2 \
             ) x WHERE ($3::bigint IS NULL OR entry_id < $3) AND ($5::bigint IS NULL OR $5 = $2) \
             GROUP BY entry_id, reason ORDER BY entry_id DESC LIMIT $4"
        }
    };
    Ok(sqlx::query_as(sql)
        .bind(d.statement_id)
        .bind(d.mall_id)
        .bind(d.before)
        .bind(d.limit)
        .bind(d.issuer)
        .fetch_all(conn)
        .await?)
}
