//! Export, import and delete of one mall (SPEC T2, issue 13 point 9).
//!
//! An archive is a `.tar.gz`: `manifest.json` first (format, the tenant migration
//! version, every other entry's size and SHA-256), then the mall's tables as
//! `COPY … TO STDOUT` text (`data/<table>.copy`, all read in one REPEATABLE READ
//! snapshot together with the control rows), the control rows that belong to the mall
//! (`control/*.copy`: its staff with their password hashes, its hashed API keys, its
//! audit rows) and its files (`files/<name>`).
//!
//! Import is all or nothing: the archive is unpacked to a staging folder and every entry
//! checked against the manifest before anything is written; then one transaction creates
//! the directory row and the schema, loads the tables, the control rows and the
//! sequences, runs `ledger verify` on the loaded schema and commits only when it passes.
//! Files are stored before the commit and removed again when it does not happen.
//!
//! Delete is explicit (the slug typed again), refused while the mall has alliance
//! entries no settlement statement took, audited; it drops the schema and the directory
//! row (its staff and keys go with it), deletes its files and keeps the slug as a
//! tombstone that no new mall can take.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::audit::{self, Actor};
use crate::db::{Db, MAIN_CLUSTER, select_schema};
use crate::directory::{self, Tenant, slug_is_valid};
use crate::error::{Error, Result};
use crate::ids::{AllianceId, TenantId};
use crate::notify;
use crate::schema::apply_pending;
use crate::storage::Storage;

/// What `manifest.json` says it is.
pub const FORMAT: &str = "pointsmall-tenant-archive";
/// Bumped when the layout of the archive changes (2: the alliance section and
/// `alliance/positions.copy`; archives of version 1 still import).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest layout an import still reads.
const FORMAT_VERSION_MIN: u32 = 1;
/// The entry with the shared positions of an alliance mall's members.
const POSITIONS: &str = "alliance/positions.copy";
/// Largest manifest read.
const MANIFEST_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// The table of applied migrations is made by the import itself, never loaded.
const HISTORY_TABLE: &str = "schema_migrations";

/// One entry of the archive besides the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveEntry {
    pub path: String,
    pub size: u64,
    /// Hex SHA-256 of the entry's bytes.
    pub sha256: String,
    /// A file's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A sequence's state, restored with `setval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequenceState {
    pub name: String,
    pub last_value: i64,
    pub is_called: bool,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The version of the last tenant migration the schema had.
    pub tenant_migration: i64,
    pub exported_at: DateTime<Utc>,
    pub slug: String,
    pub name: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Tables in the order they load (a table after those it references).
    pub tables: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub sequences: Vec<SequenceState>,
    pub entries: Vec<ArchiveEntry>,
    /// The alliance the mall was in at the snapshot (none for a standalone mall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alliance: Option<ArchiveAlliance>,
}

/// The alliance of an exported mall, and its members' shared positions at the snapshot,
/// for information: the shared points live in the alliance's ledger and stay there (an
/// import makes a standalone mall). Per member, `alliance/positions.copy` lists the local
/// member id, the alliance identity id, the shared balance and the locked shared points.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveAlliance {
    pub id: AllianceId,
    pub slug: String,
    pub name: String,
    pub currency_code: String,
    pub currency_name: String,
    /// Members linked to an alliance identity.
    pub linked_members: u64,
    /// Linked members with shared points (a balance or locked points).
    pub members_with_shared_points: u64,
    /// Their shared balances, summed.
    pub shared_balance: i64,
    /// Their locked shared points, summed.
    pub shared_locked: i64,
    /// Entries of the mall in the alliance's ledger that no settlement statement took.
    pub unsettled_entries: i64,
}

/// What an import did with the alliance side of a mall: the imported mall is standalone.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AllianceLeftBehind {
    /// The alliance the archive names (none: the mall had left its alliance, or an
    /// archive of version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alliance: Option<String>,
    /// The shared currency (or currencies) whose points stay in the alliance's ledger.
    pub shared_currencies: Vec<String>,
    /// Members whose link to an alliance identity was cleared.
    pub links_cleared: u64,
    /// Members that had shared points at the snapshot, which stay with the alliance
    /// (listed in the archive's `alliance/positions.copy`).
    pub members_with_shared_points: u64,
    pub shared_balance: i64,
    pub shared_locked: i64,
    /// Listed products priced in a shared currency, delisted.
    pub delisted_products: u64,
    /// Open holds of shared points, closed in the imported mall (their points stay held
    /// in the alliance's ledger, under the original mall's hold).
    pub shared_holds_closed: u64,
}

/// What an import made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub tenant: Tenant,
    pub tables: usize,
    pub rows: u64,
    pub files: usize,
    pub staff: u64,
    pub api_keys: u64,
    /// API keys left out because another mall of this database holds the same key
    /// (an import beside the original mall): a key opens one mall only.
    pub api_keys_skipped: u64,
    /// Ledger accounts and entries that `ledger verify` checked before the commit.
    pub accounts: u64,
    pub entries: u64,
    /// Set when the archive had alliance data (links, a shared currency, an alliance):
    /// what stays with the alliance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alliance: Option<AllianceLeftBehind>,
}

/// What a delete removed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub slug: String,
    pub schema_name: String,
    pub files_deleted: usize,
}

/// A deleted mall's slug, kept so no new mall takes it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tombstone {
    pub slug: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: String,
}

/// Progress of a long export or import: a line of what is being done.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

