//! Alliances (SPEC A1, A2, C6): merchants that share a points currency.
//!
//! An alliance has its own schema (`a_<id>`) with the DDL of a merchant's schema: its
//! `members` are the alliance's identities, and its ledger holds the shared currency.
//! Each merchant of the alliance lists that currency with `shared = true`, so products
//! can be priced in it; a balance in it is read and moved in the alliance schema, inside
//! the merchant's transaction (every merchant of an alliance lives on its cluster).
//!
//! - `schema`: creating and migrating the alliance schema, listing the currency in a
//!   merchant's schema.
//! - `identity`: a merchant's member ↔ the alliance identity, and the hand-off that signs
//!   a member of one mall into another mall of the alliance.
//! - `link`: linking a member's accounts in two malls of the alliance into one identity.
//! - `book`: which ledger a (member, currency) is kept in, and switching to it.
//! - `membership`: a mall leaving its alliance, and what stays of it there.
//! - `locks`: lock grants of the shared currency, charged to the issuing budget.

use crate::ids::AllianceId;
pub mod book;
pub mod budget;
pub mod budgets;
pub mod counts;
pub mod identity;
pub mod link;
pub mod locks;
pub mod membership;
pub mod schema;
pub mod settlement;
pub mod transfers;

/// The schema of alliance `id` (the directory makes it the same way).
pub fn schema_name(id: AllianceId) -> String {
    format!("a_{id}")
}
