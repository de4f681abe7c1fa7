//! `apim_vault_lease` (data source): the current state of one lease (`lease_id`) or of every
//! lease under a prefix (`prefix`), read-only. It only calls `PUT sys/leases/lookup` and
//! `LIST sys/leases/lookup/<prefix>/`: reading it never creates, renews or revokes anything.
//!
//! Naming: `min_ttl` is the computed smallest TTL among the leases found (the product's
//! contract, made for `check` blocks and postconditions). A threshold given in configuration
//! is `ttl_threshold`: the leases whose TTL is below it are listed in `below_threshold` and
//! reported in a warning, so a pipeline sees which credentials are about to expire. Terraform
//! reserves `count` on every data source, so expressions cannot read the contract's `count`;
//! `lease_count` carries the same number under a readable name.

use super::vault_binding::grammar::dot_segment_problem;
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::lease::Lease;
use crate::clients::vault::{Vault, VaultError};
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::resource::{Ctx, DataSource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, Schema};
use crate::framework::value::{Type, Value};

use super::api_error;

const TYPE: &str = "apim_vault_lease";

/// The data source.
pub struct VaultLease;

fn lease_type() -> Type {
    Type::object([
        ("lease_id", Type::String),
        ("issue_time", Type::String),
        ("expire_time", Type::String),
        ("last_renewal", Type::String),
        ("ttl", Type::Number),
        ("renewable", Type::Bool),
    ])
}

fn validate_lease_id(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid lease ID", |id| {
        if id.trim().is_empty() {
            Err("`lease_id` is empty. Give a full lease ID such as \"database/creds/app/AbCdEf...\", or use `prefix` to list leases.".into())
        } else if id.ends_with('/') {
            Err(format!("`lease_id` is {id:?}, which ends with `/` and so names a prefix, not a lease. Use `prefix = {id:?}` to list the leases under it."))
        } else if let Some(why) = dot_segment_problem(id) {
            Err(format!("`lease_id` is {id:?}: {why}. Give the lease ID as Vault wrote it, e.g. \"database/creds/app/AbCdEf...\"."))
        } else {
            Ok(())
        }
    });
}

fn validate_prefix(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid prefix", |prefix| {
        if prefix.trim_matches('/').trim().is_empty() {
            Err("`prefix` is empty, which would look up every lease of the server. Give a mount or role path such as \"database/creds/app/\".".into())
        } else if let Some(why) = dot_segment_problem(prefix) {
            Err(format!("`prefix` is {prefix:?}: {why}. Give a mount or role path such as \"database/creds/app/\"."))
        } else {
            Ok(())
        }
    });
}

/// Seconds and nanoseconds since the Unix epoch of an RFC 3339 time as Vault writes it
/// (`2026-01-02T03:04:05.123456789Z` or with a `±hh:mm` offset).
fn unix_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut f = frac[..digits].to_string();
        f.truncate(9);
        while f.len() < 9 {
            f.push('0');
        }
        nanos = f.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as i128 * 1_000_000_000 + nanos)
}

crate::model! {
    /// An `apim_vault_lease`; the computed values are null in the configuration.
    pub struct LeaseModel, plan LeasePlan {
        /// `lease_id`.
        pub lease_id: Option<String>,
        /// `prefix`.
        pub prefix: Option<String>,
        /// `ttl_threshold`.
        pub ttl_threshold: Option<i64>,
        /// `leases`.
        pub leases: Option<Vec<LeaseEntry>>,
        /// `count`.
        pub count: Option<i64>,
        /// `lease_count`.
        pub lease_count: Option<i64>,
        /// `min_ttl`.
        pub min_ttl: Option<i64>,
        /// `expires_soonest`.
        pub expires_soonest: Option<String>,
        /// `below_threshold`.
        pub below_threshold: Option<Vec<String>>,
    }
}

crate::model! {
    /// One element of `leases`.
    pub struct LeaseEntry, plan LeaseEntryPlan {
        /// `lease_id`.
        pub lease_id: String,
        /// `issue_time`.
        pub issue_time: Option<String>,
        /// `expire_time`.
        pub expire_time: Option<String>,
        /// `last_renewal`.
        pub last_renewal: Option<String>,
        /// `ttl`.
        pub ttl: i64,
        /// `renewable`.
        pub renewable: bool,
    }
}

fn lease_entry(l: &Lease) -> LeaseEntry {
    LeaseEntry {
        lease_id: l.id.clone(),
        issue_time: l.issue_time.clone(),
        expire_time: l.expire_time.clone(),
        last_renewal: l.last_renewal.clone(),
        ttl: l.ttl,
        renewable: l.renewable,
    }
}