fn io(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

fn invalid_archive(message: impl Into<String>) -> Error {
    Error::bad_request("archive_invalid", message)
}

/// A folder removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new(kind: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("pointsmall-{kind}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(io)?;
        Ok(Self(dir))
    }
    fn file(&self, n: usize) -> PathBuf {
        self.0.join(format!("{n:06}"))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A staged entry: its bytes on disk, written while hashed.
struct Staged {
    entry: ArchiveEntry,
    file: PathBuf,
}

struct HashingFile {
    file: tokio::io::BufWriter<tokio::fs::File>,
    hash: Sha256,
    size: u64,
}

impl HashingFile {
    async fn create(path: &Path) -> Result<Self> {
        let file = tokio::fs::File::create(path).await.map_err(io)?;
        Ok(Self { file: tokio::io::BufWriter::new(file), hash: Sha256::new(), size: 0 })
    }
    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        self.file.write_all(bytes).await.map_err(io)
    }
    async fn finish(mut self, path: String, file: PathBuf, content_type: Option<String>) -> Result<Staged> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await.map_err(io)?;
        let entry = ArchiveEntry { path, size: self.size, sha256: hex::encode(self.hash.finalize()), content_type };
        Ok(Staged { entry, file })
    }
}

async fn copy_out(conn: &mut PgConnection, statement: String, to: &mut HashingFile) -> Result<u64> {
    use futures::TryStreamExt;
    let mut stream = conn.copy_out_raw(&statement).await?;
    let mut n = 0;
    while let Some(chunk) = stream.try_next().await? {
        n += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        to.write(&chunk).await?;
    }
    Ok(n)
}

/// Tables of a schema, each after the tables it references (self references aside).
async fn tables_in_load_order(conn: &mut PgConnection, schema: &str) -> Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> $2 \
         ORDER BY c.relname",
    )
    .bind(schema)
    .bind(HISTORY_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let refs: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.relname::text FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_namespace pn ON pn.oid = p.relnamespace \
         WHERE k.contype = 'f' AND n.nspname = $1 AND pn.nspname = $1 AND c.oid <> p.oid",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mut needs: BTreeMap<&str, BTreeSet<&str>> = tables.iter().map(|t| (t.as_str(), BTreeSet::new())).collect();
    for (child, parent) in &refs {
        if let Some(set) = needs.get_mut(child.as_str()) {
            set.insert(parent.as_str());
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(tables.len());
    while !needs.is_empty() {
        let ready: Vec<&str> =
            needs.iter().filter(|(_, ps)| ps.iter().all(|p| !needs.contains_key(p))).map(|(t, _)| *t).collect();
        if ready.is_empty() {
            return Err(io(anyhow::anyhow!("foreign keys of {schema} form a cycle: {:?}", needs.keys())));
        }
        for t in ready {
            needs.remove(t);
            order.push(t.to_string());
        }
    }
    Ok(order)
}

fn ident_ok(name: &str) -> bool {
    crate::ident::is_lowercase_ident(name, 1..=63, b'_')
}

fn current_tenant_migration() -> i64 {
    migrations::TENANT.last().map_or(0, |m| m.version)
}

/// The control rows of a mall, as `COPY` statements (column lists fixed here, read back
/// by `load_control`).
fn control_copies(tenant_id: TenantId) -> [(&'static str, String); 3] {
    [
        (
            "control/staff.copy",
            format!(
                "COPY (SELECT id, email, display_name, password_hash, role, disabled, created_at \
                 FROM control.staff_users WHERE scope = 'tenant' AND tenant_id = {tenant_id} ORDER BY id) TO STDOUT"
            ),
        ),
        (
            "control/api_keys.copy",
            format!(
                "COPY (SELECT prefix, secret_hash, name, scopes, created_by, created_at, revoked_at, last_used_at \
                 FROM control.api_keys WHERE tenant_id = {tenant_id} ORDER BY id) TO STDOUT"
            ),
        ),
        (
            "control/audit.copy",
            format!(
                "COPY (SELECT at, actor_kind, actor_id, actor_label, action, target, details, request_id \
                 FROM control.audit_log WHERE tenant_id = {tenant_id} ORDER BY id) TO STDOUT"
            ),
        ),
    ]
}

/// An export's staging folder and the entries staged in it so far, in archive order.
struct Stager {
    staging: Staging,
    staged: Vec<Staged>,
}

impl Stager {
    /// A new, empty stager in a staging folder of its own.
    fn new(kind: &str) -> Result<Self> {
        Ok(Self { staging: Staging::new(kind)?, staged: Vec::new() })
    }
    /// The file for the next entry, opened for writing.
    async fn open(&self) -> Result<(PathBuf, HashingFile)> {
        let path = self.staging.file(self.staged.len());
        let f = HashingFile::create(&path).await?;
        Ok((path, f))
    }
    /// Closes `f` (opened by [`Stager::open`] at `file`) as the entry `path_in_archive`.
    async fn push(
        &mut self,
        f: HashingFile,
        path_in_archive: String,
        file: PathBuf,
        content_type: Option<String>,
    ) -> Result<()> {
        self.staged.push(f.finish(path_in_archive, file, content_type).await?);
        Ok(())
    }
    /// Stages the output of the `COPY … TO STDOUT` `statement` as `path_in_archive`.
    async fn copy(&mut self, conn: &mut PgConnection, path_in_archive: String, statement: String) -> Result<()> {
        let (path, mut f) = self.open().await?;
        copy_out(conn, statement, &mut f).await?;
        self.push(f, path_in_archive, path, None).await
    }
    /// The staged entries, as the manifest lists them.
    fn entries(&self) -> Vec<ArchiveEntry> {
        self.staged.iter().map(|s| s.entry.clone()).collect()
    }
    /// Writes the `.tar.gz` at `dest` (`manifest` first, then the entries) and removes the staging folder.
    async fn write_archive(self, dest: &Path, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_vec_pretty(manifest).map_err(io)?;
        let dest = dest.to_path_buf();
        let files: Vec<(String, PathBuf)> = self.staged.into_iter().map(|s| (s.entry.path, s.file)).collect();
        tokio::task::spawn_blocking(move || write_tar(&dest, &json, &files)).await.map_err(io)??;
        drop(self.staging);
        Ok(())
    }
}

/// The directory row of a mall as the export's snapshot reads it.
struct TenantRow {
    name: String,
    status: String,
    settings: serde_json::Value,
    created_at: DateTime<Utc>,
}

/// The directory row of the mall `id` and its schema's last migration, in the snapshot of `conn`.
async fn snapshot_tenant(conn: &mut PgConnection, id: TenantId, schema: &str) -> Result<(TenantRow, i64)> {
    let (name, status, settings, created_at): (String, String, serde_json::Value, DateTime<Utc>) =
        sqlx::query_as("SELECT name, status, settings, created_at FROM control.tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
    let version: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(max(version), 0) FROM \"{schema}\".{HISTORY_TABLE}"
    )))
    .fetch_one(&mut *conn)
    .await?;
    Ok((TenantRow { name, status, settings, created_at }, version))
}

/// Stages every table of `schema` as `data/<table>.copy`; returns the tables in load order.
async fn stage_tables(
    conn: &mut PgConnection,
    schema: &str,
    stage: &mut Stager,
    progress: Progress<'_>,
) -> Result<Vec<String>> {
    let tables = tables_in_load_order(conn, schema).await?;
    for table in &tables {
        if !ident_ok(table) {
            return Err(io(anyhow::anyhow!("table name {table:?} is not a plain identifier")));
        }
        progress(&format!("table {table}"));
        stage.copy(conn, format!("data/{table}.copy"), format!("COPY \"{schema}\".\"{table}\" TO STDOUT")).await?;
    }
    Ok(tables)
}

/// The state of every sequence of `schema` (plain identifiers only).
async fn sequence_states(conn: &mut PgConnection, schema: &str) -> Result<Vec<SequenceState>> {
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mut seqs = Vec::new();
    for name in sequences.into_iter().filter(|s| ident_ok(s)) {
        let (last_value, is_called): (i64, bool) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT last_value, is_called FROM \"{schema}\".\"{name}\"")))
                .fetch_one(&mut *conn)
                .await?;
        seqs.push(SequenceState { name, last_value, is_called });
    }
    Ok(seqs)
}

