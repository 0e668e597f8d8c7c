//! Which ledger a member's balance in a currency is kept in: the merchant's own schema,
//! or — for the alliance's shared currency — the alliance schema, under the member's
//! alliance identity. `AllianceBook::enter` switches the transaction to the alliance
//! schema (the ledger code then runs unchanged); `leave` switches back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::identity;
use crate::db::{enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{AllianceId, EntryId, IdentityId, MemberId, TenantId};
use crate::ledger::history::{self, EntryFilter, OpenLot, PointsSummary};
use crate::ledger::post::{self, CreditItem};
use crate::ledger::{Entry, Reason, Source, batch};

/// The alliance ledger of one member of one merchant.
#[derive(Debug, Clone)]
pub struct AllianceBook {
    alliance_schema: String,
    tenant_schema: String,
    tenant_id: TenantId,
    /// The member's id in the alliance schema (its ledger is keyed by identities).
    pub identity: IdentityId,
}

/// Whether `currency` is the alliance's shared currency in the merchant schema selected
/// on `conn`.
pub async fn is_shared(conn: &mut PgConnection, currency: &str) -> Result<bool> {
    let shared: Option<bool> =
        sqlx::query_scalar("SELECT shared FROM currencies WHERE code = $1").bind(currency).fetch_optional(conn).await?;
    Ok(shared == Some(true))
}

/// The alliance ledger of `member_id` if `currency` is shared, `None` for the merchant's
/// own currencies (and unknown ones, which the ledger refuses as before).
pub async fn for_member(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    currency: &str,
) -> Result<Option<AllianceBook>> {
    let Some(alliance_id) = tenant.alliance_id else {
        return Ok(None);
    };
    if !is_shared(conn, currency).await? {
        return Ok(None);
    }
    let identity = identity::of_member(conn, tenant, MemberId::new(member_id)).await?;
    Ok(Some(AllianceBook {
        alliance_schema: super::schema_name(alliance_id),
        tenant_schema: tenant.schema_name.clone(),
        tenant_id: tenant.id,
        identity,
    }))
}

/// The alliance ledger behind an order of the merchant whose schema is selected on
/// `conn` (for refunds, where only the order is at hand). Reads the directory, which
/// lives on the same cluster as every merchant of an alliance.
pub async fn for_order(conn: &mut PgConnection, member_id: i64) -> Result<AllianceBook> {
    let row: Option<(TenantId, String, Option<AllianceId>)> =
        sqlx::query_as("SELECT id, schema_name, alliance_id FROM control.tenants WHERE schema_name = current_schema()")
            .fetch_optional(&mut *conn)
            .await?;
    let Some((tenant_id, tenant_schema, now_in)) = row else {
        return Err(Error::Internal(anyhow::anyhow!("an order paid in shared points outside a known mall")));
    };
    // A mall that left its alliance still refunds its old orders there.
    let alliance_id = match now_in {
        Some(id) => Some(id),
        None => super::membership::last_left(conn, tenant_id).await?,
    };
    // A mall imported from an archive is standalone: the alliance's ledger, where these
    // points were taken, stayed in the database the mall was exported from.
    let Some(alliance_id) = alliance_id else {
        return Err(Error::conflict(
            "alliance_ledger_elsewhere",
            "this order was paid in an alliance's shared points, whose ledger is not in this database (the mall \
             was imported as a standalone mall): its points cannot be returned here",
        ));
    };
    let identity: Option<IdentityId> =
        sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1 FOR KEY SHARE")
            .bind(member_id)
            .fetch_one(&mut *conn)
            .await?;
    let identity = identity.ok_or_else(|| Error::Internal(anyhow::anyhow!("member {member_id} has no identity")))?;
    Ok(AllianceBook { alliance_schema: super::schema_name(alliance_id), tenant_schema, tenant_id, identity })
}

impl AllianceBook {
    /// Selects the alliance schema (checked) until `leave`.
    pub async fn enter(&self, conn: &mut PgConnection) -> Result<()> {
        enter_schema(conn, &self.alliance_schema).await
    }

    /// Selects the merchant's schema again and hands back what was done in the alliance
    /// schema: call it on every way out, with the work's result, errors included.
    pub async fn leave<T>(&self, conn: &mut PgConnection, work: Result<T>) -> Result<T> {
        switch_back(conn, &self.tenant_schema, work).await
    }

    /// `source` as written in the alliance ledger: its actor names the merchant
    /// ("tenant:5/partner:3"), so every shared entry is traceable to who issued or
    /// took it (settlement, SPEC A4).
    pub fn source(&self, source: &Source) -> Source {
        let mut s = source.clone();
        s.actor = format!("tenant:{}/{}", self.tenant_id, source.actor);
        s
    }
}

/// Credits a batch in the ledgers the currencies are kept in (merchant's own first, then
/// the alliance's), in one transaction. Entries name the merchant's member ids.
pub async fn credit_many(
    conn: &mut PgConnection,
    tenant: &Tenant,
    items: Vec<CreditItem>,
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>> {
    let (local, shared) = by_ledger(conn, tenant, items).await?;
    let mut entries = batch::credit_many(conn, &local, reason, now).await?;
    if shared.is_empty() {
        return Ok(entries);
    }
    entries.extend(credit_shared(conn, tenant, &shared, reason, now).await?);
    Ok(entries)
}

/// Splits a batch by the ledger its currencies are kept in: (the merchant's own, the
/// alliance's). Shared points in a mall that left its alliance are refused
/// (`alliance_left`).
async fn by_ledger(
    conn: &mut PgConnection,
    tenant: &Tenant,
    items: Vec<CreditItem>,
) -> Result<(Vec<CreditItem>, Vec<CreditItem>)> {
    let mut shared_codes: HashMap<String, bool> = HashMap::new();
    let (mut local, mut shared) = (Vec::new(), Vec::new());
    for item in items {
        let is = match shared_codes.get(&item.currency) {
            Some(is) => *is,
            None => {
                let is = is_shared(conn, &item.currency).await?;
                if is && tenant.alliance_id.is_none() {
                    return Err(Error::conflict(
                        "alliance_left",
                        format!("this mall left its alliance: {} can no longer be issued here", item.currency),
                    ));
                }
                shared_codes.insert(item.currency.clone(), is);
                is
            }
        };
        if is { shared.push(item) } else { local.push(item) }
    }
    Ok((local, shared))
}

/// Credits the shared items (non-empty) in the alliance ledger under the members'
/// identities, charged to the mall's budget (`issue`); returns the entries named by the
/// merchant's member ids again, announced in the mall's schema.
async fn credit_shared(
    conn: &mut PgConnection,
    tenant: &Tenant,
    shared: &[CreditItem],
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>> {
    let mut books = Vec::with_capacity(shared.len());
    for item in shared {
        let book = for_member(conn, tenant, item.member_id, &item.currency)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("currency {} stopped being shared", item.currency)))?;
        books.push(book);
    }
    // The alliance ledger is keyed by identities: entries written there are named by the
    // merchant's member again on the way back.
    let mut to_local: HashMap<IdentityId, MemberId> = HashMap::new();
    let mut there: Vec<CreditItem> = shared
        .iter()
        .zip(&books)
        .map(|(item, book)| {
            to_local.insert(book.identity, MemberId::new(item.member_id));
            CreditItem {
                member_id: book.identity.get(),
                currency: item.currency.clone(),
                parts: item.parts.clone(),
                source: book.source(&item.source),
            }
        })
        .collect();
    // Accounts are locked in (identity, currency) order, like every batch.
    there.sort_by(|a, b| (a.member_id, &a.currency).cmp(&(b.member_id, &b.currency)));
    books[0].enter(conn).await?;
    let written = issue(conn, tenant.id, &there, reason, now).await;
    let mut written = books[0].leave(conn, written).await?;
    for e in &mut written {
        let member = to_local.get(&IdentityId::new(e.member_id)).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("the alliance ledger wrote an entry for identity {}", e.member_id))
        })?;
        e.member_id = member.get();
    }
    // Back in the mall's schema: its endpoints hear of the shared entries too.
    crate::ledger::announce(conn, &written).await?;
    Ok(written)
}

