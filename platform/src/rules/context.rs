//! What a script knows about the member: level, profile (nickname, birthday, gender,
//! city, registration day), tags, balances, counters, lock grants still releasing,
//! counts of this event type (today, this week, ever, streak) and the referral chain (≤ 3).
//!
//! A batch loads the context of all its members in eight statements, then keeps it up to
//! date in memory as its events are counted and their effects decided, so an event sees
//! the events before it in the same batch (counts, balances, counters, tags). A level
//! reached, and lock grants made or accelerated, within a batch show from the next batch on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use scripting::{Effect, LevelInput, LockInput, MemberInput, ProfileInput};
use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::ids::TenantId;

/// Days of counts kept for today/week/streak (the lifetime count covers every day).
const DAYS_LOADED: i64 = 400;

/// The member as stored.
#[derive(Clone, PartialEq)]
struct Member {
    /// RFC 3339 in the mall's zone.
    joined_at: String,
    profile: ProfileInput,
    locks: Vec<LockInput>,
    level: LevelInput,
    tags: BTreeSet<String>,
    balances: BTreeMap<String, i64>,
    counters: BTreeMap<String, i64>,
    referrers: Vec<i64>,
}

/// Counts of one event type for one member, per local day of the mall.
#[derive(Clone, Default, PartialEq)]
struct Counts {
    /// (day, count), one per day, in day order: a short contiguous list, read from its
    /// end (today, this week, the streak), where events are usually counted.
    days: Vec<(NaiveDate, i64)>,
    lifetime: i64,
}

impl Counts {
    /// The count of `day`, made if missing.
    fn day_mut(&mut self, day: NaiveDate) -> &mut i64 {
        let at = match self.days.last() {
            Some(last) if last.0 == day => self.days.len() - 1,
            _ => match self.days.binary_search_by(|d| d.0.cmp(&day)) {
                Ok(at) => at,
                Err(at) => {
                    self.days.insert(at, (day, 0));
                    at
                }
            },
        };
        &mut self.days[at].1
    }
}

/// The context of every member of a batch, as of now. Two loads compare equal when
/// nothing a rule reads of those members changed in between.
#[derive(Clone, PartialEq)]
pub struct Contexts {
    members: HashMap<i64, Member>,
    /// Per member, per event type (looked up by `&str`, with no key to build).
    counts: HashMap<i64, HashMap<String, Counts>>,
}

impl Contexts {
    /// Loads the members of `pairs` (member, event type); unknown members are left out.
    /// Day counts reach `DAYS_LOADED` days back from `today` (the mall's local day);
    /// times and days are shown in the mall's zone `tz`.
    pub async fn load(conn: &mut PgConnection, pairs: &[(i64, &str)], tz: Tz, today: NaiveDate) -> Result<Self> {
        Self::load_at(conn, pairs, tz, today, None).await
    }

    /// Like `load`, for a replay that starts at `start` (a local day's start): balances
    /// are the sums of the entries written before it, and counts those of the days
    /// before it. Level, profile, tags, counters, lock grants and referrers are as they
    /// are now (the past of those is not kept).
    pub async fn load_as_of(
        conn: &mut PgConnection,
        pairs: &[(i64, &str)],
        tz: Tz,
        start: DateTime<Utc>,
    ) -> Result<Self> {
        let day = crate::localtime::day(tz, start);
        Self::load_at(conn, pairs, tz, day, Some(start)).await
    }

