//! `bench-flash`: a flash sale. One coupon product with stock S, M members with enough
//! points for it, then A redemption attempts (`POST /v1/tenants/{t}/me/redemptions`,
//! a unique `Idempotency-Key` each, members round-robin) from C clients as fast as
//! possible. Prints attempts/s, latency and outcomes, then checks that the result is
//! exact: min(S, A, M) orders, the stock left, every winner charged the price once and
//! nobody else charged, and `pointsmall ledger verify --tenant`.
//!
//! See bench/README.md for how to run it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::api::{self, Api};
use bench::harness::{self, ServerArgs};
use bench::server::{self, Server};
use bench::stats::{Latency, rate, secs};
use bench::{build_kind, build_note, machine_load, progress, random_runid, thousands, verdict};
use clap::Parser;
use platform::auth::tokens::{Audience, TokenKeys};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Attempts per second (with an exact result).
const TARGET_ATTEMPTS_PER_SEC: f64 = 2000.0;

#[derive(Parser)]
#[command(
    name = "bench-flash",
    version,
    about = "Flash sale: many members redeem one coupon at once; checks exactly the stock is sold (prints figures; not a test)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Stock of the coupon on sale.
    #[arg(long, default_value_t = 500)]
    stock: i64,
    /// Members of the bench tenant (created in SQL, credited over HTTP).
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Redemption attempts in all (members round-robin).
    #[arg(long, default_value_t = 5000)]
    attempts: usize,
    /// Clients sending attempts at the same time.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Points price of the coupon; every member is credited twice this.
    #[arg(long, default_value_t = 100)]
    price: i64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-flash: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the attempts answered.
#[derive(Default)]
struct Outcomes {
    created: usize,
    sold_out: usize,
    limit_reached: usize,
    /// Anything else, by status and error code, with a first example.
    other: BTreeMap<String, usize>,
    other_example: Option<String>,
    /// Member id → 201 answers.
    winners: HashMap<i64, usize>,
    /// When the last 201 arrived (from the start of the sale) and how many answers had
    /// arrived by then: splits the sale into the selling phase and the sold-out phase.
    last_win: Option<(Duration, usize)>,
    answered: usize,
}

#[derive(Default)]
struct Report {
    attempts: usize,
    wall: Duration,
    latency: Option<Latency>,
    outcomes: Outcomes,
    checks: Vec<String>,
    verified: Option<String>,
    /// Every check passed (and ledger verify).
    exact: bool,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = harness::connect(&args.server.database_url).await?;
    if args.server.purge {
        return harness::purge(&db).await;
    }
    anyhow::ensure!(args.stock >= 1, "--stock must be at least 1");
    anyhow::ensure!(args.members >= 1, "--members must be at least 1");
    anyhow::ensure!(args.attempts >= 1, "--attempts must be at least 1");
    anyhow::ensure!(args.price >= 1, "--price must be at least 1");
    let runid = random_runid();
    let slug = harness::slug("flash", &runid);
    println!(
        "bench-flash run {runid}: stock {}, {} members, {} attempts, {} clients, price {}, {} build{}; {}",
        args.stock,
        args.members,
        args.attempts,
        args.clients,
        args.price,
        build_kind(),
        build_note(),
        machine_load()
    );
    let mut report = Report::default();
    let outcome = harness::interruptible(run(&args, &db, &runid, &slug, &mut report)).await;
    harness::clean_up(&db, &args.server, &slug, &runid).await;
    print_summary(&args, &runid, &report);
    outcome
}

