//! Settlement of an alliance's shared points between its malls (SPEC A4, issue 12).
//!
//! A period is a month or a day of the alliance's time zone. Its statement settles every
//! entry of the alliance ledger written before the period's end that no earlier statement
//! settled (and every refund portion likewise): closing freezes the figures (`figures`)
//! and records which entries it took (`settlement_marks`), so a statement is never
//! recomputed and an entry committed after its period closed goes to the next one.
//! Periods close in order. Before it closes, a period's statement is a preview: the same
//! computation in a transaction that is rolled back. Every figure drills down to its
//! entries (`drill`); a statement exports as CSV.

pub mod drill;
pub mod figures;
pub mod period;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use self::drill::{Drill, Figure, FigureEntry};
use self::figures::{LineRow, PairRow};
use self::period::Period;
use crate::audit::{self, Actor};
use crate::db::{Db, select_schema};
use crate::directory::{self, Alliance, Tenant};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::localtime;

/// Closes and previews of one alliance take turns.
const LOCK_NS_SETTLEMENT: i32 = 0x504d_0004;

/// One mall's figures in a statement (points, and fen at the clearing rate).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// The mall's slug; null for entries no mall wrote.
    pub mall: Option<String>,
    pub name: Option<String>,
    /// Shared points earned at the mall, added by its adjustments, and released from
    /// its lock grants (counted when released).
    pub issued: i64,
    /// Shared points its adjustments took away.
    pub revoked: i64,
    /// Shared points spent at the mall.
    pub redeemed: i64,
    /// Refunds of spends at the mall (portions whose lot had expired included).
    pub returned: i64,
    /// Points the mall issued that lapsed (and forfeited refund portions of them).
    pub expired: i64,
    /// What the other malls owe it for their points redeemed here.
    pub receivable_fen: i64,
    /// What it owes the other malls for its points redeemed there.
    pub payable_fen: i64,
    /// Receivable less payable; the lines' nets sum to zero.
    pub net_fen: i64,
}

/// Points issued by one mall and redeemed, net of returns, at another: the issuer owes
/// the redeemer their value.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pair {
    /// Null: points no mall issued.
    pub issuer: Option<String>,
    pub redeemer: String,
    pub points: i64,
    pub value_fen: i64,
}

/// A period's statement: frozen once closed, a preview before.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub period: String,
    pub time_zone: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// False: a preview of what closing now would freeze.
    pub closed: bool,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    /// The clearing value used: this many points are worth one yuan.
    pub points_per_yuan: i32,
    pub lines: Vec<Line>,
    pub pairs: Vec<Pair>,
}

/// A closed statement in the list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Closed {
    pub id: i64,
    pub period: String,
    pub time_zone: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub points_per_yuan: i32,
    pub closed_by: String,
    pub closed_at: DateTime<Utc>,
}

/// The alliance's settlement terms as the statements need them.
struct Terms {
    tz_name: String,
    points_per_yuan: i32,
}

/// The malls of `a` by id: its members, and the malls that left it (a statement names
/// them where they have figures, e.g. refunds of their old orders).
async fn malls(db: &Db, a: &Alliance) -> Result<HashMap<TenantId, Tenant>> {
    let mut malls: HashMap<TenantId, Tenant> = directory::list(db.control())
        .await?
        .into_iter()
        .filter(|t| t.alliance_id == Some(a.id))
        .map(|t| (t.id, t))
        .collect();
    for (t, _) in crate::alliance::membership::departed(db.control(), a.id).await? {
        malls.entry(t.id).or_insert(t);
    }
    Ok(malls)
}

