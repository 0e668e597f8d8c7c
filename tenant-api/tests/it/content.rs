//! Issue 13, point 4: content (K5). Banners, announcements, zones and rule pages go
//! draft → pending review → published by RBAC; members read what is published, in
//! window (in the mall's time zone), in their language or else the mall's; Markdown
//! never carries a script to a member; zones show only products on sale; staff changes
//! reach members at once, on every instance; one mall never sees another's.

use chrono::{TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use platform::audit::Actor;
use platform::content::ContentLocale;
use platform::content::published::{self, Langs};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone};

const PNG: &str = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082";

struct Mall {
    app: TestApp,
    t: platform::directory::Tenant,
    owner: String,
}

impl Mall {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let t = app.tenant().await;
        let (_, owner) = app.staff(&t, "owner").await;
        Mall { app, t, owner }
    }

    fn staff_path(&self, rest: &str) -> String {
        format!("/v1/tenants/{}/staff/content{rest}", self.t.slug)
    }

    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.app.call(Method::POST, &self.staff_path(""), Some(token), Some(body)).await
    }

    async fn created(&self, body: Value) -> i64 {
        let (s, b) = self.create(&self.owner, body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_i64().unwrap()
    }

    async fn to(&self, token: &str, id: i64, to: &str) -> (StatusCode, Value) {
        self.app
            .call(Method::POST, &self.staff_path(&format!("/{id}/state")), Some(token), Some(json!({"to": to})))
            .await
    }

    /// Submits and publishes as the owner.
    async fn publish(&self, id: i64) {
        for to in ["pending_review", "published"] {
            let (s, b) = self.to(&self.owner, id, to).await;
            assert_eq!(s, StatusCode::OK, "{to}: {b}");
        }
    }

    async fn upload(&self, token: &str, id: i64) -> (StatusCode, Value) {
        let resp = self
            .app
            .client
            .post(format!("{}{}", self.app.base, self.staff_path(&format!("/{id}/image"))))
            .bearer_auth(token)
            .body(hex::decode(PNG).unwrap())
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// What a member whose phone speaks Chinese reads at `rest` (`banners`,
    /// `pages/points-rules?locale=en`, …).
    async fn member_read(&self, rest: &str) -> (StatusCode, Value) {
        let path = format!("/v1/tenants/{}/content/{rest}", self.t.slug);
        let (s, _, b) = self.app.call_full(Method::GET, &path, &[("accept-language", "zh-CN".into())], None).await;
        (s, b)
    }

    async fn product(&self, body: Value) -> i64 {
        let (s, b) = self
            .app
            .call(Method::POST, &format!("/v1/tenants/{}/staff/products", self.t.slug), Some(&self.owner), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_i64().unwrap()
    }
}

fn titles(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x["title"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn operators_write_and_submit_the_owner_publishes_and_every_step_is_audited() {
    let m = Mall::new().await;
    let (_, operator) = m.app.staff(&m.t, "operator").await;
    let (_, auditor) = m.app.staff(&m.t, "auditor").await;
    let (_, service) = m.app.staff(&m.t, "customer_service").await;

    let banner = json!({"kind": "banner", "locale": "zh-CN", "title": "春季大促", "link": "/zones/spring"});
    let (s, b) = m.create(&auditor, banner.clone()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("permission_denied")), "{b}");
    let (s, b) = m.create(&operator, banner.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!((b["state"].as_str(), b["key"].as_str().map(|k| k.starts_with("banner-"))), (Some("draft"), Some(true)));
    let id = b["id"].as_i64().unwrap();

    // A banner without an image cannot be submitted; with one it can.
    let (s, b) = m.to(&operator, id, "pending_review").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("content_incomplete")), "{b}");
    let (s, b) = m.upload(&operator, id).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let image = b["image_url"].as_str().unwrap().to_string();
    assert!(image.starts_with(&format!("/v1/tenants/{}/files/content/{id}/", m.t.slug)), "{image}");
    let file = m.app.client.get(format!("{}{image}", m.app.base)).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");

    // Straight from draft to published: no.
    let (s, b) = m.to(&m.owner, id, "published").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("content_state_invalid")), "{b}");
    let (s, b) = m.to(&operator, id, "pending_review").await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("pending_review")), "{b}");
    assert!(b["submitted_by"].is_i64() && b["submitted_at"].is_string(), "{b}");
    // The operator may not approve; the owner sends it back with a note, then approves.
    let (s, b) = m.to(&operator, id, "published").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("permission_denied")), "{b}");
    let (s, b) = m
        .app
        .call(
            Method::POST,
            &m.staff_path(&format!("/{id}/state")),
            Some(&m.owner),
            Some(json!({"to": "draft", "note": "换一张更清晰的图"})),
        )
        .await;
    assert_eq!(
        (s, b["state"].as_str(), b["review_note"].as_str()),
        (StatusCode::OK, Some("draft"), Some("换一张更清晰的图"))
    );
    let (_, members) = m.member_read("banners").await;
    assert_eq!(members, json!([]), "a draft is not shown");
    m.to(&operator, id, "pending_review").await;
    let (s, b) = m.to(&m.owner, id, "published").await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("published")), "{b}");
    assert!(b["published_at"].is_string() && b["reviewed_by"].is_i64(), "{b}");

    let (s, members) = m.member_read("banners").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(titles(&members), vec!["春季大促"]);
    assert_eq!(
        (members[0]["image_url"].as_str(), members[0]["link"].as_str()),
        (Some(image.as_str()), Some("/zones/spring"))
    );

    // Reading is for who runs or audits the mall.
    let (s, list) = m.app.call(Method::GET, &m.staff_path("?kind=banner"), Some(&auditor), None).await;
    assert_eq!((s, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{list}");
    let (s, _) = m.app.call(Method::GET, &m.staff_path(""), Some(&service), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = m.to(&auditor, id, "archived").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // An edit of published content takes it off the members' pages until approved again.
    let mut edit = banner.clone();
    edit["title"] = json!("春季大促（延长）");
    edit["image_url"] = json!(image);
    let (s, b) = m.app.call(Method::PUT, &m.staff_path(&format!("/{id}")), Some(&operator), Some(edit)).await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("draft")), "{b}");
    assert_eq!(m.member_read("banners").await.1, json!([]));
    m.publish(id).await;
    assert_eq!(titles(&m.member_read("banners").await.1), vec!["春季大促（延长）"]);

    // Archived: gone for members and from the default list; an archived item is not edited.
    let (s, b) = m.to(&operator, id, "archived").await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("archived")));
    assert_eq!(m.member_read("banners").await.1, json!([]));
    let (_, list) = m.app.call(Method::GET, &m.staff_path(""), Some(&m.owner), None).await;
    assert_eq!(list, json!([]));
    let (_, list) = m.app.call(Method::GET, &m.staff_path("?state=archived"), Some(&m.owner), None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (s, b) = m.app.call(Method::PUT, &m.staff_path(&format!("/{id}")), Some(&operator), Some(banner)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("content_state_invalid")), "{b}");

    let (_, log) = m
        .app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log?limit=200", m.t.slug), Some(&m.owner), None)
        .await;
    let target = format!("content:{id}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == target.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .rev()
        .collect();
    assert_eq!(
        actions,
        vec![
            "content.create",
            "content.image",
            "content.pending_review",
            "content.draft",
            "content.pending_review",
            "content.published",
            "content.update",
            "content.pending_review",
            "content.published",
            "content.archived"
        ]
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_codes_of_its_own_in_both_languages() {
    let m = Mall::new().await;
    let p = m.product(json!({"name": "茶", "kind": "coupon", "points_price": 10})).await;
    let cases = [
        (
            json!({"kind": "announcement", "locale": "zh-CN", "title": "t",
                   "starts_at": "2030-01-02T00:00:00+08:00", "ends_at": "2030-01-01T00:00:00+08:00"}),
            "content_window_invalid",
            "ends_at",
        ),
        (
            json!({"kind": "banner", "locale": "en", "title": "t", "link": "javascript:alert(1)"}),
            "content_link_unsafe",
            "link",
        ),
        (
            json!({"kind": "banner", "locale": "en", "title": "t", "link": "//evil.example/x"}),
            "content_link_unsafe",
            "link",
        ),
        (
            json!({"kind": "zone", "locale": "en", "title": "t", "product_ids": [p, 4_000_000_000i64]}),
            "content_product_unknown",
            "product_ids",
        ),
        (json!({"kind": "announcement", "locale": "en", "title": "x".repeat(101)}), "validation_failed", "title"),
        (
            json!({"kind": "announcement", "locale": "en", "title": "t", "body": "长".repeat(5001)}),
            "validation_failed",
            "body",
        ),
        (json!({"kind": "page", "locale": "en", "title": "t", "body": "x"}), "validation_failed", "key"),
        (json!({"kind": "page", "locale": "en", "title": "t", "key": "Bad Key"}), "validation_failed", "key"),
        (
            json!({"kind": "banner", "locale": "en", "title": "t", "product_ids": [p]}),
            "validation_failed",
            "product_ids",
        ),
        (
            json!({"kind": "zone", "locale": "en", "title": "t", "product_ids": [p, p]}),
            "validation_failed",
            "product_ids",
        ),
        (
            json!({"kind": "banner", "locale": "en", "title": "t", "image_url": "http://x.example/a.png"}),
            "validation_failed",
            "image_url",
        ),
    ];
    for (body, code, field) in cases {
        let (s, b) = m.create(&m.owner, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["error"]["code"].as_str(), Some(code), "{body}: {b}");
        assert_eq!(b["error"]["details"]["fields"][0]["field"].as_str(), Some(field), "{b}");
    }
    // In Chinese, and in English, with the same code.
    let window = json!({"kind": "banner", "locale": "en", "title": "t",
                        "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"});
    let (_, _, b) = m
        .app
        .call_full(
            Method::POST,
            &m.staff_path(""),
            &[("authorization", format!("Bearer {}", m.owner)), ("accept-language", "zh-CN".into())],
            Some(window.clone()),
        )
        .await;
    assert!(b["error"]["message"].as_str().unwrap().contains("结束早于开始"), "{b}");
    let (_, _, b) = m
        .app
        .call_full(
            Method::POST,
            &m.staff_path(""),
            &[("authorization", format!("Bearer {}", m.owner)), ("accept-language", "en".into())],
            Some(window),
        )
        .await;
    assert_eq!(b["error"]["code"], "content_window_invalid");
    assert!(b["error"]["message"].as_str().unwrap().contains("after starts_at"), "{b}");
    let (_, _, b) = m
        .app
        .call_full(
            Method::POST,
            &m.staff_path(""),
            &[("authorization", format!("Bearer {}", m.owner)), ("accept-language", "zh-CN".into())],
            Some(json!({"kind": "zone", "locale": "en", "title": "t", "product_ids": [987654]})),
        )
        .await;
    assert!(b["error"]["details"]["fields"][0]["message"].as_str().unwrap().contains("987654"), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("商品"), "{b}");

    // Unknown fields, a second live page under one key, a move of an unknown item.
    let (s, _) =
        m.create(&m.owner, json!({"kind": "page", "locale": "en", "title": "t", "key": "k", "html": "<b>"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    m.created(json!({"kind": "page", "locale": "en", "title": "Rules", "key": "rules", "body": "x"})).await;
    let (s, b) = m.create(&m.owner, json!({"kind": "page", "locale": "en", "title": "Again", "key": "rules"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("content_key_taken")), "{b}");
    let (s, _) = m.create(&m.owner, json!({"kind": "page", "locale": "zh-CN", "title": "规则", "key": "rules"})).await;
    assert_eq!(s, StatusCode::CREATED, "the same key in another language is its translation");
    let (s, b) = m.to(&m.owner, 4_000_000, "pending_review").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("content_not_found")));
}

#[tokio::test]
async fn a_window_opens_and_closes_at_the_malls_midnight() {
    let m = Mall::new().await;
    // 1 January 2030 in Beijing: 2029-12-31 16:00 UTC to 2030-01-01 16:00 UTC.
    let id = m
        .created(json!({"kind": "announcement", "locale": "zh-CN", "title": "元旦", "body": "元旦快乐",
            "starts_at": "2030-01-01T00:00:00+08:00", "ends_at": "2030-01-02T00:00:00+08:00"}))
        .await;
    m.publish(id).await;
    let (_, item) = m.app.call(Method::GET, &m.staff_path(&format!("/{id}")), Some(&m.owner), None).await;
    assert_eq!(item["starts_at"], "2029-12-31T16:00:00Z");
    let langs = Langs { want: ContentLocale::ZhCn, mall: ContentLocale::ZhCn };
    let at = |y, mo, d, h, mi, s| Shanghai.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().with_timezone(&Utc);
    for (now, shown) in [
        (at(2029, 12, 31, 23, 59, 59), false),
        (at(2030, 1, 1, 0, 0, 0), true),
        (at(2030, 1, 1, 23, 59, 59), true),
        (at(2030, 1, 2, 0, 0, 0), false),
    ] {
        let seen = m
            .app
            .db
            .read(&m.t, &Actor::public(), async |tx| published::announcements(tx, langs, now).await)
            .await
            .unwrap();
        assert_eq!(seen.len(), usize::from(shown), "at {now}");
    }
    // Not yet, for a member now.
    assert_eq!(m.member_read("announcements").await.1, json!([]));
}

#[tokio::test]
async fn members_read_their_language_else_the_malls() {
    let m = Mall::new().await;
    for (key, locale, title) in [
        ("points-rules", "zh-CN", "积分规则"),
        ("points-rules", "en", "Points rules"),
        ("terms", "zh-CN", "兑换条款"),
        ("en-only", "en", "English only"),
    ] {
        let id = m
            .created(
                json!({"kind": "page", "key": key, "locale": locale, "title": title, "body": format!("# {title}")}),
            )
            .await;
        m.publish(id).await;
    }
    let pinned = m
        .created(json!({"kind": "announcement", "locale": "zh-CN", "title": "置顶", "pinned": true, "sort_order": 9}))
        .await;
    let plain = m.created(json!({"kind": "announcement", "locale": "zh-CN", "title": "普通", "sort_order": 1})).await;
    m.publish(plain).await;
    m.publish(pinned).await;

    // The mall speaks zh-CN: without a language, zh-CN; English pages only in English.
    let (s, p) = m.member_read("pages/points-rules").await;
    assert_eq!(
        (s, p["title"].as_str(), p["locale"].as_str()),
        (StatusCode::OK, Some("积分规则"), Some("zh-CN")),
        "{p}"
    );
    assert_eq!(m.member_read("pages/en-only").await.0, StatusCode::NOT_FOUND);
    let (_, p) = m.member_read("pages/points-rules?locale=en").await;
    assert_eq!((p["title"].as_str(), p["html"].as_str()), (Some("Points rules"), Some("<h1>Points rules</h1>\n")));
    // Not translated: the mall's language.
    let (_, p) = m.member_read("pages/terms?locale=en").await;
    assert_eq!((p["title"].as_str(), p["locale"].as_str()), (Some("兑换条款"), Some("zh-CN")));
    let (_, list) = m.member_read("pages?locale=en").await;
    let mut got = titles(&list);
    got.sort();
    assert_eq!(got, vec!["English only", "Points rules", "兑换条款"]);
    // Accept-Language chooses when the query does not.
    let (_, _, p) = m
        .app
        .call_full(
            Method::GET,
            &format!("/v1/tenants/{}/content/pages/points-rules", m.t.slug),
            &[("accept-language", "en-US,en;q=0.9".into())],
            None,
        )
        .await;
    assert_eq!(p["title"], "Points rules");
    // Pinned first, then by sort order; the zh-CN announcements serve English readers too.
    assert_eq!(titles(&m.member_read("announcements?locale=en").await.1), vec!["置顶", "普通"]);
    let (s, _) = m.member_read("pages/no-such-page").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn markdown_never_carries_a_script_to_a_member() {
    let m = Mall::new().await;
    let evil = "# 规则\n\n<script>alert('x')</script>\n\n<img src=\"x\" onerror=\"alert(1)\">\n\n\
                [点我](javascript:alert(2)) <a href=\"jAvAsCrIpT:alert(3)\">a</a> \
                <div onmouseover=\"alert(4)\" style=\"position:fixed\">d</div> <iframe src=\"https://e.example\"></iframe>\n\n\
                [ok](https://example.com/terms)";
    let id = m.created(json!({"kind": "page", "key": "evil", "locale": "zh-CN", "title": "规则", "body": evil})).await;
    m.publish(id).await;
    let (s, p) = m.member_read("pages/evil").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let html = p["html"].as_str().unwrap().to_lowercase();
    for bad in ["<script", "onerror", "javascript:", "onmouseover", "style=", "<iframe", "alert(1)"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("<h1>规则</h1>") && html.contains("href=\"https://example.com/terms\""), "{html}");
    let (s, r) =
        m.app.call(Method::POST, &m.staff_path("/preview"), Some(&m.owner), Some(json!({"markdown": evil}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["html"].as_str().unwrap().to_lowercase(), html, "the preview is what members get");
}

#[tokio::test]
async fn a_zone_shows_its_products_on_sale_in_its_order() {
    let m = Mall::new().await;
    let on = |name: &str| json!({"name": name, "kind": "coupon", "points_price": 10, "status": "listed", "review_state": "approved"});
    let a = m.product(on("A")).await;
    let b = m.product(on("B")).await;
    let delisted = m.product(json!({"name": "C", "kind": "coupon", "points_price": 10})).await;
    let mut later = on("D");
    later["starts_at"] = json!("2099-01-01T00:00:00Z");
    let later = m.product(later).await;
    let zone = m
        .created(json!({"kind": "zone", "key": "tea", "locale": "zh-CN", "title": "茶专区",
            "product_ids": [b, delisted, later, a]}))
        .await;
    m.publish(zone).await;
    let (s, z) = m.member_read("zones/tea").await;
    assert_eq!(s, StatusCode::OK, "{z}");
    let ids: Vec<i64> = z["products"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![b, a]);
    // Delisting a product takes it out of the zone at once (the catalog's change evicts).
    let (s, _) = m
        .app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/products/{b}", m.t.slug),
            Some(&m.owner),
            Some(json!({"status": "delisted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, zones) = m.member_read("zones").await;
    let ids: Vec<i64> = zones[0]["products"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![a]);
    // An empty zone cannot be submitted.
    let empty = m.created(json!({"kind": "zone", "locale": "zh-CN", "title": "空"})).await;
    let (s, b) = m.to(&m.owner, empty, "pending_review").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("content_incomplete")));
}

#[tokio::test]
async fn staff_changes_reach_members_at_once_on_every_instance() {
    let m = Mall::new().await;
    let other = TestApp::spawn_like(&m.app).await;
    let id = m.created(json!({"kind": "announcement", "locale": "zh-CN", "title": "第一版"})).await;
    m.publish(id).await;
    let url = format!("/v1/tenants/{}/content/announcements", m.t.slug);
    // Both instances cache the first version.
    assert_eq!(titles(&m.member_read("announcements").await.1), vec!["第一版"]);
    assert_eq!(titles(&other.call(Method::GET, &url, None, None).await.1), vec!["第一版"]);
    let edit = json!({"kind": "announcement", "locale": "zh-CN", "title": "第二版"});
    let (s, _) = m.app.call(Method::PUT, &m.staff_path(&format!("/{id}")), Some(&m.owner), Some(edit)).await;
    assert_eq!(s, StatusCode::OK);
    // The instance that made the change: at once.
    assert_eq!(m.member_read("announcements").await.1, json!([]));
    m.publish(id).await;
    assert_eq!(titles(&m.member_read("announcements").await.1), vec!["第二版"]);
    // The other one: as soon as the notification arrives, long before the cache's
    // lifetime (5 s) would have.
    let started = std::time::Instant::now();
    loop {
        let (_, seen) = other.call(Method::GET, &url, None, None).await;
        if titles(&seen) == vec!["第二版"] {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "still {seen} after {:?}", started.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_mall_never_sees_or_changes_anothers_content() {
    let a = Mall::new().await;
    let b_tenant = a.app.tenant().await;
    let (_, b_owner) = a.app.staff(&b_tenant, "owner").await;
    let id = a
        .created(json!({"kind": "page", "key": "secret-terms", "locale": "zh-CN", "title": "A 的条款", "body": "A"}))
        .await;
    a.publish(id).await;
    let (_, member_b) = a.app.member(&b_tenant, &phone()).await;
    let b_token = member_b["access_token"].as_str().unwrap();

    // B's staff: A's mall refuses their token; their own mall has no such item.
    let (s, _) = a.app.call(Method::GET, &a.staff_path(&format!("/{id}")), Some(&b_owner), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = a.to(&b_owner, id, "archived").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let b_path = format!("/v1/tenants/{}/staff/content", b_tenant.slug);
    let (_, list) = a.app.call(Method::GET, &b_path, Some(&b_owner), None).await;
    assert_eq!(list, json!([]));
    let (s, _) = a.app.call(Method::GET, &format!("{b_path}/{id}"), Some(&b_owner), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B's members (and anyone at B's address) do not see A's page.
    let (s, _) = a
        .app
        .call(Method::GET, &format!("/v1/tenants/{}/content/pages/secret-terms", b_tenant.slug), Some(b_token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        a.app.call(Method::GET, &format!("/v1/tenants/{}/content/pages", b_tenant.slug), None, None).await.1,
        json!([])
    );
    assert_eq!(titles(&a.member_read("pages").await.1), vec!["A 的条款"]);
}
