//! List resources (`terraform query`, Terraform 1.14+): a type finds the objects that exist
//! remotely, whether or not a configuration manages them, so that they can be imported.
//!
//! A list resource belongs to a managed resource type and shares its identity. Its own
//! configuration (the `config` block of a `list` block) is declared once, as a schema and a
//! model, like any other type's. The type only says which objects there are: each as the
//! import ID its resource takes and a name for people. The state of each object, and so its
//! identity and the resource object Terraform asks for, is made here by the resource's own
//! import and read, the very calls `terraform apply` makes when it imports the object: what a
//! query shows, and the configuration generated from it, is what the import will find.

use async_trait::async_trait;

use super::diag::Diags;
use super::lifecycle::stopped;
use super::model::Model;
use super::resource::{Ctx, PlanOf, Resource};
use super::schema::Schema;
use super::validate::validate as schema_validate;
use super::value::Value;

/// One object a list resource found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The import ID of the object, as the resource's `import` takes it.
    pub import_id: String,
    /// What `terraform query` shows for it.
    pub display_name: String,
}

/// A list resource type: the objects of one managed resource type.
#[async_trait]
pub trait ListResource<D: Send + Sync + 'static>: Send + Sync + 'static {
    /// The managed resource type whose objects are listed.
    type Resource: Resource<D>;
    /// The `config` block of a `list` block as a struct.
    type Config: Model + 'static;
    /// The managed resource type (for its name, identity, import and read).
    fn resource(&self) -> &Self::Resource;
    /// The schema of the `config` block, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Config>, _diags: &mut Diags) {}
    /// The objects there are, at most `limit` of them, in a stable order. An object that
    /// could not be looked at is a warning in `diags` that names it; the others are listed.
    async fn list(
        &self,
        ctx: &Ctx<D>,
        config: Self::Config,
        limit: usize,
        diags: &mut Diags,
    ) -> Vec<Listed>;
}

/// One object as the protocol layer returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedValue {
    /// Its identity (the resource's identity schema).
    pub identity: Value,
    /// What `terraform query` shows.
    pub display_name: String,
    /// Its state, when Terraform asked for the resource objects.
    pub state: Option<Value>,
    /// What concerns this object only (warnings).
    pub diags: Diags,
}

/// A list resource type as the protocol layer sees it.
#[async_trait]
pub trait ListType<D: Send + Sync>: Send + Sync {
    /// Type name: the managed resource type's.
    fn type_name(&self) -> &'static str;
    /// The schema of the `config` block.
    fn schema(&self) -> &Schema;
    /// The `config` model's fields (for the test that holds models to schemas).
    fn model_shape(&self) -> Vec<super::model::FieldShape>;
    /// ValidateListResourceConfig.
    fn validate(&self, config: &Value) -> Diags;
    /// ListResource: at most `limit` objects, each with its state when `include_state`.
    async fn list(
        &self,
        ctx: &Ctx<D>,
        config: &Value,
        limit: usize,
        include_state: bool,
        d: &mut Diags,
    ) -> Vec<ListedValue>;
}

/// A configuration that may be null (no `config` block), as the schema's empty object.
fn or_empty(schema: &Schema, config: &Value) -> Value {
    if config.is_null() {
        schema.block.empty_value()
    } else {
        config.clone()
    }
}

#[async_trait]
impl<D: Send + Sync + 'static, L: ListResource<D>> ListType<D> for L {
    fn type_name(&self) -> &'static str {
        self.resource().type_name()
    }
    fn schema(&self) -> &Schema {
        ListResource::schema(self)
    }
    fn model_shape(&self) -> Vec<super::model::FieldShape> {
        L::Config::shape()
    }

    fn validate(&self, config: &Value) -> Diags {
        let schema = ListResource::schema(self);
        let config = or_empty(schema, config);
        let mut d = schema_validate(schema, &config);
        if let Some(m) = PlanOf::<L::Config>::decode(&config, &mut d) {
            ListResource::validate(self, &m, &mut d);
        }
        d
    }

    async fn list(
        &self,
        ctx: &Ctx<D>,
        config: &Value,
        limit: usize,
        include_state: bool,
        d: &mut Diags,
    ) -> Vec<ListedValue> {
        let config = or_empty(ListResource::schema(self), config);
        d.extend(ListType::validate(self, &config));
        if d.has_errors() || limit == 0 {
            return Vec::new();
        }
        let Some(config) = L::Config::decode(&config, d) else {
            return Vec::new();
        };
        let work = async {
            let mut out: Vec<ListedValue> = Vec::new();
            let mut results = 0;
            for found in ListResource::list(self, ctx, config, limit, d).await {
                if results >= limit {
                    break;
                }
                if let Some(v) = state_of(self, ctx, found, include_state).await {
                    // Only objects with an identity are results; warnings are not.
                    results += usize::from(!v.identity.is_null());
                    out.push(v);
                }
            }
            out
        };
        match ctx.cancel.run(work).await {
            Ok(out) => out,
            Err(_) => {
                stopped(d, "listing objects");
                Vec::new()
            }
        }
    }
}

/// The listed object `found` with its state as `terraform apply` imports it (import, then
/// read), and its identity from that state. When it cannot be imported (gone since it was
/// listed, or unreadable) it comes without identity and with a warning that says why, so
/// that one object never hides the others; `None` for a type without identity (which
/// `check_models` refuses).
async fn state_of<D: Send + Sync + 'static, L: ListResource<D>>(
    list: &L,
    ctx: &Ctx<D>,
    found: Listed,
    include: bool,
) -> Option<ListedValue> {
    let res = list.resource();
    let identity_schema = res.identity()?;
    let mut own = Diags::new();
    let imported = res.import(ctx, &found.import_id, &mut own).await;
    let state = match imported {
        Some(m) if !own.has_errors() => match include {
            true => res.read(ctx, m, &mut own).await,
            false => Some(m),
        },
        _ => None,
    };
    let state = state.filter(|_| !own.has_errors()).map(|m| {
        let mut v = m.encode();
        super::plan::null_write_only(&res.schema().block, &mut v);
        v
    });
    let identity = state.as_ref().and_then(|s| identity_schema.of_state(s));
    let (Some(state), Some(identity)) = (state, identity) else {
        let why = own
            .0
            .iter()
            .map(|x| format!("{}: {}", x.summary, x.detail))
            .collect::<Vec<_>>()
            .join(" ");
        let mut w = Diags::new();
        w.warning(
            format!("{} {} left out", res.type_name(), found.display_name),
            format!(
                "It was found, but could not be read as an import would read it (import ID {:?}). {why}",
                found.import_id
            ),
        );
        return Some(ListedValue {
            identity: Value::Null,
            display_name: found.display_name,
            state: None,
            diags: w,
        });
    };
    Some(ListedValue {
        identity,
        display_name: found.display_name,
        state: include.then_some(state),
        diags: own,
    })
}