/// Credits shared points in the alliance schema (selected) and charges the issuing
/// mall's budget for them in the same transaction (SPEC A3): earned and adjusted points
/// are issued; a refund gives back what was spent and costs nothing.
async fn issue(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    items: &[CreditItem],
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>> {
    let written = batch::credit_many(conn, items, reason, now).await?;
    if matches!(reason, Reason::Earn | Reason::Adjust) {
        let issued: Vec<(i64, EntryId)> = written.iter().filter(|e| e.amount > 0).map(|e| (e.amount, e.id)).collect();
        let actor = items.first().map(|i| i.source.actor.as_str()).unwrap_or("unknown");
        super::budget::charge(conn, tenant_id, &issued, actor).await?;
    }
    Ok(written)
}

/// One credit, in the ledger the currency is kept in.
pub async fn credit(
    conn: &mut PgConnection,
    tenant: &Tenant,
    item: CreditItem,
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let mut entries = credit_many(conn, tenant, vec![item], reason, now).await?;
    entries.pop().ok_or_else(|| Error::Internal(anyhow::anyhow!("a credit wrote no entry")))
}

/// One debit (soonest-expiring lots first), in the ledger the currency is kept in.
#[allow(clippy::too_many_arguments)]
pub async fn debit(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    currency: &str,
    amount: i64,
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let Some(book) = for_member(conn, tenant, member_id, currency).await? else {
        return Ok(post::debit(conn, member_id, currency, amount, reason, source, now).await?.0);
    };
    book.enter(conn).await?;
    let done = post::debit(conn, book.identity.get(), currency, amount, reason, &book.source(source), now).await;
    let (mut entry, _) = book.leave(conn, done).await?;
    entry.member_id = member_id;
    crate::ledger::announce(conn, std::slice::from_ref(&entry)).await?;
    Ok(entry)
}

/// A member's points summary with the shared currency read from the alliance ledger
/// (in the merchant's schema its row is always empty).
pub async fn summary(conn: &mut PgConnection, tenant: &Tenant, member_id: i64) -> Result<PointsSummary> {
    let mut s = history::summary(conn, member_id).await?;
    let Some(alliance_id) = tenant.alliance_id else {
        return Ok(s);
    };
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT code FROM currencies WHERE shared").fetch_all(&mut *conn).await?;
    let identity: Option<IdentityId> = sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_one(&mut *conn)
        .await?;
    let (Some(identity), false) = (identity, codes.is_empty()) else {
        return Ok(s);
    };
    enter_schema(conn, &super::schema_name(alliance_id)).await?;
    let read = shared_balances(conn, identity, &codes).await;
    let (accounts, lots) = switch_back(conn, &tenant.schema_name, read).await?;
    for (currency, balance, locked, lifetime) in accounts {
        if let Some(b) = s.balances.iter_mut().find(|b| b.currency == currency) {
            (b.balance, b.locked, b.lifetime_earned) = (balance, locked, lifetime);
        }
    }
    s.lots.extend(lots);
    s.lots.sort_by_key(|l| (l.expires_at.is_none(), l.expires_at, l.id));
    Ok(s)
}

type SharedBalances = (Vec<(String, i64, i64, i64)>, Vec<OpenLot>);

/// Balances (less what has lapsed) and open lots of an identity, in the alliance schema.
async fn shared_balances(conn: &mut PgConnection, identity: IdentityId, codes: &[String]) -> Result<SharedBalances> {
    let accounts: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.currency, a.balance - coalesce((SELECT sum(l.remaining) FROM lots l WHERE l.member_id = a.member_id \
                AND l.currency = a.currency AND l.remaining > 0 AND l.expires_at <= now()), 0)::bigint, \
                a.locked, a.lifetime_earned \
         FROM accounts a WHERE a.member_id = $1 AND a.currency = ANY($2)",
    )
    .bind(identity)
    .bind(codes)
    .fetch_all(&mut *conn)
    .await?;
    let lots: Vec<OpenLot> = sqlx::query_as(
        "SELECT id, currency, amount, remaining, earned_at, expires_at FROM lots \
         WHERE member_id = $1 AND currency = ANY($2) AND remaining > 0 AND (expires_at IS NULL OR expires_at > now()) \
         ORDER BY expires_at ASC NULLS LAST, id LIMIT 200",
    )
    .bind(identity)
    .bind(codes)
    .fetch_all(&mut *conn)
    .await?;
    Ok((accounts, lots))
}

