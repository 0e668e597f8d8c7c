//! Secrets at rest (issue 11): provider secrets (the payment callback's and the webview
//! hand-off's HMAC keys) are stored sealed with ChaCha20-Poly1305 under a key from
//! configuration, so a database dump alone does not reveal them.
//!
//! Keys come from `POINTSMALL_SECRETS_KEYS` (`id:base64-of-32-bytes`, comma-separated,
//! the first one sealing, all of them opening); without it, one key is derived from the
//! JWT signing secret (and that one always opens, for moving to configured keys). Rotation: put a new key first, keep the old ones, run
//! `pointsmall secrets reseal` (every secret is sealed again under the first key), then
//! drop the old keys. A sealed value is `v1:<key id>:<base64(nonce ‖ ciphertext)>`,
//! bound to its tenant and name (associated data), so it cannot be moved to another row.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const PREFIX: &str = "v1";
/// The id of the key derived from the JWT secret (the zero-setup default).
pub const DERIVED_KEY_ID: &str = "jwt";

/// The sealing keys, the current one first.
#[derive(Clone)]
pub struct Vault {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Vault").field("key_ids", &ids).finish()
    }
}

impl Vault {
    /// From `id:base64,…` (the first key seals), or, when none are configured, one key
    /// derived from `fallback` (the JWT signing secret).
    /// The key derived from the JWT secret stays available for opening, so secrets sealed
    /// before keys were configured can be sealed again under them.
    pub fn from_config(keys: Option<&str>, fallback: &[u8]) -> anyhow::Result<Self> {
        let mut h = Sha256::new();
        h.update(b"pointsmall provider secrets v1\n");
        h.update(fallback);
        let derived: (String, [u8; 32]) = (DERIVED_KEY_ID.into(), h.finalize().into());
        let Some(keys) = keys.filter(|k| !k.trim().is_empty()) else {
            return Ok(Self { keys: vec![derived] });
        };
        let mut out = Vec::new();
        for part in keys.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, b64) = part.split_once(':').ok_or_else(|| anyhow::anyhow!("a secrets key is id:base64"))?;
            anyhow::ensure!(
                !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
                "a secrets key id is 1 to 16 letters and digits"
            );
            let bytes = STANDARD.decode(b64.trim()).map_err(|e| anyhow::anyhow!("secrets key {id}: {e}"))?;
            let key: [u8; 32] =
                bytes.try_into().map_err(|_| anyhow::anyhow!("secrets key {id} must be 32 bytes (base64)"))?;
            anyhow::ensure!(out.iter().all(|(other, _)| other != id), "secrets key id {id} is given twice");
            out.push((id.to_string(), key));
        }
        anyhow::ensure!(!out.is_empty(), "POINTSMALL_SECRETS_KEYS names no key");
        if out.iter().all(|(id, _)| id != DERIVED_KEY_ID) {
            out.push(derived);
        }
        Ok(Self { keys: out })
    }

    /// The id of the key that seals.
    pub fn current_key(&self) -> &str {
        &self.keys[0].0
    }

    /// Seals `plain`, bound to `context` (tenant and name).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String> {
        let (id, key) = &self.keys[0];
        let cipher = ChaCha20Poly1305::new(key.into());
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plain.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| Error::Internal(anyhow::anyhow!("sealing a secret failed")))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}:{id}:{}", STANDARD.encode(blob)))
    }

    /// Opens a sealed value. A value stored before sealing existed (no `v1:` prefix) is
    /// returned as it is; `pointsmall secrets reseal` seals those.
    pub fn open(&self, stored: &str, context: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix("v1:") else {
            return Ok(stored.to_string());
        };
        let broken = |why: &str| Error::Internal(anyhow::anyhow!("a stored secret cannot be opened: {why}"));
        let (id, b64) = rest.split_once(':').ok_or_else(|| broken("malformed"))?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| broken("its key is not configured"))?;
        let blob = STANDARD.decode(b64).map_err(|_| broken("malformed"))?;
        if blob.len() < 12 + 16 {
            return Err(broken("too short"));
        }
        let (nonce, sealed) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| broken("malformed"))?;
        let plain = ChaCha20Poly1305::new(key.into())
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| broken("it does not authenticate"))?;
        String::from_utf8(plain).map_err(|_| broken("not text"))
    }

    /// Whether `stored` is sealed under the current key.
    pub fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix("v1:").and_then(|r| r.split_once(':')).is_some_and(|(id, _)| id == self.current_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let v = Vault::from_config(Some(&format!("k1:{}", key(1))), b"").unwrap();
        let sealed = v.seal("s3cret", "5:webview").unwrap();
        assert!(sealed.starts_with("v1:k1:") && !sealed.contains("s3cret"), "{sealed}");
        assert_eq!(v.open(&sealed, "5:webview").unwrap(), "s3cret");
        assert!(v.open(&sealed, "6:webview").is_err(), "bound to its row");
        let other = Vault::from_config(Some(&format!("k1:{}", key(2))), b"").unwrap();
        assert!(other.open(&sealed, "5:webview").is_err(), "another key");
        assert_ne!(v.seal("s3cret", "5:webview").unwrap(), sealed, "a fresh nonce each time");
    }

    #[test]
    fn a_rotated_vault_opens_old_values_and_seals_with_the_new_key() {
        let old = Vault::from_config(Some(&format!("k1:{}", key(1))), b"").unwrap();
        let sealed = old.seal("s3cret", "ctx").unwrap();
        let rotated = Vault::from_config(Some(&format!("k2:{},k1:{}", key(2), key(1))), b"").unwrap();
        assert_eq!(rotated.open(&sealed, "ctx").unwrap(), "s3cret");
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("s3cret", "ctx").unwrap()));
        assert_eq!(rotated.open("legacy-plaintext", "ctx").unwrap(), "legacy-plaintext");
    }

    #[test]
    fn bad_key_lists_are_refused() {
        for bad in ["nocolon", "k1:not-base64!", "k1:AAAA", &format!("k1:{},k1:{}", key(1), key(2))] {
            assert!(Vault::from_config(Some(bad), b"").is_err(), "{bad}");
        }
    }
}
