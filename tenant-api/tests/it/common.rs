//! Test harness: the real application on a random port against the real PostgreSQL
//! named by DATABASE_URL (scripts/test.sh starts one), with fresh tenants per test.
#![allow(dead_code)]

use std::net::SocketAddr;

use platform::audit::Actor;
use platform::auth::rate_limit::LoginLimiter;
use platform::db::Db;
use platform::directory::Tenant;
use platform::rbac::Role;
use platform::staff::{self, NewStaff, Scope};
use platform::tenancy::{self, NewTenant};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_api::server::ServerConfig;

pub const PASSWORD: &str = "test-password-1";

pub struct TestApp {
    pub base: String,
    pub db: Db,
    pub secret: Vec<u8>,
    pub client: reqwest::Client,
    pub platform_token: String,
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL must point at a test PostgreSQL (scripts/test.sh sets it)")
}

/// A short random lowercase suffix for unique slugs and e-mails.
pub fn unique(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}-{:x}", n & 0xffff_ffff_ffff)
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_limiter(LoginLimiter::default()).await
    }

    pub async fn spawn_with_limiter(limiter: LoginLimiter) -> Self {
        let dir = std::env::temp_dir().join(unique("pointsmall-files"));
        Self::spawn_with(limiter, tenant_api::server::StorageConfig::Local(dir)).await
    }

    pub async fn spawn_with(limiter: LoginLimiter, storage: tenant_api::server::StorageConfig) -> Self {
        Self::spawn_on(&database_url(), limiter, storage, None).await
    }

    /// Another server on the same database with the same signing secret (and so the same
    /// key sealing secrets at rest): a restart of `other`.
    pub async fn spawn_like(other: &TestApp) -> Self {
        let dir = std::env::temp_dir().join(unique("pointsmall-files"));
        let secret = String::from_utf8(other.secret.clone()).unwrap();
        Self::spawn_on(
            &database_url(),
            LoginLimiter::default(),
            tenant_api::server::StorageConfig::Local(dir),
            Some(secret),
        )
        .await
    }

    /// A test server whose database is reached through `url` (e.g. a proxy the test
    /// controls; `app.db` goes through it too).
    pub async fn spawn_through(url: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("pointsmall-files"));
        Self::spawn_on(url, LoginLimiter::default(), tenant_api::server::StorageConfig::Local(dir), None).await
    }

    pub async fn spawn_on(
        url: &str,
        limiter: LoginLimiter,
        storage: tenant_api::server::StorageConfig,
        secret: Option<String>,
    ) -> Self {
        let url = url.to_string();
        let secret = secret.unwrap_or_else(|| unique("secret-secret-secret-secret-secret"));
        let cfg = ServerConfig {
            database_url: url,
            extra_clusters: vec![],
            jwt_secret: secret.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            db_max_connections: 16,
            storage,
            secrets_keys: None,
            webhooks_allow_private: true,
        };
        let boot = platform::db::Db::connect(&database_url(), &[], 2).await.expect("connect to DATABASE_URL");
        platform::migrate::migrate_control(boot.control()).await.expect("migrate control schema");
        // Login counters live in the shared database: each test server counts its own.
        let limiter = limiter.namespaced(&unique("test"));
        let state = tenant_api::server::state_with(&cfg, limiter, None).await.expect("app state");
        let db = state.db.clone();
        let secret = secret.into_bytes();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let app = tenant_api::app::build(state);
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let mut app = Self {
            base: format!("http://{addr}"),
            db,
            secret,
            client: english_client(),
            platform_token: String::new(),
        };
        let email = format!("{}@platform.test", unique("op"));
        let mut conn = app.db.control().acquire().await.unwrap();
        staff::create(
            &mut conn,
            Scope::Platform,
            &NewStaff {
                email: email.clone(),
                password: PASSWORD.into(),
                role: Role::PlatformAdmin,
                display_name: String::new(),
            },
            &Actor::system("test"),
        )
        .await
        .unwrap();
        let (status, body) = app
            .call(Method::POST, "/v1/platform/auth/login", None, Some(json!({"email": email, "password": PASSWORD})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.platform_token = body["access_token"].as_str().unwrap().to_string();
        app
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(method, path, &auth_headers(token), body).await;
        (status, body)
    }

    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, headers, json)
    }

    /// A fresh tenant, created through the platform API.
    pub async fn tenant(&self) -> Tenant {
        let slug = unique("t");
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/platform/tenants",
                Some(&self.platform_token),
                Some(json!({"slug": slug, "name": "Test mall"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        platform::directory::find_by_slug(self.db.control(), &slug).await.unwrap().unwrap()
    }

    /// Creates a tenant directly through the domain (no HTTP).
    pub async fn tenant_direct(&self, slug: &str) -> Tenant {
        let new = NewTenant { slug: slug.into(), name: "Direct".into(), alliance: None, cluster: None };
        tenancy::create_tenant(&self.db, &new, &Actor::system("test")).await.unwrap()
    }

    /// A staff account of `role` in `tenant`; returns (email, access token).
    pub async fn staff(&self, tenant: &Tenant, role: &str) -> (String, String) {
        let email = format!("{}@staff.test", unique(role));
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/platform/tenants/{}/staff", tenant.slug),
                Some(&self.platform_token),
                Some(json!({"email": email, "password": PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = self.staff_login(tenant, &email).await["access_token"].as_str().unwrap().to_string();
        (email, token)
    }

    pub async fn staff_login(&self, tenant: &Tenant, email: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/staff/auth/login", tenant.slug),
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// A registered member; returns (member json, token pair json).
    pub async fn member(&self, tenant: &Tenant, identifier: &str) -> (Value, Value) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/auth/register", tenant.slug),
                None,
                Some(json!({"identifier": identifier, "password": PASSWORD, "nickname": "tester"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["member"].clone(), body["tokens"].clone())
    }

    /// A registered member whose phone or e-mail is proven (registered with a code sent
    /// to it, and a password); returns (member json, token pair json).
    pub async fn proven_member(&self, tenant: &Tenant, identifier: &str) -> (Value, Value) {
        let (s, b) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/auth/codes", tenant.slug),
                None,
                Some(json!({"identifier": identifier, "purpose": "register"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let code = self.last_code(identifier).await;
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/auth/register", tenant.slug),
                None,
                Some(json!({"identifier": identifier, "password": PASSWORD, "code": code, "nickname": "tester"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(!body["member"]["phone_proven_at"].is_null() || !body["member"]["email_proven_at"].is_null());
        (body["member"].clone(), body["tokens"].clone())
    }

    /// The newest message the development sender recorded for `destination` (any
    /// spelling of a phone: messages are recorded to its normalized form).
    pub async fn last_message(&self, destination: &str) -> Option<String> {
        let destination = platform::members::Identifier::parse(destination)
            .map(|i| i.as_str().to_string())
            .unwrap_or_else(|_| destination.to_string());
        sqlx::query_scalar("SELECT body FROM control.dev_outbox WHERE destination = $1 ORDER BY id DESC LIMIT 1")
            .bind(destination)
            .fetch_optional(self.db.control())
            .await
            .unwrap()
    }

    /// The six-digit code in the newest message to `destination`.
    pub async fn last_code(&self, destination: &str) -> String {
        let body = self.last_message(destination).await.expect("a recorded message");
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a six-digit code in the message")
            .to_string()
    }
}

/// Tests read English error messages unless a request asks for another language (the
/// server's default is the mall's locale, zh-CN for a new mall).
fn english_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT_LANGUAGE, reqwest::header::HeaderValue::from_static("en"));
    reqwest::Client::builder().default_headers(headers).build().expect("an HTTP client")
}

pub fn auth_headers(token: Option<&str>) -> Vec<(&'static str, String)> {
    token.map(|t| vec![("authorization", format!("Bearer {t}"))]).unwrap_or_default()
}

/// A random phone number.
pub fn phone() -> String {
    format!("139{:08}", rand::rng().random_range(0..100_000_000u32))
}

impl TestApp {
    /// An API key of `tenant` with every scope.
    pub async fn partner_key(&self, tenant: &Tenant) -> String {
        let (_, owner) = self.staff(tenant, "owner").await;
        let (status, key) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/staff/api-keys", tenant.slug),
                Some(&owner),
                Some(json!({"name": "test", "scopes": platform::auth::api_keys::SCOPES})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        key["secret"].as_str().unwrap().to_string()
    }

    /// A partner POST with an idempotency key.
    pub async fn partner_post(
        &self,
        tenant: &Tenant,
        key: &str,
        path: &str,
        idem: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let headers = vec![("x-api-key", key.to_string()), ("idempotency-key", idem.to_string())];
        let (status, _, body) = self
            .call_full(Method::POST, &format!("/v1/tenants/{}/partner{path}", tenant.slug), &headers, Some(body))
            .await;
        (status, body)
    }

    /// Credits `amount` points to a member (optionally with an explicit expiry); returns the entry.
    pub async fn credit(
        &self,
        tenant: &Tenant,
        key: &str,
        member_id: i64,
        amount: i64,
        expires_at: Option<String>,
    ) -> Value {
        let mut item = json!({"member_id": member_id, "amount": amount});
        if let Some(e) = expires_at {
            item["expires_at"] = json!(e);
        }
        let (status, body) =
            self.partner_post(tenant, key, "/points/credits", &unique("c"), json!({"items": [item]})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["entries"][0].clone()
    }

    /// A member's points summary as a partner sees it.
    pub async fn points(&self, tenant: &Tenant, key: &str, member_id: i64) -> Value {
        let (status, _, body) = self
            .call_full(
                Method::GET,
                &format!("/v1/tenants/{}/partner/members/{member_id}/points", tenant.slug),
                &[("x-api-key", key.to_string())],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The spendable balance of `currency`.
    pub async fn balance(&self, tenant: &Tenant, key: &str, member_id: i64, currency: &str) -> i64 {
        let p = self.points(tenant, key, member_id).await;
        p["balances"].as_array().unwrap().iter().find(|b| b["currency"] == currency).unwrap()["balance"]
            .as_i64()
            .unwrap()
    }

    /// Runs `ledger verify` on the tenant and asserts it is sound.
    pub async fn assert_ledger_sound(&self, tenant: &Tenant) -> platform::ledger::verify::Report {
        let t = platform::directory::find_by_slug(self.db.control(), &tenant.slug).await.unwrap().unwrap();
        let report = platform::ledger::verify::verify_tenant(&self.db, &t).await.unwrap();
        assert!(report.problems.is_empty(), "ledger verify: {:#?}", report.problems);
        report
    }

    /// Runs the ledger jobs of the tenant at `now`.
    pub async fn jobs(&self, tenant: &Tenant, now: chrono::DateTime<chrono::Utc>) -> platform::jobs::JobReport {
        let t = platform::directory::find_by_slug(self.db.control(), &tenant.slug).await.unwrap().unwrap();
        platform::jobs::run_tenant(&self.db, &t, now).await.unwrap()
    }
}

/// A fresh mall with its owner's token and a partner API key: where the rule, task and
/// backtest tests start.
pub struct Mall {
    pub app: TestApp,
    pub t: Tenant,
    pub owner: String,
    pub key: String,
}

impl Mall {
    pub async fn new() -> Self {
        let app = TestApp::spawn().await;
        let t = app.tenant().await;
        let (_, owner) = app.staff(&t, "owner").await;
        let key = app.partner_key(&t).await;
        Self { app, t, owner, key }
    }

    /// A call as the mall's owner.
    pub async fn staff(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app.call(method, path, Some(&self.owner), body).await
    }

    /// Posts events as the partner; the results, one per event.
    pub async fn events(&self, events: Value) -> Value {
        let (s, _, b) = self
            .app
            .call_full(
                Method::POST,
                &format!("/v1/tenants/{}/partner/events", self.t.slug),
                &[("x-api-key", self.key.clone())],
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["results"].clone()
    }
}

/// Today in Beijing, the test malls' zone.
pub fn beijing_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

/// Noon of a Beijing day.
pub fn beijing_noon(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

impl TestApp {
    /// The payment provider's signed notice that order `order_no` of `tenant` was paid
    /// `amount_fen` (the secret from `POST /staff/payment-secret`); returns the answer.
    pub async fn pay(&self, tenant: &Tenant, secret: &str, order_no: &Value, amount_fen: i64) -> (StatusCode, Value) {
        let notice = json!({"order_no": order_no, "amount_fen": amount_fen, "payment_ref": unique("PAY")});
        self.payment_notice(tenant, secret, &notice, chrono::Utc::now().timestamp()).await
    }

    /// Posts payment notice `notice` of `tenant`, signed with `secret` at unix time `ts`,
    /// to the payment callback; returns the answer.
    pub async fn payment_notice(&self, tenant: &Tenant, secret: &str, notice: &Value, ts: i64) -> (StatusCode, Value) {
        let raw = notice.to_string();
        let sig = platform::mall::payments::sign(secret, ts, raw.as_bytes());
        let r = self
            .client
            .post(format!("{}/v1/tenants/{}/payments/callback", self.base, tenant.slug))
            .header("content-type", "application/json")
            .header("x-timestamp", ts.to_string())
            .header("x-signature", format!("sha256={sig}"))
            .body(raw)
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    }
}