async fn run(args: &Args, db: &platform::db::Db, runid: &str, slug: &str, report: &mut Report) -> anyhow::Result<()> {
    let bin = server::find_binary(args.server.server_bin.as_deref())?;
    let client = api::client(args.clients)?;
    // The server signs with this secret, so the benchmark can mint member tokens as a
    // login would (no argon2 per member).
    let secret = server::random_string(48);
    let srv = Server::start_with(
        &bin,
        &args.server.database_url,
        args.server.server_log.as_deref(),
        &client,
        &[("POINTSMALL_JWT_SECRET", secret.clone())],
    )
    .await?;
    println!("server: {} at {}", bin.display(), srv.base_url);
    let api = Api::new(client, srv.base_url.clone());

    let started = Instant::now();
    let admin = api::create_platform_admin(db, runid).await?;
    let fixture = api::set_up_tenant(&api, &admin, slug, 0, 1).await.context("setting up the tenant")?;
    let tenant = platform::directory::find_by_slug(db.control(), slug)
        .await?
        .with_context(|| format!("tenant {slug} is not in the directory"))?;

    // Members in SQL (as the integration test does), then credited over HTTP.
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let members: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO members (phone, invite_code) \
         SELECT '1' || lpad(g::text, 10, '0'), 'F' || g FROM generate_series(1, $1::int) g RETURNING id",
    )
    .bind(i32::try_from(args.members).context("--members is too large")?)
    .fetch_all(&mut *tx)
    .await
    .context("inserting members")?;
    tx.commit().await?;
    let credit = args.price * 2;
    let credits = format!("/v1/tenants/{slug}/partner/points/credits");
    for (i, chunk) in members.chunks(500).enumerate() {
        let items: Vec<Value> =
            chunk.iter().map(|m| json!({"member_id": m, "amount": credit, "reference": "bench-flash"})).collect();
        let key = format!("{runid}-credit-{i}");
        api.expect(
            StatusCode::CREATED,
            Method::POST,
            &credits,
            &[("x-api-key", fixture.api_key.as_str()), ("idempotency-key", key.as_str())],
            Some(&json!({ "items": items })),
        )
        .await
        .context("crediting members")?;
    }

    let owner = fixture.owner_auth();
    let product = api
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/v1/tenants/{slug}/staff/products"),
            &[("authorization", owner.as_str())],
            Some(&json!({"name": "Flash coupon", "kind": "coupon", "points_price": args.price, "stock": args.stock,
                "status": "listed", "review_state": "approved", "per_member_limit": 1})),
        )
        .await
        .context("creating the product")?;
    let product_id = product["id"].as_i64().context("the created product has no id")?;

    // A sign-in per member (a session family in the database, as a login makes), minted
    // here rather than by 1,000 argon2 logins.
    let keys = TokenKeys::new(secret.as_bytes())?;
    let mut tokens: Vec<String> = Vec::with_capacity(members.len());
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    for m in &members {
        let session = platform::auth::sessions::open(&mut tx, platform::auth::sessions::Store::Member, *m).await?;
        let (t, _) = keys.issue(Audience::Member, *m, Some(tenant.id), None, None, session.family)?;
        tokens.push(format!("Bearer {t}"));
    }
    tx.commit().await?;
    println!(
        "tenant {slug} (id {}): owner, partner key, {} members with {credit} points each, product {product_id} \
         (stock {}, price {}), set up in {}",
        tenant.id,
        members.len(),
        args.stock,
        args.price,
        secs(started.elapsed())
    );
    harness::settle().await;

    // The sale.
    let url = format!("{}/v1/tenants/{slug}/me/redemptions", api.base);
    let body = json!({ "product_id": product_id });
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let outcomes = Mutex::new(Outcomes::default());
    let bar = progress::bar(args.attempts as u64, "redemption attempts");
    let t0 = Instant::now();
    let loops = (0..args.clients.max(1)).map(|_| {
        let (url, body, next, stop, outcomes, bar, tokens, members, api) =
            (&url, &body, &next, &stop, &outcomes, &bar, &tokens, &members, &api);
        async move {
            let mut latencies = Vec::with_capacity(args.attempts / args.clients.max(1) + 1);
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.attempts {
                    break;
                }
                let m = i % members.len();
                let started = Instant::now();
                let resp = api
                    .client
                    .post(url)
                    .header("authorization", &tokens[m])
                    .header("idempotency-key", format!("{runid}-a{i}"))
                    .json(body)
                    .send()
                    .await;
                let resp = match resp {
                    Ok(r) => r,
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(anyhow::Error::new(e).context(format!("attempt {i}: no answer")));
                    }
                };
                let status = resp.status();
                let text = resp.text().await.with_context(|| format!("attempt {i}: reading the answer"))?;
                latencies.push(started.elapsed());
                bar.inc(1);
                let code = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut o = outcomes.lock().unwrap();
                o.answered += 1;
                match (status, code.as_str()) {
                    (StatusCode::CREATED, _) => {
                        o.created += 1;
                        o.last_win = Some((t0.elapsed(), o.answered));
                        *o.winners.entry(members[m]).or_default() += 1;
                    }
                    (StatusCode::CONFLICT, "sold_out") => o.sold_out += 1,
                    (StatusCode::CONFLICT, "limit_reached") => o.limit_reached += 1,
                    _ => {
                        *o.other.entry(format!("{} {code}", status.as_u16())).or_default() += 1;
                        o.other_example.get_or_insert_with(|| format!("{status}: {}", api::shorten(&text, 400)));
                    }
                }
            }
            Ok(latencies)
        }
    });
    let results = futures::future::join_all(loops).await;
    report.wall = t0.elapsed();
    bar.finish_and_clear();
    let mut all = Vec::with_capacity(args.attempts);
    for r in results {
        all.extend(r?);
    }
    report.attempts = all.len();
    let latency = Latency::of(&all);
    report.outcomes = outcomes.into_inner().unwrap();
    let o = &report.outcomes;
    println!(
        "sale: {} attempts in {}: {} attempts/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.attempts,
        secs(report.wall),
        thousands(rate(report.attempts, report.wall)),
        latency.p50_ms,
        latency.p99_ms,
        latency.max_ms
    );
    println!("{}", describe_outcomes(o));
    if let Some(p) = describe_phases(o, report.wall) {
        println!("{p}");
    }
    report.latency = Some(latency);

    // Exactness.
    let mut errors = Vec::new();
    if !o.other.is_empty() {
        errors.push(format!(
            "{} attempt(s) answered neither 201, sold_out nor limit_reached; first: {}",
            o.other.values().sum::<usize>(),
            o.other_example.as_deref().unwrap_or("?")
        ));
    }
    let reached = args.attempts.min(members.len());
    let want_orders = usize::try_from(args.stock).unwrap_or(usize::MAX).min(reached);
    if o.created != want_orders {
        errors.push(format!("{} attempts answered 201, expected exactly {want_orders}", o.created));
    }
    if let Some((m, n)) = o.winners.iter().find(|(_, n)| **n > 1) {
        errors.push(format!("member {m} won {n} times (per-member limit 1)"));
    }

    let staff_product = api
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/v1/tenants/{slug}/staff/products/{product_id}"),
            &[("authorization", owner.as_str())],
            None,
        )
        .await?;
    let want_stock = args.stock - want_orders as i64;
    let (stock, redeemed) = (staff_product["stock"].as_i64(), staff_product["redeemed_count"].as_i64());
    if stock != Some(want_stock) {
        errors.push(format!("product stock is {stock:?} after the sale, expected {want_stock}"));
    }
    if redeemed != Some(want_orders as i64) {
        errors.push(format!("product redeemed_count is {redeemed:?}, expected {want_orders}"));
    }

    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let order_members: Vec<i64> = sqlx::query_scalar("SELECT member_id FROM orders WHERE product_id = $1")
        .bind(product_id)
        .fetch_all(&mut *tx)
        .await
        .context("reading the orders")?;
    let balances: Vec<(i64, i64)> =
        sqlx::query_as("SELECT member_id, balance FROM accounts WHERE currency = 'points' AND member_id = ANY($1)")
            .bind(&members)
            .fetch_all(&mut *tx)
            .await
            .context("reading the balances")?;
    tx.commit().await?;
    if order_members.len() != want_orders {
        errors.push(format!("{} orders for the product, expected exactly {want_orders}", order_members.len()));
    }
    let distinct: HashSet<i64> = order_members.iter().copied().collect();
    if distinct.len() != order_members.len() {
        errors.push(format!("{} orders but only {} distinct members", order_members.len(), distinct.len()));
    }
    let winners: HashSet<i64> = o.winners.keys().copied().collect();
    if distinct != winners {
        errors.push(format!(
            "the orders' members and the members answered 201 differ ({} vs {})",
            distinct.len(),
            winners.len()
        ));
    }
    if balances.len() != members.len() {
        errors.push(format!("{} points accounts for {} members", balances.len(), members.len()));
    }
    let mut wrong = 0;
    let mut first_wrong = None;
    for (m, balance) in &balances {
        let want = if winners.contains(m) { credit - args.price } else { credit };
        if *balance != want {
            wrong += 1;
            first_wrong.get_or_insert(format!("member {m} has {balance}, expected {want}"));
        }
    }
    if wrong > 0 {
        errors.push(format!("{wrong} balance(s) wrong; first: {}", first_wrong.unwrap_or_default()));
    }
    report.checks.push(format!(
        "{} orders (expected {want_orders}), stock left {} (expected {want_stock}), {} winners charged {} once, \
         {} others untouched: {}",
        order_members.len(),
        stock.map_or("?".into(), |s| s.to_string()),
        winners.len(),
        args.price,
        balances.len().saturating_sub(winners.len()),
        if errors.is_empty() { "exact" } else { "NOT exact" }
    ));

    srv.stop().await?;
    let verified = harness::verify(&bin, &args.server.database_url, slug).await;
    match verified {
        Ok(v) => report.verified = Some(v),
        Err(e) => errors.push(format!("{e:#}")),
    }
    report.exact = errors.is_empty();
    if !errors.is_empty() {
        for e in &errors {
            println!("MISMATCH: {e}");
        }
        bail!("the flash sale result is not exact: {}", errors.join("; "));
    }
    Ok(())
}