    async fn load_at(
        conn: &mut PgConnection,
        pairs: &[(i64, &str)],
        tz: Tz,
        today: NaiveDate,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Self> {
        let mut ids: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut members = load_members(conn, &ids, tz).await?;
        if members.is_empty() {
            return Ok(Self { members, counts: HashMap::new() });
        }
        load_locks(conn, &ids, tz, &mut members).await?;
        load_tags(conn, &ids, &mut members).await?;
        load_balances(conn, &ids, as_of, &mut members).await?;
        load_counters(conn, &ids, &mut members).await?;
        load_referrers(conn, &ids, &mut members).await?;
        let before = as_of.map(|_| today);
        let counts = load_counts(conn, pairs, today, before).await?;
        Ok(Self { members, counts })
    }

    /// Takes in what `other` knows that this does not (members and counts loaded later
    /// in a replay); what this already holds, as events left it, stays.
    pub fn merge(&mut self, other: Self) {
        for (id, m) in other.members {
            self.members.entry(id).or_insert(m);
        }
        for (id, kinds) in other.counts {
            let mine = self.counts.entry(id).or_default();
            for (kind, c) in kinds {
                mine.entry(kind).or_insert(c);
            }
        }
    }

    /// True when both loads found the same members (ids), whatever their state.
    pub fn same_members(&self, other: &Self) -> bool {
        self.members.len() == other.members.len() && self.members.keys().all(|id| other.members.contains_key(id))
    }

    pub fn knows(&self, member_id: i64) -> bool {
        self.members.contains_key(&member_id)
    }

    /// Counts an event of `kind` on its local `day` (before its rules run), or takes a
    /// count back (`delta` -1) when the event failed.
    pub fn count(&mut self, member_id: i64, kind: &str, day: NaiveDate, delta: i64) {
        let kinds = self.counts.entry(member_id).or_default();
        if !kinds.contains_key(kind) {
            kinds.insert(kind.to_string(), Counts::default());
        }
        let Some(c) = kinds.get_mut(kind) else { return };
        *c.day_mut(day) += delta;
        c.lifetime += delta;
    }

    /// The member as a script sees it for an event of `kind` that happened on local
    /// `day`: "today", "this week" and the streak are that day's, so a back-dated event
    /// counts on its own day and never uses up today's.
    pub fn input(&self, member_id: i64, kind: &str, day: NaiveDate) -> Option<MemberInput> {
        let m = self.members.get(&member_id)?;
        let empty = Counts::default();
        let c = self.counts.get(&member_id).and_then(|kinds| kinds.get(kind)).unwrap_or(&empty);
        let today = day;
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        // The days up to today, in order.
        let upto = &c.days[..c.days.partition_point(|d| d.0 <= today)];
        let mut streak = 0;
        let mut expected = today;
        for (day, count) in upto.iter().rev() {
            if *count <= 0 {
                continue;
            }
            if *day != expected {
                break;
            }
            streak += 1;
            expected -= Duration::days(1);
        }
        Some(MemberInput {
            id: member_id,
            level: m.level.clone(),
            tags: m.tags.iter().cloned().collect(),
            balances: m.balances.clone(),
            counters: m.counters.clone(),
            today: upto.last().filter(|d| d.0 == today).map_or(0, |d| d.1),
            week: upto.iter().rev().take_while(|d| d.0 >= monday).map(|d| d.1).sum(),
            lifetime: c.lifetime,
            streak,
            referrers: m.referrers.clone(),
            joined_at: m.joined_at.clone(),
            profile: m.profile.clone(),
            locks: m.locks.clone(),
        })
    }

    /// Takes in the effects an event of `member_id` is about to have, so the next events
    /// see them (balances moved, counters set, tags added).
    pub fn absorb(&mut self, member_id: i64, effects: &[Effect]) {
        let referrer = |members: &HashMap<i64, Member>, depth: i64| -> Option<i64> {
            let chain = &members.get(&member_id)?.referrers;
            chain.get(usize::try_from(depth - 1).ok()?).copied()
        };
        for effect in effects {
            match effect {
                Effect::Award { currency, amount, .. } => self.add(member_id, currency, *amount),
                Effect::AwardReferrer { depth, currency, amount, .. } => {
                    if let Some(to) = referrer(&self.members, *depth) {
                        self.add(to, currency, *amount);
                    }
                }
                Effect::Deduct { currency, amount, .. } => self.add(member_id, currency, -amount),
                Effect::SetCounter { name, value } => {
                    if let Some(m) = self.members.get_mut(&member_id) {
                        m.counters.insert(name.clone(), *value);
                    }
                }
                Effect::Tag { name } => {
                    if let Some(m) = self.members.get_mut(&member_id) {
                        m.tags.insert(name.clone());
                    }
                }
                Effect::Lock { .. } | Effect::Accelerate { .. } | Effect::Deny { .. } => {}
            }
        }
    }

    fn add(&mut self, member_id: i64, currency: &str, amount: i64) {
        if let Some(m) = self.members.get_mut(&member_id) {
            match m.balances.get_mut(currency) {
                Some(b) => *b = b.saturating_add(amount),
                None => {
                    m.balances.insert(currency.to_string(), amount);
                }
            }
        }
    }
}

/// The members of `ids` with their level and profile; the rest of their context comes next.
async fn load_members(conn: &mut PgConnection, ids: &[i64], tz: Tz) -> Result<HashMap<i64, Member>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        created_at: DateTime<Utc>,
        nickname: String,
        birthday: Option<NaiveDate>,
        gender: Option<String>,
        city: Option<String>,
        level: Option<String>,
        threshold: Option<i64>,
        benefits: Option<serde_json::Value>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, m.created_at, m.nickname, m.birthday, m.gender, m.city, l.name AS level, l.threshold, \
                l.benefits FROM members m \
         LEFT JOIN levels l ON l.id = m.level_id WHERE m.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let level = LevelInput {
                name: r.level.unwrap_or_default(),
                threshold: r.threshold.unwrap_or(0),
                benefits: r.benefits.unwrap_or_else(|| serde_json::json!({})),
            };
            let profile = ProfileInput {
                nickname: r.nickname,
                birthday: r.birthday.map(|d| d.to_string()).unwrap_or_default(),
                gender: r.gender.unwrap_or_default(),
                city: r.city.unwrap_or_default(),
                registered_on: crate::localtime::day(tz, r.created_at).to_string(),
            };
            let member = Member {
                joined_at: crate::localtime::rfc3339(tz, r.created_at),
                profile,
                locks: Vec::new(),
                level,
                tags: BTreeSet::new(),
                balances: BTreeMap::new(),
                counters: BTreeMap::new(),
                referrers: Vec::new(),
            };
            (r.id, member)
        })
        .collect())
}

