//! Credits in bulk: a whole batch in five statements, however many entries it holds.
//!
//! 1. lock every account of the batch (creating missing ones first), in (member,
//!    currency) order, so two batches touching the same members cannot deadlock;
//! 2. compute each entry's sequence, balance and chained hash here, from the locked rows;
//! 3. insert the entries, 4. move the accounts to their new heads, 5. insert the lots.
//!
//! Each statement binds one array per column (`unnest`), so a batch of 500 credits costs
//! about what a single one does. A single credit goes through here too (`credit`).

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::PgConnection;

use super::chain::Link;
use super::post::{CreditItem, LotPart, account_error, check_amount, entry_error};
use super::{ENTRY_COLUMNS, Entry, Reason, Source};
use crate::error::{Error, Result};
use crate::ids::EntryId;

/// An account of the batch, as locked and then as moved by the batch's entries.
struct Account {
    balance: i64,
    entry_count: i64,
    head_hash: Vec<u8>,
    drives_level: bool,
    earned: i64,
}

/// Writes one entry (and its lots) per item, in the items' order within each account;
/// returns the entries in the order of `items`. All or nothing within the caller's
/// transaction.
pub async fn credit_many(
    conn: &mut PgConnection,
    items: &[CreditItem],
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    for item in items {
        check_amount("amount", item.parts.iter().map(|p| p.amount).sum())?;
        for part in &item.parts {
            check_amount("amount", part.amount)?;
        }
    }
    let mut accounts = lock_accounts(conn, items).await?;
    let created_at = now.trunc_subsecs(6);
    let earning = reason.is_earning();

    let n = items.len();
    let mut cols = EntryColumns::with_capacity(n);
    for item in items {
        let total: i64 = item.parts.iter().map(|p| p.amount).sum();
        let account = accounts
            .get_mut(&(item.member_id, item.currency.clone()))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("account of member {} was not locked", item.member_id)))?;
        account.balance = account
            .balance
            .checked_add(total)
            .ok_or_else(|| Error::invalid_field("amount", "the balance would overflow"))?;
        account.entry_count += 1;
        if earning {
            account.earned += total;
        }
        let link = Link {
            member_id: item.member_id,
            currency: &item.currency,
            seq: account.entry_count,
            amount: total,
            locked_delta: 0,
            balance_after: account.balance,
        };
        let hash = link.hash(&account.head_hash, reason, &item.source, created_at);
        let prev = std::mem::replace(&mut account.head_hash, hash.clone());
        cols.push(item, account.entry_count, total, account.balance, prev, hash);
    }

    let entries = insert_entries(conn, &cols, reason, created_at).await?;
    move_heads(conn, &accounts).await?;
    insert_lots(conn, items, &entries, now).await?;
    super::announce(conn, &entries).await?;
    let moved: Vec<(i64, i64, Option<EntryId>)> = accounts
        .iter()
        .filter(|(_, a)| a.drives_level)
        .map(|((member_id, currency), a)| {
            let last = entries.iter().rev().find(|e| e.member_id == *member_id && &e.currency == currency);
            (*member_id, a.balance, last.map(|e| e.id))
        })
        .collect();
    crate::levels::recompute_many(conn, &moved).await?;
    Ok(entries)
}

/// Creates missing accounts and locks all of them in (member, currency) order.
async fn lock_accounts(conn: &mut PgConnection, items: &[CreditItem]) -> Result<HashMap<(i64, String), Account>> {
    let mut keys: Vec<(i64, &str)> = items.iter().map(|i| (i.member_id, i.currency.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    // Two statements, each in (member, currency) order: create the missing accounts (a
    // new row stays locked until commit), then lock them all. Locking the existing ones
    // first and creating the rest after could deadlock with a batch doing the reverse.
    // Existing accounts are skipped before the insert: an attempted row costs its BEFORE
    // INSERT trigger and a speculative insertion even when it then conflicts.
    let (members, currencies): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO accounts (member_id, currency) \
         SELECT m, c FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS t(m, c, i) \
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.member_id = t.m AND a.currency = t.c) ORDER BY i \
         ON CONFLICT DO NOTHING",
    )
    .bind(&members)
    .bind(&currencies)
    .execute(&mut *conn)
    .await
    .map_err(account_error)?;
    select_for_update(conn, &keys).await
}