fn describe_outcomes(o: &Outcomes) -> String {
    let mut s = format!("outcomes: 201 {}, sold_out {}, limit_reached {}", o.created, o.sold_out, o.limit_reached);
    let other: usize = o.other.values().sum();
    s.push_str(&format!(", other {other}"));
    if other > 0 {
        let parts: Vec<String> = o.other.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

/// "selling: 612 answers in 1.20 s (510/s); after the sell-out: 4388 in 2.19 s (2,003/s)".
fn describe_phases(o: &Outcomes, wall: Duration) -> Option<String> {
    let (at, n) = o.last_win?;
    let rest = o.answered - n;
    let after = wall.saturating_sub(at);
    Some(format!(
        "phases: selling {n} answers in {} ({}/s); after the last 201: {rest} answers in {} ({}/s)",
        secs(at),
        thousands(rate(n, at)),
        secs(after),
        thousands(rate(rest, after))
    ))
}

fn print_summary(args: &Args, runid: &str, report: &Report) {
    println!("\n== summary (run {runid}, {} build, {}) ==", build_kind(), machine_load());
    let Some(latency) = &report.latency else {
        println!("no sale measured");
        return;
    };
    let per_sec = rate(report.attempts, report.wall);
    let exact = report.exact;
    println!(
        "flash sale: stock {}, {} members, {} attempts from {} clients in {}: {} attempts/s, latency p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        args.stock,
        args.members,
        report.attempts,
        args.clients,
        secs(report.wall),
        thousands(per_sec),
        latency.p50_ms,
        latency.p99_ms,
        latency.max_ms
    );
    println!("{}", describe_outcomes(&report.outcomes));
    if let Some(p) = describe_phases(&report.outcomes, report.wall) {
        println!("{p}");
    }
    for c in &report.checks {
        println!("check: {c}");
    }
    if let Some(v) = &report.verified {
        println!("ledger verify: {v}");
    }
    println!(
        "target ≥ {} attempts/s with an exact result: {}",
        thousands(TARGET_ATTEMPTS_PER_SEC),
        verdict(exact && per_sec >= TARGET_ATTEMPTS_PER_SEC)
    );
}
