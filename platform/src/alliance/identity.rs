//! A merchant's member and the alliance identity behind it (SPEC A2: one identity across
//! the alliance's malls).
//!
//! An identity is made on first need from the member's *proven* phone or e-mail (a code
//! sent to it, or vouched for by the merchant's systems); a member with nothing proven
//! gets no identity and no shared points until they prove one. An identity is never
//! matched by phone alone: a member reaches another mall of the alliance through the
//! hand-off (`member_in`), which takes a signed-in member of one mall to the same
//! identity's member in another. There, an account holding the same identifier
//! unproven gives it up; one holding it proven is the same person and is linked.

use sqlx::PgConnection;

use crate::auth::secrets;
use crate::db::{Db, enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{AllianceId, IdentityId, MemberId};
use crate::members::{Identifier, on_phone_or_email_taken};

/// The alliance identity of `member_id`, a member of `tenant`, whose schema is selected
/// on `conn` (and stays selected). Made on first need.
pub async fn of_member(conn: &mut PgConnection, tenant: &Tenant, member_id: MemberId) -> Result<IdentityId> {
    let alliance_id = alliance_of(tenant)?;
    if let Some(id) = linked_identity(conn, member_id).await? {
        return Ok(id);
    }
    // The member row's lock makes two first uses agree on one identity. It is taken
    // FOR UPDATE at once: a KEY SHARE taken first and raised later deadlocks two first
    // uses of one member.
    let (linked, phone, email, nickname): (Option<IdentityId>, Option<String>, Option<String>, String) =
        sqlx::query_as(
            "SELECT alliance_member_id, CASE WHEN phone_proven_at IS NOT NULL THEN phone END, \
                CASE WHEN email_proven_at IS NOT NULL THEN email END, nickname FROM members WHERE id = $1 FOR UPDATE",
        )
        .bind(member_id)
        .fetch_one(&mut *conn)
        .await?;
    if let Some(id) = linked {
        return Ok(id);
    }
    if phone.is_none() && email.is_none() {
        return Err(unproven());
    }
    enter_schema(conn, &super::schema_name(alliance_id)).await?;
    let made = find_or_make(conn, phone.as_deref(), email.as_deref(), &nickname).await;
    let id = switch_back(conn, &tenant.schema_name, made).await?;
    sqlx::query("UPDATE members SET alliance_member_id = $2, updated_at = now() WHERE id = $1")
        .bind(member_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// The identity `member_id` is already linked to, read under KEY SHARE: a link (which
/// locks the row FOR UPDATE while it re-points the account) either waits for this
/// write, or this read waits for the link and sees its result — never a write to an
/// identity the link has just merged away. `None` for a member without one yet; the
/// unlocked first look keeps such a member's row free for the FOR UPDATE that follows.
async fn linked_identity(conn: &mut PgConnection, member_id: MemberId) -> Result<Option<IdentityId>> {
    let first: Option<Option<IdentityId>> = sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?;
    match first {
        None => Err(Error::not_found("member_not_found", "no such member")),
        Some(None) => Ok(None),
        Some(Some(_)) => Ok(sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1 FOR KEY SHARE")
            .bind(member_id)
            .fetch_one(&mut *conn)
            .await?),
    }
}

/// In the alliance schema: the identity holding this proven phone or e-mail (a member of
/// another mall who proved the same identifier: the same person), or a new one.
async fn find_or_make(
    conn: &mut PgConnection,
    phone: Option<&str>,
    email: Option<&str>,
    nickname: &str,
) -> Result<IdentityId> {
    // An identity merged by a link stands for the one it was merged into.
    let found: Option<IdentityId> = sqlx::query_scalar(
        "SELECT coalesce(merged_into, id) FROM members WHERE (phone = $1 AND phone_proven_at IS NOT NULL) \
            OR (email = $2 AND email_proven_at IS NOT NULL) ORDER BY id LIMIT 1",
    )
    .bind(phone)
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = found {
        return Ok(id);
    }
    sqlx::query_scalar(
        "INSERT INTO members (phone, email, nickname, invite_code, phone_proven_at, email_proven_at) \
         VALUES ($1, $2, $3, $4, CASE WHEN $1::text IS NOT NULL THEN now() END, \
                 CASE WHEN $2::text IS NOT NULL THEN now() END) RETURNING id",
    )
    .bind(phone)
    .bind(email)
    .bind(nickname)
    .bind(secrets::random_hex(8).to_uppercase())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        on_phone_or_email_taken(
            e,
            Error::conflict(
                "alliance_identity_taken",
                "another mall of the alliance already holds the alliance account of this phone number or e-mail; \
                 open this mall from that one (alliance hand-off) to share its points",
            ),
        )
    })
}

/// The member of `to` with the same identity as member `from_member` of `from`: found,
/// or made with the identity's phone or e-mail (no password: it is reached by hand-off
/// or a one-time code). Both malls must be in the same alliance, and neither account
/// disabled.
pub async fn member_in(db: &Db, from: &Tenant, from_member: MemberId, to: &Tenant) -> Result<MemberId> {
    let alliance_id = alliance_of(from)?;
    if to.alliance_id != Some(alliance_id) {
        return Err(Error::forbidden("not_in_alliance", "these two malls are not in the same alliance"));
    }
    let identity = identity_of_active(db, from, from_member).await?;
    if from.id == to.id {
        return Ok(from_member);
    }
    let mut tx = db.tenant_tx(&to.cluster, &to.schema_name).await?;
    let found: Option<(MemberId, String)> =
        sqlx::query_as("SELECT id, status FROM members WHERE alliance_member_id = $1")
            .bind(identity)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((id, status)) = found {
        active(Some(status))?;
        return Ok(id);
    }
    enter_schema(&mut tx, &super::schema_name(alliance_id)).await?;
    let read: Result<(Option<String>, Option<String>, String)> =
        sqlx::query_as("SELECT phone, email, nickname FROM members WHERE id = $1")
            .bind(identity)
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::from);
    let (phone, email, nickname) = switch_back(&mut tx, &to.schema_name, read).await?;
    if let Some(id) = link_proven_holder(&mut tx, from, to, identity, phone.as_deref(), email.as_deref()).await? {
        tx.commit().await?;
        return Ok(id);
    }
    let id = open_account(&mut tx, from, to, identity, (phone, email, nickname)).await?;
    tx.commit().await?;
    Ok(id)
}

