//! Issue 10 point 2, tenant fairness: a tenant flooding the server with concurrent
//! batches of events against a rule that runs to its time limit gets 429s with
//! `Retry-After`, holds no more connections than its batch slots, and another tenant's
//! single events never fail and keep their latency.
//!
//! The quiet tenant's latency is timed in rounds of three windows (so all see the same
//! background load): quiet (the other tenant sends nothing), share (one batch of the
//! flooding tenant runs: it uses its whole share, one evaluation thread busy all the
//! time) and flood (32 clients posting batches of 100 as fast as they are let).
//!
//! The bound, as the issue states it: flood p99 <= 2 x quiet p99. A tenant that kept a
//! rule thread busy lately evaluates in the heavy lane, whose threads have the lowest OS
//! priority, while the quiet tenant's rules run in the light lane at normal priority
//! (`platform::rules::admission`): the flooder's permitted share, one thread spinning on
//! one of two cores, hardly slows anyone. The test is timing: `scripts/test.sh` runs it
//! alone, after the rest of the suite (it is `#[ignore]`d in the parallel run, where
//! other tests' bursts land in one window or another at random), and prints its figures.
//! The failure this guards against was a p99 of 6.8 s with 500s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone};

/// Concurrent flooding clients, each posting batches of this many events.
const FLOODERS: usize = 32;
const FLOOD_BATCH: usize = 100;
/// Rounds of (quiet, share, flood) windows, and single events of the quiet tenant timed
/// in each window: 480 of each kind, so that a p99 is the fifth slowest, not one stray
/// scheduling hiccup (with 150 it was the second slowest, and the ratio swung from 1.2
/// to 1.9 between runs of the same build).
const ROUNDS: usize = 8;
const PER_WINDOW: usize = 60;

/// Burns time on every operation (an array of 900 reversed in place), so the rule runs
/// to the sandbox's wall-clock limit rather than to its operation count.
const BUSY: &str = r#"let a = []; for i in 0..900 { a.push(i) } loop { a.reverse(); }"#;

fn p99(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let rank = (s.len() * 99).div_ceil(100).max(1);
    s[rank - 1]
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn post_events(
    app: &TestApp,
    slug: &str,
    key: &str,
    events: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    app.call_full(
        Method::POST,
        &format!("/v1/tenants/{slug}/partner/events"),
        &[("x-api-key", key.to_string())],
        Some(json!({ "events": events })),
    )
    .await
}

/// Times `n` single events of the quiet tenant, one after the other; each must apply.
async fn time_single_events(app: &TestApp, slug: &str, key: &str, member: i64, tag: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let (s, _, b) =
            post_events(app, slug, key, json!([{"id": format!("{tag}{i}"), "type": "shared", "member_id": member}]))
                .await;
        out.push(started.elapsed());
        assert_eq!(s, StatusCode::OK, "the quiet tenant's event {tag}{i} failed: {b}");
        assert_eq!(b["results"][0]["status"], "applied", "{b}");
    }
    out
}

/// Starts the flooding clients: each posts batches of slow events as fast as it is let,
/// and waits as long as `Retry-After` says when told to.
fn start_flood(
    app: &Arc<TestApp>,
    slug: &str,
    key: &str,
    members: &[i64],
    round: usize,
    clients: std::ops::Range<usize>,
    tally: &Arc<FloodTally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    clients
        .map(|c| {
            let (app, tally, slug, key) = (app.clone(), tally.clone(), slug.to_string(), key.to_string());
            let member = members[c % members.len()];
            tokio::spawn(async move {
                for n in 0.. {
                    let events: Vec<Value> = (0..FLOOD_BATCH)
                        .map(|i| json!({"id": format!("f{round}-{c}-{n}-{i}"), "type": "spin", "member_id": member}))
                        .collect();
                    let (s, headers, b) = post_events(&app, &slug, &key, json!(events)).await;
                    tally.count(s, &headers, &b).await;
                }
            })
        })
        .collect()
}

