//! The `tfplugin6.Provider` gRPC service: decodes requests, hands them to the framework and
//! the provider's types (see `rpc/`), and encodes the answers. A user's mistake is always a
//! diagnostic in a successful response, never a gRPC error.

use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};

use tonic::{Request, Response, Status, Streaming};

use crate::framework::cancel::CancelSource;
use crate::framework::resource::{Ctx, Provider};
use crate::server::proto::tfplugin6 as pb;
use pb::provider_server::Provider as Rpc;

use super::rpc;

/// The server-side state shared by every RPC.
pub struct ProviderService<P: Provider> {
    pub(crate) provider: Arc<P>,
    pub(crate) data: RwLock<Option<Arc<P::Data>>>,
    pub(crate) cancel: CancelSource,
    pub(crate) schema: OnceLock<pb::get_provider_schema::Response>,
}

impl<P: Provider> ProviderService<P> {
    /// A service for `provider`, not yet configured.
    pub fn new(provider: P) -> Self {
        ProviderService {
            provider: Arc::new(provider),
            data: RwLock::new(None),
            cancel: CancelSource::new(),
            schema: OnceLock::new(),
        }
    }

    /// At Shutdown: lets the provider give back what it obtained, within `limit`.
    pub async fn shutdown(&self, limit: std::time::Duration) {
        let data = self.data.read().ok().and_then(|d| d.clone());
        if tokio::time::timeout(limit, self.provider.shutdown(data))
            .await
            .is_err()
        {
            crate::log::debug("provider shutdown took too long; exiting anyway", &[]);
        }
    }

