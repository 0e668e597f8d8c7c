//! Identities merged by a link (`alliance::link`, issue 12 A2), in the alliance schema
//! selected on the connection: moving everything one holds to the one it was merged
//! into — transfer entries whose lots keep each lot's expiry and issuing mall — and
//! passing on what a refund gives back to a merged identity later (an order's or a
//! checkout hold's), so nothing stays where the member can no longer see it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::post::{self, LotPart};
use super::{Reason, Source, SourceKind, batch};
use crate::error::{Error, Result};
use crate::ids::{IdentityId, LotId};

/// Lots moved per debit when a merged identity's balance moves (below the ledger's
/// per-debit bound).
const LOTS_PER_MOVE: i64 = 100;

/// Moves every point identity `from` holds to `to`, in the alliance schema selected on
/// `conn`: transfer entries whose lots keep each lot's expiry and issuing mall. Refused
/// when `from` has locked points. Returns the points moved.
pub async fn move_all(
    conn: &mut PgConnection,
    from: IdentityId,
    to: IdentityId,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let accounts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT currency, locked FROM accounts WHERE member_id = $1 AND balance > 0 ORDER BY currency FOR UPDATE",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    if accounts.iter().any(|(_, locked)| *locked > 0) {
        return Err(Error::conflict(
            "link_points_locked",
            "the account to link has locked shared points; link after they are released",
        ));
    }
    let mut moved = 0;
    for (currency, _) in accounts {
        moved += move_currency(conn, from, to, &currency, actor, now).await?;
    }
    Ok(moved)
}

/// A lot being moved: id, what is left, its expiry, the mall that issued it.
type OpenLot = (LotId, i64, Option<DateTime<Utc>>, Option<i64>);

async fn move_currency(
    conn: &mut PgConnection,
    from: IdentityId,
    to: IdentityId,
    currency: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let (from, to) = (from.get(), to.get());
    post::expire_due_lots(conn, from, currency, now).await?;
    post::ensure_account(conn, to, currency).await?;
    let out = Source::new(SourceKind::Transfer, actor)
        .reference(format!("link:to:{to}"))
        .memo("accounts linked: moved to the kept alliance account");
    let mut moved = 0;
    loop {
        // The lots a debit of their sum draws on, in its order: soonest-expiring first.
        let lots: Vec<OpenLot> = sqlx::query_as(
            "SELECT l.id, l.remaining, l.expires_at, coalesce(l.issuer_mall_id, i.mall_id) FROM lots l \
             JOIN entries i ON i.id = l.entry_id WHERE l.member_id = $1 AND l.currency = $2 AND l.remaining > 0 \
             ORDER BY l.expires_at ASC NULLS LAST, l.id ASC LIMIT $3",
        )
        .bind(from)
        .bind(currency)
        .bind(LOTS_PER_MOVE)
        .fetch_all(&mut *conn)
        .await?;
        if lots.is_empty() {
            break;
        }
        let sum: i64 = lots.iter().map(|l| l.1).sum();
        let (entry, allocations) = post::debit(conn, from, currency, sum, Reason::TransferOut, &out, now).await?;
        let of = |lot: LotId| lots.iter().find(|l| l.0 == lot).copied();
        let parts: Vec<LotPart> = allocations
            .iter()
            .map(|a| LotPart { amount: a.amount, expires_at: of(a.lot_id).and_then(|l| l.2) })
            .collect();
        let issuers: Vec<Option<i64>> = allocations.iter().map(|a| of(a.lot_id).and_then(|l| l.3)).collect();
        let inn = Source::new(SourceKind::Transfer, actor)
            .reference(format!("link:from:{from};entry:{}", entry.id))
            .memo("accounts linked: moved from the merged alliance account");
        let to_entry = batch::credit(conn, to, currency, &parts, Reason::TransferIn, &inn, now).await?;
        // The lots are made in the order of the parts.
        sqlx::query(
            "UPDATE lots l SET issuer_mall_id = t.issuer \
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM lots WHERE entry_id = $1) o \
             JOIN unnest($2::bigint[]) WITH ORDINALITY AS t(issuer, n) ON t.n = o.n \
             WHERE l.id = o.id AND t.issuer IS NOT NULL",
        )
        .bind(to_entry.id)
        .bind(&issuers)
        .execute(&mut *conn)
        .await?;
        moved += sum;
    }
    Ok(moved)
}

/// After a refund gave points back to identity `identity` in the alliance schema
/// selected on `conn`: when that identity was merged by a link, what it holds moves on
/// to the identity it was merged into.
pub async fn pass_on_merged(conn: &mut PgConnection, identity: i64, now: DateTime<Utc>) -> Result<()> {
    let into: Option<Option<IdentityId>> = sqlx::query_scalar("SELECT merged_into FROM members WHERE id = $1")
        .bind(identity)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(Some(into)) = into else { return Ok(()) };
    let locked: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE member_id = $1 AND locked > 0)")
        .bind(identity)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        move_all(conn, IdentityId::new(identity), into, "system:link", now).await?;
    }
    Ok(())
}
