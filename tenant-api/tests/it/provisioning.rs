//! T1/T2: provisioning is atomic; suspend keeps data and refuses requests; resume.

use platform::audit::Actor;
use platform::tenancy::{NewTenant, create_tenant_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone, unique};

async fn orphan_schemas(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^t_[0-9]+$' \
         AND substring(nspname from 3)::bigint NOT IN (SELECT id FROM control.tenants)",
    )
    .fetch_all(app.db.control())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_tenant_gets_its_own_migrated_schema_and_directory_row() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    assert_eq!(t.schema_name, format!("t_{}", t.id));
    assert_eq!(t.cluster, "main");
    assert_eq!(t.schema_version, migrations::TENANT.last().unwrap().version);
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1")
            .bind(&t.schema_name)
            .fetch_all(app.db.control())
            .await
            .unwrap();
    for expected in ["members", "member_sessions", "schema_migrations", "verification_codes"] {
        assert!(tables.iter().any(|n| n == expected), "{expected} missing from {tables:?}");
    }
    // The creation is in the audit log.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.audit_log WHERE tenant_id = $1 AND action = 'tenant.create'")
            .bind(t.id)
            .fetch_one(app.db.control())
            .await
            .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_failure_mid_migration_leaves_no_schema_and_no_row() {
    let app = TestApp::spawn().await;
    let slug = unique("broken");
    // The first migration is the real one (it creates tables); the second fails.
    let mut list = migrations::TENANT.to_vec();
    list.push(migrations::Migration {
        version: 999,
        name: "0999_broken",
        sql: "CREATE TABLE fine (id int); SELECT no_such_function();",
    });
    let new = NewTenant { slug: slug.clone(), name: "Broken".into(), alliance: None, cluster: None };
    let err = create_tenant_with(&app.db, &new, &Actor::system("test"), &list).await.unwrap_err();
    assert!(err.to_string().contains("0999_broken"), "{err}");
    let row = platform::directory::find_by_slug(app.db.control(), &slug).await.unwrap();
    assert!(row.is_none(), "directory row left behind");
    assert_eq!(orphan_schemas(&app).await, Vec::<String>::new(), "schema left behind");
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM control.audit_log WHERE target = $1")
        .bind(&slug)
        .fetch_one(app.db.control())
        .await
        .unwrap();
    assert_eq!(audit, 0, "audit entry for a tenant that does not exist");
    // The same slug can then be created for real.
    app.tenant_direct(&slug).await;
}

#[tokio::test]
async fn bad_and_duplicate_slugs_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            Some(&app.platform_token),
            Some(json!({"slug": t.slug, "name": "Again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "slug_taken");
    for bad in ["A-Upper", "x", "1starts-with-digit", "has space", "semi;colon", "t_1\"; DROP SCHEMA control; --"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/platform/tenants",
                Some(&app.platform_token),
                Some(json!({"slug": bad, "name": "X"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "slug");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            Some(&app.platform_token),
            Some(json!({"slug": unique("ok"), "name": "X", "extra": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused: {body}");
}

#[tokio::test]
async fn suspension_refuses_requests_keeps_data_and_resume_restores() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, staff_token) = app.staff(&t, "owner").await;
    let (member, tokens) = app.member(&t, &phone()).await;
    let member_token = tokens["access_token"].as_str().unwrap().to_string();

    let (status, _) = app
        .call(Method::POST, &format!("/v1/platform/tenants/{}/suspend", t.slug), Some(&app.platform_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, token) in [
        (format!("/v1/tenants/{}/me", t.slug), &member_token),
        (format!("/v1/tenants/{}/staff/me", t.slug), &staff_token),
    ] {
        let (status, body) = app.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "tenant_suspended");
        assert!(body["error"]["message"].as_str().unwrap().contains("suspended"));
    }
    // Logging in is refused too.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login", t.slug),
            None,
            Some(json!({"identifier": member["phone"], "password": "x"})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("tenant_suspended")));

    let (status, _) = app
        .call(Method::POST, &format!("/v1/platform/tenants/{}/resume", t.slug), Some(&app.platform_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.call(Method::GET, &format!("/v1/tenants/{}/me", t.slug), Some(&member_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], member["id"], "data kept through suspension");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM control.audit_log WHERE tenant_id = $1 ORDER BY id")
            .bind(t.id)
            .fetch_all(app.db.control())
            .await
            .unwrap();
    assert!(actions.ends_with(&["tenant.suspend".to_string(), "tenant.resume".to_string()]), "{actions:?}");
}

#[tokio::test]
async fn a_suspension_by_another_instance_reaches_this_one() {
    // Two application instances on one database; the second has the tenant cached.
    let a = TestApp::spawn().await;
    let b = TestApp::spawn().await;
    let t = a.tenant().await;
    let (status, _) = b.call(Method::GET, &format!("/v1/tenants/{}/auth/login", t.slug), None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // b resolves (and caches) the tenant.
    let (status, _) = b
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/refresh", t.slug),
            None,
            Some(json!({"refresh_token": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // a suspends; b must refuse within a second (its listener evicts the entry).
    platform::tenancy::set_status(&a.db, &t.slug, platform::directory::TenantStatus::Suspended, &Actor::system("test"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (status, body) = b
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/auth/refresh", t.slug),
                None,
                Some(json!({"refresh_token": "nope"})),
            )
            .await;
        if status == StatusCode::FORBIDDEN {
            assert_eq!(body["error"]["code"], "tenant_suspended");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "instance b still serves a suspended tenant");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
