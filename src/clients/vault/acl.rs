//! Vault ACL policy documents: the rule model, a canonical HCL rendering, a parser for
//! what Vault stores, and semantic comparison (formatting, comments and rule order do not
//! matter; capabilities compare as sets).
//! Syntax reference: <https://developer.hashicorp.com/vault/docs/concepts/policies>.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Capabilities a path rule may grant.
pub const CAPABILITIES: &[&str] = &[
    "create",
    "read",
    "update",
    "patch",
    "delete",
    "list",
    "sudo",
    "deny",
    "subscribe",
];

/// One `path "<path>" { ... }` rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathRule {
    /// The path, possibly with `*` suffix glob and `+` segments.
    pub path: String,
    /// Granted capabilities.
    pub capabilities: Vec<String>,
    /// Rendered as a comment above the rule; not stored by Vault as data.
    pub description: Option<String>,
    /// Parameters that must be present.
    pub required_parameters: Vec<String>,
    /// Parameter name → allowed values (empty list: any value).
    pub allowed_parameters: BTreeMap<String, Vec<String>>,
    /// Parameter name → denied values (empty list: any value).
    pub denied_parameters: BTreeMap<String, Vec<String>>,
    /// Minimum response-wrapping TTL (Vault duration string).
    pub min_wrapping_ttl: Option<String>,
    /// Maximum response-wrapping TTL.
    pub max_wrapping_ttl: Option<String>,
}

fn quote(s: &str) -> String {
    // JSON string escaping is valid HCL string escaping.
    serde_json::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Renders rules as a policy document, in a stable canonical layout.
pub fn render(rules: &[PathRule]) -> String {
    let mut out = String::new();
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(d) = r.description.as_deref().filter(|d| !d.is_empty()) {
            for line in d.lines() {
                let _ = writeln!(out, "# {line}");
            }
        }
        let _ = writeln!(out, "path {} {{", quote(&r.path));
        let _ = writeln!(out, "  capabilities = {}", list(&r.capabilities));
        if !r.required_parameters.is_empty() {
            let _ = writeln!(
                out,
                "  required_parameters = {}",
                list(&r.required_parameters)
            );
        }
        for (name, params) in [
            ("allowed_parameters", &r.allowed_parameters),
            ("denied_parameters", &r.denied_parameters),
        ] {
            if !params.is_empty() {
                let _ = writeln!(out, "  {name} = {{");
                for (k, v) in params {
                    let _ = writeln!(out, "    {} = {}", quote(k), list(v));
                }
                let _ = writeln!(out, "  }}");
            }
        }
        if let Some(t) = &r.min_wrapping_ttl {
            let _ = writeln!(out, "  min_wrapping_ttl = {}", quote(t));
        }
        if let Some(t) = &r.max_wrapping_ttl {
            let _ = writeln!(out, "  max_wrapping_ttl = {}", quote(t));
        }
        out.push_str("}\n");
    }
    out
}

fn scalar(e: &hcl::Expression) -> Option<String> {
    match e {
        hcl::Expression::String(s) => Some(s.clone()),
        hcl::Expression::Number(n) => Some(n.to_string()),
        hcl::Expression::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(e: &hcl::Expression, what: &str) -> Result<Vec<String>, String> {
    match e {
        hcl::Expression::Array(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("{what} must be a list of strings")))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("{what} must be a list of strings")),
    }
}

fn params(e: &hcl::Expression, what: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let hcl::Expression::Object(o) = e else {
        return Err(format!("{what} must be a map of lists"));
    };
    let mut m = BTreeMap::new();
    for (k, v) in o {
        let key = match k {
            hcl::ObjectKey::Identifier(i) => i.to_string(),
            hcl::ObjectKey::Expression(e) => {
                scalar(e).ok_or_else(|| format!("{what} keys must be strings"))?
            }
            _ => return Err(format!("{what} keys must be strings")),
        };
        m.insert(key, strings(v, what)?);
    }
    Ok(m)
}

