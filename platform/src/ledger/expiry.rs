//! Expiry of points: lapsing due lots (one `expire` entry per account) and reminding
//! members of points about to lapse. Each works in bounded batches, each account in its
//! own short transaction; `now` is a parameter so tests (and operators replaying a
//! missed night) control the clock. `jobs` runs these with the other nightly jobs.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{bounds, post};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::Result;
use crate::i18n::{Arg, Voice};
use crate::localtime;

/// Lapses every lot due at `now`: one `expire` entry per account.
pub async fn expire_due(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<(u64, i64)> {
    let (mut accounts, mut amount) = (0u64, 0i64);
    loop {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let due: Vec<(i64, String)> = sqlx::query_as(
            "SELECT DISTINCT member_id, currency FROM lots WHERE remaining > 0 AND expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(bounds::JOB_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if due.is_empty() {
            return Ok((accounts, amount));
        }
        for (member_id, currency) in due {
            let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
            let n = post::expire_due_lots(&mut tx, member_id, &currency, now).await?;
            tx.commit().await?;
            if n > 0 {
                accounts += 1;
                amount += n;
            }
        }
    }
}

/// Creates one in-app reminder per (member, currency, local expiry day) for points
/// lapsing within the tenant's reminder window, in the mall's language, with its points
/// name and its time zone. Safe to run repeatedly.
pub async fn remind(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let days = tenant.settings.expiry_reminder_days;
    if days <= 0 {
        return Ok(0);
    }
    let voice = Voice::of(tenant);
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let due: Vec<(i64, String, String, i64, DateTime<Utc>, NaiveDate)> = sqlx::query_as(
        "SELECT l.member_id, l.currency, c.name, sum(l.remaining)::bigint, min(l.expires_at), \
                (l.expires_at AT TIME ZONE $3)::date AS day \
         FROM lots l JOIN currencies c ON c.code = l.currency \
         WHERE l.remaining > 0 AND l.expires_at > $1 AND l.expires_at <= $1 + make_interval(days => $2) \
         GROUP BY l.member_id, l.currency, c.name, day",
    )
    .bind(now)
    .bind(days)
    .bind(voice.tz.name())
    .fetch_all(&mut *tx)
    .await?;
    let (mut members, mut titles, mut bodies, mut keys) = (vec![], vec![], vec![], vec![]);
    let mut hooks = HashMap::new();
    for (member, code, name, amount, at, day) in due {
        let key = format!("expiry:{member}:{code}:{day}");
        hooks.insert(
            key,
            serde_json::json!({"member_id": member, "currency": code, "amount": amount, "expires_at": at}),
        );
        let points = voice.currency_name(&code, &name);
        let at = localtime::display(voice.tz, at);
        titles.push(voice.text("expiry-reminder-title", &[("points", Arg::Str(points))]));
        bodies.push(voice.text(
            "expiry-reminder-body",
            &[("amount", Arg::Int(amount)), ("points", Arg::Str(points)), ("at", Arg::Str(&at))],
        ));
        keys.push(format!("expiry:{member}:{code}:{day}"));
        members.push(member);
    }
    // The reminders written now (not those of an earlier run) go to the webhooks too.
    let written: Vec<String> = sqlx::query_scalar(
        "INSERT INTO messages (member_id, kind, title, body, dedupe_key) \
         SELECT m, 'expiry_reminder', t, b, k FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS x(m, t, b, k) \
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
    )
    .bind(&members)
    .bind(&titles)
    .bind(&bodies)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    let data: Vec<serde_json::Value> = written.iter().filter_map(|k| hooks.remove(k)).collect();
    crate::webhooks::enqueue::events(&mut tx, "points.expiring", data).await?;
    tx.commit().await?;
    Ok(written.len() as u64)
}