/// Stages `alliance/positions.copy` of a mall in an alliance; returns the manifest's alliance section.
async fn stage_alliance(
    conn: &mut PgConnection,
    t: &Tenant,
    schema: &str,
    stage: &mut Stager,
    progress: Progress<'_>,
) -> Result<Option<ArchiveAlliance>> {
    let Some(alliance_id) = t.alliance_id else { return Ok(None) };
    progress(POSITIONS);
    let (path, mut f) = stage.open().await?;
    let a = alliance_positions(conn, t.id, schema, alliance_id, &mut f).await?;
    stage.push(f, POSITIONS.to_string(), path, None).await?;
    Ok(Some(a))
}

/// Stages the stored files of the mall `tenant_id` as `files/<name>`.
async fn stage_files(storage: &Storage, tenant_id: TenantId, stage: &mut Stager, progress: Progress<'_>) -> Result<()> {
    let prefix = format!("t{tenant_id}/");
    for key in storage.list(&prefix).await? {
        let Some(name) = key.strip_prefix(&prefix) else { continue };
        progress(&format!("file {name}"));
        let Some((bytes, content_type)) = storage.get(&key).await? else { continue };
        let (path, mut f) = stage.open().await?;
        f.write(&bytes).await?;
        stage.push(f, format!("files/{name}"), path, Some(content_type)).await?;
    }
    Ok(())
}

/// Writes the archive of the mall `slug` to `dest` (a `.tar.gz`). Returns its manifest.
pub async fn export(db: &Db, storage: &Storage, slug: &str, dest: &Path, progress: Progress<'_>) -> Result<Manifest> {
    let t = directory::find_by_slug(db.control(), slug)
        .await?
        .ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
    if t.cluster != MAIN_CLUSTER {
        return Err(Error::conflict("tenant_not_exportable", "only malls on the main cluster can be exported today"));
    }
    let mut stage = Stager::new("export")?;
    let mut tx = db.control().begin().await?;
    // One snapshot for the schema and the control rows (both on the main cluster).
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let schema = t.schema_name.clone();
    let (row, version) = snapshot_tenant(&mut tx, t.id, &schema).await?;
    let tables = stage_tables(&mut tx, &schema, &mut stage, progress).await?;
    let seqs = sequence_states(&mut tx, &schema).await?;
    for (path_in_archive, statement) in control_copies(t.id) {
        progress(path_in_archive);
        stage.copy(&mut tx, path_in_archive.to_string(), statement).await?;
    }
    let alliance = stage_alliance(&mut tx, &t, &schema, &mut stage, progress).await?;
    tx.commit().await?;
    stage_files(storage, t.id, &mut stage, progress).await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tenant_migration: version,
        exported_at: Utc::now(),
        slug: t.slug.clone(),
        name: row.name,
        status: row.status,
        settings: row.settings,
        created_at: row.created_at,
        tables,
        sequences: seqs,
        entries: stage.entries(),
        alliance,
    };
    progress("writing the archive");
    stage.write_archive(dest, &manifest).await?;
    Ok(manifest)
}