fn expiring(leases: &[Lease]) -> Vec<&Lease> {
    let mut v: Vec<&Lease> = leases.iter().filter(|l| l.expire_time.is_some()).collect();
    v.sort_by_key(|l| {
        (
            l.expire_time
                .as_deref()
                .and_then(unix_nanos)
                .unwrap_or(i128::MAX),
            l.ttl,
        )
    });
    v
}

/// The diagnostic for a refused lookup or list, naming the capability the token lacks.
fn access_error(d: &mut Diags, attr: &str, listing: bool, what: &str, e: &VaultError) {
    match e.status() {
        Some(403) => {
            let fix = if listing {
                format!(
                    "Listing leases needs the `list` and `sudo` capabilities on `sys/leases/lookup/{what}*`. Add to one of the token's policies:\n\n  path \"sys/leases/lookup/{what}*\" {{\n    capabilities = [\"list\", \"sudo\"]\n  }}"
                )
            } else {
                "Looking up a lease needs the `update` capability on `sys/leases/lookup` (Vault's `default` policy grants it). Add to one of the token's policies:\n\n  path \"sys/leases/lookup\" {\n    capabilities = [\"update\"]\n  }".to_string()
            };
            d.attr_error(
                AttrPath::root(attr),
                format!("Permission denied reading {TYPE}"),
                format!("Vault refused the provider's token ({e}). {fix}"),
            );
        }
        _ => api_error(d, "read", TYPE, &format!("leases at {what:?}"), e),
    }
}

/// Every lease under `prefix` (ending with `/`), sub-prefixes included, sorted by ID.
async fn leases_under(vault: &Vault, prefix: &str, d: &mut Diags) -> Option<Vec<Lease>> {
    let mut pending = vec![prefix.to_string()];
    let mut ids = Vec::new();
    while let Some(p) = pending.pop() {
        let keys = match vault.list_leases(&p).await {
            Ok(k) => k,
            Err(e) => {
                access_error(d, "prefix", true, prefix, &e);
                return None;
            }
        };
        for k in keys {
            let full = format!("{p}{k}");
            if k.ends_with('/') {
                pending.push(full);
            } else {
                ids.push(full);
            }
        }
    }
    ids.sort();
    let mut leases = Vec::with_capacity(ids.len());
    for id in ids {
        match vault.lookup_lease(&id).await {
            Ok(Some(l)) => leases.push(l),
            // Expired or revoked between the list and the lookup.
            Ok(None) => {}
            Err(e) => {
                access_error(d, "prefix", false, &id, &e);
                return None;
            }
        }
    }
    Some(leases)
}

