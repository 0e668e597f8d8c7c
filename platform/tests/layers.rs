//! Layers without loops (issue 11): every top-level module of `platform` belongs to one
//! layer, and a module names (`crate::…`) only modules of its own layer or of the layers
//! below. A new upward import fails here, with the file and the line.

use std::path::Path;

/// From the ground up. A module may use its own layer and every layer before it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "kernel",
        &[
            "error",
            "i18n",
            "localtime",
            "doc",
            "ident",
            "ids",
            "limits",
            "rbac",
            "urls",
            "db",
            "tx",
            "audit",
            "notify",
            "outbox",
            "idempotency",
            "vault",
            "sender",
            "storage",
            "images",
            "found",
            "schema",
            "settings",
            "sheet",
            "directory",
            "provider_secrets",
            "webhooks",
        ],
    ),
    ("people", &["auth", "staff", "segments", "members", "member_csv", "messages", "levels", "broadcasts"]),
    ("ledger", &["ledger"]),
    ("alliance", &["alliance"]),
    ("domain", &["points", "marketing", "mall", "tasks", "rules", "tenancy", "crm", "reports", "content", "analytics"]),
    ("fleet", &["migrate", "jobs", "fleet", "health", "tenant_archive"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_use_only_their_own_layer_and_the_ones_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut problems = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            problems.push(format!("{}: module {top} is in no layer (add it to LAYERS)", rel.display()));
            continue;
        };
        for (n, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in line.split("crate::").skip(1) {
                let name: String = used.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                match layer_of(&name) {
                    Some(l) if l > own => problems.push(format!(
                        "{}:{}: {top} ({}) uses {name} ({}), a layer above it",
                        rel.display(),
                        n + 1,
                        LAYERS[own].0,
                        LAYERS[l].0
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Handlers only decode, authorize, call the domain and encode (issue 11): no module of
/// the HTTP crate's routes names `sqlx` or opens a transaction of its own.
#[test]
fn route_modules_hold_no_sql() {
    let routes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenant-api/src/routes");
    let mut sources = Vec::new();
    files(&routes, &mut sources);
    assert!(sources.len() > 10, "the route modules were not found under {}", routes.display());
    let mut found = Vec::new();
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("sqlx") || line.contains(".begin()") || line.contains("tenant_tx(") {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "route modules that reach the database themselves:\n{}", found.join("\n"));
}
