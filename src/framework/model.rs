//! Typed models: a Rust struct per resource, data source and ephemeral resource, decoded from
//! and encoded to [`Value`] against the schema, with a diagnostic naming the attribute for
//! whatever does not fit.
//!
//! A model is declared once with [`model!`](crate::model); the macro derives its decoding,
//! its encoding, the list of its attribute names (checked against the schema by a test, so a
//! misspelt field cannot silently read null or be dropped), and its *plan* twin: the same
//! fields, each wrapped in [`Known`], for configuration and planned values in which anything
//! may still be unknown.
//!
//! Field types say what a value may be:
//!
//! | field type | null | unknown |
//! |---|---|---|
//! | `String`, `i64`, `bool`, a model | an error | an error |
//! | `Option<T>` | `None` | an error (unless `T` holds unknowns) |
//! | `Vec<T>` | empty | an error |
//! | `BTreeMap<String, T>` | an error | an error |
//! | `Known<T>` | as `T`; unknown when `T` takes no null | `Known::Unknown` |
//!
//! So a computed attribute is `Known<T>` (unknown in a plan, known once applied; null in a
//! configuration, which leaves it to the provider, reads as not known yet), an optional
//! one is `Option<T>` (an optional list too: null and empty are different values to
//! Terraform, and a round trip must keep which it was), an optional-and-computed one is
//! `Known<Option<T>>`, and a repeated block, which Terraform never sends as null, `Vec<M>`.

use std::collections::BTreeMap;

use super::diag::{AttrPath, Diags};
use super::value::{Number, Value};

/// How a field decodes from and encodes to a [`Value`].
pub trait Field: Sized {
    /// The field's type at plan time, when any value may be unknown.
    type Plan: Field;
    /// Decodes `v`; on failure reports a diagnostic at `path` and returns `None`.
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self>;
    /// Encodes the field.
    fn to_value(&self) -> Value;
    /// True when this type represents unknown values itself (`Known<T>`, or a container of
    /// them), so a partly unknown value decodes into it.
    fn holds_unknown() -> bool {
        false
    }
    /// True when null is one of this type's values (`Option<T>`).
    fn takes_null() -> bool {
        false
    }
}

/// A value that may not be known until apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Known<T> {
    /// Known after apply.
    #[default]
    Unknown,
    /// Known now.
    Value(T),
}

impl<T> Known<T> {
    /// The value, when known.
    pub fn get(&self) -> Option<&T> {
        match self {
            Known::Value(v) => Some(v),
            Known::Unknown => None,
        }
    }
    /// The value, when known.
    pub fn into_option(self) -> Option<T> {
        match self {
            Known::Value(v) => Some(v),
            Known::Unknown => None,
        }
    }
    /// True when unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Known::Unknown)
    }
}

impl<T> From<T> for Known<T> {
    fn from(v: T) -> Self {
        Known::Value(v)
    }
}

impl Known<String> {
    /// The string, when known.
    pub fn as_deref(&self) -> Option<&str> {
        self.get().map(String::as_str)
    }
}

impl<T> Known<Option<T>> {
    /// The value, when known and not null.
    pub fn value(&self) -> Option<&T> {
        self.get().and_then(Option::as_ref)
    }
    /// True when known to be null.
    pub fn is_null(&self) -> bool {
        matches!(self, Known::Value(None))
    }
}

impl Known<Option<String>> {
    /// The string, when known and not null.
    pub fn as_str(&self) -> Option<&str> {
        self.value().map(String::as_str)
    }
}

fn mismatch(path: &AttrPath, d: &mut Diags, expected: &str, v: &Value) {
    let (summary, got) = match v {
        Value::Null => ("Missing value", "null".to_string()),
        Value::Unknown { .. } => (
            "Value not yet known",
            "a value that is not known until apply".to_string(),
        ),
        other => ("Unexpected value", format!("{other:?}")),
    };
    d.attr_error(
        path.clone(),
        summary,
        format!("The provider expected {expected} for `{path}` but received {got}. This is a bug in the provider; please report it with the configuration that caused it."),
    );
}

impl Field for String {
    type Plan = Known<String>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                mismatch(path, d, "a string", other);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
}