/// The alliance `alliance_id` of the mall `tenant_id` (schema `schema`) and its members'
/// shared positions, written to `to` as `COPY` text (member id, alliance identity id,
/// shared balance, locked shared points), read in the snapshot of `conn`.
async fn alliance_positions(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    schema: &str,
    alliance_id: AllianceId,
    to: &mut HashingFile,
) -> Result<ArchiveAlliance> {
    let (slug, name, cluster, a_schema, currency_code, currency_name): (
        String,
        String,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT slug, name, cluster, schema_name, currency_code, currency_name FROM control.alliances WHERE id = $1",
    )
    .bind(alliance_id)
    .fetch_one(&mut *conn)
    .await?;
    if cluster != MAIN_CLUSTER {
        return Err(Error::conflict(
            "tenant_not_exportable",
            "only malls of alliances on the main cluster can be exported",
        ));
    }
    // The code is checked by the directory (`^[a-z][a-z0-9_]{1,31}$`), the names here.
    if !ident_ok(&a_schema) || !ident_ok(&currency_code) {
        return Err(io(anyhow::anyhow!("alliance {alliance_id}: schema or currency is not a plain identifier")));
    }
    let positions = format!(
        "SELECT m.id, m.alliance_member_id, coalesce(a.balance, 0) AS balance, coalesce(a.locked, 0) AS locked \
         FROM \"{schema}\".members m LEFT JOIN \"{a_schema}\".accounts a \
           ON a.member_id = m.alliance_member_id AND a.currency = '{currency_code}' \
         WHERE m.alliance_member_id IS NOT NULL ORDER BY m.id"
    );
    copy_out(conn, format!("COPY ({positions}) TO STDOUT"), to).await?;
    let (linked, with_points, balance, locked): (i64, i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(*) FILTER (WHERE balance > 0 OR locked > 0), \
                coalesce(sum(balance), 0)::bigint, coalesce(sum(locked), 0)::bigint FROM ({positions}) p"
    )))
    .fetch_one(&mut *conn)
    .await?;
    let unsettled: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{a_schema}\".entries e WHERE e.mall_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM \"{a_schema}\".settlement_marks k WHERE k.entry_id = e.id)"
    )))
    .bind(tenant_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(ArchiveAlliance {
        id: alliance_id,
        slug,
        name,
        currency_code,
        currency_name,
        linked_members: linked as u64,
        members_with_shared_points: with_points as u64,
        shared_balance: balance,
        shared_locked: locked,
        unsettled_entries: unsettled,
    })
}

fn write_tar(dest: &Path, manifest: &[u8], files: &[(String, PathBuf)]) -> Result<()> {
    let out = std::fs::File::create(dest).map_err(io)?;
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(Utc::now().timestamp().max(0) as u64);
    tar.append_data(&mut header, "manifest.json", manifest).map_err(io)?;
    for (name, file) in files {
        let mut f = std::fs::File::open(file).map_err(io)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(f.metadata().map_err(io)?.len());
        header.set_mode(0o644);
        header.set_mtime(Utc::now().timestamp().max(0) as u64);
        tar.append_data(&mut header, name, &mut f).map_err(io)?;
    }
    let gz = tar.into_inner().map_err(io)?;
    let mut w = gz.finish().map_err(io)?;
    w.flush().map_err(io)?;
    w.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    Ok(())
}

/// Names an archive may hold besides the manifest.
fn entry_name_ok(name: &str) -> bool {
    if let Some(table) = name.strip_prefix("data/").and_then(|n| n.strip_suffix(".copy")) {
        return ident_ok(table);
    }
    if let Some(file) = name.strip_prefix("files/") {
        // Stored again under `t<new id>/`: the storage's own key check applies.
        return !file.is_empty()
            && file.len() <= 280
            && !file.split('/').any(|p| p.is_empty() || p == "." || p == "..")
            && file.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    }
    matches!(name, "control/staff.copy" | "control/api_keys.copy" | "control/audit.copy" | POSITIONS)
}

/// The error for an archive the reader cannot read.
fn unreadable(e: std::io::Error) -> Error {
    invalid_archive(format!("not a readable .tar.gz archive: {e}"))
}

/// An unpacked entry: its size, hex SHA-256 and staged file.
type Found = (u64, String, PathBuf);

/// Copies the bytes of `entry` to `path`, hashing them; returns their size and hex SHA-256.
fn stage_entry(entry: &mut impl Read, path: &Path) -> Result<(u64, String)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = entry.read(&mut buf).map_err(unreadable)?;
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        size += k as u64;
        out.write_all(&buf[..k]).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok((size, hex::encode(hash.finalize())))
}

/// Reads the archive into `staging`: its manifest (if any) and every other entry.
fn unpack_entries(archive: &Path, staging: &Staging) -> Result<(Option<Manifest>, BTreeMap<String, Found>)> {
    let file = std::fs::File::open(archive).map_err(io)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut manifest: Option<Manifest> = None;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    for (n, entry) in tar.entries().map_err(unreadable)?.enumerate() {
        let mut entry = entry.map_err(unreadable)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(unreadable)?.to_string_lossy().into_owned();
        if name == "manifest.json" {
            let mut bytes = Vec::new();
            (&mut entry).take(MANIFEST_BYTES_MAX).read_to_end(&mut bytes).map_err(unreadable)?;
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| invalid_archive(format!("manifest.json is not a manifest: {e}")))?;
            manifest = Some(m);
            continue;
        }
        if !entry_name_ok(&name) || found.contains_key(&name) {
            return Err(invalid_archive(format!("unexpected entry {name:?}")));
        }
        let path = staging.file(n);
        let (size, sha) = stage_entry(&mut entry, &path)?;
        found.insert(name, (size, sha, path));
    }
    Ok((manifest, found))
}

