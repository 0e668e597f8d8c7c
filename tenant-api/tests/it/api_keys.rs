//! P1: partner API keys are shown once, stored hashed, scoped and revocable at once.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone};

#[tokio::test]
async fn keys_are_shown_once_hashed_scoped_and_revocable() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (member, _) = app.member(&t, &phone()).await;
    let keys = format!("/v1/tenants/{}/staff/api-keys", t.slug);

    let (status, created) =
        app.call(Method::POST, &keys, Some(&owner), Some(json!({"name": "POS", "scopes": ["events:write"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with(&format!("pmk_{}_", created["prefix"].as_str().unwrap())));

    // Listed without the secret; stored only as a digest.
    let (_, list) = app.call(Method::GET, &keys, Some(&owner), None).await;
    assert!(!list.to_string().contains(&secret[17..]), "secret shown again: {list}");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM control.api_keys WHERE id = $1")
        .bind(created["id"].as_i64().unwrap())
        .fetch_one(app.db.control())
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    let row_text: String = sqlx::query_scalar("SELECT row_to_json(k)::text FROM control.api_keys k WHERE id = $1")
        .bind(created["id"].as_i64().unwrap())
        .fetch_one(app.db.control())
        .await
        .unwrap();
    assert!(!row_text.contains(&secret[17..]), "secret stored in clear");

    let whoami = format!("/v1/tenants/{}/partner/whoami", t.slug);
    let with_key = |k: &str| vec![("x-api-key", k.to_string())];
    let (status, _, body) = app.call_full(Method::GET, &whoami, &with_key(&secret), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scopes"], json!(["events:write"]));

    // Scope enforced.
    let member_path = format!("/v1/tenants/{}/partner/members/{}", t.slug, member["id"]);
    let (status, _, body) = app.call_full(Method::GET, &member_path, &with_key(&secret), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("scope_missing")));

    // A wrong secret with a real prefix, and garbage, are refused alike.
    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    for k in [wrong.as_str(), "pmk_000000000000_abc", "nonsense"] {
        let (status, _, body) = app.call_full(Method::GET, &whoami, &with_key(k), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("api_key_invalid")),
            "{k}"
        );
    }

    // A key with members:read reads members.
    let (_, reader) =
        app.call(Method::POST, &keys, Some(&owner), Some(json!({"name": "CRM", "scopes": ["members:read"]}))).await;
    let (status, _, body) =
        app.call_full(Method::GET, &member_path, &with_key(reader["secret"].as_str().unwrap()), None).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &member["id"]));

    // Revocation takes effect at once.
    let (status, revoked) = app.call(Method::DELETE, &format!("{keys}/{}", created["id"]), Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _, body) = app.call_full(Method::GET, &whoami, &with_key(&secret), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("api_key_invalid")));

    // Unknown scopes are a 422 naming the field.
    let (status, body) =
        app.call(Method::POST, &keys, Some(&owner), Some(json!({"name": "x", "scopes": ["root"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "scopes");

    // Both changes are audited.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM control.audit_log WHERE tenant_id = $1 AND action LIKE 'api_key.%' ORDER BY id",
    )
    .bind(t.id)
    .fetch_all(app.db.control())
    .await
    .unwrap();
    assert_eq!(actions, ["api_key.create", "api_key.create", "api_key.revoke"]);
}

#[tokio::test]
async fn another_tenants_key_is_refused() {
    let app = TestApp::spawn().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (_, owner_b) = app.staff(&b, "owner").await;
    let (_, key) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/api-keys", b.slug),
            Some(&owner_b),
            Some(json!({"name": "k", "scopes": ["members:read"]})),
        )
        .await;
    let (status, _, body) = app
        .call_full(
            Method::GET,
            &format!("/v1/tenants/{}/partner/whoami", a.slug),
            &[("x-api-key", key["secret"].as_str().unwrap().into())],
            None,
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_tenant")));
}

#[tokio::test]
async fn racing_creations_never_pass_the_live_key_bound() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let url = format!("{}/v1/tenants/{}/staff/api-keys", app.base, t.slug);
    let tries = (0..110).map(|i| {
        let (client, url, owner) = (app.client.clone(), url.clone(), owner.clone());
        tokio::spawn(async move {
            let r = client
                .post(&url)
                .bearer_auth(owner)
                .json(&json!({"name": format!("k{i}"), "scopes": ["points:read"]}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"]["code"].as_str().map(str::to_string))
        })
    });
    let answers: Vec<_> = futures::future::join_all(tries).await.into_iter().map(|r| r.unwrap()).collect();
    let created = answers.iter().filter(|a| a.0 == StatusCode::CREATED).count();
    assert_eq!(created, 100, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| a.0 != StatusCode::CREATED)
            .all(|a| *a == (StatusCode::CONFLICT, Some("too_many_api_keys".to_string())))
    );
}
