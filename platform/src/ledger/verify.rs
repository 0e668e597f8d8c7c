//! `ledger verify` (L10): proves every account's hash chain and the ledger's sums.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::PgConnection;

use super::chain::Canonical;
use crate::error::Result;

/// What verification found; `problems` is empty for a sound ledger.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub accounts: u64,
    pub entries: u64,
    pub problems: Vec<String>,
}

/// Problems beyond this many are counted but not listed.
const PROBLEMS_LISTED_MAX: usize = 100;

impl Report {
    fn problem(&mut self, p: String) {
        if self.problems.len() < PROBLEMS_LISTED_MAX {
            self.problems.push(p);
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    member_id: i64,
    currency: String,
    seq: i64,
    amount: i64,
    locked_delta: i64,
    balance_after: i64,
    reason: String,
    source_kind: String,
    source_ref: String,
    rule_id: Option<i64>,
    rule_version: Option<i32>,
    params_version: Option<i32>,
    memo: String,
    created_at: chrono::DateTime<chrono::Utc>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

struct Walk {
    key: (i64, String),
    seq: i64,
    hash: Vec<u8>,
    balance: i64,
    locked: i64,
}

/// Verifies the tenant schema selected on `conn` (run inside a REPEATABLE READ
/// transaction for a consistent snapshot).
pub async fn verify(conn: &mut PgConnection) -> Result<Report> {
    let mut report = Report::default();
    let accounts: Vec<(i64, String, i64, i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT member_id, currency, balance, locked, entry_count, head_hash FROM accounts ORDER BY member_id, currency",
    )
    .fetch_all(&mut *conn)
    .await?;
    report.accounts = accounts.len() as u64;
    let walks: Vec<Walk> = {
        let mut rows = sqlx::query_as::<_, Row>(
            "SELECT id, member_id, currency, seq, amount, locked_delta, balance_after, reason, source_kind, source_ref, \
                    rule_id, rule_version, params_version, memo, created_at, prev_hash, hash \
             FROM entries ORDER BY member_id, currency, seq",
        )
        .fetch(&mut *conn);
        let mut cur: Option<Walk> = None;
        let mut done: Vec<Walk> = Vec::new();
        while let Some(r) = rows.try_next().await? {
            report.entries += 1;
            let key = (r.member_id, r.currency.clone());
            if cur.as_ref().is_none_or(|w| w.key != key) {
                if let Some(w) = cur.take() {
                    done.push(w);
                }
                cur = Some(Walk { key: key.clone(), seq: 0, hash: Vec::new(), balance: 0, locked: 0 });
            }
            let w = cur.as_mut().expect("set above");
            let at = format!("entry {} (member {}, {}, seq {})", r.id, r.member_id, r.currency, r.seq);
            if r.seq != w.seq + 1 {
                report.problem(format!("{at}: sequence jumps from {}", w.seq));
            }
            if r.prev_hash != w.hash {
                report.problem(format!("{at}: prev_hash does not match the previous entry's hash"));
            }
            let expected = Canonical {
                member_id: r.member_id,
                currency: &r.currency,
                seq: r.seq,
                amount: r.amount,
                locked_delta: r.locked_delta,
                balance_after: r.balance_after,
                reason: &r.reason,
                source_kind: &r.source_kind,
                source_ref: &r.source_ref,
                rule_id: r.rule_id,
                rule_version: r.rule_version,
                params_version: r.params_version,
                memo: &r.memo,
                created_at_micros: r.created_at.timestamp_micros(),
            }
            .hash(&r.prev_hash);
            if expected != r.hash {
                report.problem(format!("{at}: hash does not match its contents (edited?)"));
            }
            w.balance += r.amount;
            w.locked += r.locked_delta;
            if w.balance != r.balance_after {
                report.problem(format!("{at}: balance_after {} but the entries sum to {}", r.balance_after, w.balance));
            }
            if w.balance < 0 || w.locked < 0 {
                report.problem(format!("{at}: balance went negative"));
            }
            w.seq = r.seq;
            w.hash = r.hash;
        }
        if let Some(w) = cur.take() {
            done.push(w);
        }
        done
    };
    let mut by_key = std::collections::HashMap::new();
    for w in &walks {
        by_key.insert(w.key.clone(), w);
    }
    let lot_sums: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT member_id, currency, sum(remaining)::bigint FROM lots GROUP BY member_id, currency")
            .fetch_all(&mut *conn)
            .await?;
    let lots: std::collections::HashMap<(i64, String), i64> =
        lot_sums.into_iter().map(|(m, c, s)| ((m, c), s)).collect();
    let grant_sums: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT member_id, currency, sum(total - released)::bigint FROM lock_grants GROUP BY member_id, currency",
    )
    .fetch_all(&mut *conn)
    .await?;
    let grants: std::collections::HashMap<(i64, String), i64> =
        grant_sums.into_iter().map(|(m, c, s)| ((m, c), s)).collect();
    for (member_id, currency, balance, locked, entry_count, head_hash) in accounts {
        let key = (member_id, currency.clone());
        let at = format!("account (member {member_id}, {currency})");
        let (sum, lsum, seq, head) =
            by_key.get(&key).map_or((0, 0, 0, Vec::new()), |w| (w.balance, w.locked, w.seq, w.hash.clone()));
        if sum != balance {
            report.problem(format!("{at}: balance {balance} but its entries sum to {sum}"));
        }
        if lsum != locked {
            report.problem(format!("{at}: locked {locked} but its entries sum to {lsum}"));
        }
        if seq != entry_count || head != head_hash {
            report.problem(format!("{at}: the chain head does not match the account (entries removed or added?)"));
        }
        let lot_sum = lots.get(&key).copied().unwrap_or(0);
        if lot_sum != balance {
            report.problem(format!("{at}: balance {balance} but its open lots hold {lot_sum}"));
        }
        let grant_sum = grants.get(&key).copied().unwrap_or(0);
        if grant_sum != locked {
            report.problem(format!("{at}: locked {locked} but its lock grants hold {grant_sum}"));
        }
        by_key.remove(&key);
    }
    for key in by_key.keys() {
        report.problem(format!("entries of member {} in {} have no account", key.0, key.1));
    }
    let bad_debits: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT e.id, -e.amount, coalesce(sum(a.amount), 0)::bigint FROM entries e \
         LEFT JOIN allocations a ON a.entry_id = e.id \
         WHERE e.amount < 0 GROUP BY e.id HAVING -e.amount <> coalesce(sum(a.amount), 0)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, amount, allocated) in bad_debits {
        report.problem(format!("debit entry {id} of {amount} is allocated {allocated} from lots"));
    }
    // An alliance's issuing budgets (empty in a merchant's schema): each balance is the
    // sum of its entries.
    let budgets: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT b.tenant_id, b.balance_fen, coalesce(sum(e.amount_fen), 0)::bigint FROM budgets b \
         LEFT JOIN budget_entries e ON e.tenant_id = b.tenant_id GROUP BY b.tenant_id, b.balance_fen \
         HAVING b.balance_fen <> coalesce(sum(e.amount_fen), 0)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (t, balance, sum) in budgets {
        report.problem(format!("issuing budget of mall {t}: balance {balance} fen but its entries sum to {sum}"));
    }
    Ok(report)
}

/// Verifies one tenant in a consistent snapshot.
pub async fn verify_tenant(db: &crate::db::Db, tenant: &crate::directory::Tenant) -> Result<Report> {
    verify_schema(db, &tenant.cluster, &tenant.schema_name).await
}

/// Verifies the ledger of one schema (a merchant's, or an alliance's shared currency) in
/// a consistent snapshot.
pub async fn verify_schema(db: &crate::db::Db, cluster: &str, schema: &str) -> Result<Report> {
    let mut tx = db.cluster(cluster)?.begin().await?;
    // Must come first in the transaction: one snapshot for every check.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    crate::db::select_schema(&mut tx, schema).await?;
    let report = verify(&mut tx).await?;
    tx.commit().await?;
    Ok(report)
}
