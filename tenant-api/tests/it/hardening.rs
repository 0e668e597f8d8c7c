//! Issue 10, point 9: security headers on every answer, uploads decoded within limits,
//! image and logo URLs validated, the storage's sidecar files never served, and every
//! route addressing an id that does not exist in this mall answers 404.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

/// A 1×1 PNG.
const PNG: &str = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082";

/// A w×h grey PNG.
fn png_of(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&vec![128; (w * h) as usize]).unwrap();
    writer.finish().unwrap();
    out
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    for (path, html) in [
        ("/portal/", true),
        ("/docs", true),
        ("/healthz", false),
        ("/openapi.json", false),
        ("/no/such/route", false),
        (&*format!("/v1/tenants/{}/products", t.slug), false),
        (&*format!("/v1/tenants/{}/staff/me", t.slug), false),
    ] {
        let resp = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(csp.contains("script-src 'self'"), html, "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    // The docs page runs no inline script (the CSP would block it).
    let docs = app.client.get(format!("{}/docs", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!docs.contains("<script>"), "{docs}");
    let js = app.client.get(format!("{}/docs/docs.js", app.base)).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
}

#[tokio::test]
async fn uploads_must_decode_within_limits_and_sidecars_are_never_served() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(&owner),
            Some(json!({"name": "Pic", "kind": "coupon", "points_price": 1})),
        )
        .await;
    let url = format!("{}/v1/tenants/{}/staff/products/{}/images", app.base, t.slug, p["id"]);
    let upload = |bytes: Vec<u8>| {
        let req = app.client.post(&url).bearer_auth(&owner).header("content-type", "image/png").body(bytes);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    // The right first bytes, then nothing a decoder can read.
    let mut truncated = png_of(64, 64);
    truncated.truncate(60);
    let mut fake_jpeg = b"\xff\xd8\xff\xe0".to_vec();
    fake_jpeg.extend(std::iter::repeat_n(0u8, 200));
    let mut fake_webp = b"RIFF\x20\0\0\0WEBPVP8 ".to_vec();
    fake_webp.extend([0u8; 20]);
    for bad in [truncated, fake_jpeg, b"GIF89a\x01\x00\x01\x00".to_vec(), fake_webp] {
        let (s, b) = upload(bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["details"]["fields"][0]["field"], "file", "{b}");
    }
    // Too many pixels (a tiny file: the rows compress to nothing).
    let (s, b) = upload(png_of(5000, 10)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("4096"), "{b}");
    // A real image is stored and served; its sidecar (content type) is not.
    let (s, b) = upload(hex::decode(PNG).unwrap()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let path = b["images"][0].as_str().unwrap().to_string();
    let (s, _) = app.call(Method::GET, &path, None, None).await;
    assert_eq!(s, StatusCode::OK);
    let stem = path.strip_suffix(".png").unwrap();
    for sidecar in [format!("{stem}.type"), format!("{stem}.part"), format!("{path}.type"), stem.to_string()] {
        let (s, b) = app.call(Method::GET, &sidecar, None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{sidecar}: {b}");
    }
}

#[tokio::test]
async fn image_and_logo_urls_are_https_or_paths_of_this_server() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, tokens) = app.member(&t, &phone()).await;
    let member = tokens["access_token"].as_str().unwrap();
    let base = format!("/v1/tenants/{}", t.slug);
    let bad = [
        "//evil.example/a.png",
        "/\\evil.example/a.png",
        "javascript:alert(1)",
        "http://cdn.example/a.png",
        "https://cdn.example@evil.example/a.png",
        "data:image/png;base64,AAAA",
        " https://cdn.example/a.png",
    ];
    let (_, settings) = app.call(Method::GET, &format!("{base}/staff/settings"), Some(&owner), None).await;
    for url in bad {
        let (s, b) = app
            .call(
                Method::POST,
                &format!("{base}/staff/products"),
                Some(&owner),
                Some(json!({"name": "P", "kind": "coupon", "points_price": 1, "images": [url]})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        let mut s2 = settings.clone();
        s2["logo_url"] = json!(url);
        let (s, b) = app.call(Method::PUT, &format!("{base}/staff/settings"), Some(&owner), Some(s2)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        let (s, b) =
            app.call(Method::PATCH, &format!("{base}/me"), Some(member), Some(json!({"avatar_url": url}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
    }
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/staff/products"),
            Some(&owner),
            Some(json!({"name": "P", "kind": "coupon", "points_price": 1,
                "images": ["https://cdn.example/a.png", format!("{base}/files/products/1/x.png")]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut s2 = settings.clone();
    s2["logo_url"] = json!("https://cdn.example/logo.png");
    let (s, b) = app.call(Method::PUT, &format!("{base}/staff/settings"), Some(&owner), Some(s2)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A body each write route would accept for an id that exists, so that its answer for
/// one that does not is about the id.
fn body_for(method: &str, template: &str) -> Option<Value> {
    let t = template;
    Some(match method {
        "get" | "delete" if t.ends_with("/tags") => json!({"tag": "vip"}),
        "get" | "delete" => return None,
        _ if t.ends_with("/points/adjustments") => json!({"amount": 5, "reason": "x"}),
        _ if t.ends_with("/tags") => json!({"tag": "vip"}),
        _ if t.ends_with("/rules/{id}") => json!({"enabled": true}),
        _ if t.ends_with("/script") => json!({"script": "[]"}),
        _ if t.ends_with("/params") => json!({"params": {}}),
        _ if t.ends_with("/rollback") => json!({"version": 1}),
        _ if t.ends_with("/products/{id}") => json!({"name": "x"}),
        _ if t.ends_with("/lotteries/{id}") => {
            json!({"name": "x", "cost": 1, "prizes": [{"name": "a", "kind": "item", "weight": 1}]})
        }
        _ if t.ends_with("/segments/{id}") => json!({"name": "x", "filter": {}}),
        _ if t.ends_with("/tasks/{id}") => json!({"name": "x", "event_type": "shared", "target": 1, "period": "once",
            "reward_currency": "points", "reward_amount": 1}),
        _ if t.ends_with("/content/{id}") => json!({"kind": "banner", "locale": "en", "title": "x"}),
        _ if t.ends_with("/content/{id}/state") => json!({"to": "pending_review"}),
        _ if t.ends_with("/codes") => json!({"codes": ["code-1"]}),
        _ if t.ends_with("/tracking") => json!({"status": "in_transit"}),
        _ if t.ends_with("/users/{id}") => json!({"disabled": true}),
        _ if t.ends_with("/review") => json!({"rating": 5, "body": "good"}),
        _ if t.ends_with("/addresses/{id}") => {
            json!({"name": "王五", "phone": "13800001111", "region": "上海市", "detail": "南京路 1 号"})
        }
        _ if t.ends_with("/capture") || t.ends_with("/refund") || t.ends_with("/accelerate") => json!({"amount": 1}),
        _ => json!({}),
    })
}

#[tokio::test]
async fn every_route_addressing_an_id_that_is_not_in_this_mall_answers_404() {
    let app = TestApp::spawn().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (_, owner) = app.staff(&a, "owner").await;
    let key = app.partner_key(&a).await;
    let (_, tokens) = app.member(&a, &phone()).await;
    let member = tokens["access_token"].as_str().unwrap().to_string();
    // Ids that exist in the other mall but not in this one (ids are per mall, so above
    // this mall's own).
    let (_, b_owner) = app.staff(&b, "owner").await;
    for _ in 0..3 {
        app.member(&b, &phone()).await;
    }
    let (_, b_product) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", b.slug),
            Some(&b_owner),
            Some(json!({"name": "B's", "kind": "coupon", "points_price": 1})),
        )
        .await;
    assert!(b_product["id"].is_i64(), "{b_product}");
    let foreign = 4_000_000_000i64;

    let (_, spec) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut checked = 0;
    let mut wrong = vec![];
    for (template, item) in spec["paths"].as_object().unwrap() {
        let addresses_id = template.contains("{id}") || template.contains("{order_no}");
        if !template.starts_with("/v1/tenants/{tenant}/") || !addresses_id {
            continue;
        }
        for (m, op) in item.as_object().unwrap() {
            let scheme = op["security"][0].as_object().and_then(|s| s.keys().next().cloned()).unwrap_or_default();
            let mut headers = vec![("idempotency-key", unique("idem"))];
            match scheme.as_str() {
                "staff_jwt" => headers.push(("authorization", format!("Bearer {owner}"))),
                "member_jwt" => headers.push(("authorization", format!("Bearer {member}"))),
                "api_key" => headers.push(("x-api-key", key.clone())),
                _ => {}
            }
            let path = template
                .replace("{tenant}", &a.slug)
                .replace("{id}", &foreign.to_string())
                .replace("{order_no}", "PM-NO-SUCH-ORDER")
                .replace("{action}", "cancel")
                .replace("{name}", &format!("{}.png", "0".repeat(32)));
            let method: Method = m.to_uppercase().parse().unwrap();
            let (status, resp) = if template.ends_with("/images") || template.ends_with("/content/{id}/image") {
                let resp = app
                    .client
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(&owner)
                    .body(hex::decode(PNG).unwrap())
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.json::<Value>().await.unwrap())
            } else {
                let (s, _, b) = app.call_full(method, &path, &headers, body_for(m, template)).await;
                (s, b)
            };
            checked += 1;
            if status != StatusCode::NOT_FOUND {
                wrong.push(format!("{m} {template}: {status} {resp}"));
            } else {
                assert!(resp["error"]["code"].is_string(), "{m} {template}: {resp}");
            }
        }
    }
    assert!(checked >= 30, "only {checked} routes checked");
    assert!(wrong.is_empty(), "routes that do not answer 404 for an id not in this mall:\n{}", wrong.join("\n"));
}