/// The capabilities the legacy `policy = "..."` shorthand stands for.
fn legacy_policy(p: &str) -> Result<Vec<String>, String> {
    let caps: &[&str] = match p {
        "deny" => &["deny"],
        "read" => &["read", "list"],
        "write" => &["create", "read", "update", "delete", "list"],
        "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
        other => return Err(format!("unknown policy shorthand {other:?}")),
    };
    Ok(caps.iter().map(|c| c.to_string()).collect())
}

/// Parses a policy document into its rules.
pub fn parse(text: &str) -> Result<Vec<PathRule>, String> {
    let body = hcl::parse(text).map_err(|e| e.to_string())?;
    if let Some(a) = body.attributes().next() {
        return Err(format!(
            "unexpected top-level attribute {:?}; a policy holds only `path` blocks",
            a.key()
        ));
    }
    let mut rules = Vec::new();
    for b in body.blocks() {
        if b.identifier() != "path" {
            return Err(format!(
                "unexpected block {:?}; a policy holds only `path` blocks",
                b.identifier()
            ));
        }
        let [label] = b.labels() else {
            return Err("a `path` block takes exactly one label: the path".into());
        };
        let mut r = PathRule {
            path: label.as_str().to_string(),
            ..PathRule::default()
        };
        for a in b.body().attributes() {
            let e = a.expr();
            match a.key() {
                "capabilities" => r.capabilities.extend(strings(e, "capabilities")?),
                "policy" => r
                    .capabilities
                    .extend(legacy_policy(&scalar(e).ok_or("policy must be a string")?)?),
                "required_parameters" => r.required_parameters = strings(e, "required_parameters")?,
                "allowed_parameters" => r.allowed_parameters = params(e, "allowed_parameters")?,
                "denied_parameters" => r.denied_parameters = params(e, "denied_parameters")?,
                "min_wrapping_ttl" => r.min_wrapping_ttl = scalar(e),
                "max_wrapping_ttl" => r.max_wrapping_ttl = scalar(e),
                other => return Err(format!("unknown attribute {other:?} in path {:?}", r.path)),
            }
        }
        rules.push(r);
    }
    let comments = leading_comments(text);
    if comments.len() == rules.len() {
        for (r, c) in rules.iter_mut().zip(comments) {
            r.description = c;
        }
    }
    Ok(rules)
}

/// For each line that opens a `path` block, the `#` comment lines right above it (as
/// [`render`] writes descriptions), in document order.
fn leading_comments(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            pending.push(c.strip_prefix(' ').unwrap_or(c));
        } else if t.starts_with("path ") || t.starts_with("path\"") {
            out.push((!pending.is_empty()).then(|| pending.join("\n")));
            pending.clear();
        } else {
            pending.clear();
        }
    }
    out
}

/// The capabilities of `rules` that are not Vault capabilities.
pub fn unknown_capabilities(rules: &[PathRule]) -> Vec<String> {
    rules
        .iter()
        .flat_map(|r| r.capabilities.iter())
        .filter(|c| !CAPABILITIES.contains(&c.as_str()))
        .cloned()
        .collect()
}

/// The meaning of a set of rules, without formatting, order or descriptions.
type Canonical = BTreeMap<String, Vec<CanonicalRule>>;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CanonicalRule {
    capabilities: BTreeSet<String>,
    required: BTreeSet<String>,
    allowed: BTreeMap<String, BTreeSet<String>>,
    denied: BTreeMap<String, BTreeSet<String>>,
    min_wrapping_ttl: Option<String>,
    max_wrapping_ttl: Option<String>,
}

