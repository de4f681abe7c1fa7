//! Schemas, declared once per type as data. The same declaration drives validation
//! (`validate.rs`), planning (`plan.rs`), the GetProviderSchema answer (`server::schema`) and
//! the generated documentation (`docs.rs`).

use super::diag::{AttrPath, Diags};
use super::value::{Type, Value};

/// A check on one known, non-null value. Declared as data so that docs can describe it.
#[derive(Debug, Clone)]
pub enum Validator {
    /// The string must be one of these.
    OneOf(&'static [&'static str]),
    /// Every element of a list or set of strings must be one of these.
    EachOneOf(&'static [&'static str]),
    /// Any other check; reports problems at the path it is given.
    Check(fn(&Value, &AttrPath, &mut Diags)),
}

impl Validator {
    /// Runs the check on a known, non-null value.
    pub fn run(&self, v: &Value, p: &AttrPath, d: &mut Diags) {
        match self {
            Validator::OneOf(allowed) => {
                if let Some(s) = v.as_str() {
                    if !allowed.contains(&s) {
                        d.attr_error(
                            p.clone(),
                            "Invalid value",
                            validators::one_of_detail(p, s, allowed),
                        );
                    }
                }
            }
            Validator::EachOneOf(allowed) => {
                for (i, e) in v.as_list().iter().enumerate() {
                    if let Some(s) = e.as_str() {
                        if !allowed.contains(&s) {
                            // Set elements have no index a diagnostic could point at.
                            let _ = i;
                            d.attr_error(
                                p.clone(),
                                "Invalid value",
                                validators::one_of_detail(p, s, allowed),
                            );
                        }
                    }
                }
            }
            Validator::Check(f) => f(v, p, d),
        }
    }
}

/// Whether an attribute is set by the user, by the provider, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be set in configuration.
    Required,
    /// May be set in configuration.
    Optional,
    /// Set by the provider only.
    Computed,
    /// May be set; the provider fills it in when not.
    OptionalComputed,
}

/// One attribute of a block.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Name in configuration.
    pub name: &'static str,
    /// Value type.
    pub ty: Type,
    /// Markdown description (docs and `terraform providers schema`).
    pub description: &'static str,
    /// Required / optional / computed.
    pub presence: Presence,
    /// Hidden in plan output and logs.
    pub sensitive: bool,
    /// Only in configuration, never in plan or state (Terraform >= 1.11).
    pub write_only: bool,
    /// Deprecation message, when deprecated.
    pub deprecated: Option<&'static str>,
    /// Checks on known values.
    pub validators: Vec<Validator>,
    /// Value planned when the configuration leaves it null (makes the attribute computed).
    pub default: Option<Value>,
    /// A change forces replacement.
    pub requires_replace: bool,
    /// A computed value keeps its prior state value on update instead of becoming unknown.
    pub use_state_for_unknown: bool,
    /// Environment variables read when the attribute is null (provider configuration; docs).
    pub env: &'static [&'static str],
}

impl Attribute {
    fn new(name: &'static str, ty: Type) -> Attribute {
        Attribute {
            name,
            ty,
            description: "",
            presence: Presence::Optional,
            sensitive: false,
            write_only: false,
            deprecated: None,
            validators: Vec::new(),
            default: None,
            requires_replace: false,
            use_state_for_unknown: false,
            env: &[],
        }
    }
    /// A string attribute (optional until said otherwise).
    pub fn string(name: &'static str) -> Attribute {
        Attribute::new(name, Type::String)
    }
    /// A number attribute.
    pub fn number(name: &'static str) -> Attribute {
        Attribute::new(name, Type::Number)
    }
    /// A bool attribute.
    pub fn bool(name: &'static str) -> Attribute {
        Attribute::new(name, Type::Bool)
    }
    /// An attribute of any type.
    pub fn of(name: &'static str, ty: Type) -> Attribute {
        Attribute::new(name, ty)
    }
    /// Must be set.
    pub fn required(mut self) -> Self {
        self.presence = Presence::Required;
        self
    }
    /// Set by the provider only.
    pub fn computed(mut self) -> Self {
        self.presence = Presence::Computed;
        self
    }
    /// May be set; filled in by the provider when not.
    pub fn optional_computed(mut self) -> Self {
        self.presence = Presence::OptionalComputed;
        self
    }
    /// Markdown description.
    pub fn describe(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }
    /// Hidden in plans and logs.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Configuration-only.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    /// Deprecated with a message.
    pub fn deprecated(mut self, msg: &'static str) -> Self {
        self.deprecated = Some(msg);
        self
    }
    /// Adds a check.
    pub fn validate(mut self, f: fn(&Value, &AttrPath, &mut Diags)) -> Self {
        self.validators.push(Validator::Check(f));
        self
    }
    /// The string must be one of `allowed`.
    pub fn one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.validators.push(Validator::OneOf(allowed));
        self
    }
    /// Every element must be one of `allowed`.
    pub fn each_one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.validators.push(Validator::EachOneOf(allowed));
        self
    }
    /// Default value; the attribute becomes optional+computed.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self.presence = Presence::OptionalComputed;
        self
    }
    /// A change forces replacement.
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    /// Keep the prior value on update when unknown.
    pub fn use_state_for_unknown(mut self) -> Self {
        self.use_state_for_unknown = true;
        self
    }
    /// Environment fallbacks (documented, and used by the provider configuration).
    pub fn env(mut self, vars: &'static [&'static str]) -> Self {
        self.env = vars;
        self
    }
    /// True when the provider may set the value.
    pub fn is_computed(&self) -> bool {
        matches!(
            self.presence,
            Presence::Computed | Presence::OptionalComputed
        )
    }
}

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent.
    Single,
    /// An ordered list.
    List,
    /// A set.
    Set,
}

