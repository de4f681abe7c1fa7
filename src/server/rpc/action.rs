//! ValidateActionConfig, PlanAction and InvokeAction: decode, call the framework, encode.
//! InvokeAction streams: a progress event per line the action reports, then one completed
//! event with its diagnostics.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::framework::action::{ActionType, Progress};
use crate::framework::diag::Diags;
use crate::framework::resource::Provider;
use crate::framework::value::Value;
use crate::server::proto::tfplugin6 as pb;

use super::unsupported::unknown_type;
use crate::server::convert;
use crate::server::service::ProviderService;

/// The action `name` and its configuration decoded against its schema; `None`, with the
/// diagnostics in `d`, for an unknown type or a configuration that does not fit.
fn configured<'a, D: Send + Sync>(
    actions: &'a [Box<dyn ActionType<D>>],
    name: &str,
    config: Option<&pb::DynamicValue>,
    d: &mut Diags,
) -> Option<(&'a dyn ActionType<D>, Value)> {
    let Some(a) = actions.iter().find(|a| a.type_name() == name) else {
        d.extend(unknown_type("action", name));
        return None;
    };
    let config = convert::decode(
        config,
        &a.schema().block.object_type(),
        "action configuration",
        d,
    );
    (!d.has_errors()).then_some((a.as_ref(), config))
}

/// ValidateActionConfig.
pub fn validate<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_action_config::Request,
) -> pb::validate_action_config::Response {
    let mut d = Diags::new();
    if let Some((a, config)) = configured(
        s.provider.actions(),
        &r.type_name,
        r.config.as_ref(),
        &mut d,
    ) {
        d.extend(a.validate(&config));
    }
    pb::validate_action_config::Response {
        diagnostics: convert::diags(&d),
    }
}

/// PlanAction: the action's plan-time checks.
pub async fn plan<P: Provider>(
    s: &ProviderService<P>,
    r: pb::plan_action::Request,
) -> pb::plan_action::Response {
    let mut d = Diags::new();
    if let Some((a, config)) = configured(
        s.provider.actions(),
        &r.action_type,
        r.config.as_ref(),
        &mut d,
    ) {
        a.plan(&s.ctx(), &config, &mut d).await;
    }
    pb::plan_action::Response {
        diagnostics: convert::diags(&d),
        deferred: None,
    }
}

fn progress_event(message: String) -> pb::invoke_action::Event {
    use pb::invoke_action::event::{Progress, Type};
    pb::invoke_action::Event {
        r#type: Some(Type::Progress(Progress { message })),
    }
}

fn completed_event(d: &Diags) -> pb::invoke_action::Event {
    use pb::invoke_action::event::{Completed, Type};
    pb::invoke_action::Event {
        r#type: Some(Type::Completed(Completed {
            diagnostics: convert::diags(d),
        })),
    }
}

/// InvokeAction: runs the action in a task of its own, so that it runs to its end even when
/// Terraform stops reading the stream (a change is never dropped half-way); its progress
/// lines go out as they come, then the completed event.
pub fn invoke<P: Provider>(
    s: &ProviderService<P>,
    r: pb::invoke_action::Request,
) -> mpsc::Receiver<pb::invoke_action::Event> {
    let (tx, rx) = mpsc::channel(16);
    let provider: Arc<P> = s.provider.clone();
    let ctx = s.ctx();
    tokio::spawn(async move {
        let mut d = Diags::new();
        let found = configured(
            provider.actions(),
            &r.action_type,
            r.config.as_ref(),
            &mut d,
        );
        if let Some((a, config)) = found {
            let (progress, mut lines) = Progress::channel();
            let forward = {
                let tx = tx.clone();
                async move {
                    while let Some(line) = lines.recv().await {
                        // Terraform gone: the action still runs to its end.
                        let _ = tx.send(progress_event(line)).await;
                    }
                }
            };
            let work = async {
                a.invoke(&ctx, &config, &progress, &mut d).await;
                drop(progress);
            };
            tokio::join!(work, forward);
        }
        let _ = tx.send(completed_event(&d)).await;
    });
    rx
}