/// Locks the accounts of `keys` (sorted), in that order, and reads their latest state.
async fn select_for_update(conn: &mut PgConnection, keys: &[(i64, &str)]) -> Result<HashMap<(i64, String), Account>> {
    let (members, currencies): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
    // ORDER BY below FOR UPDATE: rows are locked in the sorted order.
    let rows: Vec<(i64, String, i64, i64, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT a.member_id, a.currency, a.balance, a.entry_count, a.head_hash, c.drives_level \
         FROM accounts a JOIN currencies c ON c.code = a.currency \
         JOIN unnest($1::bigint[], $2::text[]) AS t(m, k) ON a.member_id = t.m AND a.currency = t.k \
         ORDER BY a.member_id, a.currency FOR UPDATE OF a",
    )
    .bind(&members)
    .bind(&currencies)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(member_id, currency, balance, entry_count, head_hash, drives_level)| {
            let account = Account { balance, entry_count, head_hash, drives_level, earned: 0 };
            ((member_id, currency), account)
        })
        .collect())
}

/// The entries of a batch, one vector per column.
struct EntryColumns<'a> {
    member_id: Vec<i64>,
    currency: Vec<&'a str>,
    seq: Vec<i64>,
    amount: Vec<i64>,
    balance_after: Vec<i64>,
    source_kind: Vec<&'static str>,
    source_ref: Vec<&'a str>,
    rule_id: Vec<Option<i64>>,
    rule_version: Vec<Option<i32>>,
    params_version: Vec<Option<i32>>,
    memo: Vec<&'a str>,
    actor: Vec<&'a str>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl<'a> EntryColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            member_id: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            amount: Vec::with_capacity(n),
            balance_after: Vec::with_capacity(n),
            source_kind: Vec::with_capacity(n),
            source_ref: Vec::with_capacity(n),
            rule_id: Vec::with_capacity(n),
            rule_version: Vec::with_capacity(n),
            params_version: Vec::with_capacity(n),
            memo: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }

    /// Adds an entry; `prev_hash` is the head it follows.
    fn push(
        &mut self,
        item: &'a CreditItem,
        seq: i64,
        amount: i64,
        balance_after: i64,
        prev_hash: Vec<u8>,
        hash: Vec<u8>,
    ) {
        self.member_id.push(item.member_id);
        self.currency.push(&item.currency);
        self.seq.push(seq);
        self.amount.push(amount);
        self.balance_after.push(balance_after);
        self.source_kind.push(item.source.kind.as_str());
        self.source_ref.push(&item.source.reference);
        self.rule_id.push(item.source.rule.map(|r| r.id));
        self.rule_version.push(item.source.rule.map(|r| r.version));
        self.params_version.push(item.source.rule.map(|r| r.params_version));
        self.memo.push(&item.source.memo);
        self.actor.push(&item.source.actor);
        self.prev_hash.push(prev_hash);
        self.hash.push(hash);
    }
}

