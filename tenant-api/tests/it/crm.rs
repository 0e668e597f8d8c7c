//! Issue 12, point 8: CRM sync. A partner upserts members in bulk by its own ids (fields
//! not sent are left alone; one refused member does not stop the others) and reads up to
//! 1000 members' balances and levels in one call, shared alliance points included.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, mall_in};
use crate::common::{TestApp, phone, unique};

async fn post(
    app: &TestApp,
    t: &platform::directory::Tenant,
    key: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/{path}", t.slug),
            &[("x-api-key", key.to_string())],
            Some(body),
        )
        .await;
    (s, b)
}

fn balance(m: &Value, currency: &str) -> i64 {
    m["balances"].as_array().unwrap().iter().find(|b| b["currency"] == currency).unwrap()["balance"].as_i64().unwrap()
}

#[tokio::test]
async fn members_are_upserted_and_read_in_bulk_by_the_partners_ids() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let t = mall_in(&app, &al.slug).await;
    let key = app.partner_key(&t).await;
    let (e1, e2, e3) = (unique("crm"), unique("crm"), unique("crm"));
    let (p1, p2) = (phone(), phone());

    // Three members; the third sends the first one's phone and alone is refused.
    let body = json!({"members": [
        {"external_id": e1, "phone": p1, "nickname": "Ann"},
        {"external_id": e2, "phone": p2},
        {"external_id": e3, "phone": p1},
    ]});
    let (s, r) = post(&app, &t, &key, "members/bulk", body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let statuses: Vec<&str> = r["results"].as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["created", "created", "failed"], "{r}");
    assert_eq!(r["results"][2]["error"]["code"], "account_exists", "{r}");
    let id1 = r["results"][0]["member"]["id"].as_i64().unwrap();
    let stored_phone = r["results"][0]["member"]["phone"].clone();
    assert_eq!(stored_phone, json!(format!("+86{p1}")), "stored in E.164");

    // A partial update: only the nickname is sent; the phone stays.
    let (s, r) =
        post(&app, &t, &key, "members/bulk", json!({"members": [{"external_id": e1, "nickname": "Ann B."}]})).await;
    assert_eq!((s, r["results"][0]["status"].as_str()), (StatusCode::OK, Some("updated")), "{r}");
    assert_eq!(r["results"][0]["member"]["nickname"], "Ann B.");
    assert_eq!(r["results"][0]["member"]["phone"], stored_phone, "{r}");
    assert_eq!(r["results"][0]["member"]["id"], id1);

    // Balances: the mall's own points and the shared ones (the partner vouched for the
    // phone, so the member has an alliance identity), in the order asked, each once.
    let credit =
        json!({"items": [{"member_id": id1, "amount": 120}, {"member_id": id1, "amount": 500, "currency": SHARED}]});
    let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("c"), credit).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, r) = post(&app, &t, &key, "members/balances", json!({"external_ids": [e2, e1, "nobody", e1]})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let members = r["members"].as_array().unwrap();
    assert_eq!(
        members.iter().map(|m| m["external_id"].as_str().unwrap()).collect::<Vec<_>>(),
        [e2.as_str(), e1.as_str()]
    );
    assert_eq!(r["missing"], json!(["nobody"]));
    assert_eq!((balance(&members[1], "points"), balance(&members[1], SHARED)), (120, 500), "{r}");
    assert_eq!((balance(&members[0], "points"), balance(&members[0], SHARED)), (0, 0), "{r}");
    assert!(members[1]["level"]["name"].is_string(), "{r}");

    // Bounds: 1 to 1000 per call.
    let (s, _) = post(&app, &t, &key, "members/balances", json!({"external_ids": []})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let (s, _) = post(&app, &t, &key, "members/balances", json!({"external_ids": many})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // A malformed member refuses the whole request, naming it; nothing is written.
    let body =
        json!({"members": [{"external_id": unique("crm"), "phone": phone()}, {"external_id": e2, "phone": "AAA"}]});
    let (s, b) = post(&app, &t, &key, "members/bulk", body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"]["fields"][0]["field"], "members[1].phone", "{b}");
    let (s, r) = post(&app, &t, &key, "members/balances", json!({"external_ids": [e2]})).await;
    assert_eq!((s, r["members"].as_array().unwrap().len()), (StatusCode::OK, 1));
    let (_, page) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/staff/members?limit=200", t.slug),
            Some(&app.staff(&t, "owner").await.1),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "no member was written by the refused request: {page}");
}

#[tokio::test]
async fn the_partner_and_staff_set_profile_fields_that_rules_read_and_members_see() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, finance) = app.staff(&t, "finance").await;
    let ext = unique("crm");

    // The partner sends a birthday and a city with the member; a later sync that sends
    // only the nickname keeps them.
    let (s, r) = post(
        &app,
        &t,
        &key,
        "members/bulk",
        json!({"members": [{"external_id": ext, "phone": phone(), "profile": {"birthday": "1990-05-01", "city": " 杭州 "}}]}),
    )
    .await;
    assert_eq!((s, r["results"][0]["status"].as_str()), (StatusCode::OK, Some("created")), "{r}");
    let id = r["results"][0]["member"]["id"].as_i64().unwrap();
    let (s, r) =
        post(&app, &t, &key, "members/bulk", json!({"members": [{"external_id": ext, "nickname": "Li"}]})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let m = &r["results"][0]["member"];
    assert_eq!(
        (m["birthday"].as_str(), m["city"].as_str(), m["nickname"].as_str()),
        (Some("1990-05-01"), Some("杭州"), Some("Li")),
        "{r}"
    );

    // A birthday in the future fails that member, naming the field.
    let (_, r) = post(
        &app,
        &t,
        &key,
        "members/bulk",
        json!({"members": [{"external_id": ext, "profile": {"birthday": "2999-01-01"}}]}),
    )
    .await;
    assert_eq!(r["results"][0]["status"], "failed", "{r}");
    assert!(r["results"][0]["error"].to_string().contains("profile.birthday"), "{r}");

    // A blank city refuses the whole request, naming the member.
    let (s, r) =
        post(&app, &t, &key, "members/bulk", json!({"members": [{"external_id": ext, "profile": {"city": " "}}]}))
            .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(r.to_string().contains("members[0].profile.city"), "{r}");

    // The single upsert takes the same fields.
    let (s, _, m) = app
        .call_full(
            Method::PUT,
            &format!("/v1/tenants/{}/partner/members/by-external-id/{ext}", t.slug),
            &[("x-api-key", key.clone())],
            Some(json!({"profile": {"gender": "female"}})),
        )
        .await;
    assert_eq!((s, m["gender"].as_str(), m["city"].as_str()), (StatusCode::OK, Some("female"), Some("杭州")), "{m}");

    // Staff with members_write change the city (audited); finance staff may not.
    let path = format!("/v1/tenants/{}/staff/members/{id}/profile", t.slug);
    let (s, r) = app.call(Method::PATCH, &path, Some(&finance), Some(json!({"city": "上海"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{r}");
    let (s, r) = app.call(Method::PATCH, &path, Some(&owner), Some(json!({"city": "   "}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, m) = app.call(Method::PATCH, &path, Some(&owner), Some(json!({"city": "上海"}))).await;
    assert_eq!(
        (s, m["city"].as_str(), m["birthday"].as_str()),
        (StatusCode::OK, Some("上海"), Some("1990-05-01")),
        "{m}"
    );
    let (s, r) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/members/999999/profile", t.slug),
            Some(&owner),
            Some(json!({"city": "上海"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    let (_, audit) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log", t.slug), Some(&owner), None).await;
    assert!(audit.to_string().contains("member.profile"), "{audit}");
}