    /// The context handed to resources: configured data and the stop signal.
    pub(crate) fn ctx(&self) -> Ctx<P::Data> {
        let data = self.data.read().map(|d| d.clone()).unwrap_or(None);
        Ctx::new(data, self.cancel.token())
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn ok<T>(t: T) -> Result<Response<T>, Status> {
    Ok(Response::new(t))
}

#[tonic::async_trait]
impl<P: Provider> Rpc for ProviderService<P> {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        ok(rpc::schema::metadata(self))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        ok(rpc::schema::provider_schema(self).clone())
    }

    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        ok(rpc::validate::provider(self, r.into_inner()))
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        ok(rpc::validate::resource(self, r.into_inner()))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        ok(rpc::validate::data_source(self, r.into_inner()))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        ok(rpc::validate::ephemeral(self, r.into_inner()))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        ok(rpc::resource::upgrade(self, r.into_inner()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _r: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        ok(rpc::schema::identity_schemas(self))
    }

    async fn upgrade_resource_identity(
        &self,
        r: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        ok(rpc::resource::upgrade_identity(self, r.into_inner()))
    }

    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        ok(rpc::configure::configure(self, r.into_inner()).await)
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        ok(rpc::resource::read(self, r.into_inner()).await)
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        ok(rpc::resource::plan(self, r.into_inner()).await)
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        ok(rpc::resource::apply(self, r.into_inner()).await)
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        ok(rpc::resource::import(self, r.into_inner()).await)
    }

    async fn move_resource_state(
        &self,
        r: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let r = r.into_inner();
        ok(pb::move_resource_state::Response {
            diagnostics: rpc::unsupported::diag(&format!(
                "Moving {} from {} into {}",
                r.source_type_name, r.source_provider_address, r.target_type_name
            )),
            ..Default::default()
        })
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        ok(rpc::data::read(self, r.into_inner()).await)
    }

    async fn generate_resource_config(
        &self,
        r: Request<pb::generate_resource_config::Request>,
    ) -> Result<Response<pb::generate_resource_config::Response>, Status> {
        ok(rpc::resource::generate_config(self, r.into_inner()))
    }

    async fn open_ephemeral_resource(
        &self,
        r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        ok(rpc::ephemeral::open(self, r.into_inner()).await)
    }

    async fn renew_ephemeral_resource(
        &self,
        r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        ok(rpc::ephemeral::renew(self, r.into_inner()).await)
    }

    async fn close_ephemeral_resource(
        &self,
        r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        ok(rpc::ephemeral::close(self, r.into_inner()).await)
    }

    type ListResourceStream = Stream<pb::list_resource::Event>;

    async fn list_resource(
        &self,
        r: Request<pb::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        let events = rpc::list::list(self, r.into_inner()).await;
        ok(Box::pin(tokio_stream::iter(events.into_iter().map(Ok))))
    }

    async fn validate_list_resource_config(
        &self,
        r: Request<pb::validate_list_resource_config::Request>,
    ) -> Result<Response<pb::validate_list_resource_config::Response>, Status> {
        ok(rpc::list::validate(self, r.into_inner()))
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        ok(pb::get_functions::Response {
            functions: rpc::function::definitions(self),
            diagnostics: Vec::new(),
        })
    }

    async fn call_function(
        &self,
        r: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        ok(rpc::function::call(self, r.into_inner()))
    }

    async fn validate_state_store_config(
        &self,
        _r: Request<pb::validate_state_store::Request>,
    ) -> Result<Response<pb::validate_state_store::Response>, Status> {
        ok(pb::validate_state_store::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn configure_state_store(
        &self,
        _r: Request<pb::configure_state_store::Request>,
    ) -> Result<Response<pb::configure_state_store::Response>, Status> {
        ok(pb::configure_state_store::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
            capabilities: None,
        })
    }

    type ReadStateBytesStream = Stream<pb::read_state_bytes::Response>;

    async fn read_state_bytes(
        &self,
        _r: Request<pb::read_state_bytes::Request>,
    ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
        let resp = pb::read_state_bytes::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
            ..Default::default()
        };
        ok(Box::pin(tokio_stream::once(Ok(resp))))
    }

    async fn write_state_bytes(
        &self,
        _r: Request<Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> Result<Response<pb::write_state_bytes::Response>, Status> {
        ok(pb::write_state_bytes::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn lock_state(
        &self,
        _r: Request<pb::lock_state::Request>,
    ) -> Result<Response<pb::lock_state::Response>, Status> {
        ok(pb::lock_state::Response {
            lock_id: String::new(),
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn unlock_state(
        &self,
        _r: Request<pb::unlock_state::Request>,
    ) -> Result<Response<pb::unlock_state::Response>, Status> {
        ok(pb::unlock_state::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn get_states(
        &self,
        _r: Request<pb::get_states::Request>,
    ) -> Result<Response<pb::get_states::Response>, Status> {
        ok(pb::get_states::Response {
            state_id: Vec::new(),
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn delete_state(
        &self,
        _r: Request<pb::delete_state::Request>,
    ) -> Result<Response<pb::delete_state::Response>, Status> {
        ok(pb::delete_state::Response {
            diagnostics: rpc::unsupported::diag("State storage"),
        })
    }

    async fn plan_action(
        &self,
        r: Request<pb::plan_action::Request>,
    ) -> Result<Response<pb::plan_action::Response>, Status> {
        ok(rpc::action::plan(self, r.into_inner()).await)
    }

    type InvokeActionStream = Stream<pb::invoke_action::Event>;

    async fn invoke_action(
        &self,
        r: Request<pb::invoke_action::Request>,
    ) -> Result<Response<Self::InvokeActionStream>, Status> {
        use tokio_stream::StreamExt;
        let events = rpc::action::invoke(self, r.into_inner());
        ok(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(events).map(Ok),
        ))
    }

    async fn validate_action_config(
        &self,
        r: Request<pb::validate_action_config::Request>,
    ) -> Result<Response<pb::validate_action_config::Response>, Status> {
        ok(rpc::action::validate(self, r.into_inner()))
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        crate::log::info("StopProvider received: cancelling in-flight API calls", &[]);
        self.cancel.cancel();
        ok(pb::stop_provider::Response::default())
    }
}