#[async_trait]
impl DataSource<ProviderData> for VaultLease {
    type Model = LeaseModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The current state of Vault leases, read-only: one lease by `lease_id`, or every lease under a `prefix`. Reading it only calls `PUT sys/leases/lookup` and `LIST sys/leases/lookup/<prefix>/`; it never creates, renews or revokes a lease. Made for CI: assert on `min_ttl` (or `below_threshold`) in a `check` block or a postcondition to fail a pipeline before a credential expires.\n\nThe provider's token needs `update` on `sys/leases/lookup` to look a lease up (Vault's `default` policy grants it) and `list` + `sudo` on `sys/leases/lookup/<prefix>*` to list leases. Every value is stable from one read to the next except `ttl` and `min_ttl`, which count down, and what a renewal changes (`expire_time`, `last_renewal`).")
                    .attr(
                        Attribute::string("lease_id")
                            .validate(validate_lease_id)
                            .describe("The ID of one lease, e.g. `database/creds/app/AbCdEf...`. A lease that does not exist (expired, revoked or mistyped) is an error. Exactly one of `lease_id` and `prefix` must be set."),
                    )
                    .attr(
                        Attribute::string("prefix")
                            .validate(validate_prefix)
                            .describe("A lease path prefix, e.g. `database/creds/app/` or `pki/issue/web/`: every lease under it, at any depth, sorted by ID. A prefix with no lease gives `lease_count = 0`. It ends at a path segment: `database/creds/ap` does not match `database/creds/app/...`."),
                    )
                    .attr(
                        Attribute::number("ttl_threshold")
                            .validate(validators::non_negative_int)
                            .describe("Seconds. When set, the leases with less TTL left are listed in `below_threshold`, and the read adds a warning naming them. The read itself never fails on it: assert on `below_threshold` or `min_ttl` in a `check` block or postcondition to make it a failure."),
                    )
                    .attr(
                        Attribute::of("leases", Type::list_of(lease_type()))
                            .computed()
                            .describe("The leases found, sorted by `lease_id`, each as `sys/leases/lookup` reports it: `lease_id`, `issue_time`, `expire_time` (null when the lease does not expire), `last_renewal` (null when never renewed), `ttl` (seconds left), `renewable`."),
                    )
                    .attr(Attribute::number("count").computed().describe("How many leases were found, as in the product's contract. Terraform reserves `count` on every resource and data source, so an expression cannot read it (`data.apim_vault_lease.x.count` is \"Invalid resource count attribute\"): use `lease_count` (or `length(leases)`) in expressions; `count` is visible in `terraform show -json` and the state."))
                    .attr(Attribute::number("lease_count").computed().describe("How many leases were found; the same value as `count`, under a name expressions can read."))
                    .attr(
                        Attribute::number("min_ttl")
                            .computed()
                            .describe("The smallest `ttl` among the leases that expire, in seconds; null when no lease found expires (none found, or none with an expiry)."),
                    )
                    .attr(
                        Attribute::string("expires_soonest")
                            .computed()
                            .describe("The `expire_time` of the lease that expires first; null when no lease found expires."),
                    )
                    .attr(
                        Attribute::of("below_threshold", Type::list_of(Type::String))
                            .computed()
                            .describe("The IDs of the leases whose `ttl` is below `ttl_threshold`, soonest first; empty when `ttl_threshold` is not set."),
                    )
                    .constraint(Constraint::ExactlyOneOf(&["lease_id", "prefix"])),
            )
        })
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        config: LeaseModel,
        d: &mut Diags,
    ) -> Option<LeaseModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let leases = if let Some(id) = config.lease_id.as_deref() {
            match vault.lookup_lease(id).await {
                Ok(Some(l)) => vec![l],
                Ok(None) => {
                    d.attr_error(
                        AttrPath::root("lease_id"),
                        "Lease not found",
                        format!("Vault answered \"invalid lease\" for {id:?}: there is no such lease. It expired, was revoked, or the ID is mistyped (a lease ID is the secret's path followed by a random suffix, e.g. \"database/creds/app/AbCdEf...\"). To watch leases that come and go, use `prefix` instead, which finds zero or more."),
                    );
                    return None;
                }
                Err(e) => {
                    access_error(d, "lease_id", false, id, &e);
                    return None;
                }
            }
        } else if let Some(prefix) = config.prefix.as_deref() {
            let prefix = format!("{}/", prefix.trim_matches('/'));
            leases_under(vault, &prefix, d).await?
        } else {
            d.error(
                format!("Invalid {TYPE} configuration"),
                "Set exactly one of `lease_id` and `prefix`.",
            );
            return None;
        };

        let soonest = expiring(&leases);
        let below: Vec<&Lease> = match config.ttl_threshold {
            Some(t) => soonest.iter().copied().filter(|l| l.ttl < t).collect(),
            None => Vec::new(),
        };
        let state = LeaseModel {
            leases: Some(leases.iter().map(lease_entry).collect()),
            count: Some(leases.len() as i64),
            lease_count: Some(leases.len() as i64),
            min_ttl: soonest.iter().map(|l| l.ttl).min(),
            expires_soonest: soonest.first().and_then(|l| l.expire_time.clone()),
            below_threshold: Some(below.iter().map(|l| l.id.clone()).collect()),
            ..config
        };
        if let (Some(t), false) = (state.ttl_threshold, below.is_empty()) {
            let listed: Vec<String> = below
                .iter()
                .take(10)
                .map(|l| {
                    format!(
                        "{} (ttl {} s, expires {})",
                        l.id,
                        l.ttl,
                        l.expire_time.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            let more = below.len().saturating_sub(listed.len());
            d.attr_warning(
                AttrPath::root("ttl_threshold"),
                format!("{} lease(s) expire within {t} seconds", below.len()),
                format!(
                    "{}{}",
                    listed.join("\n"),
                    if more > 0 {
                        format!("\n... and {more} more")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_the_same_instant_across_offsets() {
        let z = unix_nanos("2026-11-30T01:07:44.000212765Z").unwrap();
        let plus = unix_nanos("2026-11-30T02:07:44.000212765+01:00").unwrap();
        assert_eq!(z, plus);
        assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_nanos("2023-11-14T22:13:20.000042Z"),
            Some(1_700_000_000_000_042_000)
        );
        assert!(unix_nanos("2026-11-30T01:07:44.5Z").unwrap() > z);
        assert_eq!(unix_nanos("yesterday"), None);
    }

    fn lease(id: &str, expire: Option<&str>, ttl: i64) -> Lease {
        Lease {
            id: id.into(),
            issue_time: Some("2026-01-01T00:00:00Z".into()),
            expire_time: expire.map(String::from),
            last_renewal: None,
            ttl,
            renewable: true,
        }
    }

    #[test]
    fn soonest_ignores_leases_without_expiry_and_compares_instants() {
        let ls = vec![
            lease("a", Some("2026-01-01T10:00:00.9Z"), 100),
            lease("b", None, 0),
            lease("c", Some("2026-01-01T10:00:00.10Z"), 100),
        ];
        let s = expiring(&ls);
        assert_eq!(
            s.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["c", "a"]
        );
    }
}
