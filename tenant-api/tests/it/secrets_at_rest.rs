//! Provider secrets at rest (issue 11): the webview and payment secrets are stored sealed,
//! so a database dump alone does not reveal them; `pointsmall secrets reseal` moves them
//! to a new key.

use base64::Engine;
use reqwest::{Method, StatusCode};

use crate::common::{TestApp, database_url};

async fn stored(app: &TestApp, t: &platform::directory::Tenant, name: &str) -> String {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let s: String = sqlx::query_scalar("SELECT secret FROM provider_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    s
}

#[tokio::test]
async fn provider_secrets_are_sealed_and_can_move_to_a_new_key() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let mut shown = vec![];
    for (path, name) in [("webview-secret", "webview"), ("payment-secret", "payment_callback")] {
        let (s, b) = app.call(Method::POST, &format!("/v1/tenants/{}/staff/{path}", t.slug), Some(&owner), None).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let secret = b["secret"].as_str().unwrap().to_string();
        let at_rest = stored(&app, &t, name).await;
        assert!(at_rest.starts_with("v1:jwt:"), "{at_rest}");
        assert!(!at_rest.contains(&secret), "a dump does not show the secret");
        shown.push((name, secret));
    }

    // Rotate: a new key in front; the CLI seals every secret again under it.
    let new_key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let keys = format!("k2:{new_key}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pointsmall"))
        .args(["secrets", "reseal", "--tenant", &t.slug])
        .env("DATABASE_URL", database_url())
        .env("POINTSMALL_JWT_SECRET", String::from_utf8(app.secret.clone()).unwrap())
        .env("POINTSMALL_SECRETS_KEYS", &keys)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vault = platform::vault::Vault::from_config(Some(&keys), &app.secret).unwrap();
    let only_new = platform::vault::Vault::from_config(Some(&format!("k2:{new_key},jwt:{new_key}")), b"").unwrap();
    for (name, secret) in shown {
        let at_rest = stored(&app, &t, name).await;
        assert!(at_rest.starts_with("v1:k2:"), "{at_rest}");
        let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
        let opened = platform::provider_secrets::load(&mut tx, &vault, t.id, name).await.unwrap();
        assert_eq!(opened.as_deref(), Some(secret.as_str()));
        // The new key alone opens it: the old one is no longer needed.
        let opened = platform::provider_secrets::load(&mut tx, &only_new, t.id, name).await.unwrap();
        assert_eq!(opened.as_deref(), Some(secret.as_str()));
        tx.commit().await.unwrap();
    }
}
