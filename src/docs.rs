//! The documentation set under `docs/`, generated from the schema declarations and the
//! examples under `examples/` (tfplugindocs layout). A test keeps the committed pages in
//! step with the code: `APIM_UPDATE_DOCS=1 cargo test --test acceptance docs` rewrites them.

use std::path::{Path, PathBuf};

use crate::framework::docs::{render, Kind, Page};
use crate::framework::resource::Provider;
use crate::provider::ApimProvider;

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

fn short(type_name: &str) -> &str {
    type_name.strip_prefix("apim_").unwrap_or(type_name)
}

const INDEX_NOTES: &str = "\
Vault stays the system of record: at request time the APIM gateway uses its managed identity \
to get an Entra ID token, logs in to Vault's JWT auth method with it, reads the secret with the \
short-lived Vault token, caches it no longer than its lifetime allows and injects it into the \
backend call. `terraform plan` reads both Vault and Azure Resource Manager, shows drift on either \
side, and checks that a binding can work before anything is applied.

Both the `vault` and the `azure` blocks are optional: a configuration that only manages Vault \
objects needs no Azure credentials. Every setting has an environment fallback, listed with it \
below. Credentials are acquired once per provider process and renewed before they expire.

Requires Terraform 1.11 or later (protocol 6).";

const LIST_NOTES: &str = "\
For `terraform query` (Terraform 1.14 or later), in a `.tfquery.hcl` file. Each result is \
shown with the resource's identity; `terraform query -generate-config-out=FILE` writes an \
`import` block by identity and a `resource` block for each, as a user would write it, which \
`terraform apply` imports and the next plan leaves unchanged. See the guide \
[Adopting existing bindings, roles and policies](../guides/adopting-existing-objects.md).";

/// Every generated page: its path under the repository and its content.
pub fn pages(root: &Path) -> Vec<(PathBuf, String)> {
    let p = ApimProvider::new();
    let mut out = Vec::new();
    out.push((
        PathBuf::from("docs/index.md"),
        render(&Page {
            kind: Kind::Provider,
            name: "apim",
            schema: p.schema(),
            example: read(root, "examples/provider/provider.tf").as_deref(),
            import: None,
            import_by_identity: None,
            notes: Some(INDEX_NOTES),
        }),
    ));
    for r in p.resources() {
        let n = r.type_name();
        out.push((
            PathBuf::from(format!("docs/resources/{}.md", short(n))),
            render(&Page {
                kind: Kind::Resource,
                name: n,
                schema: r.schema(),
                example: read(root, &format!("examples/resources/{n}/resource.tf")).as_deref(),
                import: read(root, &format!("examples/resources/{n}/import.sh")).as_deref(),
                import_by_identity: read(
                    root,
                    &format!("examples/resources/{n}/import-by-identity.tf"),
                )
                .as_deref(),
                notes: None,
            }),
        ));
    }
    for d in p.data_sources() {
        let n = d.type_name();
        out.push((
            PathBuf::from(format!("docs/data-sources/{}.md", short(n))),
            render(&Page {
                kind: Kind::DataSource,
                name: n,
                schema: d.schema(),
                example: read(root, &format!("examples/data-sources/{n}/data-source.tf"))
                    .as_deref(),
                import: None,
                import_by_identity: None,
                notes: None,
            }),
        ));
    }
    for e in p.ephemeral_resources() {
        let n = e.type_name();
        out.push((
            PathBuf::from(format!("docs/ephemeral-resources/{}.md", short(n))),
            render(&Page {
                kind: Kind::Ephemeral,
                name: n,
                schema: e.schema(),
                example: read(
                    root,
                    &format!("examples/ephemeral-resources/{n}/ephemeral-resource.tf"),
                )
                .as_deref(),
                import: None,
                import_by_identity: None,
                notes: None,
            }),
        ));
    }
    for l in p.list_resources() {
        let n = l.type_name();
        out.push((
            PathBuf::from(format!("docs/list-resources/{}.md", short(n))),
            render(&Page {
                kind: Kind::ListResource,
                name: n,
                schema: l.schema(),
                example: read(
                    root,
                    &format!("examples/list-resources/{n}/list-resource.tfquery.hcl"),
                )
                .as_deref(),
                import: None,
                import_by_identity: None,
                notes: Some(LIST_NOTES),
            }),
        ));
    }
    for a in p.actions() {
        let n = a.type_name();
        out.push((
            PathBuf::from(format!("docs/actions/{}.md", short(n))),
            render(&Page {
                kind: Kind::Action,
                name: n,
                schema: a.schema(),
                example: read(root, &format!("examples/actions/{n}/action.tf")).as_deref(),
                import: None,
                import_by_identity: None,
                notes: None,
            }),
        ));
    }
    for f in p.functions() {
        let n = f.name();
        out.push((
            PathBuf::from(format!("docs/functions/{n}.md")),
            crate::framework::docs::render_function(
                "apim",
                f.as_ref(),
                read(root, &format!("examples/functions/{n}/function.tf")).as_deref(),
            ),
        ));
    }
    out
}