async fn begin(db: &Db, a: &Alliance) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    select_schema(&mut tx, &a.schema_name).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_NS_SETTLEMENT)
        .bind(i32::try_from(a.id.get() % i64::from(i32::MAX)).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn terms(conn: &mut PgConnection) -> Result<Terms> {
    let row: Option<(String, i32)> =
        sqlx::query_as("SELECT time_zone, points_per_yuan FROM alliance_terms").fetch_optional(conn).await?;
    let (tz_name, points_per_yuan) = row.unwrap_or_else(|| (localtime::DEFAULT_TIME_ZONE.to_string(), 100));
    Ok(Terms { tz_name, points_per_yuan })
}

fn period_of(label: &str, t: &Terms) -> Result<Period> {
    let tz = localtime::parse(&t.tz_name).unwrap_or(chrono_tz::Asia::Shanghai);
    Period::parse(label, tz)
}

/// The closed statement of `period`, if any.
async fn closed(conn: &mut PgConnection, period: &str) -> Result<Option<Closed>> {
    Ok(sqlx::query_as(
        "SELECT id, period, time_zone, starts_at, ends_at, points_per_yuan, closed_by, closed_at \
         FROM settlement_statements WHERE period = $1",
    )
    .bind(period)
    .fetch_optional(conn)
    .await?)
}

/// Refuses a period that overlaps or precedes a closed one.
async fn check_order(conn: &mut PgConnection, p: &Period) -> Result<()> {
    let last: Option<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT period, ends_at FROM settlement_statements ORDER BY ends_at DESC LIMIT 1")
            .fetch_optional(conn)
            .await?;
    match last {
        Some((label, ends_at)) if ends_at > p.starts_at => Err(Error::conflict(
            "period_order",
            format!("{label} is closed already and ends after {} begins: periods close in order", p.label),
        )),
        _ => Ok(()),
    }
}

/// Records statement `p` as settling what is open before its end and computes its figures
/// (the caller commits or rolls back). Returns the statement's id.
async fn settle(
    conn: &mut PgConnection,
    p: &Period,
    t: &Terms,
    malls: &[TenantId],
    by: &str,
) -> Result<(i64, Vec<LineRow>, Vec<PairRow>)> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO settlement_statements (period, time_zone, starts_at, ends_at, points_per_yuan, closed_by) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&p.label)
    .bind(&t.tz_name)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .bind(t.points_per_yuan)
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO settlement_marks (entry_id, statement_id) SELECT e.id, $1 FROM entries e \
         WHERE e.created_at < $2 AND NOT EXISTS (SELECT 1 FROM settlement_marks m WHERE m.entry_id = e.id)",
    )
    .bind(id)
    .bind(p.ends_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE lot_returns SET statement_id = $1 WHERE statement_id IS NULL AND created_at < $2")
        .bind(id)
        .bind(p.ends_at)
        .execute(&mut *conn)
        .await?;
    let (lines, pairs) = figures::compute_and_store(conn, id, t.points_per_yuan, malls).await?;
    Ok((id, lines, pairs))
}

fn named(malls: &HashMap<TenantId, Tenant>, id: Option<TenantId>) -> (Option<String>, Option<String>) {
    match id.and_then(|id| malls.get(&id)) {
        Some(t) => (Some(t.slug.clone()), Some(t.name.clone())),
        None => (id.map(|id| format!("#{id}")), None),
    }
}

fn statement(
    p: &Period,
    t: &Terms,
    done: Option<&Closed>,
    malls: &HashMap<TenantId, Tenant>,
    lines: Vec<LineRow>,
    pairs: Vec<PairRow>,
) -> Statement {
    let lines = lines
        .into_iter()
        .map(|l| {
            let (mall, name) = named(malls, l.mall_id);
            Line {
                mall,
                name,
                issued: l.issued,
                revoked: l.revoked,
                redeemed: l.redeemed,
                returned: l.returned,
                expired: l.expired,
                receivable_fen: l.receivable_fen,
                payable_fen: l.payable_fen,
                net_fen: l.net_fen,
            }
        })
        .collect();
    let pairs = pairs
        .into_iter()
        .map(|x| Pair {
            issuer: named(malls, x.issuer).0,
            redeemer: named(malls, Some(x.redeemer)).0.unwrap_or_default(),
            points: x.points,
            value_fen: x.value_fen,
        })
        .collect();
    Statement {
        period: p.label.clone(),
        time_zone: t.tz_name.clone(),
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        closed: done.is_some(),
        closed_at: done.map(|c| c.closed_at),
        closed_by: done.map(|c| c.closed_by.clone()),
        points_per_yuan: done.map_or(t.points_per_yuan, |c| c.points_per_yuan),
        lines,
        pairs,
    }
}