/// A member's entries, newest first (L11). Filtered to the alliance's shared currency,
/// they are read from the alliance ledger: the member's shared entries in every mall of
/// the alliance. Otherwise the mall's own.
pub async fn entries(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    f: &EntryFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>> {
    let shared = match (&f.currency, tenant.alliance_id) {
        (Some(code), Some(alliance_id)) if is_shared(conn, code).await? => Some(alliance_id),
        _ => None,
    };
    let Some(alliance_id) = shared else {
        return history::entries(conn, member_id, f, before_id, limit).await;
    };
    let identity: Option<Option<IdentityId>> =
        sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(&mut *conn)
            .await?;
    let identity = match identity {
        None => return Err(Error::not_found("member_not_found", "no such member")),
        Some(None) => return Ok(Vec::new()),
        Some(Some(id)) => id,
    };
    enter_schema(conn, &super::schema_name(alliance_id)).await?;
    let read = history::entries(conn, identity.get(), f, before_id, limit).await;
    let mut entries = switch_back(conn, &tenant.schema_name, read).await?;
    for e in &mut entries {
        e.member_id = member_id;
    }
    Ok(entries)
}

/// Gives back `amount` of a debit in the alliance ledger (an order paid in shared
/// points), to the lots it drew from, like `post::return_to_lots`.
pub async fn return_to_lots(
    conn: &mut PgConnection,
    member_id: i64,
    alliance_entry_id: EntryId,
    amount: i64,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<()> {
    let book = for_order(conn, member_id).await?;
    book.enter(conn).await?;
    let done = post::return_to_lots(conn, alliance_entry_id, amount, Reason::Refund, &book.source(source), now).await;
    // A debit of an identity merged since by a link: what came back moves on to the
    // identity it was merged into.
    let done = match done {
        Ok((Some(entry), _)) => crate::ledger::merged::pass_on_merged(conn, entry.member_id, now).await,
        Ok((None, _)) => Ok(()),
        Err(e) => Err(e),
    };
    book.leave(conn, done).await
}
