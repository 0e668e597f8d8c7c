//! T3: `migrate` over many tenants is idempotent, refuses edited migrations, and the
//! CLI shows what it did.

use platform::migrate::{migrate_all, migrate_tenant};
use std::process::Command;

use crate::common::{TestApp, unique};

async fn tenant_ddl(app: &TestApp) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT table_schema::text, table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema ~ '^t_[0-9]+$' ORDER BY 1, 2, 3",
    )
    .fetch_all(app.db.control())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrating_twice_over_fifty_tenants_changes_nothing_the_second_time() {
    let app = TestApp::spawn().await;
    let run = unique("m");
    let mut created = vec![];
    for i in 0..50 {
        created.push(app.tenant_direct(&format!("{run}-{i}")).await);
    }
    let first = migrate_all(&app.db, 8, None).await.unwrap();
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert!(first.tenants_total >= 50);
    let ddl_before = tenant_ddl(&app).await;
    let history_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.schema_migrations").fetch_one(app.db.control()).await.unwrap();

    let second = migrate_all(&app.db, 8, None).await.unwrap();
    assert_eq!(second.control_applied, 0);
    assert_eq!(second.migrations_applied, 0);
    assert_eq!(second.tenants_changed, 0);
    assert_eq!(second.tenants_unchanged, second.tenants_total);
    assert!(second.failures.is_empty());
    let ddl_after = tenant_ddl(&app).await;
    // Other tests may add tenants meanwhile: compare ours only.
    let ours = |v: &Vec<(String, String, String, String)>| {
        v.iter().filter(|r| created.iter().any(|t| t.schema_name == r.0)).cloned().collect::<Vec<_>>()
    };
    assert_eq!(ours(&ddl_before), ours(&ddl_after));
    assert!(!ours(&ddl_before).is_empty());
    let history_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.schema_migrations").fetch_one(app.db.control()).await.unwrap();
    assert_eq!(history_before, history_after);
}

#[tokio::test]
async fn a_new_migration_reaches_a_tenant_once_and_an_edited_one_is_refused() {
    let app = TestApp::spawn().await;
    // A schema outside the directory, so that concurrent `migrate` runs in other tests
    // never meet the probe migration below.
    let mut t = app.tenant_direct(&unique("m")).await;
    t.schema_name = unique("probe").replace('-', "_");
    t.id = platform::ids::TenantId::new(-1);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {}", t.schema_name)))
        .execute(app.db.control())
        .await
        .unwrap();
    let mut list = migrations::TENANT.to_vec();
    list.push(migrations::Migration { version: 900, name: "0900_probe", sql: "CREATE TABLE probe (id int)" });
    let pool = app.db.control();
    assert_eq!(migrate_tenant(pool, pool, &t, &list).await.unwrap(), list.len());
    assert_eq!(migrate_tenant(pool, pool, &t, &list).await.unwrap(), 0);
    list.last_mut().unwrap().sql = "CREATE TABLE probe (id bigint)";
    let err = migrate_tenant(pool, pool, &t, &list).await.unwrap_err();
    assert!(err.to_string().contains("edited after it was applied"), "{err}");
    // A binary that does not know an applied version refuses to run against it.
    let err = migrate_tenant(pool, pool, &t, migrations::TENANT).await.unwrap_err();
    assert!(err.to_string().contains("does not know"), "{err}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", t.schema_name)))
        .execute(app.db.control())
        .await
        .unwrap();
}

#[test]
fn the_cli_migrates_and_reports() {
    let bin = env!("CARGO_BIN_EXE_pointsmall");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("DATABASE_URL", crate::common::database_url())
            .output()
            .expect("run pointsmall");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let slug = unique("cli");
    let out = run(&["tenant", "create", "--slug", &slug, "--name", "CLI mall"]);
    assert!(out.contains(&format!("created tenant {slug}")), "{out}");
    run(&["migrate"]);
    let out = run(&["migrate", "--concurrency", "4"]);
    assert!(out.contains("control schema: 0 migration(s) applied"), "{out}");
    assert!(out.contains(", 0 migrated (0 migration(s) applied)"), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    let out = run(&["tenant", "suspend", &slug]);
    assert!(out.contains("suspended"), "{out}");
    let out = run(&["tenant", "list"]);
    let line = out.lines().find(|l| l.contains(&slug)).expect("tenant listed");
    assert!(line.contains("suspended"), "{line}");
    run(&["tenant", "resume", &slug]);
}