impl Field for i64 {
    type Plan = Known<i64>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v.as_i64() {
            Some(n) => Some(n),
            None => {
                mismatch(path, d, "a whole number", v);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::int(*self)
    }
}

impl Field for Number {
    type Plan = Known<Number>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            Value::Number(n) => Some(n.clone()),
            other => {
                mismatch(path, d, "a number", other);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::Number(self.clone())
    }
}

impl Field for bool {
    type Plan = Known<bool>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                mismatch(path, d, "a bool", other);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl<T: Field> Field for Option<T> {
    type Plan = Known<Option<T>>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v, path, d).map(Some),
        }
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Field::to_value)
    }
    fn holds_unknown() -> bool {
        T::holds_unknown()
    }
    fn takes_null() -> bool {
        true
    }
}

impl<T: Field> Field for Vec<T> {
    type Plan = Known<Vec<T>>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            // A repeated block Terraform left out; Terraform itself sends `[]`.
            Value::Null => Some(Vec::new()),
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match T::from_value(item, &path.index(i), d) {
                        Some(x) => out.push(x),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            other => {
                mismatch(path, d, "a list", other);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::List(self.iter().map(Field::to_value).collect())
    }
    fn holds_unknown() -> bool {
        T::holds_unknown()
    }
}

impl<T: Field> Field for BTreeMap<String, T> {
    type Plan = Known<BTreeMap<String, T>>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        match v {
            Value::Map(m) => {
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (k, item) in m {
                    match T::from_value(item, &path.key(k), d) {
                        Some(x) => {
                            out.insert(k.clone(), x);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            other => {
                mismatch(path, d, "a map", other);
                None
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.clone(), v.to_value()))
                .collect(),
        )
    }
    fn holds_unknown() -> bool {
        T::holds_unknown()
    }
}

impl<T: Field> Field for Known<T> {
    type Plan = Known<T>;
    fn from_value(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self> {
        // Null where `T` takes none: a computed attribute that a configuration leaves to the
        // provider. Its value is what the provider will compute: not known yet.
        if v.is_unknown()
            || (v.is_null() && !T::takes_null())
            || (!T::holds_unknown() && !v.is_wholly_known())
        {
            return Some(Known::Unknown);
        }
        T::from_value(v, path, d).map(Known::Value)
    }
    fn to_value(&self) -> Value {
        match self {
            Known::Unknown => Value::UNKNOWN,
            Known::Value(v) => v.to_value(),
        }
    }
    fn holds_unknown() -> bool {
        true
    }
    fn takes_null() -> bool {
        T::takes_null()
    }
}

/// A Terraform object (a resource's whole value, or a nested block's) as a struct.
pub trait Model: Sized + Send + Sync {
    /// The same object at plan time, every field possibly unknown.
    type Plan: Model;
    /// The attribute and block names, in declaration order.
    const FIELDS: &'static [&'static str];
    /// Decodes an object at `path`.
    fn decode_at(v: &Value, path: &AttrPath, d: &mut Diags) -> Option<Self>;
    /// Encodes the object.
    fn encode(&self) -> Value;
    /// Each field's name and what its type takes (null, unknown), in declaration order.
    fn shape() -> Vec<FieldShape>;
    /// Decodes a top-level object.
    fn decode(v: &Value, d: &mut Diags) -> Option<Self> {
        Self::decode_at(v, &AttrPath::default(), d)
    }
}

/// The model a plan twin stands for, when everything the model needs known is known: its
/// `Known<T>` fields may still be unknown, every other field must have its value (`None`
/// otherwise). Plan-time checks use it to run whenever their inputs are known.
pub fn known<M: Model>(plan: &M::Plan) -> Option<M> {
    M::decode(&plan.encode(), &mut Diags::new())
}

/// What a model's field can hold, for the test that holds models to their schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldShape {
    /// The attribute or block name.
    pub name: &'static str,
    /// Null is one of its values (`Option<T>`).
    pub takes_null: bool,
    /// It holds unknown values (`Known<T>`).
    pub holds_unknown: bool,
}

/// The attribute `name` of object `v` (null when absent). Used by [`model!`](crate::model).
#[doc(hidden)]
pub fn object_field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name)
}