/// The malls that get a line whatever their figures: the members (a mall that left gets
/// one only where it has figures).
fn mall_ids(malls: &HashMap<TenantId, Tenant>, a: &Alliance) -> Vec<TenantId> {
    let mut ids: Vec<TenantId> = malls.values().filter(|t| t.alliance_id == Some(a.id)).map(|t| t.id).collect();
    ids.sort_unstable();
    ids
}

/// The statement of period `label`: frozen if closed, else a preview of closing it now.
pub async fn get(db: &Db, a: &Alliance, label: &str) -> Result<Statement> {
    let malls = malls(db, a).await?;
    let mut tx = begin(db, a).await?;
    let t = terms(&mut tx).await?;
    let p = period_of(label, &t)?;
    if let Some(done) = closed(&mut tx, &p.label).await? {
        let (lines, pairs) = figures::read(&mut tx, done.id).await?;
        let frozen = Period { label: done.period.clone(), starts_at: done.starts_at, ends_at: done.ends_at };
        let t = Terms { tz_name: done.time_zone.clone(), points_per_yuan: done.points_per_yuan };
        return Ok(statement(&frozen, &t, Some(&done), &malls, lines, pairs));
    }
    check_order(&mut tx, &p).await?;
    let (_, lines, pairs) = settle(&mut tx, &p, &t, &mall_ids(&malls, a), "preview").await?;
    tx.rollback().await?;
    Ok(statement(&p, &t, None, &malls, lines, pairs))
}

/// Closes period `label` at `now` (it must be over, not closed, and after every closed
/// one). Audited.
pub async fn close(db: &Db, a: &Alliance, label: &str, now: DateTime<Utc>, actor: &Actor) -> Result<Statement> {
    let malls = malls(db, a).await?;
    let mut tx = begin(db, a).await?;
    let t = terms(&mut tx).await?;
    let p = period_of(label, &t)?;
    if closed(&mut tx, &p.label).await?.is_some() {
        return Err(Error::conflict("period_closed", format!("{} is closed already", p.label)));
    }
    if p.ends_at > now {
        return Err(Error::conflict(
            "period_not_over",
            format!("{} ends at {}; it can be closed after that", p.label, localtime::display(tz_of(&t), p.ends_at)),
        ));
    }
    check_order(&mut tx, &p).await?;
    let (_, lines, pairs) = settle(&mut tx, &p, &t, &mall_ids(&malls, a), &actor.label).await?;
    let net: Vec<(Option<TenantId>, i64)> = lines.iter().map(|l| (l.mall_id, l.net_fen)).collect();
    audit::record_alliance(
        &mut tx,
        actor,
        a.id,
        "alliance.settlement.close",
        &p.label,
        serde_json::json!({"net_fen": net}),
    )
    .await?;
    let done = closed(&mut tx, &p.label).await?;
    let s = statement(&p, &t, done.as_ref(), &malls, lines, pairs);
    announce(&mut tx, &s, &malls, &a.schema_name).await?;
    tx.commit().await?;
    Ok(s)
}

/// `settlement.closed` to the alliance's webhooks (the whole statement) and to each
/// mall's (its line and the pairs it is part of), written into the alliance's and each
/// mall's schema in the closing transaction.
async fn announce(
    conn: &mut PgConnection,
    s: &Statement,
    malls: &HashMap<TenantId, Tenant>,
    alliance_schema: &str,
) -> Result<()> {
    let whole = serde_json::json!({"period": s.period, "time_zone": s.time_zone, "starts_at": s.starts_at,
        "ends_at": s.ends_at, "points_per_yuan": s.points_per_yuan, "closed_at": s.closed_at,
        "lines": s.lines, "pairs": s.pairs});
    crate::webhooks::enqueue::event(conn, "settlement.closed", whole).await?;
    for t in malls.values() {
        let Some(line) = s.lines.iter().find(|l| l.mall.as_deref() == Some(t.slug.as_str())) else { continue };
        let pairs: Vec<&Pair> =
            s.pairs.iter().filter(|x| x.issuer.as_deref() == Some(t.slug.as_str()) || x.redeemer == t.slug).collect();
        let data = serde_json::json!({"period": s.period, "time_zone": s.time_zone, "starts_at": s.starts_at,
            "ends_at": s.ends_at, "points_per_yuan": s.points_per_yuan, "line": line, "pairs": pairs});
        crate::db::enter_schema(conn, &t.schema_name).await?;
        let sent = crate::webhooks::enqueue::event(conn, "settlement.closed", data).await;
        crate::db::enter_schema(conn, alliance_schema).await?;
        sent?;
    }
    Ok(())
}

