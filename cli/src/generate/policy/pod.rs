//! The pod template of a Kubernetes object, and what the names of its
//! pods will look like.
//!
//! | kind | pod template | pod names |
//! |---|---|---|
//! | Pod | the object | `metadata.name` (or `generateName` + suffix) |
//! | Deployment | `spec.template` | `NAME-HASH-SUFFIX` |
//! | ReplicaSet, DaemonSet, Job | `spec.template` | `NAME-SUFFIX` |
//! | StatefulSet | `spec.template` | `NAME-ORDINAL` |
//! | CronJob | `spec.jobTemplate.spec.template` | `NAME-TIME-SUFFIX` |

use serde_json::Value;

use super::PolicyError;

/// A pod template with the names its pods get.
pub struct PodTemplate<'a> {
    /// `Kind/name` for error messages.
    pub resource: String,
    /// Template metadata (labels, annotations), or `null`.
    pub metadata: &'a Value,
    /// The pod spec.
    pub spec: &'a Value,
    /// An anchored regex over the sandbox (pod) name.
    pub name_regex: String,
    /// The pod name when it is fixed (a Pod with `metadata.name`).
    pub fixed_name: Option<String>,
    /// `metadata.namespace` of the object, when written.
    pub namespace: Option<String>,
}

const SUFFIX: &str = "[a-z0-9]+";

/// Finds the pod template of `resource`.
pub fn template(resource: &Value) -> Result<PodTemplate<'_>, PolicyError> {
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta = resource.get("metadata").unwrap_or(&Value::Null);
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate_name = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let shown = if name.is_empty() { generate_name } else { name };
    let resource_name = format!("{kind}/{shown}");
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let not_a_pod = |detail: &str| PolicyError::NotAPod {
        resource: resource_name.clone(),
        detail: detail.to_string(),
    };
    if name.is_empty() && (kind != "Pod" || generate_name.is_empty()) {
        return Err(not_a_pod("metadata.name is missing"));
    }
    let n = regex_escape(name);
    let (tmpl, name_regex, fixed_name) = match kind {
        "Pod" if name.is_empty() => (
            resource,
            format!("^{}{SUFFIX}$", regex_escape(generate_name)),
            None,
        ),
        "Pod" => (resource, format!("^{n}$"), Some(name.to_string())),
        "Deployment" => (
            pointer(resource, "/spec/template"),
            format!("^{n}-{SUFFIX}-{SUFFIX}$"),
            None,
        ),
        "ReplicaSet" | "DaemonSet" | "Job" => (
            pointer(resource, "/spec/template"),
            format!("^{n}-{SUFFIX}$"),
            None,
        ),
        "StatefulSet" => (
            pointer(resource, "/spec/template"),
            format!("^{n}-[0-9]+$"),
            None,
        ),
        "CronJob" => (
            pointer(resource, "/spec/jobTemplate/spec/template"),
            format!("^{n}-[0-9]+-{SUFFIX}$"),
            None,
        ),
        other => return Err(not_a_pod(&format!("kind {other:?} has no pod template"))),
    };
    let spec = tmpl
        .get("spec")
        .filter(|s| s.is_object())
        .ok_or_else(|| not_a_pod("no pod spec"))?;
    Ok(PodTemplate {
        resource: resource_name,
        metadata: tmpl.get("metadata").unwrap_or(&Value::Null),
        spec,
        name_regex,
        fixed_name,
        namespace,
    })
}

fn pointer<'a>(v: &'a Value, p: &str) -> &'a Value {
    v.pointer(p).unwrap_or(&Value::Null)
}

/// Escapes the regex metacharacters of `s`.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl PodTemplate<'_> {
    /// A pod-template annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// A pod-template label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata
            .get("labels")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }
}
