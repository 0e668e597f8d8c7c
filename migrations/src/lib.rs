//! Versioned SQL migrations, embedded in the binary.
//!
//! `CONTROL` runs in the `control` schema; `TENANT` runs in every merchant schema
//! (with `search_path` set to that schema). Versions only ever grow; an applied
//! migration is never edited (the runner refuses a changed checksum). See README.md.

/// One migration: a version, a short name and the SQL to run (in one transaction).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($dir:literal, $version:literal, $name:literal) => {
        Migration { version: $version, name: $name, sql: include_str!(concat!("../", $dir, "/", $name, ".sql")) }
    };
}

/// Migrations of the control schema (directory, alliances, staff, keys, audit).
pub const CONTROL: &[Migration] = &[
    migration!("control", 1, "0001_directory"),
    migration!("control", 2, "0002_alliance_currency"),
    migration!("control", 3, "0003_sessions_and_throttles"),
    migration!("control", 4, "0004_api_key_bound"),
    migration!("control", 5, "0005_tenant_tombstones"),
    migration!("control", 6, "0006_alliance_departures"),
    migration!("control", 7, "0007_member_audit"),
];

/// Migrations of every tenant (merchant) schema.
pub const TENANT: &[Migration] = &[
    migration!("tenant", 1, "0001_members"),
    migration!("tenant", 2, "0002_ledger"),
    migration!("tenant", 3, "0003_rules"),
    migration!("tenant", 4, "0004_mall"),
    migration!("tenant", 5, "0005_marketing"),
    migration!("tenant", 6, "0006_alliance_points"),
    migration!("tenant", 7, "0007_proof_and_sessions"),
    migration!("tenant", 8, "0008_address_bounds"),
    migration!("tenant", 9, "0009_alliance_budgets"),
    migration!("tenant", 10, "0010_settlement"),
    migration!("tenant", 11, "0011_webhooks"),
    migration!("tenant", 12, "0012_settlement_marks_lean"),
    migration!("tenant", 13, "0013_segments_broadcasts"),
    migration!("tenant", 14, "0014_tasks"),
    migration!("tenant", 15, "0015_reports"),
    migration!("tenant", 16, "0016_content"),
    migration!("tenant", 17, "0017_analytics"),
    migration!("tenant", 18, "0018_marketing_screens"),
    migration!("tenant", 19, "0019_rule_development"),
    migration!("tenant", 20, "0020_backtests"),
    migration!("tenant", 21, "0021_shared_points_everywhere"),
    migration!("tenant", 22, "0022_budget_closed"),
    migration!("tenant", 23, "0023_alliance_links"),
    migration!("tenant", 24, "0024_shared_lock_grants"),
    migration!("tenant", 25, "0025_events_by_time"),
    migration!("tenant", 26, "0026_stock_reservations"),
    migration!("tenant", 27, "0027_orders_without_product_lock"),
    migration!("tenant", 28, "0028_report_zone_planned_once"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dir: &str, list: &[Migration]) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = list.iter().map(|m| format!("{}.sql", m.name)).collect();
        assert_eq!(files, listed, "every file in {dir}/ must be listed, in order");
        for (i, m) in list.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "versions are 1, 2, 3 … without gaps");
            let prefix = format!("{:04}_", m.version);
            assert!(m.name.starts_with(&prefix), "{} must start with {prefix}", m.name);
        }
    }

    #[test]
    fn control_files_are_all_listed_in_order() {
        check("control", CONTROL);
    }

    #[test]
    fn tenant_files_are_all_listed_in_order() {
        check("tenant", TENANT);
    }
}