fn tz_of(t: &Terms) -> chrono_tz::Tz {
    localtime::parse(&t.tz_name).unwrap_or(chrono_tz::Asia::Shanghai)
}

/// The closed statements, newest first.
pub async fn list(db: &Db, a: &Alliance, before: Option<i64>, limit: i64) -> Result<Vec<Closed>> {
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    select_schema(&mut tx, &a.schema_name).await?;
    Ok(sqlx::query_as(
        "SELECT id, period, time_zone, starts_at, ends_at, points_per_yuan, closed_by, closed_at \
         FROM settlement_statements \
         WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// What to drill into: the mall (and, for a cell of the matrix, the issuing mall).
pub struct DrillQuery<'a> {
    pub mall: &'a str,
    pub figure: Figure,
    pub issuer: Option<&'a str>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// The entries behind one figure of period `label`'s statement (closed or preview).
pub async fn entries(db: &Db, a: &Alliance, label: &str, q: &DrillQuery<'_>) -> Result<Vec<FigureEntry>> {
    let malls = malls(db, a).await?;
    let id_of = |slug: &str| {
        malls
            .values()
            .find(|t| t.slug == slug)
            .map(|t| t.id)
            .ok_or_else(|| Error::not_found("tenant_not_found", "no such mall in this alliance"))
    };
    let mall_id = id_of(q.mall)?;
    let issuer = q.issuer.map(id_of).transpose()?;
    let mut tx = begin(db, a).await?;
    let t = terms(&mut tx).await?;
    let p = period_of(label, &t)?;
    let statement_id = match closed(&mut tx, &p.label).await? {
        Some(done) => done.id,
        None => {
            check_order(&mut tx, &p).await?;
            settle(&mut tx, &p, &t, &mall_ids(&malls, a), "preview").await?.0
        }
    };
    let d = Drill { statement_id, mall_id, figure: q.figure, issuer, before: q.before, limit: q.limit };
    let out = drill::entries(&mut tx, &d).await?;
    tx.rollback().await?;
    Ok(out)
}

/// The statement as CSV: one row per mall, then one per pair.
pub fn csv(s: &Statement) -> Result<String> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    let io = |e: csv::Error| Error::Internal(e.into());
    w.write_record([
        "section",
        "period",
        "mall",
        "issued",
        "revoked",
        "redeemed",
        "returned",
        "expired",
        "receivable_fen",
        "payable_fen",
        "net_fen",
    ])
    .map_err(io)?;
    for l in &s.lines {
        let n = [l.issued, l.revoked, l.redeemed, l.returned, l.expired, l.receivable_fen, l.payable_fen, l.net_fen];
        let mut row = vec!["mall".to_string(), s.period.clone(), l.mall.clone().unwrap_or_default()];
        row.extend(n.iter().map(i64::to_string));
        w.write_record(&row).map_err(io)?;
    }
    w.write_record(["section", "period", "issuer", "redeemer", "points", "value_fen"]).map_err(io)?;
    for p in &s.pairs {
        let row = [
            "pair".to_string(),
            s.period.clone(),
            p.issuer.clone().unwrap_or_default(),
            p.redeemer.clone(),
            p.points.to_string(),
            p.value_fen.to_string(),
        ];
        w.write_record(&row).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(e.into()))
}
