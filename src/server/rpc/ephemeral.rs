//! OpenEphemeralResource, RenewEphemeralResource and CloseEphemeralResource: decode, call the
//! framework, encode.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::framework::diag::Diags;
use crate::framework::lifecycle::EphemeralType;
use crate::framework::resource::Provider;
use crate::server::proto::tfplugin6 as pb;

use super::unsupported::unknown_type;
use crate::server::convert;
use crate::server::service::ProviderService;

fn find<'a, P: Provider>(
    s: &'a ProviderService<P>,
    name: &str,
) -> Result<&'a dyn EphemeralType<P::Data>, Diags> {
    s.provider
        .ephemeral_resources()
        .iter()
        .find(|r| r.type_name() == name)
        .map(|r| r.as_ref())
        .ok_or_else(|| unknown_type("ephemeral resource", name))
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Opens: produces the ephemeral value.
pub async fn open<P: Provider>(
    s: &ProviderService<P>,
    r: pb::open_ephemeral_resource::Request,
) -> pb::open_ephemeral_resource::Response {
    let mut d = Diags::new();
    let mut resp = pb::open_ephemeral_resource::Response::default();
    if let Ok(e) = find(s, &r.type_name).map_err(|x| d.extend(x)) {
        let ty = e.schema().block.object_type();
        let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
        if !d.has_errors() {
            if let Some(o) = e.open(&s.ctx(), &config, &mut d).await {
                resp.result = convert::encode(&o.result, &ty, "ephemeral result", &mut d);
                resp.private = Some(o.private);
                resp.renew_at = o.renew_at.map(timestamp);
            }
        }
    }
    resp.diagnostics = convert::diags(&d);
    resp
}

/// Renews before `renew_at`.
pub async fn renew<P: Provider>(
    s: &ProviderService<P>,
    r: pb::renew_ephemeral_resource::Request,
) -> pb::renew_ephemeral_resource::Response {
    let mut d = Diags::new();
    let mut resp = pb::renew_ephemeral_resource::Response::default();
    if let Ok(e) = find(s, &r.type_name).map_err(|x| d.extend(x)) {
        let private = r.private.unwrap_or_default();
        let (p, at) = e.renew(&s.ctx(), &private, &mut d).await;
        resp.private = Some(p);
        resp.renew_at = at.map(timestamp);
    }
    resp.diagnostics = convert::diags(&d);
    resp
}

/// Closes: releases what open acquired.
pub async fn close<P: Provider>(
    s: &ProviderService<P>,
    r: pb::close_ephemeral_resource::Request,
) -> pb::close_ephemeral_resource::Response {
    let mut d = Diags::new();
    if let Ok(e) = find(s, &r.type_name).map_err(|x| d.extend(x)) {
        e.close(&s.ctx(), &r.private.unwrap_or_default(), &mut d)
            .await;
    }
    pb::close_ephemeral_resource::Response {
        diagnostics: convert::diags(&d),
    }
}