/// The lock grants of `ids` still releasing, oldest first, at most `bounds::LOCKS_SEEN_MAX`
/// each.
async fn load_locks(conn: &mut PgConnection, ids: &[i64], tz: Tz, members: &mut HashMap<i64, Member>) -> Result<()> {
    type Row = (i64, i64, String, i64, i64, i64, DateTime<Utc>, String, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT member_id, id, currency, total, released, per_day, next_release_at, memo, created_at FROM ( \
             SELECT member_id, id, currency, total, released, per_day, next_release_at, memo, created_at, \
                    row_number() OVER (PARTITION BY member_id ORDER BY id) AS n FROM lock_grants \
             WHERE member_id = ANY($1) AND released < total) open \
         WHERE n <= $2 ORDER BY member_id, id",
    )
    .bind(ids)
    .bind(super::bounds::LOCKS_SEEN_MAX)
    .fetch_all(&mut *conn)
    .await?;
    for (member_id, id, currency, total, released, per_day, next_release_at, memo, created_at) in rows {
        if let Some(m) = members.get_mut(&member_id) {
            m.locks.push(LockInput {
                id,
                currency,
                total,
                released,
                remaining: total - released,
                per_day,
                next_release_at: crate::localtime::rfc3339(tz, next_release_at),
                memo,
                created_at: crate::localtime::rfc3339(tz, created_at),
            });
        }
    }
    Ok(())
}

async fn load_tags(conn: &mut PgConnection, ids: &[i64], members: &mut HashMap<i64, Member>) -> Result<()> {
    let tags: Vec<(i64, String)> = sqlx::query_as("SELECT member_id, tag FROM member_tags WHERE member_id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    for (id, tag) in tags {
        if let Some(m) = members.get_mut(&id) {
            m.tags.insert(tag);
        }
    }
    Ok(())
}