/// The most pool connections in use at once while `on`.
async fn max_connections_in_use(pool: sqlx::PgPool, on: Arc<AtomicBool>) -> usize {
    let mut max = 0;
    while on.load(Ordering::Relaxed) {
        max = max.max((pool.size() as usize).saturating_sub(pool.num_idle()));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    max
}

#[derive(Default)]
struct FloodTally {
    ok: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
    events_failed_by_limit: AtomicU64,
}

impl FloodTally {
    /// Counts one answer to a flooding batch; after a 429, waits as told.
    async fn count(&self, s: StatusCode, headers: &reqwest::header::HeaderMap, b: &Value) {
        match s {
            StatusCode::OK => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let failed =
                    b["results"].as_array().map(|r| r.iter().filter(|o| o["status"] == "failed").count()).unwrap_or(0);
                self.events_failed_by_limit.fetch_add(failed as u64, Ordering::Relaxed);
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let wait: Option<u64> =
                    headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
                match wait {
                    Some(wait) if b["error"]["code"] == "tenant_busy" || b["error"]["code"] == "server_busy" => {
                        self.busy.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                    }
                    _ => {
                        self.other.fetch_add(1, Ordering::Relaxed);
                        eprintln!("a 429 without Retry-After or tenant_busy: {b}");
                    }
                }
            }
            _ => {
                self.other.fetch_add(1, Ordering::Relaxed);
                eprintln!("a flooding batch was answered {s}: {b}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "timing: scripts/test.sh runs it alone"]
async fn a_flooding_tenant_is_told_to_wait_and_the_others_keep_their_latency() {
    let app = Arc::new(TestApp::spawn().await);
    let flood = app.tenant().await;
    let quiet = app.tenant().await;
    let (_, flood_owner) = app.staff(&flood, "owner").await;
    let (_, quiet_owner) = app.staff(&quiet, "owner").await;
    for (t, token, body) in [
        (&flood, &flood_owner, json!({"name": "busy", "event_type": "spin", "script": BUSY})),
        (&quiet, &quiet_owner, json!({"name": "share", "event_type": "shared", "script": "award(\"points\", 3)"})),
    ] {
        let (s, b) =
            app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(token), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let flood_key = app.partner_key(&flood).await;
    let quiet_key = app.partner_key(&quiet).await;
    let mut flood_members = Vec::new();
    for _ in 0..4 {
        flood_members.push(app.member(&flood, &phone()).await.0["id"].as_i64().unwrap());
    }
    let quiet_member = app.member(&quiet, &phone()).await.0["id"].as_i64().unwrap();

    // Warm up (rule caches, connections). Then rounds of three windows, so all see the
    // same background load (other builds, other tests):
    // - quiet: the flooding tenant sends nothing;
    // - share: one batch of the flooding tenant runs, i.e. it uses its whole share of
    //   rule evaluation (one thread, busy for the whole window);
    // - flood: 32 clients post batches as fast as they are let.
    time_single_events(&app, &quiet.slug, &quiet_key, quiet_member, "w", 10).await;
    let tally = Arc::new(FloodTally::default());
    let (mut quiet_ms, mut share_ms, mut flood_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut medians = Vec::new();
    let (mut ramp, mut max_in_use) = (Duration::ZERO, 0);
    for round in 0..ROUNDS {
        let q =
            time_single_events(&app, &quiet.slug, &quiet_key, quiet_member, &format!("q{round}-"), PER_WINDOW).await;
        let mut clients = start_flood(&app, &flood.slug, &flood_key, &flood_members, round, 0..1, &tally);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s =
            time_single_events(&app, &quiet.slug, &quiet_key, quiet_member, &format!("s{round}-"), PER_WINDOW).await;
        clients.extend(start_flood(&app, &flood.slug, &flood_key, &flood_members, round, 1..FLOODERS, &tally));
        // The flood is on once the flooding tenant is being told to wait.
        let busy_before = tally.busy.load(Ordering::Relaxed);
        let started = Instant::now();
        while tally.busy.load(Ordering::Relaxed) == busy_before {
            assert!(started.elapsed() < Duration::from_secs(30), "the flooding tenant never got a 429");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ramp = ramp.max(started.elapsed());
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = tokio::spawn(max_connections_in_use(app.db.control().clone(), sampling.clone()));
        let f =
            time_single_events(&app, &quiet.slug, &quiet_key, quiet_member, &format!("f{round}-"), PER_WINDOW).await;
        sampling.store(false, Ordering::Relaxed);
        max_in_use = max_in_use.max(sampler.await.unwrap());
        // Clients that go away take their batches with them (the server drops a request
        // whose connection closed, and with it the batch's evaluation); give it a moment.
        for c in &clients {
            c.abort();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        medians.push(format!("{:.0}/{:.0}/{:.0}", ms(median(&q)), ms(median(&s)), ms(median(&f))));
        quiet_ms.extend(q);
        share_ms.extend(s);
        flood_ms.extend(f);
    }

    let (q, s, f) = (p99(&quiet_ms), p99(&share_ms), p99(&flood_ms));
    let samples = quiet_ms.len();
    let quiet_bound = q * 2;
    let (ok, busy, other) =
        (tally.ok.load(Ordering::Relaxed), tally.busy.load(Ordering::Relaxed), tally.other.load(Ordering::Relaxed));
    let failed = tally.events_failed_by_limit.load(Ordering::Relaxed);
    eprintln!(
        "fairness: quiet tenant's single events, p99 (median): quiet {:.1} ms ({:.1}), flooder within its share \
         {:.1} ms ({:.1}), flood {:.1} ms ({:.1}); bound: flood <= {:.1} ms (2x quiet); flood/quiet = {:.2}; \
         {samples} events per window kind in {ROUNDS} \
         rounds (medians per round q/s/f ms: {}), 0 errors",
        ms(q),
        ms(median(&quiet_ms)),
        ms(s),
        ms(median(&share_ms)),
        ms(f),
        ms(median(&flood_ms)),
        ms(quiet_bound),
        f.as_secs_f64() / q.as_secs_f64(),
        medians.join(" "),
    );
    eprintln!(
        "fairness: flooding tenant ({FLOODERS} clients x {FLOOD_BATCH} events): first 429 within {:.0} ms; \
         {busy} batches answered 429 with Retry-After, {ok} completed ({failed} events failed by the time limit), \
         {other} other answers; pool connections in use at most {max_in_use} of {}",
        ms(ramp),
        app.db.control().options().get_max_connections(),
    );
    assert_eq!(other, 0, "the flooding tenant got answers other than 200 or 429");
    assert!(busy > 0);
    assert!(f <= quiet_bound, "the quiet tenant's p99 went from {q:?} to {f:?} under another tenant's flood");
    // The flooding tenant never holds more connections than its batch slots (the quiet
    // tenant's request holds one more).
    let slots = platform::limits::EVENT_BATCHES_PER_TENANT_DEFAULT as usize;
    assert!(max_in_use <= slots + 2, "{max_in_use} connections in use at once");
    assert_eq!(
        app.balance(&quiet, &quiet_key, quiet_member, "points").await,
        3 * (10 + 3 * samples as i64),
        "every event of the quiet tenant applied once"
    );
}

/// Rules run outside the write transaction; concurrent batches of one member are then
/// checked under the member's lock and evaluated again when what their rules read
/// changed, so a daily cap holds across them (each award names the count it saw).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_of_one_member_keep_its_daily_cap() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let caps = json!({"points": {"shared": 5}, "daily_cap": {"shared": 3}});
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules", t.slug),
            Some(&owner),
            Some(json!({"name": "caps", "event_type": "shared",
                "script": include_str!("../../../examples/rules/engagement_caps.rhai"), "params": caps})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let key = app.partner_key(&t).await;
    let member = app.member(&t, &phone()).await.0["id"].as_i64().unwrap();
    // Eight clients, three batches each, as at once as the tenant's slots allow.
    let mut clients = Vec::new();
    for c in 0..8 {
        let (app, slug, key) = (app.clone(), t.slug.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..3 {
                let events = json!([{"id": format!("c{c}-{n}"), "type": "shared", "member_id": member}]);
                let (s, _, b) = post_events(&app, &slug, &key, events).await;
                statuses.push((s, b));
            }
            statuses
        }));
    }
    let mut applied = 0;
    for c in clients {
        for (s, b) in c.await.unwrap() {
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(b["results"][0]["status"], "applied", "{b}");
            applied += 1;
        }
    }
    assert_eq!(applied, 24);
    assert_eq!(app.balance(&t, &key, member, "points").await, 15, "three awards of 5, whatever the concurrency");
    app.assert_ledger_sound(&t).await;
}

/// Only the platform operator sets a tenant's limits; staff see them and keep them.
#[tokio::test]
async fn limits_are_set_by_the_operator_and_kept_by_staff_writes() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let path = format!("/v1/platform/tenants/{}/limits", t.slug);
    let (s, b) = app
        .call(Method::PUT, &path, Some(&app.platform_token), Some(json!({"event_batches": 2, "rule_evaluations": 1})))
        .await;
    assert_eq!((s, &b["limits"]), (StatusCode::OK, &json!({"event_batches": 2, "rule_evaluations": 1})), "{b}");
    let (s, b) = app
        .call(Method::PUT, &path, Some(&app.platform_token), Some(json!({"event_batches": 0, "rule_evaluations": 1})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _) =
        app.call(Method::PUT, &path, Some(&owner), Some(json!({"event_batches": 9, "rule_evaluations": 9}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The owner's settings write cannot raise them.
    let settings = format!("/v1/tenants/{}/staff/settings", t.slug);
    let (_, mut current) = app.call(Method::GET, &settings, Some(&owner), None).await;
    assert_eq!(current["limits"]["event_batches"], 2);
    current["limits"] = json!({"event_batches": 64, "rule_evaluations": 64});
    current["locale"] = json!("en");
    let (s, b) = app.call(Method::PUT, &settings, Some(&owner), Some(current)).await;
    assert_eq!((s, &b["limits"]["event_batches"], &b["locale"]), (StatusCode::OK, &json!(2), &json!("en")), "{b}");
    let (_, again) = app.call(Method::GET, &settings, Some(&owner), None).await;
    assert_eq!(again["limits"], json!({"event_batches": 2, "rule_evaluations": 1}));
}
