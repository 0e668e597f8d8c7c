//! C5: product images go to object storage — a real S3-compatible server over HTTP
//! (s3s-fs, started here) and the local-directory default — with type and size checks.

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use platform::auth::rate_limit::LoginLimiter;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_api::server::StorageConfig;

use crate::common::{TestApp, unique};

/// A 1×1 PNG.
const PNG: &str = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082";

/// Starts an S3-compatible server (s3s-fs) on a random port; returns its endpoint and root.
async fn s3_server() -> (String, std::path::PathBuf) {
    let root = std::env::temp_dir().join(unique("s3s-root"));
    std::fs::create_dir_all(root.join("mall-files")).unwrap();
    let fs = s3s_fs::FileSystem::new(&root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single("test-access", "test-secret-key"));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    (format!("http://{addr}"), root)
}

async fn upload_and_read(app: &TestApp) -> (String, Vec<u8>) {
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
    let png = hex::decode(PNG).unwrap();
    let url = format!("{}/v1/tenants/{}/staff/products/{}/images", app.base, t.slug, p["id"]);
    let resp = app
        .client
        .post(&url)
        .bearer_auth(&owner)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let product: serde_json::Value = resp.json().await.unwrap();
    let path = product["images"][0].as_str().unwrap().to_string();
    let file = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.bytes().await.unwrap().to_vec(), png);
    // Not an image (the declared type is not trusted), or too big: refused.
    let svg = app
        .client
        .post(&url)
        .bearer_auth(&owner)
        .header("content-type", "image/png")
        .body("<svg onload=alert(1)>")
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut big = png.clone();
    big.resize(2 * 1024 * 1024 + 10, 0);
    let big =
        app.client.post(&url).bearer_auth(&owner).header("content-type", "image/png").body(big).send().await.unwrap();
    assert!(
        matches!(big.status(), StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE),
        "{}",
        big.status()
    );
    // Members see the image on the product; a file of another path is a 404.
    let (s, _) =
        app.call(Method::GET, &format!("/v1/tenants/{}/files/products/{}/nope.png", t.slug, p["id"]), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    (path, png)
}

#[tokio::test]
async fn images_go_to_an_s3_compatible_server_over_http() {
    let (endpoint, root) = s3_server().await;
    let storage = StorageConfig::S3(platform::storage::S3Config {
        endpoint,
        bucket: "mall-files".into(),
        region: "us-east-1".into(),
        access_key: "test-access".into(),
        secret_key: "test-secret-key".into(),
    });
    let app = TestApp::spawn_with(LoginLimiter::default(), storage).await;
    let (path, png) = upload_and_read(&app).await;
    // The object is in the S3 server's bucket (on its disk), under the tenant's prefix.
    let name = path.rsplit('/').next().unwrap();
    let stored: Vec<_> =
        walk(&root.join("mall-files")).into_iter().filter(|p| p.to_string_lossy().ends_with(name)).collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), png);
    // Wrong credentials are refused by the server: the upload fails cleanly (500, logged).
    let bad = StorageConfig::S3(platform::storage::S3Config {
        endpoint: format!("http://{}", "127.0.0.1:1"),
        bucket: "mall-files".into(),
        region: "us-east-1".into(),
        access_key: "x".into(),
        secret_key: "y".into(),
    });
    let broken = TestApp::spawn_with(LoginLimiter::default(), bad).await;
    let t = broken.tenant().await;
    let (_, owner) = broken.staff(&t, "owner").await;
    let (_, p) = broken
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(&owner),
            Some(json!({"name": "Pic", "kind": "coupon", "points_price": 1})),
        )
        .await;
    let resp = broken
        .client
        .post(format!("{}/v1/tenants/{}/staff/products/{}/images", broken.base, t.slug, p["id"]))
        .bearer_auth(&owner)
        .body(hex::decode(PNG).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    let (_, after) = broken
        .call(Method::GET, &format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]), Some(&owner), None)
        .await;
    assert_eq!(after["images"], json!([]), "no image is recorded when storing failed");
}

#[tokio::test]
async fn images_go_to_a_local_directory_by_default() {
    let app = TestApp::spawn().await;
    upload_and_read(&app).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
