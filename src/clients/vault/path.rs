//! Paths of Vault's HTTP API built from names a user gives: each name or path segment is
//! percent-encoded, so a `?`, `#`, `%` or space in a name reaches Vault as part of that name
//! (which Vault then refuses or treats as the literal name) and never as a query, a fragment or
//! another path. A segment that Vault's HTTP server would resolve to another path (`.`, `..`)
//! or that names nothing (empty) is refused before any request is made.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::VaultError;

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment (a policy, role or device name): percent-encoded; `/` inside it is
/// encoded too, so the name can never address a deeper path. `what` names the value in the
/// error, e.g. "role name".
pub fn segment(what: &str, name: &str) -> Result<String, VaultError> {
    check(what, name, name)?;
    Ok(utf8_percent_encode(name, SEGMENT).to_string())
}

/// A path of several segments (a mount path such as `jwt/ci`, a secret path), without leading
/// or trailing `/`: each segment percent-encoded. An empty segment (`a//b`), `.` or `..`
/// anywhere is refused.
pub fn segments(what: &str, path: &str) -> Result<String, VaultError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(invalid(what, path, "it is empty"));
    }
    let mut out = Vec::new();
    for part in trimmed.split('/') {
        check(what, path, part)?;
        out.push(utf8_percent_encode(part, SEGMENT).to_string());
    }
    Ok(out.join("/"))
}

fn check(what: &str, whole: &str, part: &str) -> Result<(), VaultError> {
    match part {
        "" => Err(invalid(what, whole, "it has an empty segment")),
        "." | ".." => Err(invalid(
            what,
            whole,
            "a `.` or `..` segment would make Vault serve another path",
        )),
        _ if part.chars().any(char::is_control) => {
            Err(invalid(what, whole, "it contains a control character"))
        }
        _ => Ok(()),
    }
}

fn invalid(what: &str, value: &str, why: &str) -> VaultError {
    VaultError::Config(format!(
        "the {what} {value:?} cannot be sent to Vault: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_never_becomes_a_query_fragment_or_another_path() {
        assert_eq!(segment("role name", "orders").unwrap(), "orders");
        assert_eq!(segment("role name", "orders?x").unwrap(), "orders%3Fx");
        assert_eq!(segment("role name", "a#b").unwrap(), "a%23b");
        assert_eq!(segment("role name", "a/b").unwrap(), "a%2Fb");
        assert_eq!(segment("role name", "a%2Fb").unwrap(), "a%252Fb");
        assert_eq!(segment("role name", "a b").unwrap(), "a%20b");
        assert_eq!(
            segment("role name", "ci@team.x_y-z~").unwrap(),
            "ci%40team.x_y-z~"
        );
    }

    #[test]
    fn a_path_keeps_its_segments_and_encodes_each() {
        assert_eq!(segments("mount path", "jwt").unwrap(), "jwt");
        assert_eq!(segments("mount path", "/jwt/ci/").unwrap(), "jwt/ci");
        assert_eq!(segments("mount path", "jwt/c?i").unwrap(), "jwt/c%3Fi");
    }

    #[test]
    fn segments_that_resolve_elsewhere_are_refused() {
        for bad in ["", ".", "..", "a\nb"] {
            let e = segment("role name", bad).unwrap_err().to_string();
            assert!(e.contains("role name"), "{e}");
        }
        for bad in ["", "/", "a//b", "a/../b", "./a", "a/."] {
            let e = segments("mount path", bad).unwrap_err().to_string();
            assert!(
                e.contains("mount path") && e.contains("cannot be sent"),
                "{e}"
            );
        }
    }
}
