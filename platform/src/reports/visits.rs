//! Page views and searches of the members' mall (SPEC B1 UV/PV). Browsing is served from
//! a cache and must stay as cheap, so a view is only counted in memory here; every
//! second (`bounds::VISITS_FLUSH_SECS`) the counts of each mall are written in one
//! transaction: views per product and quarter hour, searches per quarter hour, and the
//! signed-in members who visited (unique visitors and active members per local day).
//! Counts not yet written are lost if the instance dies (at most about a second's).
//!
//! For the analytics (SPEC B7) the same write adds each search's normalised term (and
//! whether its first page found nothing), the signed-in viewers of each product per
//! local day, and the members' browse records (`analytics::searches`,
//! `analytics::browsing`). Every view or search adds at most one entry to each map, so
//! `bounds::PENDING_VISITS_MAX` bounds them all (terms are at most 50 characters).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};

use super::bounds;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::Result;
use crate::ids::TenantId;

#[derive(Default)]
struct Pending {
    tenant: Option<Arc<Tenant>>,
    views: HashMap<(DateTime<Utc>, i64), i64>,
    searches: HashMap<DateTime<Utc>, i64>,
    visitors: HashSet<(NaiveDate, i64)>,
    /// (local day, term) → (searches, first pages without result).
    terms: HashMap<(NaiveDate, String), (i64, i64)>,
    /// (local day, product, member) who viewed it signed in.
    viewers: HashSet<(NaiveDate, i64, i64)>,
    /// (member, product) → (last view, views).
    browsed: HashMap<(i64, i64), (DateTime<Utc>, i64)>,
}

/// The views counted since the last write, per mall. Cheap to clone.
#[derive(Clone, Default)]
pub struct Visits {
    pending: Arc<Mutex<(usize, HashMap<TenantId, Pending>)>>,
}

/// What was seen.
pub enum Visit<'a> {
    Product(i64),
    /// A catalog search with keyword `q`; `empty` when it asked for the first page and
    /// found no product.
    Search {
        q: &'a str,
        empty: bool,
    },
}

/// The quarter hour `at` falls in (as `report_bucket` in SQL).
fn bucket(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(15)).unwrap_or(at)
}

impl Visits {
    /// Counts one view by `member` (a signed-in member) or an anonymous visitor.
    pub fn record(&self, tenant: &Arc<Tenant>, what: Visit<'_>, member: Option<i64>, at: DateTime<Utc>) {
        let term = match &what {
            Visit::Search { q, .. } => crate::analytics::searches::normalise(q),
            Visit::Product(_) => None,
        };
        let day = crate::localtime::day(tenant.settings.tz(), at);
        let Ok(mut guard) = self.pending.lock() else { return };
        let (count, by_tenant) = &mut *guard;
        if *count >= bounds::PENDING_VISITS_MAX {
            return;
        }
        *count += 1;
        let p = by_tenant.entry(tenant.id).or_default();
        p.tenant.get_or_insert_with(|| tenant.clone());
        match what {
            Visit::Product(id) => {
                *p.views.entry((bucket(at), id)).or_default() += 1;
                if let Some(m) = member {
                    p.viewers.insert((day, id, m));
                    let seen = p.browsed.entry((m, id)).or_insert((at, 0));
                    *seen = (seen.0.max(at), seen.1 + 1);
                }
            }
            Visit::Search { empty, .. } => {
                *p.searches.entry(bucket(at)).or_default() += 1;
                if let Some(term) = term {
                    let n = p.terms.entry((day, term)).or_default();
                    *n = (n.0 + 1, n.1 + i64::from(empty));
                }
            }
        }
        if let Some(m) = member {
            p.visitors.insert((day, m));
        }
    }

    /// Writes what was counted, each mall in its own transaction (a mall that fails
    /// loses its counts, logged; the others are written).
    pub async fn flush(&self, db: &Db) {
        let taken = match self.pending.lock() {
            Ok(mut g) => {
                g.0 = 0;
                std::mem::take(&mut g.1)
            }
            Err(_) => return,
        };
        for (_, p) in taken {
            let Some(tenant) = p.tenant.clone() else { continue };
            if let Err(e) = write(db, &tenant, &p).await {
                tracing::warn!(tenant = %tenant.slug, error = %e, "page views were not written");
            }
        }
    }

    /// Writes every second, for as long as the server runs.
    pub async fn run_forever(self, db: Db) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(bounds::VISITS_FLUSH_SECS));
        loop {
            tick.tick().await;
            self.flush(&db).await;
        }
    }
}

const VIEWS: &str = "INSERT INTO product_views (bucket, product_id, views) \
     SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[])";

const TRAFFIC: &str = "INSERT INTO traffic_rollup (bucket, views, searches) \
     SELECT b, sum(v), sum(s) FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[]) AS t(b, v, s) GROUP BY b";

const VISITORS: &str = "WITH seen AS (SELECT * FROM unnest($1::date[], $2::bigint[]) AS t(day, member_id)), \
     v AS (INSERT INTO visitor_days (day, member_id) SELECT day, member_id FROM seen ORDER BY 1, 2 \
           ON CONFLICT DO NOTHING RETURNING day), \
     a AS (INSERT INTO active_days (day, member_id) SELECT day, member_id FROM seen ORDER BY 1, 2 \
           ON CONFLICT DO NOTHING RETURNING day), \
     counts AS (SELECT day, 1 AS visitors, 0 AS active FROM v UNION ALL SELECT day, 0, 1 FROM a) \
     INSERT INTO daily_counts (day, active, visitors) SELECT day, sum(active), sum(visitors) FROM counts GROUP BY day";

async fn write(db: &Db, tenant: &Tenant, p: &Pending) -> Result<()> {
    let (mut vb, mut vp, mut vn) = (vec![], vec![], vec![]);
    for ((b, product), n) in &p.views {
        vb.push(*b);
        vp.push(*product);
        vn.push(*n);
    }
    let (mut tb, mut tv, mut ts) = (vec![], vec![], vec![]);
    for ((b, _), n) in &p.views {
        tb.push(*b);
        tv.push(*n);
        ts.push(0i64);
    }
    for (b, n) in &p.searches {
        tb.push(*b);
        tv.push(0);
        ts.push(*n);
    }
    let (days, members): (Vec<NaiveDate>, Vec<i64>) = p.visitors.iter().copied().unzip();
    let terms: Vec<crate::analytics::searches::Counted> = p.terms.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let viewed = crate::analytics::browsing::Viewed {
        viewers: p.viewers.iter().copied().collect(),
        records: p.browsed.iter().map(|(k, v)| (*k, *v)).collect(),
    };
    db.write(tenant, &crate::audit::Actor::system("visits"), async |tx| {
        if !vb.is_empty() {
            sqlx::query(VIEWS).bind(&vb).bind(&vp).bind(&vn).execute(&mut **tx).await?;
        }
        if !tb.is_empty() {
            sqlx::query(TRAFFIC).bind(&tb).bind(&tv).bind(&ts).execute(&mut **tx).await?;
        }
        if !days.is_empty() {
            sqlx::query(VISITORS).bind(&days).bind(&members).execute(&mut **tx).await?;
        }
        crate::analytics::searches::write(tx, &terms).await?;
        crate::analytics::browsing::write(tx, &viewed).await?;
        Ok(())
    })
    .await
}