/// Checks the manifest's format and that `found` is exactly its entries; returns their staged files.
fn check_entries(m: &Manifest, found: &BTreeMap<String, Found>) -> Result<BTreeMap<String, PathBuf>> {
    if m.format != FORMAT || !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&m.format_version) {
        return Err(invalid_archive(format!(
            "format {} version {} is not {FORMAT} version {FORMAT_VERSION_MIN} to {FORMAT_VERSION}",
            m.format, m.format_version
        )));
    }
    let listed: BTreeSet<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
    if listed.len() != m.entries.len()
        || listed.len() != found.len()
        || !found.keys().all(|k| listed.contains(k.as_str()))
    {
        return Err(Error::bad_request(
            "archive_checksum_mismatch",
            "the archive's entries are not the ones its manifest lists",
        ));
    }
    let mut paths = BTreeMap::new();
    for e in &m.entries {
        let (size, sha, path) = &found[&e.path];
        if *size != e.size || *sha != e.sha256 {
            return Err(Error::bad_request(
                "archive_checksum_mismatch",
                format!("{}: size or SHA-256 differs from the manifest", e.path),
            ));
        }
        paths.insert(e.path.clone(), path.clone());
    }
    Ok(paths)
}

/// Unpacks the archive into `staging`, hashing every entry; reads the manifest and checks
/// that the entries are exactly the manifest's, with its sizes and checksums.
fn unpack(archive: &Path, staging: &Staging) -> Result<(Manifest, BTreeMap<String, PathBuf>)> {
    let (manifest, found) = unpack_entries(archive, staging)?;
    let m = manifest.ok_or_else(|| invalid_archive("the archive has no manifest.json"))?;
    let paths = check_entries(&m, &found)?;
    Ok((m, paths))
}

async fn copy_in(conn: &mut PgConnection, statement: String, file: &Path) -> Result<u64> {
    use tokio::io::AsyncReadExt;
    let mut copy = conn.copy_in_raw(&statement).await?;
    let mut f = tokio::fs::File::open(file).await.map_err(io)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match f.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = copy.abort("read failed").await;
                return Err(io(e));
            }
        };
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    Ok(copy.finish().await?)
}

/// [`unpack`] on a blocking thread; hands `staging` back with the manifest and the staged files.
async fn unpack_in_background(
    archive: &Path,
    staging: Staging,
) -> Result<(Staging, Manifest, BTreeMap<String, PathBuf>)> {
    let archive = archive.to_path_buf();
    let (staging, unpacked) = tokio::task::spawn_blocking(move || {
        let r = unpack(&archive, &staging);
        (staging, r)
    })
    .await
    .map_err(io)?;
    let (m, paths) = unpacked?;
    Ok((staging, m, paths))
}

/// Checks that `m` imports at tenant migration `current`; returns the slug the mall gets.
fn check_importable(m: &Manifest, slug: Option<&str>, current: i64) -> Result<String> {
    if m.tenant_migration != current {
        return Err(Error::conflict(
            "archive_version_unsupported",
            format!(
                "the archive was taken at tenant migration {}, this server is at {current}: import it with the \
                 same version, then migrate",
                m.tenant_migration
            ),
        ));
    }
    let slug = slug.unwrap_or(&m.slug).to_string();
    if !slug_is_valid(&slug) {
        return Err(Error::invalid_field("slug", "2-40 characters: a-z, 0-9 and -, starting with a letter"));
    }
    if !crate::tenancy::name_is_valid(&m.name) || !matches!(m.status.as_str(), "active" | "suspended") {
        return Err(invalid_archive("the manifest's name or status is not valid"));
    }
    Ok(slug)
}

/// Creates the imported mall's directory row and migrated schema (selected); returns its id and schema.
async fn create_tenant(conn: &mut PgConnection, slug: &str, m: &Manifest, current: i64) -> Result<(TenantId, String)> {
    let id: TenantId = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('control.tenants', 'id'))")
        .fetch_one(&mut *conn)
        .await?;
    let schema = format!("t_{id}");
    sqlx::query(
        "INSERT INTO control.tenants (id, slug, name, schema_name, cluster, status, settings, schema_version, created_at) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, 'main', $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(slug)
    .bind(&m.name)
    .bind(&schema)
    .bind(&m.status)
    .bind(&m.settings)
    .bind(current)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await
    .map_err(crate::tenancy::slug_refused)?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).execute(&mut *conn).await?;
    select_schema(conn, &schema).await?;
    apply_pending(conn, migrations::TENANT).await?;
    Ok((id, schema))
}

