//! Tamper evidence (L10): each entry carries SHA-256(prev_hash ‖ canonical form), where
//! prev_hash is the hash of the previous entry of the same account (empty for the first).
//!
//! The chain is per account rather than per tenant: the account row is locked for every
//! write anyway, so chaining costs no extra contention, while one chain per tenant would
//! serialize every write of a tenant (a flash sale) behind one row.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Reason, Source};

/// The fields an entry's hash covers, in a fixed order.
pub struct Canonical<'a> {
    pub member_id: i64,
    pub currency: &'a str,
    pub seq: i64,
    pub amount: i64,
    pub locked_delta: i64,
    pub balance_after: i64,
    pub reason: &'a str,
    pub source_kind: &'a str,
    pub source_ref: &'a str,
    pub rule_id: Option<i64>,
    pub rule_version: Option<i32>,
    pub params_version: Option<i32>,
    pub memo: &'a str,
    pub created_at_micros: i64,
}

/// An entry's place in its account's chain and what it moves.
pub struct Link<'a> {
    pub member_id: i64,
    pub currency: &'a str,
    pub seq: i64,
    pub amount: i64,
    pub locked_delta: i64,
    pub balance_after: i64,
}

impl Link<'_> {
    /// The entry's hash after `prev`, covering the link, why and by whom, and when.
    pub fn hash(&self, prev: &[u8], reason: Reason, source: &Source, created_at: DateTime<Utc>) -> Vec<u8> {
        Canonical {
            member_id: self.member_id,
            currency: self.currency,
            seq: self.seq,
            amount: self.amount,
            locked_delta: self.locked_delta,
            balance_after: self.balance_after,
            reason: reason.as_str(),
            source_kind: source.kind.as_str(),
            source_ref: &source.reference,
            rule_id: source.rule.map(|r| r.id),
            rule_version: source.rule.map(|r| r.version),
            params_version: source.rule.map(|r| r.params_version),
            memo: &source.memo,
            created_at_micros: created_at.timestamp_micros(),
        }
        .hash(prev)
    }
}

impl Canonical<'_> {
    pub fn hash(&self, prev: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update((prev.len() as u32).to_be_bytes());
        h.update(prev);
        for n in [self.member_id, self.seq, self.amount, self.locked_delta, self.balance_after, self.created_at_micros]
        {
            h.update(n.to_be_bytes());
        }
        h.update(self.rule_id.unwrap_or(-1).to_be_bytes());
        h.update(i64::from(self.rule_version.unwrap_or(-1)).to_be_bytes());
        for s in [self.currency, self.reason, self.source_kind, self.source_ref, self.memo] {
            // Length-prefixed, so field boundaries cannot be shifted.
            h.update((s.len() as u32).to_be_bytes());
            h.update(s.as_bytes());
        }
        // Last and only when present, so entries written before parameters were versioned
        // keep their hashes (an input with it is 8 bytes longer than one without).
        if let Some(p) = self.params_version {
            h.update(i64::from(p).to_be_bytes());
        }
        h.finalize().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(memo: &str, amount: i64) -> Canonical<'_> {
        Canonical {
            member_id: 1,
            currency: "points",
            seq: 1,
            amount,
            locked_delta: 0,
            balance_after: 10,
            reason: "earn",
            source_kind: "admin",
            source_ref: "",
            rule_id: None,
            rule_version: None,
            params_version: None,
            memo,
            created_at_micros: 5,
        }
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = c("a", 10).hash(b"");
        assert_eq!(base, c("a", 10).hash(b""));
        assert_ne!(base, c("b", 10).hash(b""));
        assert_ne!(base, c("a", 11).hash(b""));
        assert_ne!(base, c("a", 10).hash(b"x"));
        let versioned = |p| Canonical { params_version: Some(p), ..c("a", 10) }.hash(b"");
        assert_ne!(base, versioned(1));
        assert_ne!(versioned(1), versioned(2));
        assert_eq!(base.len(), 32);
    }
}
