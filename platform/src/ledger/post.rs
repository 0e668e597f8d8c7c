//! The one way entries are written: update the account row (lock + database-enforced
//! `balance >= 0`), then append a hash-chained entry; credits add lots, debits draw
//! from the soonest-expiring lots and record allocations.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::PgConnection;

use super::chain::Link;
use super::{Entry, Reason, Source, bounds};
use crate::error::{Error, Result};
use crate::ids::{EntryId, LotId};

/// One part of a credit: an amount and when it expires.
#[derive(Debug, Clone, Copy)]
pub struct LotPart {
    pub amount: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The account row after an update.
struct Head {
    balance: i64,
    entry_count: i64,
    head_hash: Vec<u8>,
    drives_level: bool,
}

/// A debit's draw on one lot.
#[derive(Debug, Clone, Copy)]
pub struct Allocation {
    pub lot_id: LotId,
    pub amount: i64,
}

pub fn check_amount(field: &str, amount: i64) -> Result<()> {
    if !(1..=bounds::AMOUNT_MAX).contains(&amount) {
        return Err(Error::invalid_field(field, format!("between 1 and {}", bounds::AMOUNT_MAX)));
    }
    Ok(())
}

/// Creates the account if needed. An unknown member or currency is a 404/422.
pub async fn ensure_account(conn: &mut PgConnection, member_id: i64, currency: &str) -> Result<()> {
    // Looked for first: an attempted insert costs its BEFORE INSERT trigger and a
    // speculative insertion even when it then conflicts; ON CONFLICT covers a race.
    sqlx::query(
        "INSERT INTO accounts (member_id, currency) SELECT $1, $2 \
         WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2) ON CONFLICT DO NOTHING",
    )
    .bind(member_id)
    .bind(currency)
    .execute(conn)
    .await
    .map_err(account_error)?;
    Ok(())
}

/// An entry breaks a column's bound (memo or reference too long): 422.
pub(super) fn entry_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_check_violation() => {
            Error::invalid_field("memo", "memo at most 500 characters, reference at most 200")
        }
        _ => Error::Database(e),
    }
}

/// A new account refers to an unknown member or currency: 404 / 422 naming it.
pub(super) fn account_error(e: sqlx::Error) -> Error {
    let sqlx::Error::Database(d) = &e else { return Error::Database(e) };
    if !d.is_foreign_key_violation() {
        return Error::Database(e);
    }
    if d.constraint() == Some("accounts_currency_fkey") {
        return Error::invalid_field("currency", "no such currency in this mall");
    }
    // The detail reads `Key (member_id)=(42) is not present in table "members".`
    let detail = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().and_then(|p| p.detail()).unwrap_or("");
    match detail.split_once(")=(").and_then(|(_, rest)| rest.split_once(')')) {
        Some((id, _)) => Error::not_found("member_not_found", format!("no such member: {id}")),
        None => Error::not_found("member_not_found", "no such member"),
    }
}

/// Moves the balances of a locked-or-about-to-be-locked account; None if the result
/// would be negative (nothing changed then).
async fn bump(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    amount: i64,
    locked_delta: i64,
    earned: i64,
) -> Result<Option<Head>> {
    let row: Option<(i64, i64, Vec<u8>, bool)> = sqlx::query_as(
        "UPDATE accounts a SET balance = a.balance + $3, locked = a.locked + $4, \
             lifetime_earned = a.lifetime_earned + $5, entry_count = a.entry_count + 1, updated_at = now() \
         FROM currencies c \
         WHERE a.member_id = $1 AND a.currency = $2 AND c.code = a.currency \
           AND a.balance + $3 >= 0 AND a.locked + $4 >= 0 \
         RETURNING a.balance, a.entry_count, a.head_hash, c.drives_level",
    )
    .bind(member_id)
    .bind(currency)
    .bind(amount)
    .bind(locked_delta)
    .bind(earned)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(balance, entry_count, head_hash, drives_level)| Head {
        balance,
        entry_count,
        head_hash,
        drives_level,
    }))
}

