//! Strict token checks: algorithm pinned, signature, expiry, audience, issuer, tenant.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone};

fn sign(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let (_, good) = app.staff(&t, "owner").await;
    let path = format!("/v1/tenants/{}/staff/me", t.slug);
    let (status, _) = app.call(Method::GET, &path, Some(&good), None).await;
    assert_eq!(status, StatusCode::OK, "the genuine token works");

    let parts: Vec<&str> = good.split('.').collect();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let base = json!({
        "iss": "pointsmall", "sub": payload["sub"], "aud": "pointsmall:staff",
        "exp": now() + 600, "iat": now(), "jti": "x", "tid": t.id, "role": "owner", "sid": payload["sid"]
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    // Sanity: our hand-made token with the real secret is accepted.
    let (status, _) = app.call(Method::GET, &path, Some(&sign(Algorithm::HS256, &app.secret, &base)), None).await;
    assert_eq!(status, StatusCode::OK);

    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&base));
    let tampered_payload = {
        let mut c = base.clone();
        c["role"] = json!("owner");
        c["tid"] = json!(other.id);
        format!("{}.{}.{}", parts[0], b64(&c), parts[2])
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, "token_invalid"),
        ("wrong key", sign(Algorithm::HS256, b"another-secret-another-secret-another", &base), "token_invalid"),
        ("HS512 with the right secret", sign(Algorithm::HS512, &app.secret, &base), "token_invalid"),
        ("edited payload, old signature", tampered_payload, "token_invalid"),
        ("expired", sign(Algorithm::HS256, &app.secret, &with(&|c| c["exp"] = json!(now() - 120))), "token_expired"),
        (
            "no exp",
            sign(
                Algorithm::HS256,
                &app.secret,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            "token_invalid",
        ),
        (
            "member audience",
            sign(Algorithm::HS256, &app.secret, &with(&|c| c["aud"] = json!("pointsmall:member"))),
            "token_wrong_audience",
        ),
        (
            "platform audience",
            sign(Algorithm::HS256, &app.secret, &with(&|c| c["aud"] = json!("pointsmall:platform"))),
            "token_wrong_audience",
        ),
        (
            "wrong issuer",
            sign(Algorithm::HS256, &app.secret, &with(&|c| c["iss"] = json!("someone-else"))),
            "token_invalid",
        ),
        ("garbage", "not.a.jwt".to_string(), "token_invalid"),
    ];
    for (name, token, code) in cases {
        let (status, body) = app.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}");
    }
    // Correctly signed, but for another tenant.
    let foreign = sign(Algorithm::HS256, &app.secret, &with(&|c| c["tid"] = json!(other.id)));
    let (status, body) = app.call(Method::GET, &path, Some(&foreign), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_tenant")));
    // A platform role in a merchant token is refused.
    let odd_role = sign(Algorithm::HS256, &app.secret, &with(&|c| c["role"] = json!("platform_admin")));
    let (status, _) = app.call(Method::GET, &path, Some(&odd_role), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No header, or not a bearer.
    let (status, _, body) = app.call_full(Method::GET, &path, &[("authorization", "Basic abc".into())], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_credentials")));
}

#[tokio::test]
async fn member_tokens_are_checked_the_same_way() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let (member, tokens) = app.member(&t, &phone()).await;
    let path = format!("/v1/tenants/{}/me", t.slug);
    let token = tokens["access_token"].as_str().unwrap();
    let (status, body) = app.call(Method::GET, &path, Some(token), None).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &member["id"]));
    // The same member token addressed to another tenant's path.
    let (status, body) = app.call(Method::GET, &format!("/v1/tenants/{}/me", other.slug), Some(token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_tenant")));
    // A member token on a staff route.
    let (status, body) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/me", t.slug), Some(token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_wrong_audience")));
}