fn canonical(rules: &[PathRule]) -> Canonical {
    let sets = |m: &BTreeMap<String, Vec<String>>| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    };
    let mut out: Canonical = BTreeMap::new();
    for r in rules {
        out.entry(r.path.clone()).or_default().push(CanonicalRule {
            capabilities: r.capabilities.iter().cloned().collect(),
            required: r.required_parameters.iter().cloned().collect(),
            allowed: sets(&r.allowed_parameters),
            denied: sets(&r.denied_parameters),
            min_wrapping_ttl: r.min_wrapping_ttl.clone(),
            max_wrapping_ttl: r.max_wrapping_ttl.clone(),
        });
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// True when two parsed rule sets mean the same policy.
pub fn same_rules(a: &[PathRule], b: &[PathRule]) -> bool {
    canonical(a) == canonical(b)
}

/// True when two policy documents mean the same thing. Documents that do not parse are
/// compared by their text with whitespace collapsed.
pub fn equivalent(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => same_rules(&x, &y),
        _ => squash(a) == squash(b),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The capabilities a token with the given policies has on the API `path`, as Vault decides
/// them: the rules of all policies merged by pattern (capabilities added up), then the exact
/// pattern if there is one, else the highest-priority matching pattern (`*` prefix globs and
/// `+` segment wildcards, by Vault's priority rules); `deny` on that pattern denies everything.
/// Reference: <https://developer.hashicorp.com/vault/docs/concepts/policies#priority-matching>.
pub fn capabilities_on(policies: &[Vec<PathRule>], path: &str) -> BTreeSet<String> {
    let mut merged: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for rule in policies.iter().flatten() {
        let caps = merged.entry(rule.path.as_str()).or_default();
        caps.extend(rule.capabilities.iter().map(String::as_str));
    }
    let path = path.trim_start_matches('/');
    let chosen = merged
        .get_key_value(path)
        .filter(|(p, _)| !is_pattern(p))
        .or_else(|| {
            merged
                .iter()
                .filter(|(p, _)| is_pattern(p) && pattern_matches(p, path))
                .max_by(|(a, _), (b, _)| priority(a, b))
        });
    match chosen {
        Some((_, caps)) if !caps.contains("deny") => caps.iter().map(|c| c.to_string()).collect(),
        _ => BTreeSet::new(),
    }
}

fn is_pattern(p: &str) -> bool {
    p.ends_with('*') || p.split('/').any(|s| s == "+")
}

/// Whether `pattern` (with `+` segments and/or a trailing `*`) matches `path`.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = body.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    for (i, p) in pat.iter().enumerate() {
        let last = i == pat.len() - 1;
        let Some(s) = segs.get(i) else {
            // The path ran out before the pattern: `a/*` does not match `a`.
            return false;
        };
        match (*p, last && glob) {
            ("+", false) => {}
            // `+*`: any segment, then anything.
            ("+", true) => return true,
            (p, true) => return s.starts_with(p),
            (p, false) => {
                if p != *s {
                    return false;
                }
            }
        }
    }
    // Every pattern segment matched; without a glob the path must end here.
    glob || segs.len() == pat.len()
}

