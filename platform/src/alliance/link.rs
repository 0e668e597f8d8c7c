//! Linking accounts (issue 12, A2): a member with accounts in two malls of an alliance
//! makes them one alliance identity by proving both: signed in at one, and a `link`
//! code sent to the other account's proven phone or e-mail, or that account's password
//! (the proofs are checked by the caller; this does the linking).
//!
//! - Neither account has an identity yet: the one signed in gets one (from its proven
//!   phone or e-mail, else from the other's), and the other is linked to it.
//! - One has an identity: the other is linked to it.
//! - Both have one: the other's identity is merged into the signed-in one's. Every mall's
//!   account of the merged identity is linked to the kept one; its balance moves to the
//!   kept identity by transfer entries whose lots keep each lot's expiry and issuing mall
//!   (settlement charges redemptions to the issuer as before; transfers are neither
//!   issued nor redeemed points). The merged identity's own entries and lots stay, as
//!   history; `members.merged_into` names where it went, so a later look-up by its phone
//!   or e-mail finds the kept one, and a refund of an order it paid is passed on.
//!
//! One transaction, under a per-alliance advisory lock (links of one alliance run one at
//! a time) and the row locks of both accounts and both identities, so two links racing
//! cannot merge twice. Refused: a merge that would give one mall two accounts of one
//! identity, a merged identity with locked points or open holds (they settle first).
//! Recorded in both malls' audit logs, the member as actor.

use chrono::Utc;
use serde::Serialize;
use sqlx::PgConnection;

use super::identity;
use crate::audit::{self, Actor};
use crate::db::{Db, enter_schema, select_schema};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{AllianceId, IdentityId, MemberId};
use crate::ledger::merged::move_all;

/// Advisory-lock namespace of links (one alliance's links run one at a time).
const LOCK_NS_LINK: i32 = 0x6c69_6e6b;

/// What a link did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Link {
    /// The mall of the account that was linked.
    pub mall: String,
    /// That account's member id in its mall.
    pub member_id: i64,
    /// The alliance identity both accounts now share.
    pub identity_id: i64,
    /// The identity merged into it (both accounts had one), if any.
    pub merged_identity_id: Option<i64>,
    /// Shared points moved from the merged identity.
    pub moved_points: i64,
    /// The shared balance now (one balance in every mall of the alliance).
    pub shared_balance: i64,
}

/// Links member `mb` of mall `b` to member `ma` of mall `a` (signed in there), both
/// proven by the caller.
pub async fn link(db: &Db, a: &Tenant, ma: MemberId, b: &Tenant, mb: MemberId) -> Result<Link> {
    let alliance_id = check_malls(a, b)?;
    let mut tx = db.tenant_tx(&a.cluster, &a.schema_name).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_NS_LINK)
        .bind(i32::try_from(alliance_id.get() % i64::from(i32::MAX)).unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    let (ia, ib) = lock_both(&mut tx, (a, ma), (b, mb)).await?;
    let (kept, merged) = join(&mut tx, alliance_id, (a, ma, ia), (b, mb, ib)).await?;
    enter_schema(&mut tx, &super::schema_name(alliance_id)).await?;
    let moved = match merged {
        Some(y) => merge(&mut tx, kept, y, &format!("tenant:{}/member:{}", a.id, ma)).await?,
        None => 0,
    };
    let shared_balance = shared_balance(&mut tx, kept, alliance_id).await?;
    let done = Link {
        mall: b.slug.clone(),
        member_id: mb.get(),
        identity_id: kept.get(),
        merged_identity_id: merged.map(IdentityId::get),
        moved_points: moved,
        shared_balance,
    };
    record(&mut tx, (a, ma), (b, mb), &done).await?;
    tx.commit().await?;
    Ok(done)
}

/// Locks both accounts, in mall order: their identities, (a's, b's).
async fn lock_both(
    conn: &mut PgConnection,
    (a, ma): (&Tenant, MemberId),
    (b, mb): (&Tenant, MemberId),
) -> Result<(Option<IdentityId>, Option<IdentityId>)> {
    if a.id < b.id {
        let one = lock_account(conn, a, ma).await?;
        Ok((one, lock_account(conn, b, mb).await?))
    } else {
        let two = lock_account(conn, b, mb).await?;
        Ok((lock_account(conn, a, ma).await?, two))
    }
}

