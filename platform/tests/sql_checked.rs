//! SQL checked before it runs (issue 11). Every SQL statement written as a string literal
//! in the workspace's Rust sources is prepared (PostgreSQL parses, resolves every table,
//! column, function and type, and infers its parameters) against a freshly migrated
//! tenant schema, then the control schema: a renamed column or table fails here, with the
//! file and line, before any behaviour test runs (`scripts/test.sh` runs this first).
//!
//! Statements built with `format!` are checked too when every placeholder names a
//! `const NAME: &str` (of the same file first, else one no two files define
//! differently; e.g. `{COLUMNS}`); the few built from other values (schema names,
//! generated lists) are listed and left to the behaviour tests.

use std::path::{Path, PathBuf};

use platform::audit::Actor;
use platform::db::Db;
use platform::tenancy::{self, NewTenant};
use sqlx::{Executor, PgConnection, SqlSafeStr};

/// Keywords a statement starts with.
const STARTS: &[&str] = &["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "];

/// One SQL text found in a source file.
struct Found {
    file: PathBuf,
    line: usize,
    sql: String,
}

/// The string literals of a Rust source, unescaped, with their line; comments, chars and
/// lifetimes are skipped.
fn literals(text: &str) -> Vec<(usize, String, bool)> {
    let b = text.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    line += usize::from(b[i] == b'\n');
                    i += 1;
                }
                i += 2;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\'', '"') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 3;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let start = j + 1;
                let end = text[start..].find(&close).map_or(b.len(), |e| start + e);
                let s = &text[start..end];
                out.push((line, s.to_string(), false));
                line += s.matches('\n').count();
                i = end + close.len();
            }
            b'"' => {
                let start_line = line;
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        match b.get(i + 1) {
                            Some(b'\n') => {
                                // A line continuation: the newline and the next line's
                                // leading whitespace are not part of the string.
                                line += 1;
                                i += 2;
                                while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n') {
                                    line += usize::from(b[i] == b'\n');
                                    i += 1;
                                }
                            }
                            Some(b'n') => {
                                s.push('\n');
                                i += 2;
                            }
                            Some(b't') => {
                                s.push('\t');
                                i += 2;
                            }
                            Some(&c) => {
                                s.push(c as char);
                                i += 2;
                            }
                            None => i += 1,
                        }
                    } else {
                        let ch = text[i..].chars().next().unwrap_or(' ');
                        line += usize::from(ch == '\n');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
                i += 1;
                out.push((start_line, s, true));
            }
            _ => i += 1,
        }
    }
    out
}

/// `const NAME: &str = "...";` of a file.
fn consts(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let t = l.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
        if let Some(rest) = t.strip_prefix("const ")
            && let Some((name, _)) = rest.split_once(": &str")
        {
            let tail: String = text.lines().skip(n).take(6).collect::<Vec<_>>().join("\n");
            if let Some((_, value, _)) = literals(&tail).into_iter().next() {
                out.push((name.trim().to_string(), value));
            }
        }
    }
    out
}

/// Resolves `{NAME}` placeholders from the file's consts; `None` if any other remains.
fn resolve(sql: &str, consts: &[(String, String)]) -> Option<String> {
    let mut s = sql.to_string();
    for (name, value) in consts {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    let s = s.replace("{{", "\u{1}").replace("}}", "\u{2}");
    if s.contains('{') {
        return None;
    }
    Some(s.replace('\u{1}', "{").replace('\u{2}', "}"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every SQL statement of the workspace's sources, and those built from other values.
fn statements(root: &Path) -> (Vec<Found>, Vec<Found>) {
    let mut files = Vec::new();
    for crate_dir in ["platform/src", "tenant-api/src", "bench/src"] {
        sources(&root.join(crate_dir), &mut files);
    }
    files.sort();
    // A file's own consts first, then those of other files whose name no other file
    // defines differently (a column list used beside the module that defines it).
    let all: Vec<(String, String)> = files.iter().flat_map(|f| consts(&std::fs::read_to_string(f).unwrap())).collect();
    let everywhere: Vec<(String, String)> =
        all.iter().filter(|(name, value)| all.iter().all(|(n, v)| n != name || v == value)).cloned().collect();
    let (mut checked, mut dynamic) = (Vec::new(), Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut consts = consts(&text);
        consts.extend(everywhere.iter().cloned());
        for (line, lit, _) in literals(&text) {
            let trimmed = lit.trim_start();
            if !STARTS.iter().any(|k| trimmed.starts_with(k)) {
                continue;
            }
            let rel = file.strip_prefix(root).unwrap().to_path_buf();
            match resolve(trimmed, &consts) {
                Some(sql) => checked.push(Found { file: rel, line, sql }),
                None => dynamic.push(Found { file: rel, line, sql: trimmed.to_string() }),
            }
        }
    }
    (checked, dynamic)
}

async fn prepares(conn: &mut PgConnection, schema: &str, sql: &str) -> Result<(), String> {
    conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO \"{schema}\"")).into_sql_str())
        .await
        .map_err(|e| e.to_string())?;
    conn.prepare(sqlx::AssertSqlSafe(sql.to_string()).into_sql_str()).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn every_sql_statement_prepares_against_the_migrated_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let (found, dynamic) = statements(&root);
    assert!(found.len() > 200, "only {} statements found: is the scanner broken?", found.len());

    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test.sh sets it)");
    let db = Db::connect(&url, &[], 2).await.unwrap();
    platform::migrate::migrate_control(db.control()).await.unwrap();
    let slug = format!("sql-check-{}", rand::random::<u32>());
    let tenant = tenancy::create_tenant(
        &db,
        &NewTenant { slug, name: "sql check".into(), alliance: None, cluster: None },
        &Actor::cli(),
    )
    .await
    .unwrap();
    let mut conn = db.control().acquire().await.unwrap();
    let mut failures = Vec::new();
    for f in &found {
        // Tenant (and alliance: the same migrations) tables first, then control.
        let Err(in_tenant) = prepares(&mut conn, &tenant.schema_name, &f.sql).await else { continue };
        if prepares(&mut conn, "control", &f.sql).await.is_ok() {
            continue;
        }
        failures.push(format!("{}:{}: {in_tenant}\n    {}", f.file.display(), f.line, f.sql));
    }
    eprintln!(
        "sql_checked: {} statements prepared against the migrated tenant and control schemas; {} built from \
         runtime values left to the behaviour tests:",
        found.len() - failures.len(),
        dynamic.len()
    );
    for d in &dynamic {
        eprintln!("  {}:{}", d.file.display(), d.line);
    }
    assert!(failures.is_empty(), "{} statements do not prepare:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_scanner_reads_continuations_raw_strings_and_consts() {
    let src = "const COLUMNS: &str = \"id, name\";\n// \"SELECT nope\"\nlet c = '\"'; let l: &'a str;\n\
               query(\"SELECT {COLUMNS} \\\n     FROM t WHERE x = 'a'\"); query(r#\"UPDATE t SET a = \"b\"\"#);";
    let lits: Vec<String> = literals(src).into_iter().map(|l| l.1).collect();
    assert!(lits.contains(&"SELECT {COLUMNS} FROM t WHERE x = 'a'".to_string()), "{lits:?}");
    assert!(lits.contains(&"UPDATE t SET a = \"b\"".to_string()), "{lits:?}");
    assert!(!lits.iter().any(|l| l.contains("nope")), "{lits:?}");
    let c = consts(src);
    assert_eq!(resolve("SELECT {COLUMNS} FROM t", &c).as_deref(), Some("SELECT id, name FROM t"));
    assert_eq!(resolve("SELECT {other} FROM t", &c), None);
}