/// Appends the chained entry for an account just bumped.
#[allow(clippy::too_many_arguments)]
async fn append(
    conn: &mut PgConnection,
    head: &Head,
    member_id: i64,
    currency: &str,
    amount: i64,
    locked_delta: i64,
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let created_at = now.trunc_subsecs(6);
    let link = Link { member_id, currency, seq: head.entry_count, amount, locked_delta, balance_after: head.balance };
    let hash = link.hash(&head.head_hash, reason, source, created_at);
    // The account's new head hash is set in the same statement (the account is locked).
    let entry: Entry = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH e AS (INSERT INTO entries (member_id, currency, seq, amount, locked_delta, balance_after, reason, \
             source_kind, source_ref, rule_id, rule_version, params_version, memo, actor, created_at, prev_hash, hash) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING {cols}), \
         h AS (UPDATE accounts SET head_hash = $17 WHERE member_id = $1 AND currency = $2) \
         SELECT {cols} FROM e",
        cols = super::ENTRY_COLUMNS
    )))
    .bind(member_id)
    .bind(currency)
    .bind(head.entry_count)
    .bind(amount)
    .bind(locked_delta)
    .bind(head.balance)
    .bind(reason.as_str())
    .bind(source.kind.as_str())
    .bind(&source.reference)
    .bind(source.rule.map(|r| r.id))
    .bind(source.rule.map(|r| r.version))
    .bind(source.rule.map(|r| r.params_version))
    .bind(&source.memo)
    .bind(&source.actor)
    .bind(created_at)
    .bind(&head.head_hash)
    .bind(&hash)
    .fetch_one(&mut *conn)
    .await
    .map_err(entry_error)?;
    super::announce(conn, std::slice::from_ref(&entry)).await?;
    if head.drives_level {
        crate::levels::recompute(conn, member_id, head.balance, Some(entry.id)).await?;
    }
    Ok(entry)
}

/// One credit of a batch: an entry with one lot per part.
#[derive(Debug, Clone)]
pub struct CreditItem {
    pub member_id: i64,
    pub currency: String,
    pub parts: Vec<LotPart>,
    pub source: Source,
}

async fn insert_lots(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    entry_id: EntryId,
    parts: &[LotPart],
    now: DateTime<Utc>,
) -> Result<()> {
    let amounts: Vec<i64> = parts.iter().map(|p| p.amount).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = parts.iter().map(|p| p.expires_at).collect();
    sqlx::query(
        "INSERT INTO lots (member_id, currency, entry_id, amount, remaining, earned_at, expires_at) \
         SELECT $1, $2, $3, a, a, $4, e FROM unnest($5::bigint[], $6::timestamptz[]) AS t(a, e)",
    )
    .bind(member_id)
    .bind(currency)
    .bind(entry_id)
    .bind(now)
    .bind(&amounts)
    .bind(&expiries)
    .execute(conn)
    .await?;
    Ok(())
}

