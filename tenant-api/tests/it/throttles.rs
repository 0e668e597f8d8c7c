//! Throttles that hold (issue 10): one counter for every spelling of a phone, attempts
//! counted atomically under concurrency, one code a minute however many requests race,
//! and the same answers for known, unknown and password-less accounts.

use std::time::Duration;

use platform::auth::rate_limit::LoginLimiter;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone, unique};

#[tokio::test]
async fn other_spellings_of_a_locked_phone_get_no_fresh_guesses() {
    let app = TestApp::spawn_with_limiter(LoginLimiter::new(3, 1000, Duration::from_secs(60))).await;
    let t = app.tenant().await;
    let p = phone();
    app.member(&t, &p).await;
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    let spellings = [
        p.clone(),
        format!("{}-{}-{}", &p[..3], &p[3..7], &p[7..]),
        format!("{} {} {}", &p[..3], &p[3..7], &p[7..]),
        format!("+86{p}"),
        format!("+86 {p}"),
        format!("0086{p}"),
    ];
    let mut answers = vec![];
    for s in &spellings {
        let (status, _) =
            app.call(Method::POST, &login, None, Some(json!({"identifier": s, "password": "wrong-password"}))).await;
        answers.push(status);
    }
    assert_eq!(
        answers,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_are_all_counted() {
    let app = TestApp::spawn_with_limiter(LoginLimiter::new(10, 1000, Duration::from_secs(60))).await;
    let t = app.tenant().await;
    let p = phone();
    app.member(&t, &p).await;
    let login = format!("{}/v1/tenants/{}/auth/login", app.base, t.slug);
    let tries = (0..60).map(|_| {
        let (client, login, p) = (app.client.clone(), login.clone(), p.clone());
        tokio::spawn(async move {
            client
                .post(&login)
                .json(&json!({"identifier": p, "password": "wrong-password"}))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(tries).await.into_iter().map(|r| r.unwrap()).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (10, 50), "{statuses:?}");
}

#[tokio::test]
async fn concurrent_code_requests_send_one_code() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let p = phone();
    let codes = format!("{}/v1/tenants/{}/auth/codes", app.base, t.slug);
    let sends = (0..20).map(|_| {
        let (client, codes, p) = (app.client.clone(), codes.clone(), p.clone());
        tokio::spawn(async move {
            let r = client.post(&codes).json(&json!({"identifier": p, "purpose": "register"})).send().await.unwrap();
            (r.status(), r.headers().get("retry-after").is_some())
        })
    });
    let answers: Vec<(StatusCode, bool)> =
        futures::future::join_all(sends).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.0 == StatusCode::ACCEPTED).count(), 1, "{answers:?}");
    assert!(
        answers.iter().filter(|a| a.0 != StatusCode::ACCEPTED).all(|a| *a == (StatusCode::TOO_MANY_REQUESTS, true))
    );
    let normalized = platform::members::Identifier::parse(&p).unwrap();
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM control.dev_outbox WHERE destination = $1")
        .bind(normalized.as_str())
        .fetch_one(app.db.control())
        .await
        .unwrap();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn known_unknown_and_password_less_accounts_answer_alike() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let known = phone();
    app.member(&t, &known).await;
    // A member registered by code only has no password.
    let password_less = format!("{}@example.com", unique("nopw"));
    let codes = format!("/v1/tenants/{}/auth/codes", t.slug);
    let (s, _) =
        app.call(Method::POST, &codes, None, Some(json!({"identifier": password_less, "purpose": "register"}))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let code = app.last_code(&password_less).await;
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/register", t.slug),
            None,
            Some(json!({"identifier": password_less, "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let unknown = phone();
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    for who in [&known, &password_less, &unknown] {
        let (s, b) =
            app.call(Method::POST, &login, None, Some(json!({"identifier": who, "password": "wrong-password"}))).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")), "{who}");
        assert_eq!(b["error"]["message"], "wrong account or password");
    }
    // Code requests: the first is accepted and the second throttled, for every kind of
    // destination (the limit is counted before anything is looked up).
    for who in [&known, &unknown] {
        for (i, want) in [StatusCode::ACCEPTED, StatusCode::TOO_MANY_REQUESTS].into_iter().enumerate() {
            let (s, b) =
                app.call(Method::POST, &codes, None, Some(json!({"identifier": who, "purpose": "login"}))).await;
            assert_eq!(s, want, "{who} request {i}: {b}");
        }
    }
    // A transfer of 0 points tells nothing about whether a phone belongs to a member.
    let (_, pair) = app.member(&t, &phone()).await;
    let token = pair["access_token"].as_str().unwrap();
    let mut answers = vec![];
    for to in [&known, &unknown] {
        let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("tr"))];
        let (s, _, b) = app
            .call_full(
                Method::POST,
                &format!("/v1/tenants/{}/me/points/transfers", t.slug),
                &headers,
                Some(json!({"to": to, "amount": 0})),
            )
            .await;
        answers.push((s, b["error"]["details"]["fields"][0]["field"].clone()));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
}
