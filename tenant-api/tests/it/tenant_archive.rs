//! Tenant export, import and delete (SPEC T2, issue 13 point 9): a mall exported and
//! imported into a fresh database verifies and has every balance, order, staff login, API
//! key and file it had; delete leaves no schema, no files and a tombstoned slug; a
//! corrupt archive, a taken or tombstoned slug and unsettled alliance entries are refused
//! with nothing written.

use std::io::Read;
use std::path::{Path, PathBuf};

use platform::audit::Actor;
use platform::auth::rate_limit::LoginLimiter;
use platform::directory::Tenant;
use platform::storage::Storage;
use platform::tenant_archive;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_api::server::StorageConfig;

use crate::alliance::{Alliance, SHARED, alliance, mall_in};
use crate::common::{TestApp, database_url, phone, unique};

/// A 1×1 PNG.
const PNG: &str = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082";

fn quiet(_: &str) {}

/// A mall of a new alliance whose member was credited 100 shared points (alliance entries
/// not settled yet).
async fn mall_with_unsettled_shared_points(app: &TestApp) -> (Alliance, platform::directory::Tenant) {
    let a = alliance(app).await;
    let m = mall_in(app, &a.slug).await;
    let key = app.partner_key(&m).await;
    let (member, _) = app.proven_member(&m, &phone()).await;
    let items = json!({"items": [{"member_id": member["id"], "amount": 100, "currency": SHARED}]});
    let (s, b) = app.partner_post(&m, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (a, m)
}

/// A test server with its files in a folder the test knows.
async fn app_on(url: &str) -> (TestApp, Storage) {
    let dir = std::env::temp_dir().join(unique("pointsmall-files"));
    let app = TestApp::spawn_on(url, LoginLimiter::default(), StorageConfig::Local(dir.clone()), None).await;
    (app, Storage::local(dir))
}

/// A fresh database on the same cluster, with its control schema.
async fn fresh_database() -> String {
    let url = database_url();
    let name = unique("import").replace('-', "_");
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let (base, rest) = url.rsplit_once('/').unwrap();
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    let fresh = format!("{base}/{name}{query}");
    let db = platform::db::Db::connect(&fresh, &[], 2).await.unwrap();
    platform::migrate::migrate_control(db.control()).await.unwrap();
    fresh
}

struct Mall {
    tenant: Tenant,
    owner_email: String,
    key: String,
    members: Vec<i64>,
    image: String,
}

/// A mall with two members, points earned and spent, an order, a product image, staff
/// and an API key.
async fn busy_mall(app: &TestApp) -> Mall {
    let t = app.tenant().await;
    let (owner_email, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let (s, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(&owner),
            Some(json!({"name": "保温杯 Flask", "kind": "physical", "points_price": 300, "stock": 5,
                "status": "listed", "review_state": "approved"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let resp = app
        .client
        .post(format!("{}/v1/tenants/{}/staff/products/{}/images", app.base, t.slug, p["id"]))
        .bearer_auth(&owner)
        .header("content-type", "image/png")
        .body(hex::decode(PNG).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let image = resp.json::<Value>().await.unwrap()["images"][0].as_str().unwrap().to_string();
    let mut members = Vec::new();
    for amount in [1000, 250] {
        let (m, tokens) = app.member(&t, &phone()).await;
        let id = m["id"].as_i64().unwrap();
        app.credit(&t, &key, id, amount, None).await;
        members.push(id);
        if amount == 1000 {
            let token = tokens["access_token"].as_str().unwrap();
            let (s, addr) = app
                .call(
                    Method::POST,
                    &format!("/v1/tenants/{}/me/addresses", t.slug),
                    Some(token),
                    Some(json!({"name": "张三", "phone": "13800001111", "region": "上海市", "detail": "人民路 1 号"})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{addr}");
            let mut headers = crate::common::auth_headers(Some(token));
            headers.push(("idempotency-key", unique("r")));
            let body = json!({"product_id": p["id"], "address_id": addr["id"]});
            let (s, _, o) = app
                .call_full(Method::POST, &format!("/v1/tenants/{}/me/redemptions", t.slug), &headers, Some(body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{o}");
        }
    }
    Mall { tenant: t, owner_email, key, members, image }
}

/// Every account's balance and locked points, by member and currency.
async fn balances(app: &TestApp, t: &Tenant) -> Vec<(i64, String, i64, i64)> {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let rows = sqlx::query_as("SELECT member_id, currency, balance, locked FROM accounts ORDER BY 1, 2")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(app.db.control()).await.unwrap()
}

fn archive_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.tar.gz", unique("mall")))
}

async fn staff_orders(app: &TestApp, t: &Tenant, email: &str) -> Vec<Value> {
    let tokens = app.staff_login(t, email).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (s, orders) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/orders", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{orders}");
    orders["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mall_exported_and_imported_into_a_fresh_database_verifies_with_identical_balances() {
    let (app, storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let t = &mall.tenant;
    let before = balances(&app, t).await;
    assert!(before.len() >= 2 && before.iter().any(|b| b.2 == 700), "{before:?}");
    let orders_before = staff_orders(&app, t, &mall.owner_email).await;
    assert_eq!(orders_before.len(), 1);

    let file = archive_path();
    let m = tenant_archive::export(&app.db, &storage, &t.slug, &file, &quiet).await.unwrap();
    assert_eq!(m.tenant_migration, migrations::TENANT.last().unwrap().version);
    assert!(m.entries.iter().any(|e| e.path.starts_with("files/products/")), "{:?}", m.entries);
    assert!(m.entries.iter().all(|e| e.sha256.len() == 64));

    // Into a fresh database under the same slug.
    let (app2, storage2) = app_on(&fresh_database().await).await;
    let r = tenant_archive::import(&app2.db, &storage2, &file, None, &Actor::system("test"), &quiet).await.unwrap();
    assert_eq!(
        (r.tenant.slug.as_str(), r.files, r.staff, r.api_keys_skipped),
        (t.slug.as_str(), 1, 2, 0),
        "the owner and the key's creator"
    );
    let t2 = r.tenant;
    app2.assert_ledger_sound(&t2).await;
    assert_eq!(balances(&app2, &t2).await, before, "every balance identical");
    // The same partner key, staff password and member data work there.
    for &member in &mall.members {
        assert_eq!(app2.points(&t2, &mall.key, member).await, app.points(t, &mall.key, member).await);
    }
    let orders_after = staff_orders(&app2, &t2, &mall.owner_email).await;
    assert_eq!(orders_after, orders_before);
    // The file is readable at the same address.
    let got = app2.client.get(format!("{}{}", app2.base, mall.image)).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), hex::decode(PNG).unwrap());
    // The mall goes on working: a new credit lands after the imported entries.
    app2.credit(&t2, &mall.key, mall.members[1], 5, None).await;
    assert_eq!(app2.balance(&t2, &mall.key, mall.members[1], "points").await, 255);
    app2.assert_ledger_sound(&t2).await;

    // Into the same database beside the original, under a new slug: its file addresses
    // follow the slug; the API key stays with the original mall.
    let new_slug = unique("copy");
    let r = tenant_archive::import(&app.db, &storage, &file, Some(&new_slug), &Actor::system("test"), &quiet)
        .await
        .unwrap();
    assert_eq!((r.api_keys, r.api_keys_skipped), (0, 1));
    let copy = r.tenant;
    assert_eq!(balances(&app, &copy).await, before);
    let mut tx = app.db.tenant_tx(&copy.cluster, &copy.schema_name).await.unwrap();
    let url: String = sqlx::query_scalar("SELECT images[1] FROM products").fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(url.starts_with(&format!("/v1/tenants/{new_slug}/files/")), "{url}");
    let got = app.client.get(format!("{}{url}", app.base)).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    // The same slug again: refused.
    let e = tenant_archive::import(&app.db, &storage, &file, None, &Actor::system("test"), &quiet).await.unwrap_err();
    assert_eq!(e.code(), "slug_taken");
}

/// Rewrites the archive with `change` applied to one entry's bytes, keeping its manifest.
/// Issue 13 point 9: a mall in an alliance is exported with its alliance and its members'
/// shared positions (read in the same snapshot); imported into a fresh database it is a
/// standalone mall: ledger verify passes, every private balance is identical, the links
/// to alliance identities are cleared, the product priced in shared points is delisted,
/// and the import report names what stays with the alliance. Beside the original, the
/// alliance's ledger is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alliance_mall_exported_and_imported_into_a_fresh_database_is_standalone() {
    let (app, storage) = app_on(&database_url()).await;
    let a = alliance(&app).await;
    let m = mall_in(&app, &a.slug).await;
    let (_, owner) = app.staff(&m, "owner").await;
    let key = app.partner_key(&m).await;
    let (rich, rich_tokens) = app.proven_member(&m, &phone()).await;
    let (poor, _) = app.proven_member(&m, &phone()).await;
    let (rich, poor) = (rich["id"].as_i64().unwrap(), poor["id"].as_i64().unwrap());
    app.credit(&m, &key, rich, 500, None).await;
    app.credit(&m, &key, poor, 200, None).await;
    let items = json!({"items": [{"member_id": rich, "amount": 300, "currency": SHARED}]});
    let (s, b) = app.partner_post(&m, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let coupon = crate::alliance::product(&app, &m, &owner, SHARED, 100).await;
    let (s, o) = crate::alliance::redeem(&app, &m, rich_tokens["access_token"].as_str().unwrap(), coupon).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(app.balance(&m, &key, rich, SHARED).await, 200);
    // An open hold of 50 shared points (its entry is in the alliance's ledger).
    let hold = json!({"member_id": rich, "amount": 50, "currency": SHARED});
    let (s, h) = app.partner_post(&m, &key, "/holds", &unique("h"), hold).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::CREATED, Some("held")), "{h}");
    assert_eq!(app.balance(&m, &key, rich, SHARED).await, 150);
    let before = balances(&app, &m).await;
    assert!(before.iter().all(|b| b.1 != SHARED), "no shared account in the mall's schema: {before:?}");

    let file = archive_path();
    let manifest = tenant_archive::export(&app.db, &storage, &m.slug, &file, &quiet).await.unwrap();
    let al = manifest.alliance.clone().expect("the archive names its alliance");
    assert_eq!((al.id.get(), al.slug.as_str(), al.currency_code.as_str()), (a.id, a.slug.as_str(), SHARED));
    // The member with no shared points was never linked to an identity.
    assert_eq!((al.linked_members, al.members_with_shared_points, al.shared_balance), (1, 1, 150));
    assert!(al.unsettled_entries >= 3, "the credit, the redemption and the hold: {al:?}");
    assert!(manifest.entries.iter().any(|e| e.path == "alliance/positions.copy"), "{:?}", manifest.entries);

    // Into a fresh database (where the alliance does not exist): a standalone mall.
    let (app2, storage2) = app_on(&fresh_database().await).await;
    let r = tenant_archive::import(&app2.db, &storage2, &file, None, &Actor::system("test"), &quiet).await.unwrap();
    let left = r.alliance.clone().expect("the report says what stays with the alliance");
    assert_eq!(left.alliance.as_deref(), Some(a.slug.as_str()));
    assert_eq!(left.shared_currencies, vec![SHARED.to_string()]);
    assert_eq!((left.links_cleared, left.members_with_shared_points, left.shared_balance), (1, 1, 150));
    assert_eq!((left.delisted_products, left.shared_holds_closed), (1, 1));
    let t2 = r.tenant;
    assert_eq!(t2.alliance_id, None);
    app2.assert_ledger_sound(&t2).await;
    assert_eq!(balances(&app2, &t2).await, before, "every private balance identical");
    assert_eq!(app2.balance(&t2, &key, rich, "points").await, 500);
    let mut tx = app2.db.tenant_tx(&t2.cluster, &t2.schema_name).await.unwrap();
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM members WHERE alliance_member_id IS NOT NULL")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let status: String =
        sqlx::query_scalar("SELECT status FROM products WHERE id = $1").bind(coupon).fetch_one(&mut *tx).await.unwrap();
    let held: String = sqlx::query_scalar("SELECT status FROM holds WHERE id = $1")
        .bind(h["id"].as_i64())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((linked, status.as_str(), held.as_str()), (0, "delisted", "voided"));
    let audited = "SELECT details->'alliance'->>'members_with_shared_points' FROM control.audit_log \
                   WHERE action = 'tenant.import'";
    let n: Option<String> = sqlx::query_scalar(audited).fetch_one(app2.db.control()).await.unwrap();
    assert_eq!(n.as_deref(), Some("1"), "the audit row names what stayed with the alliance");
    // It goes on as a mall of its own.
    app2.credit(&t2, &key, poor, 5, None).await;
    assert_eq!(app2.balance(&t2, &key, poor, "points").await, 205);
    // The order paid in shared points cannot be refunded here (the alliance's ledger
    // stayed behind): a clear refusal, and the order stays as it was.
    let (_, owner2) = app2.staff(&t2, "owner").await;
    let refund = format!("/v1/tenants/{}/staff/orders/{}/refund", t2.slug, o["id"]);
    let (s, b) = app2.call(Method::POST, &refund, Some(&owner2), Some(json!({"note": "after the move"}))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("alliance_ledger_elsewhere")), "{b}");
    let order = format!("/v1/tenants/{}/staff/orders/{}", t2.slug, o["id"]);
    let (s, b) = app2.call(Method::GET, &order, Some(&owner2), None).await;
    assert_eq!((s, &b["status"]), (StatusCode::OK, &o["status"]), "{b}");
    app2.assert_ledger_sound(&t2).await;

    // Beside the original, under a new slug: standalone too; the alliance's ledger and the
    // member's shared balance in the original mall are untouched.
    let r = tenant_archive::import(&app.db, &storage, &file, Some(&unique("copy")), &Actor::system("test"), &quiet)
        .await
        .unwrap();
    assert_eq!((r.tenant.alliance_id, r.alliance.unwrap().links_cleared), (None, 1));
    app.assert_ledger_sound(&r.tenant).await;
    assert_eq!(balances(&app, &r.tenant).await, before);
    assert_eq!(app.balance(&m, &key, rich, SHARED).await, 150, "the original's hold still holds");
    crate::alliance::assert_alliance_ledger_sound(&app, &a).await;
    let still_in = platform::directory::find_by_slug(app.db.control(), &m.slug).await.unwrap().unwrap();
    assert_eq!(still_in.alliance_id.map(|x| x.get()), Some(a.id));
    // The standalone copy can join the alliance the usual way.
    let joined =
        platform::tenancy::join_alliance(&app.db, &r.tenant.slug, &a.slug, &Actor::system("test")).await.unwrap();
    assert_eq!(joined.alliance_id.map(|x| x.get()), Some(a.id));
    app.assert_ledger_sound(&joined).await;
}

fn tamper(from: &Path, to: &Path, entry_prefix: &str, change: impl Fn(&mut Vec<u8>)) {
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(from).unwrap()));
    let out = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(out);
    let mut changed = false;
    for e in input.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if !changed && name.starts_with(entry_prefix) {
            change(&mut bytes);
            changed = true;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, &name, bytes.as_slice()).unwrap();
    }
    assert!(changed, "no entry {entry_prefix}");
    builder.into_inner().unwrap().finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_archive_or_another_version_writes_nothing() {
    let (app, storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let file = archive_path();
    tenant_archive::export(&app.db, &storage, &mall.tenant.slug, &file, &quiet).await.unwrap();
    // Other tests create malls meanwhile: what is checked is that no mall of the tried
    // slugs exists and that no schema is left without its directory row.
    let prefix = unique("bad");
    let import = |path: PathBuf| {
        let (db, storage, slug) = (app.db.clone(), storage.clone(), unique(&prefix));
        async move {
            tenant_archive::import(&db, &storage, &path, Some(&slug), &Actor::system("test"), &quiet)
                .await
                .unwrap_err()
                .code()
        }
    };
    // One byte of the ledger's data changed: its checksum no longer matches.
    let bad = archive_path();
    tamper(&file, &bad, "data/entries.copy", |b| {
        let i = b.iter().position(|c| c.is_ascii_digit()).unwrap();
        b[i] = if b[i] == b'9' { b'8' } else { b[i] + 1 };
    });
    assert_eq!(import(bad.clone()).await, "archive_checksum_mismatch");
    // A file changed likewise.
    tamper(&file, &bad, "files/", |b| b.push(0));
    assert_eq!(import(bad.clone()).await, "archive_checksum_mismatch");
    // Another migration version, another format, not an archive at all.
    tamper(&file, &bad, "manifest.json", |b| {
        let mut m: Value = serde_json::from_slice(b).unwrap();
        m["tenant_migration"] = json!(1);
        *b = serde_json::to_vec(&m).unwrap();
    });
    assert_eq!(import(bad.clone()).await, "archive_version_unsupported");
    tamper(&file, &bad, "manifest.json", |b| {
        let mut m: Value = serde_json::from_slice(b).unwrap();
        m["format_version"] = json!(99);
        *b = serde_json::to_vec(&m).unwrap();
    });
    assert_eq!(import(bad.clone()).await, "archive_invalid");
    std::fs::write(&bad, b"not a tar.gz").unwrap();
    assert_eq!(import(bad.clone()).await, "archive_invalid");
    let tried = format!("SELECT count(*) FROM control.tenants WHERE slug LIKE '{prefix}-%'");
    assert_eq!(count(&app, &tried).await, 0, "no directory row written");
    let orphans = "SELECT count(*) FROM pg_namespace n WHERE nspname LIKE 't\\_%' \
                   AND NOT EXISTS (SELECT 1 FROM control.tenants t WHERE t.schema_name = n.nspname)";
    assert_eq!(count(&app, orphans).await, 0, "no schema written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_drops_the_schema_and_files_and_tombstones_the_slug() {
    let (app, storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let t = &mall.tenant;
    let file = archive_path();
    tenant_archive::export(&app.db, &storage, &t.slug, &file, &quiet).await.unwrap();
    assert!(!storage.list(&format!("t{}/", t.id)).await.unwrap().is_empty());

    let e = tenant_archive::delete(&app.db, &storage, &t.slug, "another", &Actor::cli()).await.unwrap_err();
    assert_eq!(e.code(), "validation_failed");
    let d = tenant_archive::delete(&app.db, &storage, &t.slug, &t.slug, &Actor::cli()).await.unwrap();
    assert_eq!((d.schema_name.as_str(), d.files_deleted), (t.schema_name.as_str(), 1));
    let schema = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{}'", t.schema_name);
    assert_eq!(count(&app, &schema).await, 0, "no schema left");
    assert!(platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().is_none());
    assert!(storage.list(&format!("t{}/", t.id)).await.unwrap().is_empty(), "no files left");
    let staff = format!("SELECT count(*) FROM control.staff_users WHERE tenant_id = {}", t.id);
    assert_eq!(count(&app, &staff).await, 0);
    let audited =
        format!("SELECT count(*) FROM control.audit_log WHERE tenant_id = {} AND action = 'tenant.delete'", t.id);
    assert_eq!(count(&app, &audited).await, 1);
    assert!(tenant_archive::tombstones(&app.db).await.unwrap().iter().any(|s| s.slug == t.slug));
    // The mall is gone from its API; its slug cannot be taken again, by a new mall or an
    // import.
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/products", t.slug), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            Some(&app.platform_token),
            Some(json!({"slug": t.slug, "name": "Again"})),
        )
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("slug_tombstoned")), "{b}");
    let e = tenant_archive::import(&app.db, &storage, &file, None, &Actor::cli(), &quiet).await.unwrap_err();
    assert_eq!(e.code(), "slug_tombstoned");
    // Under another slug the archive still comes back whole.
    let r =
        tenant_archive::import(&app.db, &storage, &file, Some(&unique("back")), &Actor::cli(), &quiet).await.unwrap();
    app.assert_ledger_sound(&r.tenant).await;
    let tokens = app.staff_login(&r.tenant, &mall.owner_email).await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mall_with_unsettled_alliance_entries_is_not_deleted() {
    let (app, storage) = app_on(&database_url()).await;
    let (a, m) = mall_with_unsettled_shared_points(&app).await;
    let e = tenant_archive::delete(&app.db, &storage, &m.slug, &m.slug, &Actor::cli()).await.unwrap_err();
    assert_eq!(e.code(), "alliance_positions_unsettled");
    let schema = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{}'", m.schema_name);
    assert_eq!(count(&app, &schema).await, 1, "kept");
    // A mall of an alliance with nothing to settle goes.
    let quiet_mall = mall_in(&app, &a.slug).await;
    tenant_archive::delete(&app.db, &storage, &quiet_mall.slug, &quiet_mall.slug, &Actor::cli()).await.unwrap();
}

/// Issue 14 point 4: the platform operator downloads a mall's archive over HTTP; the
/// download imports back whole with the module's import; it is audited; a merchant's
/// staff token opens none of these routes; a mall in an alliance downloads too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_downloads_an_archive_that_imports_back_whole() {
    let (app, storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let t = &mall.tenant;
    let before = balances(&app, t).await;

    let resp = app
        .client
        .get(format!("{}/v1/platform/tenants/{}/export", app.base, t.slug))
        .bearer_auth(&app.platform_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    let date = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(disposition, format!("attachment; filename=\"{}-{date}.tar.gz\"", t.slug));
    let bytes = resp.bytes().await.unwrap();
    let file = archive_path();
    std::fs::write(&file, &bytes).unwrap();
    let audited =
        format!("SELECT count(*) FROM control.audit_log WHERE tenant_id = {} AND action = 'tenant.export'", t.id);
    assert_eq!(count(&app, &audited).await, 1);

    // The download is a whole archive: it imports beside the original under a new slug.
    let r = tenant_archive::import(&app.db, &storage, &file, Some(&unique("http")), &Actor::system("test"), &quiet)
        .await
        .unwrap();
    assert_eq!((r.files, r.staff), (1, 2));
    app.assert_ledger_sound(&r.tenant).await;
    assert_eq!(balances(&app, &r.tenant).await, before, "every balance identical");
    let tokens = app.staff_login(&r.tenant, &mall.owner_email).await;
    assert!(tokens["access_token"].is_string());

    // A merchant's staff token (even the mall's owner) opens none of the operator's routes.
    let owner = app.staff_login(t, &mall.owner_email).await["access_token"].as_str().unwrap().to_string();
    for (method, path, body) in [
        (Method::GET, format!("/v1/platform/tenants/{}/export", t.slug), None),
        (Method::DELETE, format!("/v1/platform/tenants/{}", t.slug), Some(json!({"confirm": t.slug}))),
        (Method::GET, "/v1/platform/tombstones".to_string(), None),
    ] {
        let (s, b) = app.call(method.clone(), &path, Some(&owner), body.clone()).await;
        assert!(matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{method} {path}: {s} {b}");
        let (s, b) = app.call(method.clone(), &path, None, body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {b}");
    }
    assert!(platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().is_some(), "still there");

    // A mall in an alliance downloads too; refusals come back as JSON errors.
    let a = alliance(&app).await;
    let m = mall_in(&app, &a.slug).await;
    assert!(download(&app, &m.slug).await.len() > 100);
    let (s, b) =
        app.call(Method::GET, "/v1/platform/tenants/no-such-mall-here/export", Some(&app.platform_token), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("tenant_not_found")), "{b}");
}

/// Issue 14 point 4: delete over HTTP asks for the slug again, then the mall is gone and
/// its slug is listed among the tombstones with who deleted it; unsettled alliance
/// entries refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_deletes_a_mall_by_typing_its_slug_and_sees_the_tombstone() {
    let (app, _storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let t = &mall.tenant;
    let path = format!("/v1/platform/tenants/{}", t.slug);
    let token = Some(app.platform_token.as_str());

    let (s, b) = app.call(Method::DELETE, &path, token, Some(json!({"confirm": "another"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"]["fields"][0]["field"], "confirm", "{b}");
    assert!(platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().is_some(), "kept");
    let (s, b) = app.call(Method::DELETE, &path, token, Some(json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    let (s, b) = app.call(Method::DELETE, &path, token, Some(json!({"confirm": t.slug}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["slug"].as_str(), b["files_deleted"].as_i64()), (Some(t.slug.as_str()), Some(1)), "{b}");
    let (s, _) = app.call(Method::GET, &format!("/v1/platform/tenants/{}", t.slug), token, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/products", t.slug), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, list) = app.call(Method::GET, "/v1/platform/tenants", token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!list.as_array().unwrap().iter().any(|x| x["slug"] == t.slug.as_str()), "gone from the list");

    let (s, stones) = app.call(Method::GET, "/v1/platform/tombstones", token, None).await;
    assert_eq!(s, StatusCode::OK, "{stones}");
    let stone = stones.as_array().unwrap().iter().find(|x| x["slug"] == t.slug.as_str()).cloned();
    let stone = stone.unwrap_or_else(|| panic!("{} not among {stones}", t.slug));
    assert_eq!(stone["name"], t.name.as_str());
    assert!(stone["deleted_by"].as_str().unwrap().starts_with("platform:"), "{stone}");
    assert!(stone["deleted_at"].is_string());
    // A second delete finds nothing.
    let (s, b) = app.call(Method::DELETE, &path, token, Some(json!({"confirm": t.slug}))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("tenant_not_found")), "{b}");

    // Unsettled alliance entries: 409, the mall stays.
    let (_, m) = mall_with_unsettled_shared_points(&app).await;
    let (s, b) = app
        .call(Method::DELETE, &format!("/v1/platform/tenants/{}", m.slug), token, Some(json!({"confirm": m.slug})))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("alliance_positions_unsettled")), "{b}");
    assert!(platform::directory::find_by_slug(app.db.control(), &m.slug).await.unwrap().is_some(), "kept");
}

/// POSTs `body` to the operator's import route (under `slug` when given).
async fn import_over_http(
    app: &TestApp,
    token: Option<&str>,
    slug: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app.client.post(format!("{}/v1/platform/tenants/import", app.base));
    if let Some(slug) = slug {
        req = req.query(&[("slug", slug)]);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.header("content-type", "application/gzip").body(body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

/// Downloads a mall's archive from the operator's export route.
async fn download(app: &TestApp, slug: &str) -> Vec<u8> {
    let resp = app
        .client
        .get(format!("{}/v1/platform/tenants/{slug}/export", app.base))
        .bearer_auth(&app.platform_token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap().to_vec();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes[..bytes.len().min(500)]));
    bytes
}

/// Issue 13 point 9: the operator uploads an archive downloaded from the export route
/// and gets the mall back under a new slug, audited, with every balance; a corrupt
/// archive, another version, a taken or tombstoned slug and a bad slug are JSON 4xx with
/// nothing written; a merchant's token cannot import; an alliance mall's archive comes
/// back standalone with what stays with the alliance in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_uploads_an_archive_and_gets_the_mall_back() {
    let (app, _storage) = app_on(&database_url()).await;
    let mall = busy_mall(&app).await;
    let t = &mall.tenant;
    let before = balances(&app, t).await;
    let archive = download(&app, &t.slug).await;
    let token = Some(app.platform_token.as_str());

    let slug = unique("up");
    let (s, r) = import_over_http(&app, token, Some(&slug), archive.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        (r["tenant"]["slug"].as_str(), r["files"].as_i64(), r["staff"].as_i64()),
        (Some(slug.as_str()), Some(1), Some(2))
    );
    assert!(r["entries"].as_i64().unwrap() > 0, "ledger verified: {r}");
    assert!(r.get("alliance").is_none(), "{r}");
    let copy = platform::directory::find_by_slug(app.db.control(), &slug).await.unwrap().unwrap();
    app.assert_ledger_sound(&copy).await;
    assert_eq!(balances(&app, &copy).await, before, "every balance identical");
    let tokens = app.staff_login(&copy, &mall.owner_email).await;
    assert!(tokens["access_token"].is_string());
    let (s, list) = app.call(Method::GET, "/v1/platform/tenants", token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.as_array().unwrap().iter().any(|x| x["slug"] == slug.as_str()), "listed");
    let audited = format!(
        "SELECT count(*) FROM control.audit_log WHERE tenant_id = {} AND action = 'tenant.import' \
         AND actor_label LIKE 'platform:%'",
        copy.id
    );
    assert_eq!(count(&app, &audited).await, 1, "audited as the operator");

    // Refusals: JSON errors, nothing written.
    let prefix = unique("nope");
    let tried = format!("SELECT count(*) FROM control.tenants WHERE slug LIKE '{prefix}%'");
    let (s, b) = import_over_http(&app, token, Some(&format!("{prefix}-a")), b"not a tar.gz".to_vec()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("archive_invalid")), "{b}");
    let (s, b) = import_over_http(&app, token, Some(&format!("{prefix}-b")), Vec::new()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("archive_invalid")), "{b}");
    let (file, bad) = (archive_path(), archive_path());
    std::fs::write(&file, &archive).unwrap();
    tamper(&file, &bad, "data/entries.copy", |b| b.push(b'\n'));
    let (s, b) = import_over_http(&app, token, Some(&format!("{prefix}-c")), std::fs::read(&bad).unwrap()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("archive_checksum_mismatch")), "{b}");
    tamper(&file, &bad, "manifest.json", |b| {
        let mut m: Value = serde_json::from_slice(b).unwrap();
        m["tenant_migration"] = json!(1);
        *b = serde_json::to_vec(&m).unwrap();
    });
    let (s, b) = import_over_http(&app, token, Some(&format!("{prefix}-d")), std::fs::read(&bad).unwrap()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("archive_version_unsupported")), "{b}");
    // The archive's own slug is taken (the original is there), so is the copy's.
    let (s, b) = import_over_http(&app, token, None, archive.clone()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("slug_taken")), "{b}");
    let (s, b) = import_over_http(&app, token, Some("Not A Slug"), archive.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(count(&app, &tried).await, 0, "no directory row written");
    // A deleted mall's slug stays refused.
    let (s, b) =
        app.call(Method::DELETE, &format!("/v1/platform/tenants/{slug}"), token, Some(json!({"confirm": slug}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = import_over_http(&app, token, Some(&slug), archive.clone()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("slug_tombstoned")), "{b}");
    // No credential, or a merchant's: no import.
    let (s, _) = import_over_http(&app, None, Some(&format!("{prefix}-e")), archive.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let owner = app.staff_login(t, &mall.owner_email).await["access_token"].as_str().unwrap().to_string();
    let (s, _) = import_over_http(&app, Some(&owner), Some(&format!("{prefix}-f")), archive.clone()).await;
    assert!(matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{s}");
    assert_eq!(count(&app, &tried).await, 0, "no directory row written");

    // An alliance mall's archive: standalone, and the answer says what stays behind.
    let a = alliance(&app).await;
    let m = mall_in(&app, &a.slug).await;
    let key = app.partner_key(&m).await;
    let (member, _) = app.proven_member(&m, &phone()).await;
    let items = json!({"items": [{"member_id": member["id"], "amount": 40, "currency": SHARED}]});
    let (s, b) = app.partner_post(&m, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let slug = unique("solo");
    let (s, r) = import_over_http(&app, token, Some(&slug), download(&app, &m.slug).await).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["tenant"]["alliance_id"], Value::Null, "{r}");
    let left = &r["alliance"];
    assert_eq!(left["alliance"].as_str(), Some(a.slug.as_str()), "{r}");
    assert_eq!(
        (left["links_cleared"].as_i64(), left["members_with_shared_points"].as_i64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(left["shared_balance"].as_i64(), Some(40), "{r}");
}