/// Loads the archive's tables (this version's, checked) into the new `schema`; returns the rows loaded.
async fn load_tables(
    conn: &mut PgConnection,
    schema: &str,
    m: &Manifest,
    paths: &BTreeMap<String, PathBuf>,
    progress: Progress<'_>,
) -> Result<u64> {
    let tables = tables_in_load_order(conn, schema).await?;
    let ours: BTreeSet<&String> = tables.iter().collect();
    if ours != m.tables.iter().collect::<BTreeSet<_>>() {
        return Err(invalid_archive("the archive's tables are not this version's tables"));
    }
    // Rows the migrations seeded make way for the archive's; triggers that derive
    // figures (rollups, costs) stay off while loading: the archive has their results.
    let list = tables.iter().map(|t| format!("\"{schema}\".\"{t}\"")).collect::<Vec<_>>().join(", ");
    if !tables.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("TRUNCATE {list}"))).execute(&mut *conn).await?;
    }
    let mut rows = 0;
    for t in &m.tables {
        let Some(file) = paths.get(&format!("data/{t}.copy")) else {
            return Err(invalid_archive(format!("the archive has no data for table {t}")));
        };
        progress(&format!("table {t}"));
        let q = format!("\"{schema}\".\"{t}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {q} DISABLE TRIGGER USER"))).execute(&mut *conn).await?;
        rows += copy_in(conn, format!("COPY {q} FROM STDIN"), file).await.map_err(|e| load_failed(t, e))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {q} ENABLE TRIGGER USER"))).execute(&mut *conn).await?;
    }
    Ok(rows)
}

/// Sets the sequences of `schema` to the manifest's states.
async fn restore_sequences(conn: &mut PgConnection, schema: &str, m: &Manifest) -> Result<()> {
    for s in &m.sequences {
        if !ident_ok(&s.name) {
            return Err(invalid_archive(format!("sequence name {:?}", s.name)));
        }
        sqlx::query("SELECT setval(format('%I.%I', $1::text, $2::text)::regclass, $3, $4)")
            .bind(schema)
            .bind(&s.name)
            .bind(s.last_value)
            .bind(s.is_called)
            .execute(&mut *conn)
            .await
            .map_err(|e| load_failed(&s.name, e.into()))?;
    }
    Ok(())
}

