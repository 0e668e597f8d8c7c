//! `bench-webhooks`: what webhooks cost and how fast they go (prints figures; not a
//! test). In-process against DATABASE_URL: a fresh mall with 100 members, single-entry
//! credits (one transaction each, one client) timed without an endpoint and with one
//! subscribed to `points.changed`, interleaved in rounds; then the outbox's deliveries
//! sent by the worker to a local receiver (an axum server on 127.0.0.1 answering 200),
//! timed until none is left.
//!
//!   DATABASE_URL=postgres://… cargo run --release -p bench --bin bench-webhooks

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bench::stats::Latency;
use bench::{build_kind, verdict};
use chrono::Utc;
use clap::Parser;
use platform::audit::Actor;
use platform::db::Db;
use platform::directory::Tenant;
use platform::ledger::post::LotPart;
use platform::ledger::{Reason, Source, SourceKind, batch};
use platform::webhooks::address::AddressPolicy;
use platform::webhooks::deliver::Deliverer;
use platform::webhooks::endpoints::{self, NewEndpoint};

/// The write's p99 may grow by less than this with an endpoint subscribed.
const TARGET_ADDED_P99: Duration = Duration::from_millis(1);

#[derive(Parser)]
#[command(name = "bench-webhooks", about = "Webhook enqueue cost and delivery rate (prints figures; not a test)")]
struct Args {
    /// Credits timed per phase (each phase is split over the rounds).
    #[arg(long, default_value_t = 2000)]
    writes: usize,
    /// Rounds alternating the two phases.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Extra events enqueued before the delivery run (besides the credits').
    #[arg(long, default_value_t = 3000)]
    extra_events: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let db = Db::connect(&url, &[], 16).await?;
    platform::migrate::migrate_control(db.control()).await?;
    let slug = format!("bench-hooks-{}", bench::random_runid());
    let new = platform::tenancy::NewTenant { slug: slug.clone(), name: "bench".into(), alliance: None, cluster: None };
    let tenant = platform::tenancy::create_tenant(&db, &new, &Actor::system("bench")).await?;
    let members = seed_members(&db, &tenant).await?;
    let (receiver, hits) = receiver().await?;
    let vault = platform::vault::Vault::from_config(None, b"bench-webhooks")?;
    let policy = AddressPolicy { allow_private: true };

    // Phase A: no endpoint; phase B: one subscribed (toggled between rounds).
    let body = NewEndpoint { url: receiver, description: String::new(), event_types: vec!["points.changed".into()] };
    let created = db
        .write(&tenant, &Actor::system("bench"), async |tx| endpoints::create(tx, &vault, policy, &body).await)
        .await?;
    let id = created.endpoint.id;
    let per_round = (args.writes / args.rounds).max(1);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        set_enabled(&db, &tenant, id, false).await?;
        without.extend(credits(&db, &tenant, &members, per_round, round).await?);
        set_enabled(&db, &tenant, id, true).await?;
        with.extend(credits(&db, &tenant, &members, per_round, round).await?);
    }
    let (a, b) = (Latency::of(&without), Latency::of(&with));
    let added = b.p99_ms - a.p99_ms;
    println!("bench-webhooks ({} build), mall {slug}", build_kind());
    println!(
        "credit, no endpoint:        {} writes, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
        without.len(),
        a.mean_ms,
        a.p50_ms,
        a.p99_ms
    );
    println!(
        "credit, endpoint subscribed: {} writes, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
        with.len(),
        b.mean_ms,
        b.p50_ms,
        b.p99_ms
    );
    println!(
        "added p99 of the enqueueing write: {added:.3} ms (target < {} ms): {}",
        TARGET_ADDED_P99.as_millis(),
        verdict(added < TARGET_ADDED_P99.as_secs_f64() * 1e3)
    );

    enqueue_extra(&db, &tenant, args.extra_events).await?;
    let pending = pending(&db, &tenant).await?;
    let deliverer = Deliverer::new(db.clone(), vault.clone(), policy)?;
    let started = Instant::now();
    let mut sent = 0;
    while sent < pending {
        let n = deliverer.pass(Some(&slug)).await?;
        anyhow::ensure!(n > 0, "the worker stopped with {} of {pending} left", pending - sent);
        sent += n;
    }
    let wall = started.elapsed();
    println!(
        "deliveries: {sent} in {:.2} s = {:.0}/s to a local receiver (it saw {})",
        wall.as_secs_f64(),
        sent as f64 / wall.as_secs_f64(),
        hits.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn seed_members(db: &Db, t: &Tenant) -> anyhow::Result<Vec<i64>> {
    let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO members (email, invite_code) SELECT 'b' || g || '@bench.test', 'BENCH' || g \
         FROM generate_series(1, 100) AS g RETURNING id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids)
}

async fn set_enabled(db: &Db, t: &Tenant, id: i64, enabled: bool) -> anyhow::Result<()> {
    let patch = endpoints::EndpointPatch { enabled: Some(enabled), ..Default::default() };
    let policy = AddressPolicy { allow_private: true };
    db.write(t, &Actor::system("bench"), async |tx| endpoints::update(tx, policy, id, &patch).await).await?;
    Ok(())
}

/// `n` single credits, one transaction each; their durations (begin to commit).
async fn credits(db: &Db, t: &Tenant, members: &[i64], n: usize, round: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    let source = Source::new(SourceKind::System, "bench");
    for i in 0..n {
        let member = members[(i + round) % members.len()];
        let started = Instant::now();
        let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
        let part = LotPart { amount: 1, expires_at: None };
        batch::credit(&mut tx, member, "points", &[part], Reason::Earn, &source, Utc::now()).await?;
        tx.commit().await?;
        out.push(started.elapsed());
    }
    Ok(out)
}

async fn enqueue_extra(db: &Db, t: &Tenant, n: usize) -> anyhow::Result<()> {
    let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
    let data = (0..n).map(|i| serde_json::json!({"n": i})).collect();
    platform::webhooks::enqueue::events(&mut tx, "points.changed", data).await?;
    tx.commit().await?;
    Ok(())
}

async fn pending(db: &Db, t: &Tenant) -> anyhow::Result<u64> {
    let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
        .fetch_one(&mut *tx)
        .await?;
    Ok(u64::try_from(n)?)
}

/// A receiver on 127.0.0.1 answering 200 and counting.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}
