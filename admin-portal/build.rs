//! Embeds the built portal (`dist/`, committed; built from `web/` with `npm run build`)
//! in the binary: one table of (path, content type, bytes, gzipped bytes) generated into
//! OUT_DIR. Text files are gzipped here once, at the best level, so the server never
//! compresses at run time. A fresh clone builds without Node.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let dist = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("dist");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo::rerun-if-changed=dist");

    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();

    let gz_dir = out.join("gz");
    std::fs::create_dir_all(&gz_dir).unwrap();
    let mut table = String::from("&[\n");
    for (i, rel) in files.iter().enumerate() {
        let path = dist.join(rel);
        let bytes = std::fs::read(&path).unwrap();
        let mime = mime_of(rel);
        let gzip = if compressible(mime) {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&bytes).unwrap();
            let gz = enc.finish().unwrap();
            // Only worth sending when it saves something.
            (gz.len() + 64 < bytes.len()).then(|| {
                let file = gz_dir.join(format!("{i}.gz"));
                std::fs::write(&file, gz).unwrap();
                file
            })
        } else {
            None
        };
        let gzip = match gzip {
            Some(f) => format!("Some(include_bytes!({:?}))", f.display().to_string()),
            None => "None".into(),
        };
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, content_type: {mime:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            path.display().to_string()
        )
        .unwrap();
    }
    table.push(']');
    std::fs::write(out.join("portal_assets.rs"), table).unwrap();
}

/// Every file under `dir`, as a path relative to `root` with `/` separators; the
/// build manifest (`.vite/`) is left out.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if rel.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push(rel);
        }
    }
}

fn mime_of(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/") || mime.starts_with("application/json") || mime == "image/svg+xml" || mime == "font/ttf"
}
