//! Operations at the command line: migrations, tenants, rule test files, ledger checks
//! and jobs, provider secrets. Long work shows progress; every command exits non-zero
//! when something failed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use platform::audit::Actor;
use platform::db::Db;
use platform::directory::{self, TenantStatus};
use platform::tenancy::{self, NewTenant};
use platform::{fleet, migrate, tenant_archive};

use super::args::{LedgerCommand, SecretsCommand, StorageArgs, TenantCommand};

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

pub fn rules_test(dir: &std::path::Path) -> anyhow::Result<()> {
    let sandbox = scripting::Sandbox::new();
    let report = scripting::testfile::run_dir(&sandbox, dir).with_context(|| format!("reading {}", dir.display()))?;
    for f in &report.failures {
        eprintln!("FAIL {f}");
    }
    anyhow::ensure!(report.files > 0, "no *.test.json files under {}", dir.display());
    let failed = report.failures.len();
    println!("rule tests: {} file(s), {} case(s)", report.files, report.cases);
    println!("{} passed, {failed} failed", report.cases.saturating_sub(failed));
    anyhow::ensure!(failed == 0, "{failed} rule test(s) failed");
    Ok(())
}

pub async fn migrate(url: &str, concurrency: usize) -> anyhow::Result<()> {
    let db = Db::connect(url, &[], (concurrency as u32 + 2).min(100)).await?;
    let bar = bar(0, "{spinner} migrating tenants {bar:40} {pos}/{len} ({per_sec}, eta {eta})");
    bar.enable_steady_tick(Duration::from_millis(200));
    let b = bar.clone();
    let progress: migrate::Progress = Arc::new(move |done, total| {
        b.set_length(total as u64);
        b.set_position(done as u64);
    });
    let s = migrate::migrate_all(&db, concurrency, Some(progress)).await?;
    bar.finish_and_clear();
    println!(
        "control schema: {} migration(s) applied\ntenants: {} total, {} migrated ({} migration(s) applied), {} already current, {} failed\ntook {:.2?}",
        s.control_applied,
        s.tenants_total,
        s.tenants_changed,
        s.migrations_applied,
        s.tenants_unchanged,
        s.failures.len(),
        s.elapsed
    );
    for (slug, err) in &s.failures {
        eprintln!("  {slug}: {err}");
    }
    anyhow::ensure!(s.failures.is_empty(), "{} tenant(s) failed to migrate", s.failures.len());
    Ok(())
}

pub async fn tenant(url: &str, command: TenantCommand) -> anyhow::Result<()> {
    let db = Db::connect(url, &[], 4).await?;
    migrate::migrate_control(db.control()).await?;
    match command {
        TenantCommand::Create { slug, name, alliance } => {
            let new = NewTenant { slug, name, alliance, cluster: None };
            let t = tenancy::create_tenant(&db, &new, &Actor::cli()).await?;
            println!("created tenant {} (id {}, schema {}, cluster {})", t.slug, t.id, t.schema_name, t.cluster);
        }
        TenantCommand::List => {
            println!("{:>6}  {:<24} {:<10} {:<10} {:>7}  name", "id", "slug", "status", "schema", "version");
            for t in directory::list(db.control()).await? {
                let (id, slug, status, schema) = (t.id, &t.slug, t.status.as_str(), &t.schema_name);
                println!("{id:>6}  {slug:<24} {status:<10} {schema:<10} {:>7}  {}", t.schema_version, t.name);
            }
        }
        TenantCommand::Suspend { slug } => {
            let t = tenancy::set_status(&db, &slug, TenantStatus::Suspended, &Actor::cli()).await?;
            println!("suspended {}", t.slug);
        }
        TenantCommand::Resume { slug } => {
            let t = tenancy::set_status(&db, &slug, TenantStatus::Active, &Actor::cli()).await?;
            println!("resumed {}", t.slug);
        }
        TenantCommand::Export { slug, file, storage } => tenant_export(&db, &slug, &file, &storage).await?,
        TenantCommand::Import { file, slug, storage } => tenant_import(&db, &file, slug.as_deref(), &storage).await?,
        TenantCommand::Delete { slug, confirm, storage } => tenant_delete(&db, &slug, &confirm, &storage).await?,
        TenantCommand::Tombstones => {
            for t in tenant_archive::tombstones(&db).await? {
                println!(
                    "{:<24} id {:>6}  deleted {} by {}  {}",
                    t.slug, t.tenant_id, t.deleted_at, t.deleted_by, t.name
                );
            }
        }
    }
    Ok(())
}

/// `tenant export`: writes the archive of the mall `slug` to `file` and prints what it holds.
async fn tenant_export(db: &Db, slug: &str, file: &Path, storage: &StorageArgs) -> anyhow::Result<()> {
    let spinner = bar(0, "{spinner} exporting {msg}");
    spinner.enable_steady_tick(Duration::from_millis(200));
    let s = spinner.clone();
    let progress = move |m: &str| s.set_message(m.to_string());
    let m = tenant_archive::export(db, &storage.storage(), slug, file, &progress).await?;
    spinner.finish_and_clear();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let files = m.entries.iter().filter(|e| e.path.starts_with("files/")).count();
    println!(
        "exported {} to {} ({size} bytes): {} table(s), {files} file(s), tenant migration {}",
        m.slug,
        file.display(),
        m.tables.len(),
        m.tenant_migration
    );
    if let Some(a) = &m.alliance {
        println!(
            "alliance {} ({}): {} linked member(s), {} with shared points ({} {} balance, {} locked), \
             {} unsettled alliance entr(ies); the shared points stay in the alliance's ledger",
            a.slug,
            a.id,
            a.linked_members,
            a.members_with_shared_points,
            a.shared_balance,
            a.currency_code,
            a.shared_locked,
            a.unsettled_entries
        );
    }
    Ok(())
}

