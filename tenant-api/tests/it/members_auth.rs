//! M1/M2: registration by phone or e-mail with a password or a code, login, refresh
//! rotation, logout, password reset, throttling, validation errors.

use platform::auth::rate_limit::LoginLimiter;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

use crate::common::{PASSWORD, TestApp, phone, unique};

#[tokio::test]
async fn phone_registration_login_refresh_and_logout() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let p = phone();
    let (member, tokens) = app.member(&t, &p).await;
    // Stored in E.164 (default region: mainland China).
    assert_eq!(member["phone"], format!("+86{p}"));
    assert_eq!(member["invite_code"].as_str().unwrap().len(), 10);
    let stored: String = {
        let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
        sqlx::query_scalar("SELECT password_hash FROM members WHERE id = $1")
            .bind(member["id"].as_i64().unwrap())
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    };
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    // One phone, one account.
    let register = format!("/v1/tenants/{}/auth/register", t.slug);
    let (status, body) =
        app.call(Method::POST, &register, None, Some(json!({"identifier": p, "password": "another-password"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("account_exists")));

    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    let (status, pair) =
        app.call(Method::POST, &login, None, Some(json!({"identifier": p, "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    let (status, body) =
        app.call(Method::POST, &login, None, Some(json!({"identifier": p, "password": "wrong-password"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    let (status, body) =
        app.call(Method::POST, &login, None, Some(json!({"identifier": phone(), "password": PASSWORD}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
        "same answer for unknown accounts"
    );

    // Refresh rotates: the old refresh token is used up.
    let refresh = format!("/v1/tenants/{}/auth/refresh", t.slug);
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = app.call(Method::POST, &refresh, None, Some(json!({"refresh_token": first}))).await;
    assert_eq!(status, StatusCode::OK);
    let me = format!("/v1/tenants/{}/me", t.slug);
    let (status, body) = app.call(Method::GET, &me, rotated["access_token"].as_str(), None).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &member["id"]));
    // Presenting the used token again is a reuse: the whole sign-in ends, the rotated
    // tokens included.
    let (status, body) = app.call(Method::POST, &refresh, None, Some(json!({"refresh_token": first}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("refresh_token_reused")));
    let (status, body) = app.call(Method::GET, &me, rotated["access_token"].as_str(), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("session_revoked")));
    let (status, _) =
        app.call(Method::POST, &refresh, None, Some(json!({"refresh_token": rotated["refresh_token"]}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let login_again = format!("/v1/tenants/{}/auth/login", t.slug);
    let (status, rotated) =
        app.call(Method::POST, &login_again, None, Some(json!({"identifier": p, "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK);

    // Logout ends the session.
    let logout = format!("/v1/tenants/{}/auth/logout", t.slug);
    let (status, _) =
        app.call(Method::POST, &logout, None, Some(json!({"refresh_token": rotated["refresh_token"]}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        app.call(Method::POST, &refresh, None, Some(json!({"refresh_token": rotated["refresh_token"]}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Profile update.
    let (status, body) =
        app.call(Method::PATCH, &me, pair["access_token"].as_str(), Some(json!({"nickname": "新名字"}))).await;
    assert_eq!((status, body["nickname"].as_str()), (StatusCode::OK, Some("新名字")));
}

#[tokio::test]
async fn code_registration_code_login_and_password_reset() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let email = format!("{}@Example.com", unique("m"));
    let normalized = email.to_lowercase();
    let codes = format!("/v1/tenants/{}/auth/codes", t.slug);

    let (status, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": email, "purpose": "register"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = app.last_code(&normalized).await;
    // A second request within the minute is throttled, with Retry-After.
    let (status, headers, _) =
        app.call_full(Method::POST, &codes, &[], Some(json!({"identifier": email, "purpose": "register"}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get("retry-after").is_some());

    let register = format!("/v1/tenants/{}/auth/register", t.slug);
    let (status, body) =
        app.call(Method::POST, &register, None, Some(json!({"identifier": email, "code": "000000"}))).await;
    if code != "000000" {
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("code_invalid")));
    }
    let (status, body) =
        app.call(Method::POST, &register, None, Some(json!({"identifier": email, "code": code}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["member"]["email"], normalized.as_str());
    // A used code cannot be used again.
    let (status, _) =
        app.call(Method::POST, &register, None, Some(json!({"identifier": format!("x{email}"), "code": code}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Reset the password by code (the account had none).
    let (status, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": email, "purpose": "reset_password"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = app.last_code(&normalized).await;
    let reset = format!("/v1/tenants/{}/auth/reset-password", t.slug);
    let (status, body) = app
        .call(Method::POST, &reset, None, Some(json!({"identifier": email, "code": code, "new_password": "short"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            &reset,
            None,
            Some(json!({"identifier": email, "code": code, "new_password": "brand-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    let (status, _) = app
        .call(Method::POST, &login, None, Some(json!({"identifier": email, "password": "brand-new-password"})))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Login by code; a code request for an unknown account answers the same and sends nothing.
    let (status, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": email, "purpose": "login"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = app.last_code(&normalized).await;
    let (status, pair) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login-with-code", t.slug),
            None,
            Some(json!({"identifier": email, "code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let stranger = format!("{}@example.com", unique("nobody"));
    let (status, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": stranger, "purpose": "login"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(app.last_message(&stranger).await.is_none());
}

#[tokio::test]
async fn wrong_codes_are_limited_to_five_guesses() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let p = phone();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/codes", t.slug),
            None,
            Some(json!({"identifier": p, "purpose": "register"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = app.last_code(&p).await;
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let register = format!("/v1/tenants/{}/auth/register", t.slug);
    for _ in 0..5 {
        let (status, _) = app.call(Method::POST, &register, None, Some(json!({"identifier": p, "code": wrong}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The right code no longer works after five wrong guesses.
    let (status, body) = app.call(Method::POST, &register, None, Some(json!({"identifier": p, "code": code}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("code_invalid")));
}

#[tokio::test]
async fn login_attempts_are_throttled_with_retry_after() {
    let app = TestApp::spawn_with_limiter(LoginLimiter::new(3, 1000, Duration::from_secs(60))).await;
    let t = app.tenant().await;
    let p = phone();
    app.member(&t, &p).await;
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    for _ in 0..3 {
        let (status, _) =
            app.call(Method::POST, &login, None, Some(json!({"identifier": p, "password": "wrong-password"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) =
        app.call_full(Method::POST, &login, &[], Some(json!({"identifier": p, "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits: {body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Staff logins are throttled the same way.
    let (email, _) = app.staff(&t, "owner").await;
    let staff_login = format!("/v1/tenants/{}/staff/auth/login", t.slug);
    for _ in 0..3 {
        let (status, _) =
            app.call(Method::POST, &staff_login, None, Some(json!({"email": email, "password": "nope-nope"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) =
        app.call(Method::POST, &staff_login, None, Some(json!({"email": email, "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let register = format!("{}/v1/tenants/{}/auth/register", app.base, t.slug);
    // Malformed JSON: 400.
    let resp =
        app.client.post(&register).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
    // Not JSON at all: 415.
    let resp = app.client.post(&register).body("identifier=1").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Well-formed but invalid values: 422 with the field named.
    for (body, field) in [
        (json!({"identifier": "12ab", "password": PASSWORD}), "identifier"),
        (json!({"identifier": phone(), "password": "short"}), "password"),
        (json!({"identifier": phone()}), "password"),
        (json!({"identifier": phone(), "password": PASSWORD, "nickname": "x".repeat(65)}), "nickname"),
        (json!({"identifier": phone(), "password": PASSWORD, "invite_code": "NOPE"}), "invite_code"),
    ] {
        let (status, resp) =
            app.call(Method::POST, &format!("/v1/tenants/{}/auth/register", t.slug), None, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{resp}");
        assert_eq!(resp["error"]["details"]["fields"][0]["field"], field, "{resp}");
    }
    // Missing field: 422 too.
    let (status, resp) =
        app.call(Method::POST, &format!("/v1/tenants/{}/auth/register", t.slug), None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{resp}");
    // Unknown tenant: 404 JSON.
    let (status, resp) = app.call(Method::POST, "/v1/tenants/no-such-mall/auth/register", None, Some(json!({}))).await;
    assert_eq!((status, resp["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("tenant_not_found")));
    // Invitations are recorded.
    let (inviter, _) = app.member(&t, &phone()).await;
    let (status, resp) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/register", t.slug),
            None,
            Some(json!({"identifier": phone(), "password": PASSWORD, "invite_code": inviter["invite_code"].as_str().unwrap().to_lowercase()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["member"]["invited_by"], inviter["id"]);
}
