//! accord's annotation vocabulary, shared by `accord generate` and
//! `accord manifest generate`.
//!
//! Every key is `accord.dev/<name>`; Contrast's
//! `contrast.edgeless.systems/<name>` is read as an alias, and so is the
//! old `accord.dev/role` for `accord.dev/pod-role` (with a deprecation
//! note on stderr). When both spellings are present, accord's wins.

use std::collections::BTreeMap;

/// accord's own prefix.
pub const PREFIX: &str = "accord.dev/";
/// Contrast's prefix, read as an alias.
pub const CONTRAST_PREFIX: &str = "contrast.edgeless.systems/";

/// `coordinator` marks the coordinator's pods (the host shim's discovery
/// reads it too).
pub const POD_ROLE: &str = "pod-role";
/// Comma-separated SANs of the workload certificate.
pub const SANS: &str = "sans";
/// The workload secret id.
pub const WORKLOAD_SECRET_ID: &str = "workload-secret-id";
/// `"true"`: `accord generate` injects no initializer.
pub const SKIP_INITIALIZER: &str = "skip-initializer";
/// Where the initializer's files appear in the containers (default
/// `/accord`).
pub const MOUNT_PATH: &str = "mount-path";

/// The old name of [`POD_ROLE`] (`accord manifest generate` before the
/// vocabulary was unified).
pub const DEPRECATED_ROLE: &str = "accord.dev/role";

/// The full accord key for `name`, e.g. `accord.dev/pod-role`.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The value of annotation `name` (without prefix) in `annotations`:
/// `accord.dev/NAME`, else `contrast.edgeless.systems/NAME`, else (for
/// the pod role) the deprecated `accord.dev/role`. `origin` names the
/// resource in the deprecation note.
pub fn lookup<'a>(
    annotations: &'a BTreeMap<String, String>,
    name: &str,
    origin: &str,
) -> Option<&'a str> {
    if let Some(v) = annotations.get(&key(name)) {
        return Some(v);
    }
    if let Some(v) = annotations.get(&format!("{CONTRAST_PREFIX}{name}")) {
        return Some(v);
    }
    if name == POD_ROLE
        && let Some(v) = annotations.get(DEPRECATED_ROLE)
    {
        eprintln!(
            "note: {origin}: annotation {DEPRECATED_ROLE} is deprecated; write {PREFIX}{POD_ROLE} \
             (the name the shipped coordinator YAML and the host shim's discovery use)"
        );
        return Some(v);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn accord_name_wins_then_contrast_then_deprecated() {
        let all = map(&[
            ("accord.dev/pod-role", "coordinator"),
            ("contrast.edgeless.systems/pod-role", "x"),
            ("accord.dev/role", "y"),
        ]);
        assert_eq!(lookup(&all, POD_ROLE, "t"), Some("coordinator"));
        let contrast = map(&[
            ("contrast.edgeless.systems/pod-role", "coordinator"),
            ("accord.dev/role", "y"),
        ]);
        assert_eq!(lookup(&contrast, POD_ROLE, "t"), Some("coordinator"));
        let old = map(&[("accord.dev/role", "coordinator")]);
        assert_eq!(lookup(&old, POD_ROLE, "t"), Some("coordinator"));
        // The deprecated alias is only for the role.
        let other = map(&[("accord.dev/role", "coordinator")]);
        assert_eq!(lookup(&other, SANS, "t"), None);
    }
}
