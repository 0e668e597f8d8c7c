//! The figures of a statement, computed from the entries and returns it settles and
//! stored with it (never recomputed once the statement is closed).
//!
//! Per mall, in shared points: `issued` (earned and added by adjustments at the mall,
//! and released from its lock grants: a locked point counts when it is released),
//! `revoked` (taken away by adjustments at the mall), `redeemed` (spent at the mall),
//! `returned` (refunds of spends at the mall, including portions forfeited because
//! their lot had expired; a hold is spent when captured, so what a hold gives back
//! before that is nothing here), `expired` (lapsed points the mall issued, forfeited returns
//! included). Pairs: points issued by one mall and redeemed, net of returns, at another;
//! the issuer owes the redeemer their value at the clearing rate. A mall's net position
//! is what it is owed less what it owes; the positions sum to zero.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgConnection;

use crate::error::Result;
use crate::ids::TenantId;

/// One mall's figures (`mall_id` None: entries no mall wrote).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LineRow {
    pub mall_id: Option<TenantId>,
    pub issued: i64,
    pub revoked: i64,
    pub redeemed: i64,
    pub returned: i64,
    pub expired: i64,
    pub receivable_fen: i64,
    pub payable_fen: i64,
    pub net_fen: i64,
}

/// Points of `issuer` redeemed at `redeemer`, and what the issuer owes for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PairRow {
    pub issuer: Option<TenantId>,
    pub redeemer: TenantId,
    pub points: i64,
    pub value_fen: i64,
}