/// Rewrites the stored file URLs of the loaded mall from the slug `old` to `new`.
async fn rewrite_file_urls(conn: &mut PgConnection, old: &str, new: &str) -> Result<()> {
    let (from, to) = (format!("/v1/tenants/{old}/files/"), format!("/v1/tenants/{new}/files/"));
    sqlx::query("UPDATE products SET images = array(SELECT replace(i, $1, $2) FROM unnest(images) i)")
        .bind(&from)
        .bind(&to)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE content_items SET image_url = replace(image_url, $1, $2) WHERE image_url IS NOT NULL")
        .bind(&from)
        .bind(&to)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Runs `ledger verify` on the loaded schema; refuses the import when it finds problems.
async fn verify_loaded(conn: &mut PgConnection) -> Result<crate::ledger::verify::Report> {
    let report = crate::ledger::verify::verify(conn).await?;
    if !report.problems.is_empty() {
        return Err(Error::conflict(
            "archive_ledger_invalid",
            format!("ledger verify failed on the imported data: {}", report.problems.join("; ")),
        ));
    }
    Ok(report)
}

/// Stores `files` under `t<id>/` and commits `tx`; the stored files go again when either fails.
async fn store_files_and_commit(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    storage: &Storage,
    id: TenantId,
    files: &[&ArchiveEntry],
    paths: &BTreeMap<String, PathBuf>,
    progress: Progress<'_>,
) -> Result<()> {
    let mut stored: Vec<String> = Vec::new();
    let outcome = async {
        for e in files {
            let name = &e.path["files/".len()..];
            progress(&format!("file {name}"));
            let key = format!("t{id}/{name}");
            let bytes = tokio::fs::read(&paths[&e.path]).await.map_err(io)?;
            let ct = e.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
            storage.put(&key, bytes.into(), &ct).await?;
            stored.push(key);
        }
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = outcome {
        for key in &stored {
            let _ = storage.delete(key).await;
        }
        return Err(e);
    }
    Ok(())
}

/// Imports the archive at `archive` as a new mall, under `slug` or the archive's own.
pub async fn import(
    db: &Db,
    storage: &Storage,
    archive: &Path,
    slug: Option<&str>,
    actor: &Actor,
    progress: Progress<'_>,
) -> Result<Imported> {
    let staging = Staging::new("import")?;
    progress("checking the archive");
    let (staging, m, paths) = unpack_in_background(archive, staging).await?;
    let current = current_tenant_migration();
    let slug = check_importable(&m, slug, current)?;
    let mut tx = db.control().begin().await?;
    let (id, schema) = create_tenant(&mut tx, &slug, &m, current).await?;
    let rows = load_tables(&mut tx, &schema, &m, &paths, progress).await?;
    restore_sequences(&mut tx, &schema, &m).await?;
    if slug != m.slug {
        // Stored file URLs name the mall.
        rewrite_file_urls(&mut tx, &m.slug, &slug).await?;
    }
    let alliance = standalone(&mut tx, &m, &paths).await?;
    progress("verifying the ledger");
    let report = verify_loaded(&mut tx).await?;
    select_schema(&mut tx, "control").await?;
    let (staff, api_keys, api_keys_skipped) = load_control(&mut tx, id, &paths).await?;
    let files: Vec<&ArchiveEntry> = m.entries.iter().filter(|e| e.path.starts_with("files/")).collect();
    audit::record(
        &mut tx,
        actor,
        Some(id),
        "tenant.import",
        &slug,
        serde_json::json!({"from": m.slug, "exported_at": m.exported_at, "rows": rows, "files": files.len(),
            "alliance": alliance}),
    )
    .await?;
    store_files_and_commit(tx, storage, id, &files, &paths, progress).await?;
    drop(staging);
    let tenant = directory::find_by_slug(db.control(), &slug)
        .await?
        .ok_or_else(|| io(anyhow::anyhow!("tenant vanished right after import")))?;
    Ok(Imported {
        tenant,
        tables: m.tables.len(),
        rows,
        files: files.len(),
        staff,
        api_keys,
        api_keys_skipped,
        accounts: report.accounts,
        entries: report.entries,
        alliance,
    })
}

/// Makes the loaded mall (its schema selected on `conn`) standalone: an imported mall is
/// in no alliance, whatever the archive's was. Links to alliance identities are cleared
/// (an identity id means nothing in another database, and beside the original it is the
/// original's); listed products priced in a shared currency are delisted and open holds
/// of shared points closed, as when a mall leaves its alliance. The shared currency's row
/// stays (`shared`, so no account is ever opened in it here: its points are the
/// alliance's). `None` when the mall had nothing of an alliance.
async fn standalone(
    conn: &mut PgConnection,
    m: &Manifest,
    paths: &BTreeMap<String, PathBuf>,
) -> Result<Option<AllianceLeftBehind>> {
    let shared_currencies: Vec<String> =
        sqlx::query_scalar("SELECT code FROM currencies WHERE shared ORDER BY code").fetch_all(&mut *conn).await?;
    let links_cleared =
        sqlx::query("UPDATE members SET alliance_member_id = NULL WHERE alliance_member_id IS NOT NULL")
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if m.alliance.is_none() && shared_currencies.is_empty() && links_cleared == 0 {
        return Ok(None);
    }
    let delisted_products = sqlx::query(
        "UPDATE products SET status = 'delisted', updated_at = now() \
         WHERE status = 'listed' AND currency IN (SELECT code FROM currencies WHERE shared)",
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let shared_holds_closed = sqlx::query(
        "UPDATE holds SET status = 'voided', updated_at = now() WHERE status = 'held' AND alliance_entry_id IS NOT NULL",
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mut left = AllianceLeftBehind {
        alliance: m.alliance.as_ref().map(|a| a.slug.clone()),
        shared_currencies,
        links_cleared,
        delisted_products,
        shared_holds_closed,
        ..Default::default()
    };
    if let Some(file) = paths.get(POSITIONS) {
        let text = tokio::fs::read_to_string(file).await.map_err(io)?;
        for line in text.lines() {
            let cols: Vec<i64> = line
                .split('\t')
                .map(|c| c.parse::<i64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| invalid_archive(format!("{POSITIONS}: {line:?} is not four numbers")))?;
            let [_, _, balance, locked] = cols[..] else {
                return Err(invalid_archive(format!("{POSITIONS}: {line:?} is not four numbers")));
            };
            if balance > 0 || locked > 0 {
                left.members_with_shared_points += 1;
                left.shared_balance += balance;
                left.shared_locked += locked;
            }
        }
    }
    Ok(Some(left))
}

fn load_failed(what: &str, e: Error) -> Error {
    match e {
        Error::Database(sqlx::Error::Database(d)) => {
            invalid_archive(format!("{what}: the archive's data does not load: {}", d.message()))
        }
        other => other,
    }
}

/// Loads the mall's staff, API keys and audit rows under its new id; staff get new ids
/// (keys' creators and audit actors follow them).
async fn load_control(
    conn: &mut PgConnection,
    id: TenantId,
    paths: &BTreeMap<String, PathBuf>,
) -> Result<(u64, u64, u64)> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE import_staff (old_id bigint, email text, display_name text, password_hash text, \
             role text, disabled boolean, created_at timestamptz) ON COMMIT DROP; \
         CREATE TEMP TABLE import_keys (prefix text, secret_hash bytea, name text, scopes text[], created_by bigint, \
             created_at timestamptz, revoked_at timestamptz, last_used_at timestamptz) ON COMMIT DROP; \
         CREATE TEMP TABLE import_audit (at timestamptz, actor_kind text, actor_id bigint, actor_label text, \
             action text, target text, details jsonb, request_id text) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    for (path, table) in [
        ("control/staff.copy", "import_staff"),
        ("control/api_keys.copy", "import_keys"),
        ("control/audit.copy", "import_audit"),
    ] {
        let file = paths.get(path).ok_or_else(|| invalid_archive(format!("the archive has no {path}")))?;
        copy_in(conn, format!("COPY pg_temp.{table} FROM STDIN"), file).await.map_err(|e| load_failed(path, e))?;
    }
    // The staging tables live in this session only, so these statements are built with
    // `tmp` (they cannot be prepared ahead of the import; the behaviour tests run them).
    let tmp = "pg_temp";
    let staff = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.staff_users (scope, tenant_id, email, display_name, password_hash, role, disabled, created_at) \
         SELECT 'tenant', $1, email, display_name, password_hash, role, disabled, created_at FROM {tmp}.import_staff \
         ORDER BY old_id"
    )))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(|e| load_failed("control/staff.copy", e.into()))?
    .rows_affected();
    sqlx::query(
        "CREATE TEMP TABLE staff_map ON COMMIT DROP AS SELECT s.old_id, u.id AS new_id FROM pg_temp.import_staff s \
         JOIN control.staff_users u ON u.scope = 'tenant' AND u.tenant_id = $1 AND u.email = s.email",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let total_keys: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {tmp}.import_keys")))
        .fetch_one(&mut *conn)
        .await?;
    let api_keys = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.api_keys (tenant_id, prefix, secret_hash, name, scopes, created_by, created_at, revoked_at, last_used_at) \
         SELECT $1, k.prefix, k.secret_hash, k.name, k.scopes, m.new_id, k.created_at, k.revoked_at, k.last_used_at \
         FROM {tmp}.import_keys k LEFT JOIN {tmp}.staff_map m ON m.old_id = k.created_by \
         ON CONFLICT (prefix) DO NOTHING"
    )))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(|e| load_failed("control/api_keys.copy", e.into()))?
    .rows_affected();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.audit_log (at, actor_kind, actor_id, actor_label, tenant_id, action, target, details, request_id) \
         SELECT a.at, a.actor_kind, CASE WHEN a.actor_kind = 'staff' THEN coalesce(m.new_id, a.actor_id) ELSE a.actor_id END, \
                a.actor_label, $1, a.action, a.target, a.details, a.request_id \
         FROM {tmp}.import_audit a LEFT JOIN {tmp}.staff_map m ON m.old_id = a.actor_id AND a.actor_kind = 'staff' \
         ORDER BY a.at"
    )))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(|e| load_failed("control/audit.copy", e.into()))?;
    Ok((staff, api_keys, (total_keys as u64).saturating_sub(api_keys)))
}