/// The path of a field; the root path when `path` is empty. Used by [`model!`](crate::model).
#[doc(hidden)]
pub fn field_path(path: &AttrPath, name: &str) -> AttrPath {
    path.attr(name)
}

/// Reports that an object was expected. Used by [`model!`](crate::model).
#[doc(hidden)]
pub fn not_an_object(v: &Value, path: &AttrPath, d: &mut Diags) {
    mismatch(path, d, "an object", v);
}

/// Declares a model struct and its plan twin, and derives [`Model`] and [`Field`] for both.
///
/// ```ignore
/// model! {
///     /// `apim_vault_policy`.
///     pub struct PolicyModel, plan PolicyPlan {
///         /// The policy name.
///         pub id: Known<String>,
///         pub name: String,
///         pub policy: Option<String>,
///     }
/// }
/// ```
///
/// Field names are the attribute names (a raw identifier such as `r#type` names `type`).
#[macro_export]
macro_rules! model {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, plan $plan:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        #[doc = concat!("[`", stringify!($name), "`] at plan time: any field may be unknown.")]
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $plan {
            $( $(#[$fmeta])* $fvis $field: <$ty as $crate::framework::model::Field>::Plan, )*
        }

        $crate::model!(@impl $name, $plan, $( $field : $ty ),*);
        $crate::model!(@impl $plan, $plan, $( $field : <$ty as $crate::framework::model::Field>::Plan ),*);
    };
    (@impl $name:ident, $plan:ident, $( $field:ident : $ty:ty ),*) => {
        impl $crate::framework::model::Model for $name {
            type Plan = $plan;
            const FIELDS: &'static [&'static str] = &[ $( $crate::model!(@name $field) ),* ];
            fn decode_at(
                v: &$crate::framework::value::Value,
                path: &$crate::framework::diag::AttrPath,
                d: &mut $crate::framework::diag::Diags,
            ) -> Option<Self> {
                if !matches!(v, $crate::framework::value::Value::Map(_)) {
                    $crate::framework::model::not_an_object(v, path, d);
                    return None;
                }
                $(
                    let $field = <$ty as $crate::framework::model::Field>::from_value(
                        $crate::framework::model::object_field(v, $crate::model!(@name $field)),
                        &$crate::framework::model::field_path(path, $crate::model!(@name $field)),
                        d,
                    );
                )*
                Some($name { $( $field: $field?, )* })
            }
            fn shape() -> Vec<$crate::framework::model::FieldShape> {
                vec![ $( $crate::framework::model::FieldShape {
                    name: $crate::model!(@name $field),
                    takes_null: <$ty as $crate::framework::model::Field>::takes_null(),
                    holds_unknown: <$ty as $crate::framework::model::Field>::holds_unknown(),
                } ),* ]
            }
            fn encode(&self) -> $crate::framework::value::Value {
                $crate::framework::value::Value::object([
                    $( ($crate::model!(@name $field), $crate::framework::model::Field::to_value(&self.$field)), )*
                ])
            }
        }

        impl $crate::framework::model::Field for $name {
            type Plan = $crate::framework::model::Known<$name>;
            fn from_value(
                v: &$crate::framework::value::Value,
                path: &$crate::framework::diag::AttrPath,
                d: &mut $crate::framework::diag::Diags,
            ) -> Option<Self> {
                <$name as $crate::framework::model::Model>::decode_at(v, path, d)
            }
            fn to_value(&self) -> $crate::framework::value::Value {
                <$name as $crate::framework::model::Model>::encode(self)
            }
            fn holds_unknown() -> bool {
                false $( || <$ty as $crate::framework::model::Field>::holds_unknown() )*
            }
        }
    };
    (@name $field:ident) => {
        $crate::framework::model::strip_raw(stringify!($field))
    };
}

/// `type` for `r#type`. Used by [`model!`](crate::model).
#[doc(hidden)]
pub const fn strip_raw(name: &'static str) -> &'static str {
    match name.as_bytes() {
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(s) => s,
            Err(_) => name,
        },
        _ => name,
    }
}

