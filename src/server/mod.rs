//! The only code that knows tfplugin6, msgpack, go-plugin and tonic: the handshake, the
//! transport, and the RPCs that translate between the protocol and the framework.

pub mod codec;
pub mod convert;
pub mod handshake;
pub mod listener;
pub mod plugin;
pub mod rpc;
pub mod service;
pub mod tls;

pub use handshake::{serve, ServeMode};

pub mod proto {
    //! Code generated from the vendored protocol definitions in `proto/`.
    #![allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}
