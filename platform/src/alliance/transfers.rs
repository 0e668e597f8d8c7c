//! Transfers of the alliance's shared points (issue 12, point 4): between identities in
//! the alliance's ledger, so the receiver may be a member of any mall of the alliance.
//! The ledger work is `ledger::transfers`; this finds who sends and who receives.

use sqlx::PgConnection;

use super::identity;
use crate::db::{enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{AllianceId, MemberId};
use crate::ledger::keeper::{self, Keeper};
use crate::ledger::transfers::Parties;
use crate::members::Identifier;

/// The parties of a transfer of `currency` from `from` (a member of `tenant`) to the
/// member named by `to`: `to_local` when they are a member of this mall. For the shared
/// currency the receiver may instead be any identity of the alliance with that phone
/// number or e-mail proven.
pub async fn parties(
    conn: &mut PgConnection,
    tenant: &Tenant,
    from: i64,
    to_local: Option<i64>,
    to: Option<&Identifier>,
    currency: &str,
) -> Result<Parties> {
    let nobody =
        |whose| Error::invalid_field("to", format!("no member of this {whose} has this phone number or e-mail"));
    if !keeper::is_shared(conn, tenant, currency).await? {
        return Ok(Parties::in_mall(from, to_local.ok_or_else(|| nobody("mall"))?));
    }
    let sender = Keeper::existing(conn, tenant, from, currency).await?;
    let receiver = match (to_local, to) {
        (Some(local), _) => identity::of_member(conn, tenant, MemberId::new(local)).await?.get(),
        (None, Some(who)) => {
            let (phone, email) = match who {
                Identifier::Phone(p) => (Some(p.as_str()), None),
                Identifier::Email(e) => (None, Some(e.as_str())),
            };
            let schema = keeper::alliance_schema(tenant.alliance_id.unwrap_or(AllianceId::new(0)));
            enter_schema(conn, &schema).await?;
            let found: Result<Option<i64>> = sqlx::query_scalar(
                "SELECT coalesce(merged_into, id) FROM members WHERE (phone = $1 AND phone_proven_at IS NOT NULL) \
                    OR (email = $2 AND email_proven_at IS NOT NULL) ORDER BY id LIMIT 1",
            )
            .bind(phone)
            .bind(email)
            .fetch_optional(&mut *conn)
            .await
            .map_err(Into::into);
            switch_back(conn, &tenant.schema_name, found).await?.ok_or_else(|| nobody("alliance"))?
        }
        (None, None) => return Err(nobody("alliance")),
    };
    Ok(Parties { keeper: sender, from, to: receiver, to_local })
}