/// `tenant import`: imports the archive at `file` as a new mall and prints what it made.
async fn tenant_import(db: &Db, file: &Path, slug: Option<&str>, storage: &StorageArgs) -> anyhow::Result<()> {
    let spinner = bar(0, "{spinner} importing {msg}");
    spinner.enable_steady_tick(Duration::from_millis(200));
    let s = spinner.clone();
    let progress = move |m: &str| s.set_message(m.to_string());
    let r = tenant_archive::import(db, &storage.storage(), file, slug, &Actor::cli(), &progress).await?;
    spinner.finish_and_clear();
    println!(
        "imported {} (id {}, schema {}): {} row(s) in {} table(s), {} file(s), {} staff, {} API key(s) \
         ({} left out: held by another mall); ledger verified: {} account(s), {} entr(ies)",
        r.tenant.slug,
        r.tenant.id,
        r.tenant.schema_name,
        r.rows,
        r.tables,
        r.files,
        r.staff,
        r.api_keys,
        r.api_keys_skipped,
        r.accounts,
        r.entries
    );
    if let Some(a) = &r.alliance {
        println!(
            "standalone mall (was in alliance {}): {} link(s) to alliance identities cleared; {} member(s) \
             had shared points ({} balance, {} locked in {}) that stay with the alliance; {} product(s) \
             priced in shared points delisted, {} open shared hold(s) closed",
            a.alliance.as_deref().unwrap_or("none"),
            a.links_cleared,
            a.members_with_shared_points,
            a.shared_balance,
            a.shared_locked,
            a.shared_currencies.join(", "),
            a.delisted_products,
            a.shared_holds_closed
        );
    }
    Ok(())
}

/// `tenant delete`: deletes the mall `slug` (`confirm` is the slug again) and prints what went.
async fn tenant_delete(db: &Db, slug: &str, confirm: &str, storage: &StorageArgs) -> anyhow::Result<()> {
    let d = tenant_archive::delete(db, &storage.storage(), slug, confirm, &Actor::cli()).await?;
    println!(
        "deleted {} (schema {} dropped, {} file(s) deleted); the slug is kept as a tombstone",
        d.slug, d.schema_name, d.files_deleted
    );
    Ok(())
}

pub async fn ledger(url: &str, command: LedgerCommand) -> anyhow::Result<()> {
    let db = Db::connect(url, &[], 4).await?;
    match command {
        LedgerCommand::Verify { tenant, all: _ } => verify(&db, tenant.as_deref()).await,
        LedgerCommand::Jobs { tenant, now } => jobs(&db, tenant.as_deref(), now.unwrap_or_else(chrono::Utc::now)).await,
    }
}

async fn verify(db: &Db, tenant: Option<&str>) -> anyhow::Result<()> {
    let ledgers = fleet::ledgers(db, tenant).await?;
    anyhow::ensure!(!ledgers.is_empty(), "no such tenant");
    let alliances = ledgers.iter().filter(|l| l.alliance).count();
    let bar = bar(ledgers.len() as u64, "{spinner} verifying {bar:40} {pos}/{len} ledgers");
    let (mut bad, mut entries, mut accounts) = (0, 0, 0);
    for ledger in &ledgers {
        let r = fleet::verify(db, ledger).await?;
        bar.inc(1);
        entries += r.entries;
        accounts += r.accounts;
        if !r.problems.is_empty() {
            bad += 1;
            bar.suspend(|| {
                eprintln!("{}: {} problem(s)", ledger.label, r.problems.len());
                for p in &r.problems {
                    eprintln!("  {p}");
                }
            });
        }
    }
    bar.finish_and_clear();
    println!(
        "verified {} tenant(s) and {alliances} alliance ledger(s): {accounts} accounts, {entries} entries; \
         {bad} with problems",
        ledgers.len() - alliances
    );
    anyhow::ensure!(bad == 0, "ledger verification failed for {bad} ledger(s)");
    Ok(())
}

async fn jobs(db: &Db, tenant: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    let mut failed = 0;
    let rules = platform::rules::cache::RuleCache::new(Arc::new(scripting::Sandbox::new()));
    for (slug, r) in platform::jobs::run(db, &rules, tenant, now).await? {
        match r {
            Ok(r) => println!(
                "{slug}: released {} from {} grant(s), expired {} in {} account(s), {} hold(s) expired, {} reminder(s)",
                r.released_amount,
                r.released_grants,
                r.expired_amount,
                r.expired_accounts,
                r.expired_holds,
                r.reminders
            ),
            Err(e) => {
                failed += 1;
                eprintln!("{slug}: {e}");
            }
        }
    }
    anyhow::ensure!(failed == 0, "jobs failed for {failed} tenant(s)");
    Ok(())
}

pub async fn secrets(url: &str, command: SecretsCommand) -> anyhow::Result<()> {
    let SecretsCommand::Reseal { tenant, jwt_secret, secrets_keys } = command;
    let vault = platform::vault::Vault::from_config(secrets_keys.as_deref(), jwt_secret.as_bytes())?;
    let db = Db::connect(url, &[], 4).await?;
    let (total, failed) = fleet::reseal(&db, &vault, tenant.as_deref()).await?;
    for (slug, e) in &failed {
        eprintln!("{slug}: {e}");
    }
    println!("{total} provider secret(s) sealed again under key {}", vault.current_key());
    anyhow::ensure!(failed.is_empty(), "{} tenant(s) could not be sealed again", failed.len());
    Ok(())
}