/// Debits `amount`, drawing from the soonest-expiring lots first (then the oldest).
/// Lots past their `expires_at` at `now` are expired first (their entry written in this
/// transaction), so a debit never draws on them, whether or not the expiry job has run.
pub async fn debit(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    amount: i64,
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<(Entry, Vec<Allocation>)> {
    check_amount("amount", amount)?;
    if has_due_lots(conn, member_id, currency, now).await? {
        expire_due_lots(conn, member_id, currency, now).await?;
    }
    let Some(head) = bump(conn, member_id, currency, -amount, 0, 0).await? else {
        // No account, or too little on it. An unknown member or currency is named (404 /
        // 422); a new account has nothing to spend.
        ensure_account(conn, member_id, currency).await?;
        let balance: i64 = sqlx::query_scalar("SELECT balance FROM accounts WHERE member_id = $1 AND currency = $2")
            .bind(member_id)
            .bind(currency)
            .fetch_one(&mut *conn)
            .await?;
        return Err(Error::Conflict {
            code: "insufficient_points",
            message: format!("the balance is {balance}; {amount} needed"),
        });
    };
    let (allocations, left) = draw_lots(conn, member_id, currency, amount).await?;
    if left != 0 {
        return Err(Error::Internal(anyhow::anyhow!(
            "ledger invariant broken: member {member_id} {currency} balance exceeds its lots by {left}"
        )));
    }
    let entry = append(conn, &head, member_id, currency, -amount, 0, reason, source, now).await?;
    record_allocations(conn, entry.id, &allocations).await?;
    Ok((entry, allocations))
}

/// The lots a debit of `amount` draws on, soonest-expiring first (then the oldest), read
/// a page at a time; returns them with what is left uncovered (0 unless the ledger is
/// broken). Separate statements after the account lock: they see every lot committed
/// before, and the account lock keeps the pages consistent with each other.
async fn draw_lots(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    amount: i64,
) -> Result<(Vec<Allocation>, i64)> {
    let mut left = amount;
    let mut allocations = Vec::new();
    let mut offset = 0;
    while left > 0 {
        if offset >= bounds::LOTS_PER_DEBIT_MAX {
            return Err(Error::conflict(
                "too_many_lots",
                format!(
                    "this debit would draw on more than {} lots; spend a smaller amount at a time",
                    bounds::LOTS_PER_DEBIT_MAX
                ),
            ));
        }
        let page: Vec<(LotId, i64)> = if offset == 0 {
            sqlx::query_as(FIRST_LOTS).bind(member_id).bind(currency).fetch_all(&mut *conn).await?
        } else {
            sqlx::query_as(
                "SELECT id, remaining FROM lots WHERE member_id = $1 AND currency = $2 AND remaining > 0 \
                 ORDER BY expires_at ASC NULLS LAST, id ASC LIMIT $3 OFFSET $4 FOR UPDATE",
            )
            .bind(member_id)
            .bind(currency)
            .bind(bounds::LOTS_PAGE)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?
        };
        let last_page = (page.len() as i64) < bounds::LOTS_PAGE;
        for (lot_id, remaining) in page {
            if left == 0 {
                break;
            }
            let take = remaining.min(left);
            allocations.push(Allocation { lot_id, amount: take });
            left -= take;
        }
        if last_page {
            break;
        }
        offset += bounds::LOTS_PAGE;
    }
    Ok((allocations, left))
}

/// A debit's first page of lots (most debits need no other), its `LIMIT` written out:
/// with the limit and the offset as parameters PostgreSQL plans the statement anew on
/// every call instead of once per connection.
const FIRST_LOTS: &str = "SELECT id, remaining FROM lots WHERE member_id = $1 AND currency = $2 AND remaining > 0 \
     ORDER BY expires_at ASC NULLS LAST, id ASC LIMIT 10000 FOR UPDATE";
const _: () = assert!(bounds::LOTS_PAGE == 10_000, "FIRST_LOTS writes out LOTS_PAGE");

async fn has_due_lots(conn: &mut PgConnection, member_id: i64, currency: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM lots WHERE member_id = $1 AND currency = $2 AND remaining > 0 AND expires_at <= $3)",
    )
    .bind(member_id)
    .bind(currency)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

