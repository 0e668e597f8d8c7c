//! Integration tests: one binary (one link) with a module per area.

mod common;

mod alliance;
mod api_keys;
mod fairness;
mod isolation;
mod jwt;
mod ledger_flows;
mod ledger_proof;
mod mall;
mod marketing;
mod members_auth;
mod migrate;
mod ops;
mod provisioning;
mod rules;
mod staff_rbac;
mod storage;
