//! `ledger verify` (L10): proves every account's hash chain and the ledger's sums.

use std::collections::HashMap;

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
    let accounts: Vec<Account> = sqlx::query_as(
        "SELECT member_id, currency, balance, locked, entry_count, head_hash FROM accounts ORDER BY member_id, currency",
    )
    .fetch_all(&mut *conn)
    .await?;
    report.accounts = accounts.len() as u64;
    let walks = walk_chains(conn, &mut report).await?;
    check_accounts(conn, &mut report, accounts, walks).await?;
    check_allocations(conn, &mut report).await?;
    check_budgets(conn, &mut report).await?;
    Ok(report)
}

/// An account row: (member, currency, balance, locked, entry count, head hash).
type Account = (i64, String, i64, i64, i64, Vec<u8>);

/// Walks every account's entries in order: sequence, hash chain, contents and running
/// balances. The walk's end per account.
async fn walk_chains(conn: &mut PgConnection, report: &mut Report) -> Result<Vec<Walk>> {
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
            done.extend(cur.take());
            cur = Some(Walk { key, seq: 0, hash: Vec::new(), balance: 0, locked: 0 });
        }
        step(cur.as_mut().expect("set above"), r, report);
    }
    done.extend(cur.take());
    Ok(done)
}

/// One entry of a walk.
fn step(w: &mut Walk, r: Row, report: &mut Report) {
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

/// Sums per (member, currency) of a query's third column.
async fn sums(conn: &mut PgConnection, sql: &'static str) -> Result<HashMap<(i64, String), i64>> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(sql).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(m, c, s)| ((m, c), s)).collect())
}

/// Each account against its walk, its open lots and its lock grants; entries without an
/// account.
async fn check_accounts(
    conn: &mut PgConnection,
    report: &mut Report,
    accounts: Vec<Account>,
    walks: Vec<Walk>,
) -> Result<()> {
    let mut by_key: HashMap<(i64, String), Walk> = walks.into_iter().map(|w| (w.key.clone(), w)).collect();
    let lots =
        sums(conn, "SELECT member_id, currency, sum(remaining)::bigint FROM lots GROUP BY member_id, currency").await?;
    let grants = sums(
        conn,
        "SELECT member_id, currency, sum(total - released)::bigint FROM lock_grants GROUP BY member_id, currency",
    )
    .await?;
    for (member_id, currency, balance, locked, entry_count, head_hash) in accounts {
        let key = (member_id, currency.clone());
        let at = format!("account (member {member_id}, {currency})");
        let (sum, lsum, seq, head) =
            by_key.remove(&key).map_or((0, 0, 0, Vec::new()), |w| (w.balance, w.locked, w.seq, w.hash));
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
    }
    for key in by_key.keys() {
        report.problem(format!("entries of member {} in {} have no account", key.0, key.1));
    }
    Ok(())
}

/// Every debit is allocated from lots in full.
async fn check_allocations(conn: &mut PgConnection, report: &mut Report) -> Result<()> {
    let bad_debits: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT e.id, -e.amount, coalesce(sum(a.amount), 0)::bigint FROM entries e \
         LEFT JOIN allocations a ON a.entry_id = e.id \
         WHERE e.amount < 0 GROUP BY e.id HAVING -e.amount <> coalesce(sum(a.amount), 0)",
    )
    .fetch_all(conn)
    .await?;
    for (id, amount, allocated) in bad_debits {
        report.problem(format!("debit entry {id} of {amount} is allocated {allocated} from lots"));
    }
    Ok(())
}

/// An alliance's issuing budgets (empty in a merchant's schema): each balance is the sum
/// of its entries.
async fn check_budgets(conn: &mut PgConnection, report: &mut Report) -> Result<()> {
    let budgets: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT b.tenant_id, b.balance_fen, coalesce(sum(e.amount_fen), 0)::bigint FROM budgets b \
         LEFT JOIN budget_entries e ON e.tenant_id = b.tenant_id GROUP BY b.tenant_id, b.balance_fen \
         HAVING b.balance_fen <> coalesce(sum(e.amount_fen), 0)",
    )
    .fetch_all(conn)
    .await?;
    for (t, balance, sum) in budgets {
        report.problem(format!("issuing budget of mall {t}: balance {balance} fen but its entries sum to {sum}"));
    }
    Ok(())
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
