//! Microsoft's documented rules for policies, as tables with a citation per rule: the policy
//! table (`policies`), the per-instance limits (`limits`) and the expression type allow-list
//! (`types`); `check` applies them to a document when it is saved. `catalogue` lists every rule
//! with its source (README.md lists the same, and a test holds the two together).

pub mod check;
pub mod limits;
pub mod policies;
pub mod types;

use policies::{Content, POLICIES};

/// One documented rule and where it comes from.
#[derive(Debug, Clone)]
pub struct RuleDoc {
    /// Stable id (`policy:cache-lookup-value`, `limit:named-values`, ...).
    pub id: String,
    /// What it says.
    pub rule: String,
    /// Its Microsoft source.
    pub source: String,
}

fn attrs_text(p: &policies::Policy) -> String {
    p.attrs
        .iter()
        .map(|a| {
            format!(
                "{}{}{}",
                a.name,
                if a.required { " (required)" } else { "" },
                if a.expr { "" } else { " (no expressions)" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every rule the gateway and ARM apply, with its source.
pub fn catalogue() -> Vec<RuleDoc> {
    let mut out = Vec::new();
    for p in POLICIES {
        let sections: Vec<&str> = p.sections.iter().map(|s| s.name()).collect();
        let children = match p.content {
            Content::Children(c) => format!(
                "; children in order: {}",
                c.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ),
            _ => String::new(),
        };
        out.push(RuleDoc {
            id: format!("policy:{}", p.name),
            rule: format!(
                "sections: {}; scopes: {}; in fragments: {}{}{}; attributes: {}{}{}",
                sections.join(", "),
                p.scopes.join(", "),
                if p.fragment { "yes" } else { "no" },
                if p.once_per_section {
                    "; once per section"
                } else {
                    ""
                },
                if p.once_per_document {
                    "; once per document"
                } else {
                    ""
                },
                if p.attrs.is_empty() {
                    "none".to_string()
                } else {
                    attrs_text(p)
                },
                children,
                if p.implemented {
                    ""
                } else {
                    "; not executed by the emulator (refused)"
                },
            ),
            source: p.source.to_string(),
        });
    }
    let limit = |id: &str, rule: &str, source: &str| RuleDoc {
        id: id.into(),
        rule: rule.into(),
        source: source.into(),
    };
    out.extend([
        limit("section:on-error", "a policy is allowed in on-error only when the 2020 on-error list and its own page both allow it", policies::ON_ERROR_SOURCE),
        limit("fragment:content", "a fragment holds no section element, no <base/>, no <include-fragment>", "AD policy-fragments.md @0729160b (02/10/2026)"),
        limit("limit:named-values", &format!("at most {} named values per instance", limits::NAMED_VALUES_PER_INSTANCE), limits::SOURCE_LIMITS),
        limit("limit:named-value-value", &format!("a named value's value is 1-{} characters, not only whitespace", limits::NAMED_VALUE_CHARS), limits::SOURCE_NAMED_VALUE),
        limit("limit:fragments", "at most 100 policy fragments per instance on Premium and Premium v2, 50 on every other tier", limits::SOURCE_LIMITS),
        limit("limit:policy-size", "a policy document is at most 256 KiB, 16 KiB on Consumption", limits::SOURCE_LIMITS),
        limit("limit:fragment-size", &format!("a policy fragment is at most {} bytes", limits::FRAGMENT_BYTES), limits::SOURCE_FRAGMENT_SIZE),
        limit("expr:types", "expressions use only the allowed .NET types and members (and the context interfaces)", types::SOURCE),
        limit("expr:set-variable-types", "set-variable's value is a Boolean, numeric, Char, String, Guid, DateTime, TimeSpan or byte[] (checked when it runs)", "AD set-variable-policy.md @0aa3f927 (07/23/2024), \"Allowed types\""),
        limit("expr:compiled-on-save", "expressions are compiled when the policy is saved; run-time exceptions fail the request (ExpressionValueEvaluationFailure)", "AD api-management-policy-expressions.md @017654d1; AD api-management-error-handling-policies.md @11ee015b"),
        limit("named-values:textual", "{{name}} is replaced by the value before expressions are parsed; values are not substituted again", "AD api-management-howto-properties.md @05cc6ac0 (07/11/2024)"),
    ]);
    out
}

/// The catalogue as a Markdown table (README.md carries it verbatim; a test checks that).
pub fn markdown() -> String {
    let cell = |s: &str| {
        s.replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut out = String::from("| rule | what it says | source |\n|---|---|---|\n");
    for r in catalogue() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.id,
            cell(&r.rule),
            cell(&r.source)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn readme_carries_the_rules_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let table = super::markdown();
        assert!(
            readme.contains(&table),
            "README.md must carry the rules table exactly as gateway::rules::markdown() renders it:\n\n{table}"
        );
    }
}
