//! The server's HTTP API as a benchmark uses it: requests that must answer one status
//! (anything else is a real error and says what was sent and answered), and the
//! set-up of a fresh tenant the way an operator and a merchant would do it: a platform
//! operator creates the tenant and its owner, the owner signs in and creates a partner
//! API key, members register themselves.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use platform::audit::Actor;
use platform::db::Db;
use platform::rbac::Role;
use platform::staff::{self, NewStaff, Scope};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::progress;

/// Password of every account a benchmark creates (they are dropped at the end).
pub const PASSWORD: &str = "bench-password-1";

/// A client for one server.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

/// A client with enough idle connections for `concurrency` requests in flight.
pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .timeout(Duration::from_secs(120))
        .build()?)
}

impl Api {
    pub fn new(client: reqwest::Client, base: impl Into<String>) -> Self {
        Self { client, base: base.into() }
    }

    /// Sends a request; returns its status and JSON body (`Null` when empty, a string
    /// when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}: no answer"))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("{method} {path}: reading the answer"))?;
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok((status, json))
    }

    /// Sends a request that must answer `want`; anything else is an error naming the
    /// request and the answer.
    pub async fn expect(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.call(method.clone(), path, headers, body).await?;
        if status != want {
            bail!("{method} {path} answered {status} (expected {want}): {}", shorten(&json.to_string(), 600));
        }
        Ok(json)
    }
}

/// At most `max` characters of `s`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// A platform operator created in the database for this run (as the test harness and
/// `pointsmall demo` do: there is no API to create the first one).
pub struct PlatformAdmin {
    pub email: String,
}

/// E-mail of a run's platform operator; `cleanup::drop_platform_staff` takes a pattern.
pub fn admin_email(runid: &str) -> String {
    format!("bench-{runid}@platform.bench")
}

/// Pattern of every run's platform operators.
pub const ADMIN_EMAIL_PATTERN: &str = "^bench-[a-z0-9]{6}@platform\\.bench$";

pub async fn create_platform_admin(db: &Db, runid: &str) -> anyhow::Result<PlatformAdmin> {
    let email = admin_email(runid);
    let mut conn = db.control().acquire().await?;
    staff::create(
        &mut conn,
        Scope::Platform,
        &NewStaff {
            email: email.clone(),
            password: PASSWORD.into(),
            role: Role::PlatformAdmin,
            display_name: "bench".into(),
        },
        &Actor::system("bench"),
    )
    .await
    .context("creating the platform operator")?;
    Ok(PlatformAdmin { email })
}

/// Sets a tenant's rules-engine limits as the platform operator (issue 10: a mall gets
/// a bounded share of an instance; a large one is given more).
pub async fn set_limits(
    api: &Api,
    admin: &PlatformAdmin,
    slug: &str,
    event_batches: u32,
    rule_evaluations: u32,
) -> anyhow::Result<()> {
    let login = json!({"email": admin.email, "password": PASSWORD});
    let platform = api.expect(StatusCode::OK, Method::POST, "/v1/platform/auth/login", &[], Some(&login)).await?;
    let auth = format!("Bearer {}", token(&platform)?);
    let limits = json!({"event_batches": event_batches, "rule_evaluations": rule_evaluations});
    api.expect(
        StatusCode::OK,
        Method::PUT,
        &format!("/v1/platform/tenants/{slug}/limits"),
        &[("authorization", auth.as_str())],
        Some(&limits),
    )
    .await?;
    Ok(())
}

/// A tenant ready for load: its owner's access token, a partner key with every scope,
/// and registered members.
pub struct Fixture {
    pub slug: String,
    pub tenant_id: i64,
    pub owner_token: String,
    pub api_key: String,
    /// Member ids, ascending.
    pub members: Vec<i64>,
}

impl Fixture {
    pub fn owner_auth(&self) -> String {
        format!("Bearer {}", self.owner_token)
    }
}

/// Creates tenant `slug` over HTTP with its owner, a partner API key (every scope) and
/// `members` members (registered with a password, `concurrency` at a time: each
/// registration hashes a password with argon2, which is what costs).
pub async fn set_up_tenant(
    api: &Api,
    admin: &PlatformAdmin,
    slug: &str,
    members: usize,
    concurrency: usize,
) -> anyhow::Result<Fixture> {
    let login = json!({"email": admin.email, "password": PASSWORD});
    let platform = api.expect(StatusCode::OK, Method::POST, "/v1/platform/auth/login", &[], Some(&login)).await?;
    let platform_auth = format!("Bearer {}", token(&platform)?);
    let platform_headers = [("authorization", platform_auth.as_str())];

    let tenant = api
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/platform/tenants",
            &platform_headers,
            Some(&json!({"slug": slug, "name": format!("Bench {slug}")})),
        )
        .await?;
    let tenant_id = tenant["id"].as_i64().context("the created tenant has no id")?;

    let owner_email = format!("owner@{slug}.bench");
    api.expect(
        StatusCode::CREATED,
        Method::POST,
        &format!("/v1/platform/tenants/{slug}/staff"),
        &platform_headers,
        Some(&json!({"email": owner_email, "password": PASSWORD, "role": "owner"})),
    )
    .await?;
    let owner = api
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/v1/tenants/{slug}/staff/auth/login"),
            &[],
            Some(&json!({"email": owner_email, "password": PASSWORD})),
        )
        .await?;
    let owner_token = token(&owner)?;
    let owner_auth = format!("Bearer {owner_token}");

    let key = api
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/v1/tenants/{slug}/staff/api-keys"),
            &[("authorization", owner_auth.as_str())],
            Some(&json!({"name": "bench", "scopes": platform::auth::api_keys::SCOPES})),
        )
        .await?;
    let api_key = key["secret"].as_str().context("the created API key has no secret")?.to_string();

    let bar = progress::bar(members as u64, "registering members");
    let path = format!("/v1/tenants/{slug}/auth/register");
    let mut registered = futures::stream::iter(0..members)
        .map(|i| {
            let body =
                json!({"identifier": format!("m{i}@{slug}.bench"), "password": PASSWORD, "nickname": format!("m{i}")});
            let path = path.as_str();
            async move { api.expect(StatusCode::CREATED, Method::POST, path, &[], Some(&body)).await }
        })
        .buffer_unordered(concurrency.max(1));
    let mut ids = Vec::with_capacity(members);
    while let Some(r) = registered.next().await {
        let body = r.context("registering a member")?;
        ids.push(body["member"]["id"].as_i64().context("a registered member has no id")?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    ids.sort_unstable();
    Ok(Fixture { slug: slug.to_string(), tenant_id, owner_token, api_key, members: ids })
}

fn token(body: &Value) -> anyhow::Result<String> {
    Ok(body["access_token"].as_str().context("the login answer has no access_token")?.to_string())
}

/// Installs a rule through `POST /v1/tenants/{t}/staff/rules` (owner token); returns
/// the created rule (`id`, `current_version`, …).
pub async fn create_rule(
    api: &Api,
    fixture: &Fixture,
    name: &str,
    event_type: &str,
    script: &str,
    params: &Value,
) -> anyhow::Result<Value> {
    let auth = fixture.owner_auth();
    api.expect(
        StatusCode::CREATED,
        Method::POST,
        &format!("/v1/tenants/{}/staff/rules", fixture.slug),
        &[("authorization", auth.as_str())],
        Some(&json!({"name": name, "event_type": event_type, "script": script, "params": params})),
    )
    .await
    .with_context(|| format!("installing rule {name}"))
}