/// Joins the two accounts: the identity they share now, and the one merged into it
/// (both had one), whose accounts in every mall now point to the kept one.
async fn join(
    conn: &mut PgConnection,
    alliance_id: AllianceId,
    (a, ma, ia): (&Tenant, MemberId, Option<IdentityId>),
    (b, mb, ib): (&Tenant, MemberId, Option<IdentityId>),
) -> Result<(IdentityId, Option<IdentityId>)> {
    match (ia, ib) {
        (Some(x), Some(y)) if x == y => {
            Err(Error::conflict("already_linked", "these two accounts already share one alliance account"))
        }
        (Some(x), Some(y)) => {
            repoint(conn, alliance_id, x, y).await?;
            Ok((x, Some(y)))
        }
        (Some(x), None) => attach(conn, b, mb, x).await.map(|()| (x, None)),
        (None, Some(y)) => attach(conn, a, ma, y).await.map(|()| (y, None)),
        (None, None) => {
            select_schema(conn, &a.schema_name).await?;
            match identity::of_member(conn, a, ma).await {
                Ok(x) => attach(conn, b, mb, x).await.map(|()| (x, None)),
                Err(Error::Conflict { code: "identifier_unproven", .. }) => {
                    select_schema(conn, &b.schema_name).await?;
                    let x = identity::of_member(conn, b, mb).await?;
                    attach(conn, a, ma, x).await.map(|()| (x, None))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// In the alliance schema: merges identity `y` into `kept` (both locked; refused when
/// either was merged already), moving what `y` holds. Returns the points moved.
async fn merge(conn: &mut PgConnection, kept: IdentityId, y: IdentityId, actor: &str) -> Result<i64> {
    let ids = [kept.get().min(y.get()), kept.get().max(y.get())];
    let rows: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, merged_into FROM members WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
    if rows.iter().any(|(_, into)| into.is_some()) {
        return Err(Error::conflict("already_linked", "this alliance account was merged already"));
    }
    let moved = move_all(conn, y, kept, actor, Utc::now()).await?;
    sqlx::query("UPDATE members SET merged_into = $1, updated_at = now() WHERE id = $2 OR merged_into = $2")
        .bind(kept)
        .bind(y)
        .execute(&mut *conn)
        .await?;
    Ok(moved)
}

/// In the alliance schema: the identity's balance of the alliance's shared currency.
async fn shared_balance(conn: &mut PgConnection, identity: IdentityId, alliance_id: AllianceId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(a.balance), 0)::bigint FROM accounts a \
         JOIN control.alliances l ON l.currency_code = a.currency AND l.id = $2 WHERE a.member_id = $1",
    )
    .bind(identity)
    .bind(alliance_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// The link in both malls' audit logs, each member the actor of their own mall's entry.
async fn record(
    conn: &mut PgConnection,
    (a, ma): (&Tenant, MemberId),
    (b, mb): (&Tenant, MemberId),
    done: &Link,
) -> Result<()> {
    for ((t, m), (other, other_member)) in [((a, ma), (b, mb)), ((b, mb), (a, ma))] {
        let details = serde_json::json!({
            "linked_mall": other.slug, "linked_member_id": other_member.get(), "identity_id": done.identity_id,
            "merged_identity_id": done.merged_identity_id, "moved_points": done.moved_points,
        });
        let target = format!("member:{m}");
        audit::record(conn, &Actor::member(m.get()), Some(t.id), "member.alliance_link", &target, details).await?;
    }
    Ok(())
}

/// Both malls in one alliance, and two malls (the alliance of both).
pub fn check_malls(a: &Tenant, b: &Tenant) -> Result<AllianceId> {
    let alliance_id =
        a.alliance_id.ok_or_else(|| Error::forbidden("not_in_alliance", "this mall is not in an alliance"))?;
    if b.alliance_id != Some(alliance_id) {
        return Err(Error::forbidden(
            "not_in_alliance",
            format!("mall {:?} is not in the alliance of mall {:?}", b.slug, a.slug),
        ));
    }
    if a.id == b.id {
        return Err(Error::invalid_field("mall", "the account to link is in another mall of the alliance"));
    }
    if a.cluster != b.cluster {
        return Err(Error::Internal(anyhow::anyhow!("malls {} and {} of one alliance on two clusters", a.id, b.id)));
    }
    Ok(alliance_id)
}

/// Locks member `m` of `t` (selecting its schema): its identity; refused when it is
/// missing or disabled.
async fn lock_account(conn: &mut PgConnection, t: &Tenant, m: MemberId) -> Result<Option<IdentityId>> {
    select_schema(conn, &t.schema_name).await?;
    let row: Option<(String, Option<IdentityId>)> =
        sqlx::query_as("SELECT status, alliance_member_id FROM members WHERE id = $1 FOR UPDATE")
            .bind(m)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        None => Err(Error::not_found("member_not_found", "no such member")),
        Some((status, _)) if status != "active" => {
            Err(Error::forbidden("account_disabled", "this account is disabled"))
        }
        Some((_, identity)) => Ok(identity),
    }
}

/// Links member `m` of `t`, which has no identity, to `identity`.
async fn attach(conn: &mut PgConnection, t: &Tenant, m: MemberId, identity: IdentityId) -> Result<()> {
    select_schema(conn, &t.schema_name).await?;
    let other: Option<MemberId> = sqlx::query_scalar("SELECT id FROM members WHERE alliance_member_id = $1 FOR UPDATE")
        .bind(identity)
        .fetch_optional(&mut *conn)
        .await?;
    if other.is_some() {
        return Err(identity_has_account(t));
    }
    sqlx::query("UPDATE members SET alliance_member_id = $2, updated_at = now() WHERE id = $1")
        .bind(m)
        .bind(identity)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn identity_has_account(t: &Tenant) -> Error {
    Error::conflict(
        "identity_has_account_there",
        format!(
            "your alliance account already has another account at mall {:?} (opened by the alliance hand-off); \
             two accounts of one mall cannot be linked",
            t.slug
        ),
    )
}

/// Every mall's account of identity `y` is linked to `x` instead: the alliance's malls
/// and those that left it (their old orders still refund there).
async fn repoint(conn: &mut PgConnection, alliance_id: AllianceId, x: IdentityId, y: IdentityId) -> Result<()> {
    let malls: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT t.id, t.slug, t.schema_name FROM control.tenants t \
         WHERE (t.alliance_id = $1 OR EXISTS (SELECT 1 FROM control.alliance_departures d \
                                             WHERE d.alliance_id = $1 AND d.tenant_id = t.id)) \
           AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.schema_name) \
         ORDER BY t.id",
    )
    .bind(alliance_id)
    .fetch_all(&mut *conn)
    .await?;
    for (_, slug, schema) in malls {
        select_schema(conn, &schema).await?;
        let accounts: Vec<(MemberId, IdentityId)> = sqlx::query_as(
            "SELECT id, alliance_member_id FROM members WHERE alliance_member_id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind([x, y])
        .fetch_all(&mut *conn)
        .await?;
        let Some(&(member, _)) = accounts.iter().find(|(_, i)| *i == y) else { continue };
        if accounts.len() > 1 {
            return Err(Error::conflict(
                "identity_has_account_there",
                format!(
                    "both alliance accounts have an account at mall {slug:?}; two accounts of one mall cannot be \
                     linked"
                ),
            ));
        }
        let holds: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM holds WHERE member_id = $1 AND status = 'held' AND alliance_entry_id IS NOT NULL)",
        )
        .bind(member)
        .fetch_one(&mut *conn)
        .await?;
        if holds {
            return Err(Error::conflict(
                "link_holds_open",
                format!("the account at mall {slug:?} has shared points held for a checkout; link after it settles"),
            ));
        }
        sqlx::query("UPDATE members SET alliance_member_id = $1, updated_at = now() WHERE id = $2")
            .bind(x)
            .bind(member)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