/// Vault's ordering of two matching patterns (greater = wins).
fn priority(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let first_wild = |p: &str| p.find(['+', '*']).unwrap_or(p.len());
    let pluses = |p: &str| p.split('/').filter(|s| *s == "+").count();
    // An earlier first wildcard loses.
    first_wild(a)
        .cmp(&first_wild(b))
        // Ending in a glob loses against not ending in one.
        .then_with(|| match (a.ends_with('*'), b.ends_with('*')) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => Ordering::Equal,
        })
        // More `+` segments lose.
        .then_with(|| pluses(b).cmp(&pluses(a)))
        // Shorter loses; then lexicographically smaller loses.
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, caps: &[&str]) -> PathRule {
        PathRule {
            path: path.into(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..PathRule::default()
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let mut r = rule("kv/data/orders/*", &["read", "list"]);
        r.description = Some("orders team".into());
        r.required_parameters = vec!["a".into()];
        r.allowed_parameters
            .insert("ttl".into(), vec!["1h".into(), "2h".into()]);
        r.denied_parameters.insert("*".into(), vec![]);
        r.min_wrapping_ttl = Some("1s".into());
        r.max_wrapping_ttl = Some("90s".into());
        let rules = vec![r, rule("sys/+/x", &["deny"])];
        let text = render(&rules);
        let back = parse(&text).expect("parses");
        assert!(same_rules(&rules, &back), "{text}");
        assert_eq!(back, rules, "descriptions come back from their comments");
        assert_eq!(back[0].allowed_parameters["ttl"], vec!["1h", "2h"]);
    }

    #[test]
    fn formatting_order_and_comments_do_not_matter() {
        let a = "path \"a\" { capabilities = [\"read\", \"list\"] }\npath \"b\" { capabilities = [\"deny\"] }";
        let b = "# comment\npath \"b\" {\n  capabilities = [\"deny\"]\n}\n\n\npath \"a\" {\n    capabilities = [\"list\",\"read\",]\n}\n";
        assert!(equivalent(a, b));
        assert!(!equivalent(a, &a.replace("list", "update")));
    }

    #[test]
    fn legacy_shorthand_and_errors() {
        let r = parse("path \"x\" { policy = \"read\" }").unwrap();
        assert_eq!(r[0].capabilities, vec!["read", "list"]);
        assert!(parse("path \"x\" { capabilities = [\"read\"] ").is_err());
        assert!(parse("foo = 1").is_err());
        assert!(parse("path \"x\" { colour = \"red\" }").is_err());
        let r = parse("path \"x\" { capabilities = [\"reed\"] }").unwrap();
        assert_eq!(unknown_capabilities(&r), vec!["reed"]);
    }

    fn caps(policies: &[&str], path: &str) -> Vec<String> {
        let parsed: Vec<Vec<PathRule>> = policies.iter().map(|p| parse(p).unwrap()).collect();
        capabilities_on(&parsed, path).into_iter().collect()
    }

    #[test]
    fn exact_glob_segment_and_deny() {
        let p = r#"
            path "kv/data/app/db" { capabilities = ["read"] }
            path "kv/data/app/*" { capabilities = ["list"] }
            path "kv/data/+/shared" { capabilities = ["update"] }
            path "kv/data/app/secret*" { capabilities = ["deny"] }
        "#;
        assert_eq!(caps(&[p], "kv/data/app/db"), ["read"]);
        assert_eq!(caps(&[p], "kv/data/app/other"), ["list"]);
        assert_eq!(caps(&[p], "kv/data/team/shared"), ["update"]);
        assert!(
            caps(&[p], "kv/data/app/secret-x").is_empty(),
            "deny wins on its pattern"
        );
        assert!(caps(&[p], "kv/metadata/app/db").is_empty());
        assert!(
            caps(&[p], "kv/data/team/shared/x").is_empty(),
            "+ is one segment"
        );
    }

    #[test]
    fn policies_add_up_per_pattern_and_deny_overrides() {
        let a = r#"path "kv/data/x" { capabilities = ["read"] }"#;
        let b = r#"path "kv/data/x" { capabilities = ["update"] }"#;
        let c = r#"path "kv/data/x" { capabilities = ["deny"] }"#;
        assert_eq!(caps(&[a, b], "kv/data/x"), ["read", "update"]);
        assert!(caps(&[a, b, c], "kv/data/x").is_empty());
    }

    #[test]
    fn priority_follows_vaults_rules() {
        // The later first wildcard wins.
        let p = r#"
            path "secret/*" { capabilities = ["read"] }
            path "secret/foo/*" { capabilities = ["list"] }
        "#;
        assert_eq!(caps(&[p], "secret/foo/bar"), ["list"]);
        // Not ending in a glob beats ending in one (same first wildcard position).
        let p = r#"
            path "secret/+/bar" { capabilities = ["update"] }
            path "secret/*" { capabilities = ["read"] }
        "#;
        assert_eq!(caps(&[p], "secret/foo/bar"), ["update"]);
        // Fewer + segments win.
        let p = r#"
            path "secret/+/+/baz" { capabilities = ["read"] }
            path "secret/+/bar/baz" { capabilities = ["list"] }
        "#;
        assert_eq!(caps(&[p], "secret/foo/bar/baz"), ["list"]);
    }

    #[test]
    fn arbitrary_paths_never_panic() {
        let p = parse("path \"+\" { capabilities = [\"read\"] }\npath \"*\" { capabilities = [\"list\"] }\npath \"a/+/*\" { capabilities = [\"update\"] }").unwrap();
        for path in [
            "",
            "/",
            "+",
            "*",
            "a",
            "a/",
            "a//b",
            "//",
            "a/b/c/d",
            "\u{1F600}/x",
        ] {
            let _ = capabilities_on(std::slice::from_ref(&p), path);
        }
    }

    #[test]
    fn special_characters_survive() {
        let r = vec![rule("secret/\"quoted\"\\path", &["read"])];
        assert!(same_rules(&r, &parse(&render(&r)).unwrap()));
    }
}
