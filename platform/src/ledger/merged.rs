//! Identities merged by a link (`alliance::link`, issue 12 A2), in the alliance schema
//! selected on the connection: moving everything one holds to the one it was merged
//! into — transfer entries whose lots keep each lot's expiry and issuing mall — and
//! passing on what a refund gives back to a merged identity later (an order's or a
//! checkout hold's), so nothing stays where the member can no longer see it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Source, SourceKind, post, transfers};
use crate::error::{Error, Result};
use crate::ids::IdentityId;

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
        // What a debit of the next lots draws on, in its order: soonest-expiring first.
        let sum: Option<i64> = sqlx::query_scalar(
            "SELECT sum(remaining)::bigint FROM (SELECT remaining FROM lots \
             WHERE member_id = $1 AND currency = $2 AND remaining > 0 \
             ORDER BY expires_at ASC NULLS LAST, id ASC LIMIT $3) n",
        )
        .bind(from)
        .bind(currency)
        .bind(LOTS_PER_MOVE)
        .fetch_one(&mut *conn)
        .await?;
        let Some(sum) = sum else { break };
        let inn = Source::new(SourceKind::Transfer, actor)
            .reference(format!("link:from:{from};"))
            .memo("accounts linked: moved from the merged alliance account");
        transfers::move_lots(conn, from, to, currency, sum, &out, inn, now).await?;
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