async fn insert_entries(
    conn: &mut PgConnection,
    cols: &EntryColumns<'_>,
    reason: Reason,
    created_at: DateTime<Utc>,
) -> Result<Vec<Entry>> {
    let rows: Vec<Entry> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO entries (member_id, currency, seq, amount, locked_delta, balance_after, reason, source_kind, \
             source_ref, rule_id, rule_version, params_version, memo, actor, created_at, prev_hash, hash) \
         SELECT m, c, s, a, 0, b, $6, k, r, ri, rv, pv, memo, actor, $7, ph, h \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $8::text[], $9::text[], \
                     $10::bigint[], $11::int[], $12::text[], $13::text[], $14::bytea[], $15::bytea[], $16::int[]) \
              WITH ORDINALITY AS t(m, c, s, a, b, k, r, ri, rv, memo, actor, ph, h, pv, i) \
         ORDER BY i RETURNING {ENTRY_COLUMNS}"
    )))
    .bind(&cols.member_id)
    .bind(&cols.currency)
    .bind(&cols.seq)
    .bind(&cols.amount)
    .bind(&cols.balance_after)
    .bind(reason.as_str())
    .bind(created_at)
    .bind(&cols.source_kind)
    .bind(&cols.source_ref)
    .bind(&cols.rule_id)
    .bind(&cols.rule_version)
    .bind(&cols.memo)
    .bind(&cols.actor)
    .bind(&cols.prev_hash)
    .bind(&cols.hash)
    .bind(&cols.params_version)
    .fetch_all(&mut *conn)
    .await
    .map_err(entry_error)?;
    // RETURNING does not promise the input's order: put the entries back in it.
    let mut returned: HashMap<(i64, String, i64), Entry> =
        rows.into_iter().map(|e| ((e.member_id, e.currency.clone(), e.seq), e)).collect();
    (0..cols.seq.len())
        .map(|i| {
            let key = (cols.member_id[i], cols.currency[i].to_string(), cols.seq[i]);
            returned.remove(&key).ok_or_else(|| Error::Internal(anyhow::anyhow!("entry {key:?} was not returned")))
        })
        .collect()
}

/// Moves every account of the batch to its new balance, count and head hash.
async fn move_heads(conn: &mut PgConnection, accounts: &HashMap<(i64, String), Account>) -> Result<()> {
    let mut members = Vec::with_capacity(accounts.len());
    let mut currencies = Vec::with_capacity(accounts.len());
    let (mut balances, mut counts, mut heads, mut earned) = (vec![], vec![], vec![], vec![]);
    for ((member_id, currency), a) in accounts {
        members.push(*member_id);
        currencies.push(currency.as_str());
        balances.push(a.balance);
        counts.push(a.entry_count);
        heads.push(a.head_hash.as_slice());
        earned.push(a.earned);
    }
    sqlx::query(
        "UPDATE accounts a SET balance = t.b, entry_count = t.n, head_hash = t.h, \
             lifetime_earned = a.lifetime_earned + t.e, updated_at = now() \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[], $6::bigint[]) AS t(m, c, b, n, h, e) \
         WHERE a.member_id = t.m AND a.currency = t.c",
    )
    .bind(&members)
    .bind(&currencies)
    .bind(&balances)
    .bind(&counts)
    .bind(&heads)
    .bind(&earned)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One lot per part of every item, pointing at the item's entry.
async fn insert_lots(
    conn: &mut PgConnection,
    items: &[CreditItem],
    entries: &[Entry],
    now: DateTime<Utc>,
) -> Result<()> {
    let (mut members, mut currencies, mut entry_ids, mut amounts, mut expiries) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (item, entry) in items.iter().zip(entries) {
        for part in &item.parts {
            members.push(item.member_id);
            currencies.push(item.currency.as_str());
            entry_ids.push(entry.id);
            amounts.push(part.amount);
            expiries.push(part.expires_at);
        }
    }
    sqlx::query(
        "INSERT INTO lots (member_id, currency, entry_id, amount, remaining, earned_at, expires_at) \
         SELECT m, c, e, a, a, $6, x FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[]) \
              AS t(m, c, e, a, x)",
    )
    .bind(&members)
    .bind(&currencies)
    .bind(&entry_ids)
    .bind(&amounts)
    .bind(&expiries)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Credits `parts` as one entry with one lot per part.
pub async fn credit(
    conn: &mut PgConnection,
    member_id: i64,
    currency: &str,
    parts: &[LotPart],
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let item = CreditItem { member_id, currency: currency.to_string(), parts: parts.to_vec(), source: source.clone() };
    let mut entries = credit_many(conn, std::slice::from_ref(&item), reason, now).await?;
    entries.pop().ok_or_else(|| Error::Internal(anyhow::anyhow!("a credit wrote no entry")))
}
