//! How many members each mall of an alliance shares with it (issue 12): members linked
//! to an alliance identity, and those of them holding shared points; counts only, so an
//! alliance admin never sees a mall's members' personal data.

use serde::Serialize;

use crate::db::{Db, enter_schema};
use crate::directory::{self, Alliance};
use crate::error::Result;

/// One mall's counts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MallMemberCounts {
    pub slug: String,
    pub name: String,
    /// The mall's members linked to an alliance identity.
    pub with_identity: i64,
    /// Of those, the members whose shared balance is above zero.
    pub with_shared_balance: i64,
}

/// Every mall's counts and the alliance's totals (identities, counted once however many
/// malls they are members of).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AllianceMemberCounts {
    pub malls: Vec<MallMemberCounts>,
    /// Alliance identities.
    pub identities: i64,
    /// Alliance identities whose shared balance is above zero.
    pub identities_with_shared_balance: i64,
}

/// The counts of `a`'s malls, read in one transaction on the alliance's cluster.
pub async fn of_alliance(db: &Db, a: &Alliance) -> Result<AllianceMemberCounts> {
    let mut malls: Vec<_> =
        directory::list(db.control()).await?.into_iter().filter(|t| t.alliance_id == Some(a.id)).collect();
    malls.sort_by(|x, y| x.slug.cmp(&y.slug));
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    enter_schema(&mut tx, &a.schema_name).await?;
    let (identities, identities_with_shared_balance): (i64, i64) = sqlx::query_as(
        // An identity merged into another by a link is that one (it holds nothing).
        "SELECT (SELECT count(*) FROM members WHERE merged_into IS NULL), \
                (SELECT count(*) FROM accounts WHERE currency = $1 AND balance > 0)",
    )
    .bind(&a.currency_code)
    .fetch_one(&mut *tx)
    .await?;
    let mut out = Vec::with_capacity(malls.len());
    for t in malls {
        enter_schema(&mut tx, &t.schema_name).await?;
        let linked: Vec<i64> =
            sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE alliance_member_id IS NOT NULL")
                .fetch_all(&mut *tx)
                .await?;
        enter_schema(&mut tx, &a.schema_name).await?;
        let holding: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM accounts WHERE currency = $1 AND balance > 0 AND member_id = ANY($2)",
        )
        .bind(&a.currency_code)
        .bind(&linked)
        .fetch_one(&mut *tx)
        .await?;
        out.push(MallMemberCounts {
            slug: t.slug,
            name: t.name,
            with_identity: linked.len() as i64,
            with_shared_balance: holding,
        });
    }
    tx.commit().await?;
    Ok(AllianceMemberCounts { malls: out, identities, identities_with_shared_balance })
}