async fn load_balances(
    conn: &mut PgConnection,
    ids: &[i64],
    as_of: Option<DateTime<Utc>>,
    members: &mut HashMap<i64, Member>,
) -> Result<()> {
    let balances: Vec<(i64, String, i64)> = match as_of {
        None => {
            sqlx::query_as("SELECT member_id, currency, balance FROM accounts WHERE member_id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *conn)
                .await?
        }
        Some(at) => {
            sqlx::query_as(
                "SELECT member_id, currency, sum(amount)::bigint FROM entries \
                 WHERE member_id = ANY($1) AND created_at < $2 GROUP BY member_id, currency",
            )
            .bind(ids)
            .bind(at)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    for (id, currency, balance) in balances {
        if let Some(m) = members.get_mut(&id) {
            m.balances.insert(currency, balance);
        }
    }
    Ok(())
}

async fn load_counters(conn: &mut PgConnection, ids: &[i64], members: &mut HashMap<i64, Member>) -> Result<()> {
    let counters: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT member_id, name, value FROM member_counters WHERE member_id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
    for (id, name, value) in counters {
        if let Some(m) = members.get_mut(&id) {
            m.counters.insert(name, value);
        }
    }
    Ok(())
}

/// The referral chain of each member, nearest first (at most three).
async fn load_referrers(conn: &mut PgConnection, ids: &[i64], members: &mut HashMap<i64, Member>) -> Result<()> {
    let referrers: Vec<(i64, i64)> = sqlx::query_as(
        "WITH RECURSIVE chain(member, id, depth) AS ( \
             SELECT id, invited_by, 1 FROM members WHERE id = ANY($1) AND invited_by IS NOT NULL \
             UNION ALL SELECT c.member, m.invited_by, c.depth + 1 FROM chain c JOIN members m ON m.id = c.id \
             WHERE m.invited_by IS NOT NULL AND c.depth < 3) \
         SELECT member, id FROM chain ORDER BY member, depth",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    for (id, referrer) in referrers {
        if let Some(m) = members.get_mut(&id) {
            m.referrers.push(referrer);
        }
    }
    Ok(())
}

/// Counts of each (member, event type) of `pairs`: per day for `DAYS_LOADED` days, and
/// over the member's life.
/// Counts of the days after `today - DAYS_LOADED` (and before `before`, when given).
async fn load_counts(
    conn: &mut PgConnection,
    pairs: &[(i64, &str)],
    today: NaiveDate,
    before: Option<NaiveDate>,
) -> Result<HashMap<i64, HashMap<String, Counts>>> {
    let mut unique: Vec<(i64, &str)> = pairs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let (pair_members, pair_types): (Vec<i64>, Vec<&str>) = unique.iter().copied().unzip();
    let mut counts: HashMap<i64, HashMap<String, Counts>> = HashMap::new();
    let days: Vec<(i64, String, NaiveDate, i32)> = sqlx::query_as(
        "SELECT e.member_id, e.type, e.day, e.count FROM event_days e \
         JOIN unnest($1::bigint[], $2::text[]) AS t(m, k) ON e.member_id = t.m AND e.type = t.k \
         WHERE e.day > $3 AND ($4::date IS NULL OR e.day < $4)",
    )
    .bind(&pair_members)
    .bind(&pair_types)
    .bind(today - Duration::days(DAYS_LOADED))
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    for (id, kind, day, count) in days {
        *counts.entry(id).or_default().entry(kind).or_default().day_mut(day) = i64::from(count);
    }
    let lifetimes: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT e.member_id, e.type, sum(e.count)::bigint FROM event_days e \
         JOIN unnest($1::bigint[], $2::text[]) AS t(m, k) ON e.member_id = t.m AND e.type = t.k \
         WHERE $3::date IS NULL OR e.day < $3 GROUP BY e.member_id, e.type",
    )
    .bind(&pair_members)
    .bind(&pair_types)
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    for (id, kind, lifetime) in lifetimes {
        counts.entry(id).or_default().entry(kind).or_default().lifetime = lifetime;
    }
    Ok(counts)
}

/// Advisory lock namespace of event batches' members (single 64-bit keys: the tenant in
/// the high bits, the member in the low 40; a collision only makes two batches queue).
const LOCK_NS_MEMBERS: i64 = 0x504d << 48;

/// Locks `members` (sorted, so batches never deadlock on them) until the end of the
/// transaction. Only event batches take these locks: they serialize the batches of a
/// member, so what a batch's rules read of its members' events (day counts, counters,
/// tags) cannot change between its check and its commit. Other writers (partner
/// credits, redemptions) never wait for them.
pub async fn lock_members(conn: &mut PgConnection, tenant_id: TenantId, members: &[i64]) -> Result<()> {
    let mut keys: Vec<i64> = members
        .iter()
        .map(|m| LOCK_NS_MEMBERS ^ ((tenant_id.get() & 0xff_ffff) << 40) ^ (m & 0xff_ffff_ffff))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    // unnest yields the array in order, so the locks are taken in that order.
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k").bind(&keys).execute(conn).await?;
    Ok(())
}

/// The context of one member for an event of type `kind` on local `day`, as a live
/// event would see it: as stored, with the event itself counted (the dry run's view;
/// nothing is written).
pub async fn member(
    conn: &mut PgConnection,
    member_id: i64,
    kind: &str,
    tz: Tz,
    day: NaiveDate,
) -> Result<MemberInput> {
    let mut ctx = Contexts::load(conn, &[(member_id, kind)], tz, day).await?;
    if !ctx.knows(member_id) {
        return Err(Error::not_found("member_not_found", "no such member"));
    }
    ctx.count(member_id, kind, day, 1);
    ctx.input(member_id, kind, day).ok_or_else(|| Error::not_found("member_not_found", "no such member"))
}

/// Records the counts of a batch's events (member, type, local day, n).
pub async fn store_counts(conn: &mut PgConnection, counted: &[(i64, &str, NaiveDate, i32)]) -> Result<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let members: Vec<i64> = counted.iter().map(|c| c.0).collect();
    let kinds: Vec<&str> = counted.iter().map(|c| c.1).collect();
    let days: Vec<NaiveDate> = counted.iter().map(|c| c.2).collect();
    let ns: Vec<i32> = counted.iter().map(|c| c.3).collect();
    sqlx::query(
        "INSERT INTO event_days (member_id, type, day, count) \
         SELECT m, k, d, n FROM unnest($1::bigint[], $2::text[], $3::date[], $4::int[]) AS t(m, k, d, n) \
         ORDER BY m, k, d \
         ON CONFLICT (member_id, type, day) DO UPDATE SET count = event_days.count + EXCLUDED.count",
    )
    .bind(&members)
    .bind(&kinds)
    .bind(&days)
    .bind(&ns)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Member {
        Member {
            joined_at: String::new(),
            profile: ProfileInput::default(),
            locks: Vec::new(),
            level: LevelInput::default(),
            tags: BTreeSet::new(),
            balances: BTreeMap::new(),
            counters: BTreeMap::new(),
            referrers: Vec::new(),
        }
    }

    /// Today, the week and the streak as the day counts say, counted the plain way.
    fn plain(days: &BTreeMap<NaiveDate, i64>, today: NaiveDate) -> (i64, i64, i64) {
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let mut streak = 0;
        let mut expected = today;
        for (day, count) in days.range(..=today).rev() {
            if *count <= 0 {
                continue;
            }
            if *day != expected {
                break;
            }
            streak += 1;
            expected -= Duration::days(1);
        }
        (days.get(&today).copied().unwrap_or(0), days.range(monday..=today).map(|(_, n)| n).sum(), streak)
    }

    #[test]
    fn day_counts_in_any_order_give_today_the_week_and_the_streak() {
        let d = |n: i64| NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(n);
        let mut ctx = Contexts { members: HashMap::from([(1, member())]), counts: HashMap::new() };
        let mut plain_days = BTreeMap::new();
        // Out of order, repeated, and a day taken back to 0 (a failed event).
        for (day, delta) in [(5, 1), (3, 1), (4, 2), (9, 1), (8, 1), (7, 1), (9, 1), (6, 1), (6, -1), (1, 1), (10, 1)] {
            ctx.count(1, "visited", d(day), delta);
            *plain_days.entry(d(day)).or_insert(0) += delta;
        }
        for today in 0..14 {
            let input = ctx.input(1, "visited", d(today)).unwrap();
            assert_eq!((input.today, input.week, input.streak), plain(&plain_days, d(today)), "day {today}");
            assert_eq!(input.lifetime, 10);
        }
        assert_eq!(ctx.input(1, "other", d(9)).unwrap().streak, 0);
        assert!(ctx.input(2, "visited", d(9)).is_none());
    }
}
