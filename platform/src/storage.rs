//! Object storage for images and other files (SPEC C5): any S3-compatible endpoint
//! through aws-sdk-s3 (path-style addressing, static credentials), or a local directory
//! as the zero-setup default. Keys are built by the platform, never taken from input.

use std::path::PathBuf;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use bytes::Bytes;

use crate::error::{Error, Result};

/// Largest file accepted.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone)]
pub enum Storage {
    /// Files under a directory (the default: `.data/files`).
    Local { root: PathBuf },
    /// An S3-compatible bucket.
    S3 { client: aws_sdk_s3::Client, bucket: String },
}

/// S3 settings (from the environment in `serve`).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Storage {
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::Local { root: root.into() }
    }

    pub fn s3(c: &S3Config) -> Self {
        let creds = Credentials::new(&c.access_key, &c.secret_key, None, None, "pointsmall");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(c.region.clone()))
            .endpoint_url(&c.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self::S3 { client: aws_sdk_s3::Client::from_conf(conf), bucket: c.bucket.clone() }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Local { root } => format!("local directory {}", root.display()),
            Self::S3 { bucket, .. } => format!("S3 bucket {bucket}"),
        }
    }

    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        check_key(key)?;
        match self {
            Self::Local { root } => {
                let path = root.join(key);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(|e| Error::Internal(e.into()))?;
                }
                // Write then rename: a reader never sees half a file.
                let tmp = path.with_extension("part");
                tokio::fs::write(&tmp, &body).await.map_err(|e| Error::Internal(e.into()))?;
                tokio::fs::write(path.with_extension("type"), content_type)
                    .await
                    .map_err(|e| Error::Internal(e.into()))?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| Error::Internal(e.into()))?;
                Ok(())
            }
            Self::S3 { client, bucket } => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type(content_type)
                    .body(body.into())
                    .send()
                    .await
                    .map_err(|e| {
                    Error::Internal(anyhow::anyhow!("S3 put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
                })?;
                Ok(())
            }
        }
    }

    /// The file and its content type, or None.
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, String)>> {
        check_key(key)?;
        match self {
            Self::Local { root } => {
                let path = root.join(key);
                match tokio::fs::read(&path).await {
                    Ok(b) => {
                        let ct = tokio::fs::read_to_string(path.with_extension("type"))
                            .await
                            .unwrap_or_else(|_| "application/octet-stream".into());
                        Ok(Some((Bytes::from(b), ct)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::Internal(e.into())),
                }
            }
            Self::S3 { client, bucket } => match client.get_object().bucket(bucket).key(key).send().await {
                Ok(out) => {
                    let ct = out.content_type().unwrap_or("application/octet-stream").to_string();
                    let body = out.body.collect().await.map_err(|e| Error::Internal(e.into()))?.into_bytes();
                    Ok(Some((body, ct)))
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => {
                    Err(Error::Internal(anyhow::anyhow!("S3 get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))))
                }
            },
        }
    }
}

impl Storage {
    /// Every key under `prefix` (a `t<tenant>/` folder), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        check_key(prefix.trim_end_matches('/'))?;
        let mut keys = Vec::new();
        match self {
            Self::Local { root } => {
                let mut dirs = vec![root.join(prefix)];
                while let Some(dir) = dirs.pop() {
                    let mut rd = match tokio::fs::read_dir(&dir).await {
                        Ok(rd) => rd,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::Internal(e.into())),
                    };
                    while let Some(e) = rd.next_entry().await.map_err(|e| Error::Internal(e.into()))? {
                        let path = e.path();
                        if e.file_type().await.map_err(|e| Error::Internal(e.into()))?.is_dir() {
                            dirs.push(path);
                            continue;
                        }
                        let Ok(rel) = path.strip_prefix(root) else { continue };
                        let key = rel.to_string_lossy().replace('\\', "/");
                        if check_key(&key).is_ok() {
                            keys.push(key);
                        }
                    }
                }
            }
            Self::S3 { client, bucket } => {
                let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        Error::Internal(anyhow::anyhow!(
                            "S3 list {prefix}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        ))
                    })?;
                    keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Deletes one file (nothing when it is not there).
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        match self {
            Self::Local { root } => {
                let path = root.join(key);
                for p in [path.with_extension("type"), path] {
                    match tokio::fs::remove_file(&p).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::Internal(e.into())),
                    }
                }
                Ok(())
            }
            Self::S3 { client, bucket } => {
                client.delete_object().bucket(bucket).key(key).send().await.map_err(|e| {
                    Error::Internal(anyhow::anyhow!("S3 delete {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
                })?;
                Ok(())
            }
        }
    }
}

/// Extensions of the local store's own files beside each file (its content type, a
/// half-written upload): never a key, so never served.
const SIDECAR_EXTENSIONS: [&str; 2] = ["type", "part"];

/// Keys are `t<tenant>/…` paths of safe characters, with no `..`, never naming a sidecar.
fn check_key(key: &str) -> Result<()> {
    let sidecar = key.rsplit_once('.').is_some_and(|(_, ext)| SIDECAR_EXTENSIONS.contains(&ext));
    let ok = !key.is_empty()
        && !sidecar
        && key.len() <= 300
        && !key.starts_with('/')
        && !key.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(Error::not_found("file_not_found", "no such file")) }
}

/// The content type of an image from its first bytes (the declared type is not
/// trusted), or None if it is not a PNG, JPEG, GIF or WebP.
pub fn sniff_image(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Some(("image/png", "png"))
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("image/gif", "gif"))
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_and_images_are_sniffed() {
        assert!(check_key("t1/products/2/a.png").is_ok());
        for bad in [
            "../etc/passwd",
            "t1/../x",
            "/abs",
            "t1//x",
            "t1/x y",
            "t1/%2e%2e",
            "t1/a.png.type",
            "t1/a.type",
            "t1/a.part",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest").map(|s| s.0), Some("image/png"));
        assert_eq!(sniff_image(b"<svg onload=alert(1)>"), None);
    }
}
