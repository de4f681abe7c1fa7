//! Acceptance tests: the real Terraform CLI drives the provider binary (through
//! `dev_overrides`) against a real OpenBao dev server and the APIM emulator.
//!
//! Needs the tools from `scripts/setup`. Run with `cargo test --test acceptance`; one area:
//! `cargo test --test acceptance harness`.

#[path = "../support/mod.rs"]
mod support;

mod acl;
mod adoption;
mod azure_client;
mod docs;
mod faults;
mod functions;
mod gateway_load;
mod harness;
mod install;
mod names;
mod pipelines;
mod protocol;
mod query;
mod runtime;
mod schema;
mod signin;
mod tidy;
mod token_renewal;
mod troubleshooting;
mod vault_audit;
mod vault_auth_backend;
mod vault_azure_role;
mod vault_binding;
mod vault_lease;
mod vault_outage;
mod vault_policy;
mod vault_policy_document;
mod vault_rotate;
mod vault_secret;
mod vault_tls;
