//! Integration tests: one binary (one link) with a module per area.

mod common;

mod alliance;
mod analytics;
mod api_keys;
mod budgets;
mod crm;
mod fairness;
mod hardening;
mod identity_proof;
mod input_edges;
mod isolation;
mod jwt;
mod ledger_flows;
mod ledger_proof;
mod mall;
mod mall_day;
mod mall_events;
mod marketing;
mod members_auth;
mod memory;
mod migrate;
mod ops;
mod outage;
mod provisioning;
mod reports;
mod revocation;
mod rules;
mod secrets_at_rest;
mod segments;
mod settlement;
mod staff_rbac;
mod storage;
mod tasks;
mod throttles;
mod webhooks;
