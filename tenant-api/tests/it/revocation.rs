//! Revocation that bites (issue 10): logout, password reset, disabling and demotion end
//! access tokens on the next request, not at their expiry; tokens living beyond the
//! configured maximum are refused even when signed with the real key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, phone, unique};

fn code(b: &Value) -> Option<&str> {
    b["error"]["code"].as_str()
}

#[tokio::test]
async fn member_logout_and_password_reset_end_access_tokens_at_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let p = phone();
    let (_, pair) = app.proven_member(&t, &p).await;
    let me = format!("/v1/tenants/{}/me", t.slug);
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(app.call(Method::GET, &me, Some(access), None).await.0, StatusCode::OK);

    // A second sign-in, to show that logout ends only its own.
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    let (s, other) = app.call(Method::POST, &login, None, Some(json!({"identifier": p, "password": PASSWORD}))).await;
    assert_eq!(s, StatusCode::OK);
    let other_access = other["access_token"].as_str().unwrap();

    let logout = format!("/v1/tenants/{}/auth/logout", t.slug);
    let (s, _) = app.call(Method::POST, &logout, None, Some(json!({"refresh_token": pair["refresh_token"]}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.call(Method::GET, &me, Some(access), None).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, Some("session_revoked")), "{b}");
    assert_eq!(app.call(Method::GET, &me, Some(other_access), None).await.0, StatusCode::OK);

    // A password reset ends every sign-in.
    let codes = format!("/v1/tenants/{}/auth/codes", t.slug);
    let (s, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": p, "purpose": "reset_password"}))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let reset_code = app.last_code(&p).await;
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/reset-password", t.slug),
            None,
            Some(json!({"identifier": p, "code": reset_code, "new_password": "a-brand-new-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = app.call(Method::GET, &me, Some(other_access), None).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, Some("session_revoked")), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/refresh", t.slug),
            None,
            Some(json!({"refresh_token": other["refresh_token"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
}

#[tokio::test]
async fn disabling_or_demoting_staff_bites_on_the_next_request() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let base = format!("/v1/tenants/{}/staff", t.slug);
    let category = |n: &str| json!({"name": format!("{n}-{}", unique("c"))});

    // A disabled operator cannot create a category with the token it still holds.
    let (op_id, op_token) = operator(&app, &t, &owner).await;
    let (s, b) = app.call(Method::POST, &format!("{base}/categories"), Some(&op_token), Some(category("before"))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) =
        app.call(Method::PATCH, &format!("{base}/users/{op_id}"), Some(&owner), Some(json!({"disabled": true}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app.call(Method::POST, &format!("{base}/categories"), Some(&op_token), Some(category("after"))).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, Some("session_revoked")), "{b}");

    // A demoted operator's old token (role operator) stops at once.
    let (op2_id, op2_token) = operator(&app, &t, &owner).await;
    let (s, _) = app
        .call(Method::PATCH, &format!("{base}/users/{op2_id}"), Some(&owner), Some(json!({"role": "auditor"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) =
        app.call(Method::POST, &format!("{base}/categories"), Some(&op2_token), Some(category("demoted"))).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, Some("session_revoked")), "{b}");
}

/// A new operator of `t`, signed in: (staff id, access token).
async fn operator(app: &TestApp, t: &platform::directory::Tenant, owner: &str) -> (i64, String) {
    let email = format!("{}@staff.test", unique("op"));
    let (s, created) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/users", t.slug),
            Some(owner),
            Some(json!({"email": email, "password": PASSWORD, "role": "operator"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = app.staff_login(t, &email).await["access_token"].as_str().unwrap().to_string();
    (created["id"].as_i64().unwrap(), token)
}

#[tokio::test]
async fn tokens_living_beyond_the_maximum_are_refused_even_with_the_real_key() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, pair) = app.proven_member(&t, &phone()).await;
    let genuine = pair["access_token"].as_str().unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(genuine.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let sign = |f: &dyn Fn(&mut Value)| {
        let mut c = payload.clone();
        f(&mut c);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &EncodingKey::from_secret(&app.secret)).unwrap()
    };
    let me = format!("/v1/tenants/{}/me", t.slug);
    // Sanity: a copy of the genuine claims, re-signed, works.
    assert_eq!(app.call(Method::GET, &me, Some(&sign(&|_| {})), None).await.0, StatusCode::OK);
    for (name, token) in [
        ("exp in the year 9999", sign(&|c| c["exp"] = json!(253_402_300_799_i64))),
        (
            "issued a year ahead",
            sign(&|c| {
                c["iat"] = json!(now + 365 * 86400);
                c["exp"] = json!(now + 365 * 86400 + 600);
            }),
        ),
        (
            "no iat",
            sign(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "no session",
            sign(&|c| {
                c.as_object_mut().unwrap().remove("sid");
            }),
        ),
        ("another session", sign(&|c| c["sid"] = json!(uuid::Uuid::new_v4().to_string()))),
    ] {
        let (s, b) = app.call(Method::GET, &me, Some(&token), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}: {b}");
    }
}
