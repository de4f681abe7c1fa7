//! terraform-provider-apim: a Terraform provider that binds Azure API Management to
//! HashiCorp Vault. See ARCHITECTURE.md for the map.
//!
//! Layers, from the wire inwards: `server` (tfplugin6 over go-plugin), `framework`
//! (schemas, values, planning; protocol-agnostic), `provider` + `resources` (the types
//! users write), `clients` (typed Vault and Azure APIs; no Terraform).

pub mod clients;
pub mod context;
pub mod docs;
pub mod framework;
pub mod log;
pub mod provider;
pub mod resources;
pub mod server;
