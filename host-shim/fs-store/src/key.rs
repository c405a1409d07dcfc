//! The shape of store keys, which every backend enforces.
//!
//! A key is `<dir>/<name>`, both `[A-Za-z0-9-]+` (the layout is in
//! `accord_core::coordinator::store`). Nothing else is accepted, so a key
//! can never leave the store directory, name a temporary file (those start
//! with a dot) or collide with another key after a backend's own encoding.

use accord_core::coordinator::StoreError;

/// Whether `part` is a non-empty `[A-Za-z0-9-]+`.
pub fn valid_component(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `key` has the shape `<dir>/<name>`, both `[A-Za-z0-9-]+`.
pub fn valid_key(key: &str) -> bool {
    split_key(key).is_ok()
}

/// Splits a key into its directory and name, refusing any other shape.
pub fn split_key(key: &str) -> Result<(&str, &str), StoreError> {
    match key.split_once('/') {
        Some((dir, name)) if valid_component(dir) && valid_component(name) => Ok((dir, name)),
        _ => Err(StoreError::Failed(format!(
            "invalid store key {key:?} (expected <dir>/<name>, both [A-Za-z0-9-]+)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_one_shape() {
        for key in ["manifests/abc", "transitions/latest", "a-b/C-9"] {
            assert!(valid_key(key), "{key:?}");
        }
        assert_eq!(split_key("a-b/c").unwrap(), ("a-b", "c"));
        for key in [
            "", "a", "/a", "a/", "../a", "a/../b", "a/b/c", "a/.b", "a/b.c", "a b/c", "ä/b",
            "a_b/c",
        ] {
            assert!(!valid_key(key), "{key:?}");
            assert!(
                matches!(split_key(key), Err(StoreError::Failed(_))),
                "{key:?}"
            );
        }
    }
}