/// [`export`] on behalf of `actor` (the platform operator's download): the archive is
/// written to `dest`, then the export is audited (`tenant.export`, with the archive's
/// entries and size) on the mall.
pub async fn export_audited(db: &Db, storage: &Storage, slug: &str, dest: &Path, actor: &Actor) -> Result<Manifest> {
    let manifest = export(db, storage, slug, dest, &|_| {}).await?;
    let bytes = std::fs::metadata(dest).map_err(io)?.len();
    let tenant_id = directory::find_by_slug(db.control(), slug).await?.map(|t| t.id);
    let details = serde_json::json!({
        "entries": manifest.entries.len(),
        "bytes": bytes,
        "tenant_migration": manifest.tenant_migration,
    });
    let mut conn = db.control().acquire().await?;
    audit::record(&mut conn, actor, tenant_id, "tenant.export", slug, details).await?;
    Ok(manifest)
}

/// Deletes the mall `slug`: `confirm` must be the slug again. Refused (409
/// `alliance_positions_unsettled`) while its alliance has entries of it that no
/// settlement statement took. Drops the schema and the directory row (staff and keys
/// with it), keeps the slug as a tombstone, audited; then deletes its files.
pub async fn delete(db: &Db, storage: &Storage, slug: &str, confirm: &str, actor: &Actor) -> Result<Deleted> {
    if confirm != slug {
        return Err(Error::invalid_field("confirm", "type the mall's slug again to delete it"));
    }
    let mut tx = db.control().begin().await?;
    let row: Option<(TenantId, String, String, String, Option<AllianceId>)> = sqlx::query_as(
        "SELECT id, name, schema_name, cluster, alliance_id FROM control.tenants WHERE slug = $1 FOR UPDATE",
    )
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, name, schema, cluster, alliance_id) =
        row.ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
    if cluster != MAIN_CLUSTER || !schema.starts_with("t_") || !ident_ok(&schema) {
        return Err(Error::conflict("tenant_not_deletable", "only malls on the main cluster can be deleted today"));
    }
    if let Some(alliance_id) = alliance_id {
        let a_schema: String = sqlx::query_scalar("SELECT schema_name FROM control.alliances WHERE id = $1")
            .bind(alliance_id)
            .fetch_one(&mut *tx)
            .await?;
        if !ident_ok(&a_schema) {
            return Err(io(anyhow::anyhow!("alliance schema {a_schema:?} is not a plain identifier")));
        }
        let unsettled: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{a_schema}\".entries e WHERE e.mall_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM \"{a_schema}\".settlement_marks k WHERE k.entry_id = e.id)"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if unsettled > 0 {
            return Err(Error::conflict(
                "alliance_positions_unsettled",
                format!(
                    "the mall has {unsettled} alliance ledger entr(ies) no settlement statement took: close the \
                     alliance's periods first"
                ),
            ));
        }
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM control.tenants WHERE id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO control.tenant_tombstones (slug, tenant_id, name, deleted_by) VALUES ($1, $2, $3, $4)")
        .bind(slug)
        .bind(id)
        .bind(&name)
        .bind(&actor.label)
        .execute(&mut *tx)
        .await?;
    let details = serde_json::json!({"name": name, "schema": schema});
    audit::record(&mut tx, actor, Some(id), "tenant.delete", slug, details).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: slug.to_string() }).await?;
    tx.commit().await?;
    let mut files_deleted = 0;
    for key in storage.list(&format!("t{id}/")).await? {
        storage.delete(&key).await?;
        files_deleted += 1;
    }
    Ok(Deleted { slug: slug.to_string(), schema_name: schema, files_deleted })
}

/// The slugs of deleted malls, newest first.
pub async fn tombstones(db: &Db) -> Result<Vec<Tombstone>> {
    Ok(sqlx::query_as(
        "SELECT slug, tenant_id, name, deleted_at, deleted_by FROM control.tenant_tombstones ORDER BY deleted_at DESC, slug",
    )
    .fetch_all(db.control())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_entry_names() {
        assert!(entry_name_ok("data/members.copy"));
        assert!(entry_name_ok("files/products/2/a.png"));
        assert!(entry_name_ok("control/staff.copy"));
        for bad in ["data/x;drop.copy", "files/../x", "files//x", "../etc/passwd", "control/other.copy", "files/"] {
            assert!(!entry_name_ok(bad), "{bad}");
        }
    }
}
