//! A phone or e-mail counts as a member's only once proven (issue 10, SPEC A2, M1): the
//! squatting sequence end to end, proving one's own phone after a password sign-up, and
//! the one-time-code paths that never land in an account holding the phone unproven.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, handoff, mall_in, my_balance};
use crate::common::{PASSWORD, TestApp, phone, unique};

async fn alliance_with_two_malls(app: &TestApp) -> (platform::directory::Tenant, platform::directory::Tenant) {
    let a = alliance(app).await;
    (mall_in(app, &a.slug).await, mall_in(app, &a.slug).await)
}

async fn send_code(app: &TestApp, t: &platform::directory::Tenant, who: &str, purpose: &str) {
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/codes", t.slug),
            None,
            Some(json!({"identifier": who, "purpose": purpose})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
}

async fn shared_balance(app: &TestApp, t: &platform::directory::Tenant, token: &str) -> i64 {
    my_balance(app, t, token, SHARED).await
}

fn token(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn a_squatter_gets_nothing_and_the_owner_gets_their_account_and_points() {
    let app = TestApp::spawn().await;
    let (ma, mb) = alliance_with_two_malls(&app).await;
    let owners_phone = phone();

    // 1. The squatter registers at A with the owner's phone and a password: no proof.
    let (squatter, squatter_tokens) = app.member(&ma, &owners_phone).await;
    assert!(squatter["phone_proven_at"].is_null(), "{squatter}");
    // 2. The hand-off to B needs a proven identifier: refused, nothing made at B.
    let (s, b) = handoff(&app, &mb, token(&squatter_tokens)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("identifier_unproven")), "{b}");
    // Nor can shared points be credited to the unproven account.
    let key_a = app.partner_key(&ma).await;
    let credit = |id: &Value, n: i64| json!({"items": [{"member_id": id, "amount": n, "currency": SHARED}]});
    let (s, b) = app.partner_post(&ma, &key_a, "/points/credits", &unique("c"), credit(&squatter["id"], 10)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("identifier_unproven")), "{b}");

    // 3. The owner registers at B with a code sent to their phone: not blocked.
    let (owner_b, owner_b_tokens) = app.proven_member(&mb, &owners_phone).await;
    // 4. Signing in at B by code lands in the owner's own account.
    send_code(&app, &mb, &owners_phone, "login").await;
    let code = app.last_code(&owners_phone).await;
    let (s, pair) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login-with-code", mb.slug),
            None,
            Some(json!({"identifier": owners_phone, "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let (_, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", mb.slug), Some(token(&pair)), None).await;
    assert_eq!(me["id"], owner_b["id"]);

    // 5. Shared points credited to the owner at B are theirs alone.
    let key_b = app.partner_key(&mb).await;
    let (s, b) = app.partner_post(&mb, &key_b, "/points/credits", &unique("c"), credit(&owner_b["id"], 500)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(shared_balance(&app, &mb, token(&owner_b_tokens)).await, 500);
    assert_eq!(shared_balance(&app, &ma, token(&squatter_tokens)).await, 0, "the squatter sees none of them");

    // 6. A login code for the phone at A is not sent to the squatter's unproven account,
    //    and a code obtained anyway (the owner's own) does not open it.
    send_code(&app, &ma, &owners_phone, "login").await;
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login-with-code", ma.slug),
            None,
            Some(json!({"identifier": owners_phone, "code": "123456"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");

    // 7. The owner registers at A too, with a code: the squatter's claim gives way.
    let (owner_a, owner_a_tokens) = app.proven_member(&ma, &owners_phone).await;
    assert_ne!(owner_a["id"], squatter["id"]);
    assert_eq!(owner_a["phone"], owner_b["phone"]);
    // Signing in by that phone now reaches the owner's account, never the squatter's.
    let (s, pair) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login", ma.slug),
            None,
            Some(json!({"identifier": owners_phone, "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let (_, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", ma.slug), Some(token(&pair)), None).await;
    assert_eq!(me["id"], owner_a["id"]);
    // The owner's shared balance reaches A through the hand-off (both proven: linked).
    let (s, pair) = handoff(&app, &ma, token(&owner_b_tokens)).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let (_, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", ma.slug), Some(token(&pair)), None).await;
    assert_eq!(me["id"], owner_a["id"]);
    assert_eq!(shared_balance(&app, &ma, token(&owner_a_tokens)).await, 500);
    assert_eq!(shared_balance(&app, &ma, token(&squatter_tokens)).await, 0);
}

#[tokio::test]
async fn a_member_proves_their_own_phone_after_a_password_sign_up() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let p = phone();
    let (member, pair) = app.member(&t, &p).await;
    assert!(member["phone_proven_at"].is_null());
    // Unproven: no login code goes out, so code sign-in cannot reach the account.
    send_code(&app, &t, &p, "login").await;
    assert!(app.last_message(&p).await.is_none(), "no code for an unproven account");

    let codes = format!("/v1/tenants/{}/me/verification-codes", t.slug);
    let (s, b) = app.call(Method::POST, &codes, Some(token(&pair)), Some(json!({"kind": "email"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "this account has no e-mail: {b}");
    let (s, b) = app.call(Method::POST, &codes, Some(token(&pair)), Some(json!({"kind": "phone"}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let code = app.last_code(&p).await;
    let verify = format!("/v1/tenants/{}/me/verification", t.slug);
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let (s, b) =
        app.call(Method::POST, &verify, Some(token(&pair)), Some(json!({"kind": "phone", "code": wrong}))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("code_invalid")));
    let (s, b) =
        app.call(Method::POST, &verify, Some(token(&pair)), Some(json!({"kind": "phone", "code": code}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b["phone_proven_at"].is_null(), "{b}");

    // Proven: a registration with a code no longer takes the phone away.
    send_code(&app, &t, &p, "register").await;
    assert_eq!(app.last_code(&p).await, code, "no register code for a proven phone");
    // And the code sign-in works (a minute later: the first login code request counted).
    sqlx::query("DELETE FROM control.throttles WHERE key = $1")
        .bind(format!("code:{}:login:+86{p}", t.id))
        .execute(app.db.control())
        .await
        .unwrap();
    send_code(&app, &t, &p, "login").await;
    let code = app.last_code(&p).await;
    let (s, pair) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login-with-code", t.slug),
            None,
            Some(json!({"identifier": format!("+86 {p}"), "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
}

#[tokio::test]
async fn a_partner_vouches_for_the_phones_it_syncs() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let p = phone();
    // Someone registered the phone first, unproven.
    let (squatter, _) = app.member(&t, &p).await;
    let (s, _, b) = app
        .call_full(
            Method::PUT,
            &format!("/v1/tenants/{}/partner/members/by-external-id/{}", t.slug, unique("crm")),
            &[("x-api-key", key.clone())],
            Some(json!({"phone": p, "nickname": "会员"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_ne!(b["id"], squatter["id"]);
    assert!(!b["phone_proven_at"].is_null(), "{b}");
}