/// The value in fen of `points` at `points_per_yuan`, rounded half away from zero.
pub fn value_fen(points: i64, points_per_yuan: i32) -> i64 {
    let (num, den) = (i128::from(points) * 100, i128::from(points_per_yuan.max(1)));
    let rounded = (2 * num + num.signum() * den) / (2 * den);
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// Computes the figures of statement `id` from what it settles, for `malls` (every mall
/// of the alliance gets a line, figures or not), and stores them.
pub async fn compute_and_store(
    conn: &mut PgConnection,
    id: i64,
    points_per_yuan: i32,
    malls: &[TenantId],
) -> Result<(Vec<LineRow>, Vec<PairRow>)> {
    let mut lines: BTreeMap<Option<TenantId>, LineRow> =
        malls.iter().map(|&m| (Some(m), LineRow { mall_id: Some(m), ..Default::default() })).collect();

    let flows: Vec<(Option<TenantId>, i64, i64, i64)> = sqlx::query_as(
        "SELECT e.mall_id, \
                coalesce(sum(e.amount) FILTER (WHERE e.reason IN ('earn', 'adjust', 'release') AND e.amount > 0), 0)::bigint, \
                coalesce(sum(-e.amount) FILTER (WHERE e.reason = 'adjust' AND e.amount < 0), 0)::bigint, \
                coalesce(sum(-e.amount) FILTER (WHERE e.reason = 'spend'), 0)::bigint \
         FROM settlement_marks m JOIN entries e ON e.id = m.entry_id WHERE m.statement_id = $1 GROUP BY e.mall_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for (m, issued, revoked, redeemed) in flows {
        let l = entry(&mut lines, m);
        (l.issued, l.revoked, l.redeemed) = (issued, revoked, redeemed);
    }
    let returned: Vec<(Option<TenantId>, i64)> = sqlx::query_as(
        "SELECT d.mall_id, sum(r.amount)::bigint FROM lot_returns r \
         JOIN entries d ON d.id = r.debit_entry_id AND d.reason = 'spend' \
         WHERE r.statement_id = $1 GROUP BY d.mall_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for (m, n) in returned {
        entry(&mut lines, m).returned = n;
    }
    let expired: Vec<(Option<TenantId>, i64)> = sqlx::query_as(
        "SELECT issuer, sum(points)::bigint FROM ( \
             SELECT coalesce(l.issuer_mall_id, i.mall_id) AS issuer, a.amount AS points \
             FROM settlement_marks m JOIN entries e ON e.id = m.entry_id AND e.reason = 'expire' \
             JOIN allocations a ON a.entry_id = e.id JOIN lots l ON l.id = a.lot_id JOIN entries i ON i.id = l.entry_id \
             WHERE m.statement_id = $1 \
             UNION ALL \
             SELECT coalesce(l.issuer_mall_id, i.mall_id), r.amount FROM lot_returns r JOIN lots l ON l.id = r.lot_id \
             JOIN entries i ON i.id = l.entry_id WHERE r.statement_id = $1 AND r.forfeited \
         ) x GROUP BY issuer",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for (m, n) in expired {
        entry(&mut lines, m).expired = n;
    }

    let pairs = pairs(conn, id, points_per_yuan).await?;
    for p in &pairs {
        if p.issuer == Some(p.redeemer) {
            continue;
        }
        entry(&mut lines, Some(p.redeemer)).receivable_fen += p.value_fen;
        entry(&mut lines, p.issuer).payable_fen += p.value_fen;
    }
    let lines: Vec<LineRow> = lines
        .into_values()
        .map(|mut l| {
            l.net_fen = l.receivable_fen - l.payable_fen;
            l
        })
        .collect();
    store(conn, id, &lines, &pairs).await?;
    Ok((lines, pairs))
}

fn entry(lines: &mut BTreeMap<Option<TenantId>, LineRow>, m: Option<TenantId>) -> &mut LineRow {
    lines.entry(m).or_insert_with(|| LineRow { mall_id: m, ..Default::default() })
}

/// Points drawn by spends at each redeemer from each issuer's lots, less what refunds
/// gave back (or forfeited) of such spends.
async fn pairs(conn: &mut PgConnection, id: i64, points_per_yuan: i32) -> Result<Vec<PairRow>> {
    let rows: Vec<(Option<TenantId>, TenantId, i64)> = sqlx::query_as(
        "SELECT issuer, redeemer, sum(points)::bigint FROM ( \
             SELECT coalesce(l.issuer_mall_id, i.mall_id) AS issuer, e.mall_id AS redeemer, a.amount AS points \
             FROM settlement_marks m JOIN entries e ON e.id = m.entry_id AND e.reason = 'spend' \
             JOIN allocations a ON a.entry_id = e.id JOIN lots l ON l.id = a.lot_id JOIN entries i ON i.id = l.entry_id \
             WHERE m.statement_id = $1 \
             UNION ALL \
             SELECT coalesce(l.issuer_mall_id, i.mall_id), d.mall_id, -r.amount \
             FROM lot_returns r JOIN entries d ON d.id = r.debit_entry_id AND d.reason = 'spend' \
             JOIN lots l ON l.id = r.lot_id JOIN entries i ON i.id = l.entry_id WHERE r.statement_id = $1 \
         ) x WHERE redeemer IS NOT NULL GROUP BY issuer, redeemer HAVING sum(points) <> 0 ORDER BY issuer, redeemer",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(issuer, redeemer, points)| PairRow {
            issuer,
            redeemer,
            points,
            value_fen: value_fen(points, points_per_yuan),
        })
        .collect())
}

async fn store(conn: &mut PgConnection, id: i64, lines: &[LineRow], pairs: &[PairRow]) -> Result<()> {
    for l in lines {
        sqlx::query(
            "INSERT INTO settlement_lines (statement_id, mall_id, issued, revoked, redeemed, returned, expired, \
             receivable_fen, payable_fen, net_fen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(l.mall_id)
        .bind(l.issued)
        .bind(l.revoked)
        .bind(l.redeemed)
        .bind(l.returned)
        .bind(l.expired)
        .bind(l.receivable_fen)
        .bind(l.payable_fen)
        .bind(l.net_fen)
        .execute(&mut *conn)
        .await?;
    }
    for p in pairs {
        sqlx::query(
            "INSERT INTO settlement_pairs (statement_id, issuer, redeemer, points, value_fen) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(p.issuer)
        .bind(p.redeemer)
        .bind(p.points)
        .bind(p.value_fen)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The stored figures of statement `id`.
pub async fn read(conn: &mut PgConnection, id: i64) -> Result<(Vec<LineRow>, Vec<PairRow>)> {
    let lines = sqlx::query_as(
        "SELECT mall_id, issued, revoked, redeemed, returned, expired, receivable_fen, payable_fen, net_fen \
         FROM settlement_lines WHERE statement_id = $1 ORDER BY mall_id NULLS LAST",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let pairs = sqlx::query_as(
        "SELECT issuer, redeemer, points, value_fen FROM settlement_pairs WHERE statement_id = $1 \
         ORDER BY issuer NULLS LAST, redeemer",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok((lines, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_half_away_from_zero() {
        assert_eq!(value_fen(300, 100), 300);
        assert_eq!(value_fen(1, 200), 1); // half a fen
        assert_eq!(value_fen(-1, 200), -1);
        assert_eq!(value_fen(1, 201), 0);
        assert_eq!(value_fen(700, 50), 1_400);
        assert_eq!(value_fen(7, 3), 233);
    }
}
