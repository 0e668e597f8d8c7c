//! What a script knows about the member: level, tags, balances, counters, counts of this
//! event type (today, this week, ever, streak) and the referral chain (≤ 3).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use scripting::{LevelInput, MemberInput};
use sqlx::PgConnection;

use crate::error::{Error, Result};

/// Counts this event (for the member, on `now`'s UTC day) before the rules run.
pub async fn count_event(conn: &mut PgConnection, member_id: i64, kind: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_days (member_id, type, day, count) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (member_id, type, day) DO UPDATE SET count = event_days.count + 1",
    )
    .bind(member_id)
    .bind(kind)
    .bind(now.date_naive())
    .execute(conn)
    .await?;
    Ok(())
}

/// Builds the member context for an event of type `kind` at `now`.
pub async fn member(conn: &mut PgConnection, member_id: i64, kind: &str, now: DateTime<Utc>) -> Result<MemberInput> {
    type Row = (DateTime<Utc>, Option<String>, Option<i64>, Option<serde_json::Value>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT m.created_at, l.name, l.threshold, l.benefits FROM members m LEFT JOIN levels l ON l.id = m.level_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (joined_at, level_name, threshold, benefits) =
        row.ok_or_else(|| Error::not_found("member_not_found", "no such member"))?;
    let tags: Vec<String> = sqlx::query_scalar("SELECT tag FROM member_tags WHERE member_id = $1 ORDER BY tag")
        .bind(member_id)
        .fetch_all(&mut *conn)
        .await?;
    let balances: Vec<(String, i64)> = sqlx::query_as("SELECT currency, balance FROM accounts WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&mut *conn)
        .await?;
    let counters: Vec<(String, i64)> = sqlx::query_as("SELECT name, value FROM member_counters WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&mut *conn)
        .await?;
    let days: Vec<(NaiveDate, i32)> = sqlx::query_as(
        "SELECT day, count FROM event_days WHERE member_id = $1 AND type = $2 ORDER BY day DESC LIMIT 400",
    )
    .bind(member_id)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    let lifetime: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(count), 0)::bigint FROM event_days WHERE member_id = $1 AND type = $2")
            .bind(member_id)
            .bind(kind)
            .fetch_one(&mut *conn)
            .await?;
    let referrers: Vec<i64> = sqlx::query_scalar(
        "WITH RECURSIVE chain(id, depth) AS ( \
             SELECT invited_by, 1 FROM members WHERE id = $1 AND invited_by IS NOT NULL \
             UNION ALL SELECT m.invited_by, c.depth + 1 FROM chain c JOIN members m ON m.id = c.id \
             WHERE m.invited_by IS NOT NULL AND c.depth < 3) \
         SELECT id FROM chain ORDER BY depth",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let today = now.date_naive();
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let mut streak = 0;
    let mut expected = today;
    for (day, _) in &days {
        if *day == expected {
            streak += 1;
            expected -= Duration::days(1);
        } else if *day < expected {
            break;
        }
    }
    Ok(MemberInput {
        id: member_id,
        level: LevelInput {
            name: level_name.unwrap_or_default(),
            threshold: threshold.unwrap_or(0),
            benefits: benefits.unwrap_or_else(|| serde_json::json!({})),
        },
        tags,
        balances: balances.into_iter().collect(),
        counters: counters.into_iter().collect(),
        today: days.iter().find(|(d, _)| *d == today).map_or(0, |(_, c)| i64::from(*c)),
        week: days.iter().filter(|(d, _)| *d >= monday).map(|(_, c)| i64::from(*c)).sum(),
        lifetime,
        streak,
        referrers,
        joined_at: joined_at.to_rfc3339(),
    })
}