/// The names a schema block declares (attributes, then nested blocks), for the test that
/// holds every model to its schema.
pub fn schema_names(block: &super::schema::Block) -> Vec<&'static str> {
    block
        .attributes
        .iter()
        .map(|a| a.name)
        .chain(block.blocks.iter().map(|b| b.name))
        .collect()
}

/// Checks a model against its schema block: the same names, and a field type for each
/// attribute that can hold what Terraform sends for it (an optional attribute may be null,
/// so its field must take null; a computed one may be unknown or left null). The error
/// names each difference.
pub fn check_fields(
    type_name: &str,
    shape: &[FieldShape],
    block: &super::schema::Block,
) -> Result<(), String> {
    use super::schema::Presence;
    let mut problems = Vec::new();
    for name in schema_names(block) {
        if !shape.iter().any(|f| f.name == name) {
            problems.push(format!("no field for `{name}`"));
        }
    }
    for f in shape {
        let Some(attr) = block.attribute(f.name) else {
            if block.nested(f.name).is_none() {
                problems.push(format!("field `{}` is not in the schema", f.name));
            }
            continue;
        };
        let fits = match attr.presence {
            Presence::Required => true,
            Presence::Optional => f.takes_null,
            Presence::Computed | Presence::OptionalComputed => f.takes_null || f.holds_unknown,
        };
        if !fits {
            problems.push(format!(
                "field `{}` cannot hold what Terraform sends for a {:?} attribute (use Option<T>, or Known<T> for a computed one)",
                f.name, attr.presence
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{type_name}: {}", problems.join("; ")))
    }
}

/// Undoes what a model round trip lost where the model's user changed nothing: wherever
/// `new` equals `baseline` (the round trip of `original` before any change), `original` is
/// put back. A plan twin holds a partly unknown value as wholly unknown, and an unknown
/// without its refinements; values the type did not touch must reach Terraform as they came.
pub fn restore_untouched(new: &mut Value, baseline: &Value, original: &Value) {
    if new == baseline {
        *new = original.clone();
        return;
    }
    if let (Value::Map(n), Value::Map(b), Value::Map(o)) = (new, baseline, original) {
        for (k, nv) in n.iter_mut() {
            if let (Some(bv), Some(ov)) = (b.get(k), o.get(k)) {
                restore_untouched(nv, bv, ov);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::value::Value;

    crate::model! {
        /// A nested block for the tests.
        pub struct Rule, plan RulePlan {
            pub path: String,
            pub capabilities: Vec<String>,
        }
    }

    crate::model! {
        /// A resource for the tests.
        pub struct Thing, plan ThingPlan {
            pub id: Known<String>,
            pub name: String,
            pub r#type: Option<String>,
            pub ttl: Known<Option<i64>>,
            pub rule: Vec<Rule>,
        }
    }

    fn thing(id: Value, ttl: Value) -> Value {
        Value::object([
            ("id", id),
            ("name", Value::from("n")),
            ("type", Value::Null),
            ("ttl", ttl),
            (
                "rule",
                Value::List(vec![Value::object([
                    ("path", Value::from("secret/*")),
                    ("capabilities", Value::strings(["read"])),
                ])]),
            ),
        ])
    }

    #[test]
    fn decodes_and_encodes_a_known_object() {
        let v = thing(Value::from("x"), Value::int(5));
        let mut d = Diags::new();
        let t = Thing::decode(&v, &mut d).expect("decodes");
        assert!(d.0.is_empty());
        assert_eq!(t.id.as_deref(), Some("x"));
        assert_eq!(t.ttl.value(), Some(&5));
        assert_eq!(t.r#type, None);
        assert_eq!(t.rule[0].capabilities, vec!["read".to_string()]);
        assert_eq!(t.encode(), v);
        assert_eq!(Thing::FIELDS, &["id", "name", "type", "ttl", "rule"]);
    }

    #[test]
    fn computed_fields_hold_unknowns_and_encode_them_back() {
        let v = thing(Value::UNKNOWN, Value::UNKNOWN);
        let mut d = Diags::new();
        let t = Thing::decode(&v, &mut d).expect("decodes");
        assert!(t.id.is_unknown() && t.ttl.is_unknown());
        assert_eq!(t.encode(), v);
    }

    #[test]
    fn an_unknown_where_the_model_needs_a_value_is_a_diagnostic_with_its_path() {
        let mut v = thing(Value::from("x"), Value::Null);
        if let Value::Map(m) = &mut v {
            m.insert(
                "rule".into(),
                Value::List(vec![Value::object([
                    ("path", Value::UNKNOWN),
                    ("capabilities", Value::strings(["read"])),
                ])]),
            );
        }
        let mut d = Diags::new();
        assert!(Thing::decode(&v, &mut d).is_none());
        assert_eq!(d.0.len(), 1);
        assert_eq!(
            d.0[0].attribute.as_ref().map(ToString::to_string),
            Some("rule[0].path".to_string())
        );
    }

    #[test]
    fn the_plan_twin_takes_anything_unknown() {
        let mut v = thing(Value::UNKNOWN, Value::UNKNOWN);
        v.set("name", Value::UNKNOWN);
        v.set(
            "rule",
            Value::List(vec![Value::object([
                ("path", Value::UNKNOWN),
                ("capabilities", Value::strings(["read"])),
            ])]),
        );
        let mut d = Diags::new();
        let p = ThingPlan::decode(&v, &mut d).expect("decodes");
        assert!(d.0.is_empty());
        assert!(p.name.is_unknown() && p.rule.is_unknown());
        assert_eq!(p.r#type, Known::Value(None));
    }

    #[test]
    fn a_model_that_does_not_fit_its_schema_is_named() {
        use crate::framework::schema::{Attribute, Block, NestedBlock};
        let rule = Block::new("r")
            .attr(Attribute::string("path").required())
            .attr(
                Attribute::of(
                    "capabilities",
                    crate::framework::Type::list_of(crate::framework::Type::String),
                )
                .required(),
            );
        let fits = Block::new("t")
            .attr(Attribute::string("id").computed())
            .attr(Attribute::string("name").required())
            .attr(Attribute::string("type"))
            .attr(Attribute::number("ttl").optional_computed())
            .block(NestedBlock::list("rule", rule.clone()));
        assert_eq!(check_fields("t", &Thing::shape(), &fits), Ok(()));
        let misnamed = Block::new("t")
            .attr(Attribute::string("id").computed())
            .attr(Attribute::string("nmae").required())
            .attr(Attribute::string("type"))
            .attr(Attribute::number("ttl").optional_computed())
            .block(NestedBlock::list("rule", rule.clone()));
        let e = check_fields("t", &Thing::shape(), &misnamed).unwrap_err();
        assert!(
            e.contains("no field for `nmae`") && e.contains("field `name` is not in the schema"),
            "{e}"
        );
        let optional_name = Block::new("t")
            .attr(Attribute::string("id").computed())
            .attr(Attribute::string("name"))
            .attr(Attribute::string("type"))
            .attr(Attribute::number("ttl").optional_computed())
            .block(NestedBlock::list("rule", rule));
        let e = check_fields("t", &Thing::shape(), &optional_name).unwrap_err();
        assert!(e.contains("field `name` cannot hold"), "{e}");
    }

    #[test]
    fn what_the_type_did_not_touch_reaches_terraform_as_it_came() {
        let refined = Value::Unknown {
            refinement: vec![1, 2, 3],
        };
        let partly_unknown_rules = Value::List(vec![Value::object([
            ("path", Value::UNKNOWN),
            ("capabilities", Value::strings(["read"])),
        ])]);
        let mut original = thing(refined.clone(), Value::UNKNOWN);
        original.set("rule", partly_unknown_rules.clone());
        let mut plan = ThingPlan::decode(&original, &mut Diags::new()).unwrap();
        let baseline = plan.encode();
        assert!(baseline.get("rule").is_unknown(), "the twin holds it whole");
        plan.ttl = Known::Value(Some(7));
        let mut new = plan.encode();
        restore_untouched(&mut new, &baseline, &original);
        assert_eq!(new.get("id"), &refined);
        assert_eq!(new.get("rule"), &partly_unknown_rules);
        assert_eq!(new.get("ttl"), &Value::int(7));
    }
}