async fn record_allocations(conn: &mut PgConnection, entry_id: EntryId, allocations: &[Allocation]) -> Result<()> {
    // One lot, the common case, has its own statement: PostgreSQL plans the general one
    // anew on every call (it cannot know the arrays' length before it sees them).
    if let [one] = allocations {
        sqlx::query(
            "WITH drawn AS (UPDATE lots SET remaining = remaining - $3 WHERE id = $2) \
             INSERT INTO allocations (entry_id, lot_id, amount) VALUES ($1, $2, $3)",
        )
        .bind(entry_id)
        .bind(one.lot_id)
        .bind(one.amount)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    let ids: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
    let amounts: Vec<i64> = allocations.iter().map(|a| a.amount).collect();
    sqlx::query(
        "WITH t AS (SELECT * FROM unnest($2::bigint[], $3::bigint[]) AS t(id, a)), \
         drawn AS (UPDATE lots l SET remaining = l.remaining - t.a FROM t WHERE l.id = t.id) \
         INSERT INTO allocations (entry_id, lot_id, amount) SELECT $1, id, a FROM t",
    )
    .bind(entry_id)
    .bind(&ids)
    .bind(&amounts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives back up to `amount` of what debit `entry_id` took, to the same lots (latest
/// expiry first). Portions whose lot has expired by `now` are forfeited, not returned.
/// Returns the entry written (None when everything was forfeited) and the forfeited sum.
pub async fn return_to_lots(
    conn: &mut PgConnection,
    debit_entry_id: EntryId,
    amount: i64,
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<(Option<Entry>, i64)> {
    check_amount("amount", amount)?;
    let (member_id, currency): (i64, String) = sqlx::query_as("SELECT member_id, currency FROM entries WHERE id = $1")
        .bind(debit_entry_id)
        .fetch_one(&mut *conn)
        .await?;
    // Lock the account first, as every ledger write does.
    sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
        .bind(member_id)
        .bind(&currency)
        .execute(&mut *conn)
        .await?;
    let rows = open_allocations(conn, debit_entry_id).await?;
    let returnable: i64 = rows.iter().map(|r| r.1).sum();
    if amount > returnable {
        return Err(Error::Conflict {
            code: "nothing_to_return",
            message: format!("only {returnable} of that debit can still be returned"),
        });
    }
    let ReturnPlan { ids, takes, credited, back, forfeited } = ReturnPlan::new(&rows, amount, now);
    sqlx::query(
        "UPDATE allocations a SET returned = a.returned + t.x FROM unnest($2::bigint[], $3::bigint[]) AS t(id, x) \
         WHERE a.entry_id = $1 AND a.lot_id = t.id",
    )
    .bind(debit_entry_id)
    .bind(&ids)
    .bind(&takes)
    .execute(&mut *conn)
    .await?;
    if back == 0 {
        record_returns(conn, debit_entry_id, None, &ids, &takes, &credited, now).await?;
        return Ok((None, forfeited));
    }
    sqlx::query(
        "UPDATE lots l SET remaining = l.remaining + t.x FROM unnest($1::bigint[], $2::bigint[]) AS t(id, x) \
         WHERE l.id = t.id AND t.x > 0",
    )
    .bind(&ids)
    .bind(&credited)
    .execute(&mut *conn)
    .await?;
    let head = bump(conn, member_id, &currency, back, 0, 0)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a return made a balance negative")))?;
    let mut source = source.clone();
    if forfeited > 0 {
        source.memo = format!("{} ({} forfeited: their lots had expired)", source.memo, forfeited).trim().to_string();
    }
    let entry = append(conn, &head, member_id, &currency, back, 0, reason, &source, now).await?;
    record_returns(conn, debit_entry_id, Some(entry.id), &ids, &takes, &credited, now).await?;
    Ok((Some(entry), forfeited))
}

/// The lots a debit took from and still owes back, latest expiry first (never-expiring
/// lots first): (lot id, amount still to return, lot's remaining, lot's expiry). Locks the
/// allocations.
async fn open_allocations(
    conn: &mut PgConnection,
    debit_entry_id: EntryId,
) -> Result<Vec<(i64, i64, i64, Option<DateTime<Utc>>)>> {
    Ok(sqlx::query_as(
        "SELECT a.lot_id, a.amount - a.returned, l.remaining, l.expires_at FROM allocations a JOIN lots l ON l.id = a.lot_id \
         WHERE a.entry_id = $1 AND a.returned < a.amount ORDER BY l.expires_at DESC NULLS FIRST, l.id DESC FOR UPDATE OF a",
    )
    .bind(debit_entry_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// How a return of `amount` spreads over a debit's open allocations: what each lot gets
/// back (`takes`), what it is credited (`credited`: 0 when the lot has expired, the points
/// are forfeited), and the totals.
struct ReturnPlan {
    ids: Vec<i64>,
    takes: Vec<i64>,
    credited: Vec<i64>,
    back: i64,
    forfeited: i64,
}

impl ReturnPlan {
    fn new(rows: &[(i64, i64, i64, Option<DateTime<Utc>>)], amount: i64, now: DateTime<Utc>) -> Self {
        let mut plan = ReturnPlan { ids: vec![], takes: vec![], credited: vec![], back: 0, forfeited: 0 };
        let mut left = amount;
        for &(lot_id, open, _remaining, expires_at) in rows {
            if left == 0 {
                break;
            }
            let take = open.min(left);
            left -= take;
            let alive = expires_at.is_none_or(|e| e > now);
            plan.ids.push(lot_id);
            plan.takes.push(take);
            plan.credited.push(if alive { take } else { 0 });
            if alive { plan.back += take } else { plan.forfeited += take }
        }
        plan
    }
}

/// Keeps what a return gave back to each lot, and what it forfeited (`credited` 0: the
/// lot had expired), for settlement (tenant migration 0010).
async fn record_returns(
    conn: &mut PgConnection,
    debit_entry_id: EntryId,
    entry_id: Option<EntryId>,
    lots: &[i64],
    takes: &[i64],
    credited: &[i64],
    now: DateTime<Utc>,
) -> Result<()> {
    let forfeited: Vec<bool> = credited.iter().map(|&c| c == 0).collect();
    sqlx::query(
        "INSERT INTO lot_returns (debit_entry_id, entry_id, lot_id, amount, forfeited, created_at) \
         SELECT $1, $2, t.lot, t.amount, t.forfeited, $6 \
         FROM unnest($3::bigint[], $4::bigint[], $5::boolean[]) AS t(lot, amount, forfeited) WHERE t.amount > 0",
    )
    .bind(debit_entry_id)
    .bind(entry_id)
    .bind(lots)
    .bind(takes)
    .bind(&forfeited)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves `total` into the locked balance (a lock grant's entry).
pub async fn lock(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    total: i64,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    check_amount("total", total)?;
    ensure_account(conn, member_id, currency).await?;
    let head = bump(conn, member_id, currency, 0, total, 0)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a lock made a balance negative")))?;
    append(conn, &head, member_id, currency, 0, total, Reason::Lock, source, now).await
}

/// Moves `amount` from the locked balance to the spendable one, as a new lot.
pub async fn release(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    part: LotPart,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    check_amount("amount", part.amount)?;
    let head = bump(conn, member_id, currency, part.amount, -part.amount, part.amount).await?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("release of {} exceeds the locked balance of member {member_id}", part.amount))
    })?;
    let entry =
        append(conn, &head, member_id, currency, part.amount, -part.amount, Reason::Release, source, now).await?;
    insert_lots(conn, member_id, currency, entry.id, &[part], now).await?;
    Ok(entry)
}

/// Expires what is left of the account's lots that are due at `now`; returns the
/// amount expired (0 writes nothing).
pub async fn expire_due_lots(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
        .bind(member_id)
        .bind(currency)
        .execute(&mut *conn)
        .await?;
    let due: Vec<(LotId, i64)> = sqlx::query_as(
        "SELECT id, remaining FROM lots WHERE member_id = $1 AND currency = $2 AND remaining > 0 \
         AND expires_at <= $3 ORDER BY expires_at, id FOR UPDATE",
    )
    .bind(member_id)
    .bind(currency)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = due.iter().map(|d| d.1).sum();
    if total == 0 {
        return Ok(0);
    }
    let head = bump(conn, member_id, currency, -total, 0, 0)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("expiry exceeds the balance of member {member_id}")))?;
    let source = Source::new(super::SourceKind::System, "system:expiry").memo(format!("{} lot(s) lapsed", due.len()));
    let entry = append(conn, &head, member_id, currency, -total, 0, Reason::Expire, &source, now).await?;
    let allocations: Vec<Allocation> = due.iter().map(|&(lot_id, amount)| Allocation { lot_id, amount }).collect();
    record_allocations(conn, entry.id, &allocations).await?;
    let ids: Vec<LotId> = due.iter().map(|d| d.0).collect();
    sqlx::query(
        "UPDATE lots l SET expired_amount = l.expired_amount + a.amount FROM allocations a \
         WHERE a.entry_id = $1 AND a.lot_id = l.id AND l.id = ANY($2)",
    )
    .bind(entry.id)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(total)
}
