//! GetFunctions and CallFunction: the provider's functions, their definitions built from each
//! function's declaration, their arguments decoded from msgpack against the parameter types.

use crate::framework::function::Function;
use crate::framework::resource::Provider;
use crate::server::codec;
use crate::server::proto::tfplugin6 as pb;
use crate::server::service::ProviderService;

/// The protocol definition of `f`.
pub fn definition(f: &dyn Function) -> pb::Function {
    let param = |p: crate::framework::function::Param| pb::function::Parameter {
        name: p.name.to_string(),
        r#type: p.ty.to_json().to_string().into_bytes(),
        allow_null_value: false,
        allow_unknown_values: false,
        description: p.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
    };
    pb::Function {
        parameters: f.params().into_iter().map(param).collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return {
            r#type: f.returns().to_json().to_string().into_bytes(),
        }),
        summary: f.summary().to_string(),
        description: f.description().to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

/// Every function's definition by name.
pub fn definitions<P: Provider>(
    s: &ProviderService<P>,
) -> std::collections::HashMap<String, pb::Function> {
    s.provider
        .functions()
        .iter()
        .map(|f| (f.name().to_string(), definition(f.as_ref())))
        .collect()
}

fn error(text: impl Into<String>, argument: Option<usize>) -> pb::call_function::Response {
    pb::call_function::Response {
        result: None,
        error: Some(pb::FunctionError {
            text: text.into(),
            function_argument: argument.and_then(|a| i64::try_from(a).ok()),
        }),
    }
}

/// Calls the function `r.name` with `r.arguments`.
pub fn call<P: Provider>(
    s: &ProviderService<P>,
    r: pb::call_function::Request,
) -> pb::call_function::Response {
    let Some(f) = s.provider.functions().iter().find(|f| f.name() == r.name) else {
        return error(
            format!("The apim provider has no function named {:?}.", r.name),
            None,
        );
    };
    let params = f.params();
    if r.arguments.len() != params.len() {
        return error(
            format!(
                "{} takes {} arguments, not {}.",
                f.name(),
                params.len(),
                r.arguments.len()
            ),
            None,
        );
    }
    let mut args = Vec::with_capacity(params.len());
    for (i, (dv, p)) in r.arguments.iter().zip(&params).enumerate() {
        match codec::from_msgpack(&dv.msgpack, &p.ty) {
            Ok(v) => args.push(v),
            Err(e) => return error(format!("{}: {e}", p.name), Some(i)),
        }
    }
    match f.call(&args) {
        Ok(v) => match codec::to_msgpack(&v, &f.returns()) {
            Ok(bytes) => pb::call_function::Response {
                result: Some(pb::DynamicValue {
                    msgpack: bytes,
                    json: Vec::new(),
                }),
                error: None,
            },
            Err(e) => error(format!("{}: cannot encode the result: {e}", f.name()), None),
        },
        Err(e) => error(e.text, e.argument),
    }
}