/// A nested block type.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Block type name.
    pub name: &'static str,
    /// Repetition.
    pub nesting: Nesting,
    /// Contents.
    pub block: Block,
    /// Minimum count (0 = none).
    pub min_items: i64,
    /// Maximum count (0 = unlimited).
    pub max_items: i64,
    /// A change of any content forces replacement.
    pub requires_replace: bool,
}

impl NestedBlock {
    /// A block that may appear once.
    pub fn single(name: &'static str, block: Block) -> NestedBlock {
        NestedBlock {
            name,
            nesting: Nesting::Single,
            block,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    /// A repeated, ordered block.
    pub fn list(name: &'static str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::List,
            ..NestedBlock::single(name, block)
        }
    }
    /// A repeated, unordered block.
    pub fn set(name: &'static str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::Set,
            ..NestedBlock::single(name, block)
        }
    }
    /// Count limits.
    pub fn items(mut self, min: i64, max: i64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }
    /// A change forces replacement.
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    /// The type of this block's value in an object.
    pub fn value_type(&self) -> Type {
        let t = self.block.object_type();
        match self.nesting {
            Nesting::Single => t,
            Nesting::List => Type::list_of(t),
            Nesting::Set => Type::set_of(t),
        }
    }
}

/// A rule over several attributes of one block.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// Exactly one of these attributes/blocks must be set.
    ExactlyOneOf(&'static [&'static str]),
    /// At most one of these may be set.
    ConflictsWith(&'static [&'static str]),
    /// When the first is set, all the others must be set too.
    RequiredWith(&'static str, &'static [&'static str]),
}

/// A block: attributes, nested blocks and cross-attribute constraints.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Attributes in declaration order.
    pub attributes: Vec<Attribute>,
    /// Nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: &'static str,
    /// Cross-attribute rules.
    pub constraints: Vec<Constraint>,
    /// Deprecation message.
    pub deprecated: Option<&'static str>,
}

impl Block {
    /// An empty block with a description.
    pub fn new(description: &'static str) -> Block {
        Block {
            description,
            ..Block::default()
        }
    }
    /// Adds an attribute.
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    /// Adds a nested block.
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    /// Adds a constraint.
    pub fn constraint(mut self, c: Constraint) -> Self {
        self.constraints.push(c);
        self
    }
    /// The object type of values of this block.
    pub fn object_type(&self) -> Type {
        let mut f = std::collections::BTreeMap::new();
        for a in &self.attributes {
            f.insert(a.name.to_string(), a.ty.clone());
        }
        for b in &self.blocks {
            f.insert(b.name.to_string(), b.value_type());
        }
        Type::Object(f)
    }
    /// Looks up an attribute.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// Looks up a nested block.
    pub fn nested(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
    /// An empty value of this block: null attributes, empty repeated blocks, null singles.
    pub fn empty_value(&self) -> Value {
        let mut m = std::collections::BTreeMap::new();
        for a in &self.attributes {
            m.insert(a.name.to_string(), Value::Null);
        }
        for b in &self.blocks {
            let v = match b.nesting {
                Nesting::Single => Value::Null,
                Nesting::List | Nesting::Set => Value::List(Vec::new()),
            };
            m.insert(b.name.to_string(), v);
        }
        Value::Map(m)
    }
}

/// A versioned schema of a resource, data source, ephemeral resource or the provider.
#[derive(Debug, Clone)]
pub struct Schema {
    /// State version (for UpgradeResourceState).
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// Version 0 schema.
    pub fn new(block: Block) -> Schema {
        Schema { version: 0, block }
    }
}

/// Common validators.
pub mod validators {
    use super::*;

    /// A string attribute judged by `check`, which answers what is wrong with it (the
    /// diagnostic's detail; `summary` is its title). Null and unknown values pass: a value
    /// is judged once it is known.
    pub fn string(
        v: &Value,
        p: &AttrPath,
        d: &mut Diags,
        summary: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) {
        if let Some(s) = v.as_str() {
            if let Err(detail) = check(s) {
                d.attr_error(p.clone(), summary, detail);
            }
        }
    }

    /// A string that is not empty.
    pub fn not_empty(v: &Value, p: &AttrPath, d: &mut Diags) {
        if v.as_str().is_some_and(|s| s.trim().is_empty()) {
            d.attr_error(
                p.clone(),
                "Invalid value",
                format!("`{p}` must not be empty."),
            );
        }
    }

    /// A whole number that is zero or more.
    pub fn non_negative_int(v: &Value, p: &AttrPath, d: &mut Diags) {
        match v.as_i64() {
            Some(n) if n >= 0 => {}
            _ => d.attr_error(
                p.clone(),
                "Invalid value",
                format!("`{p}` must be a whole number of seconds, 0 or more."),
            ),
        }
    }

    /// Builds the detail of a "one of" error.
    pub fn one_of_detail(p: &AttrPath, got: &str, allowed: &[&str]) -> String {
        format!(
            "`{p}` is {got:?}, which is not one of: {}.",
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
