//! go-plugin's side services: GRPCController (Shutdown), GRPCStdio and GRPCBroker.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Notify;
use tonic::{Request, Response, Status, Streaming};

use crate::server::proto::plugin as pb;

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// Shutdown: answers, then tells the server to stop; the process exits right after.
pub struct Controller {
    /// Notified on Shutdown.
    pub shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl pb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _r: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        self.shutdown.notify_one();
        Ok(Response::new(pb::Empty {}))
    }
}

/// Stdio forwarding: the provider never writes to stdout after the handshake and its logs go
/// to stderr, which go-plugin reads directly, so the stream stays open and empty.
pub struct Stdio;

#[tonic::async_trait]
impl pb::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Stream<pb::StdioData>;

    async fn stream_stdio(
        &self,
        _r: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// The broker is for plugins that dial back to their host; providers do not, so the stream
/// stays open and idle.
pub struct Broker;

#[tonic::async_trait]
impl pb::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = Stream<pb::ConnInfo>;

    async fn start_stream(
        &self,
        _r: Request<Streaming<pb::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}