/// The identity of an active member `m` of `from` (made on first need), in its own
/// transaction.
async fn identity_of_active(db: &Db, from: &Tenant, m: MemberId) -> Result<IdentityId> {
    let mut tx = db.tenant_tx(&from.cluster, &from.schema_name).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM members WHERE id = $1").bind(m).fetch_optional(&mut *tx).await?;
    active(status)?;
    let identity = of_member(&mut tx, from, m).await?;
    tx.commit().await?;
    Ok(identity)
}

/// In `to` (selected on `tx`): a new account for `identity`, with its proven phone or
/// e-mail and nickname, announced as registered; the account a concurrent hand-off of
/// the same identity made first, if one did.
async fn open_account(
    tx: &mut PgConnection,
    from: &Tenant,
    to: &Tenant,
    identity: IdentityId,
    (phone, email, nickname): (Option<String>, Option<String>, String),
) -> Result<MemberId> {
    let made: Option<MemberId> = sqlx::query_scalar(
        "INSERT INTO members (phone, email, nickname, invite_code, alliance_member_id, level_id, \
             phone_proven_at, email_proven_at) \
         VALUES ($1, $2, $3, $4, $5, (SELECT id FROM levels WHERE NOT retired AND threshold = 0), \
             CASE WHEN $1::text IS NOT NULL THEN now() END, CASE WHEN $2::text IS NOT NULL THEN now() END) \
         ON CONFLICT (alliance_member_id) WHERE alliance_member_id IS NOT NULL DO NOTHING RETURNING id",
    )
    .bind(&phone)
    .bind(&email)
    .bind(&nickname)
    .bind(secrets::random_hex(5).to_uppercase())
    .bind(identity)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| {
        on_phone_or_email_taken(
            e,
            Error::conflict(
                "account_exists_unlinked",
                format!(
                    "mall {:?} already has an account with this phone number or e-mail that is not linked to your \
                     alliance account; link it: {}",
                    to.slug,
                    link_route(from)
                ),
            ),
        )
    })?;
    let id = match made {
        Some(id) => {
            crate::members::announce_registered(&mut *tx, id.get(), None, "alliance").await?;
            id
        }
        // A concurrent hand-off of the same identity made it first.
        None => {
            sqlx::query_scalar("SELECT id FROM members WHERE alliance_member_id = $1")
                .bind(identity)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    Ok(id)
}

/// In the mall being entered (selected on `conn`): an account holding the identity's
/// phone or e-mail unproven gives it up (the identity's is proven); an account holding
/// it proven and not linked yet is the same person, proven twice, and is linked.
async fn link_proven_holder(
    conn: &mut PgConnection,
    from: &Tenant,
    to: &Tenant,
    identity: IdentityId,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<Option<MemberId>> {
    for ident in
        [phone.map(|p| Identifier::Phone(p.into())), email.map(|e| Identifier::Email(e.into()))].into_iter().flatten()
    {
        crate::members::release_unproven(conn, &ident).await?;
    }
    let holder: Option<(MemberId, String, Option<IdentityId>)> = sqlx::query_as(
        "SELECT id, status, alliance_member_id FROM members \
         WHERE (phone = $1 AND phone_proven_at IS NOT NULL) OR (email = $2 AND email_proven_at IS NOT NULL) \
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(phone)
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, status, linked)) = holder else { return Ok(None) };
    active(Some(status))?;
    match linked {
        Some(other) if other != identity => Err(Error::conflict(
            "account_linked_elsewhere",
            format!(
                "mall {:?} has an account with this phone number or e-mail on another alliance account; if it is \
                 yours, link it: {}",
                to.slug,
                link_route(from)
            ),
        )),
        Some(_) => Ok(Some(id)),
        None => {
            sqlx::query("UPDATE members SET alliance_member_id = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(identity)
                .execute(&mut *conn)
                .await?;
            Ok(Some(id))
        }
    }
}

/// How a member signed in at `from` links an account of another mall (`alliance::link`).
fn link_route(from: &Tenant) -> String {
    format!(
        "signed in at mall {:?}, POST /v1/tenants/{}/me/alliance-links/codes (the other mall and the account's phone \
         or e-mail) then POST /v1/tenants/{}/me/alliance-links with the code sent to it, or with that account's \
         password",
        from.slug, from.slug, from.slug
    )
}

fn unproven() -> Error {
    Error::conflict(
        "identifier_unproven",
        "shared alliance points need a proven phone number or e-mail: verify it first \
         (POST /v1/tenants/{tenant}/me/verification-codes, then /me/verification)",
    )
}

fn active(status: Option<String>) -> Result<()> {
    match status.as_deref() {
        None => Err(Error::not_found("member_not_found", "no such member")),
        Some("active") => Ok(()),
        Some(_) => Err(Error::forbidden("account_disabled", "this account is disabled")),
    }
}

fn alliance_of(tenant: &Tenant) -> Result<AllianceId> {
    tenant.alliance_id.ok_or_else(|| Error::forbidden("not_in_alliance", "this mall is not in an alliance"))
}
