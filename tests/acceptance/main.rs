//! Acceptance tests: the real Terraform CLI drives the provider binary (through
//! `dev_overrides`) against a real OpenBao dev server and the APIM emulator.
//!
//! Needs the tools from `scripts/setup`. Run with `cargo test --test acceptance`; one area:
//! `cargo test --test acceptance harness`.

#[path = "../support/mod.rs"]
mod support;

mod acl;
mod audit;
mod auth_backend;
mod azure_client;
mod azure_role;
mod binding;
mod docs;
mod faults;
mod harness;
mod lease;
mod policy;
mod protocol;
mod quickstart;
mod runtime;
mod schema;
mod tidy;
mod vault_outage;
mod vault_tls;
