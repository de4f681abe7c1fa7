//! Per-instance limits APIM enforces when entities are saved, by SKU where they differ.

/// Where the limits come from.
pub const SOURCE_LIMITS: &str = "AD includes/api-management-service-limits-v2.md @0552c229 (09/12/2024) and index id 9766748493 (08/12/2025) for v2 tiers; classic tiers index id 16447771386 (09/09/2025)";

/// Named values per instance (all tiers).
pub const NAMED_VALUES_PER_INSTANCE: usize = 100;

/// Longest named value, in characters.
pub const NAMED_VALUE_CHARS: usize = 4096;

/// Largest policy fragment, in bytes: "32 KB" in the older pages and the live page as crawled,
/// 512 KB in the newest copy; built for the stricter (and "KB" read as 1,000 bytes).
pub const FRAGMENT_BYTES: usize = 32_000;

/// Where the fragment size comes from.
pub const SOURCE_FRAGMENT_SIZE: &str = "AD policy-fragments.md older copies (find_string ids 5140168711, 1159659873) and LEARN https://learn.microsoft.com/en-us/Azure/api-management/policy-fragments: 32 KB; AD policy-fragments.md @0729160b (02/10/2026): 512 KB; stricter taken";

/// Where the named-value value rules come from.
pub const SOURCE_NAMED_VALUE: &str = "SPEC NamedValueCreateContractProperties.value: \"It may not be empty or consist only of whitespace\"; AD api-management-howto-properties.md @05cc6ac0 (07/11/2024) and the limits includes: 4,096 characters";

fn sku_key(sku: &str) -> String {
    sku.to_ascii_lowercase().replace([' ', '_'], "")
}

/// Policy fragments per instance: 100 on Premium (classic and v2), 50 on every other tier
/// (Consumption, Developer, Basic, Standard, Basic v2, Standard v2; tiers the tables do not
/// name get the stricter 50).
pub fn fragments_per_instance(sku: &str) -> usize {
    match sku_key(sku).as_str() {
        "premium" | "premiumv2" => 100,
        _ => 50,
    }
}

/// Largest policy document in bytes: 16 KiB on Consumption, 256 KiB elsewhere.
pub fn policy_document_bytes(sku: &str) -> usize {
    if sku_key(sku) == "consumption" {
        16 * 1024
    } else {
        256 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_sku() {
        assert_eq!(fragments_per_instance("Basic"), 50);
        assert_eq!(fragments_per_instance("StandardV2"), 50);
        assert_eq!(fragments_per_instance("Premium"), 100);
        assert_eq!(policy_document_bytes("Consumption"), 16_384);
        assert_eq!(policy_document_bytes("Developer"), 262_144);
    }
}
