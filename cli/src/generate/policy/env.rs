//! A container's environment as the policy pins it: the image's `Env`,
//! then `envFrom`, then `env` (later entries replace earlier ones of the
//! same name, as the kubelet does), each either a literal value or, for
//! values only the cluster knows (pod IP, node name, a generated pod
//! name), a regex over the value. `$(VAR)` references in env values are
//! expanded as the kubelet does (`expand.rs`), from the pod spec's
//! variables only.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use serde_json::Value;

use super::PolicyError;
use super::expand::{expand, lookup};
use super::pod::{PodTemplate, regex_escape};

/// One pinned variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// The value, exactly.
    Literal(String),
    /// An unanchored regex over the value.
    Regex(String),
}

/// Where the container's variables come from.
pub struct EnvInput<'a> {
    /// The pod template (names, labels, annotations).
    pub pod: &'a PodTemplate<'a>,
    /// The container's name (for errors).
    pub container_name: &'a str,
    /// The container's spec.
    pub container: &'a Value,
    /// The image's `Env`.
    pub image_env: &'a [String],
    /// ConfigMaps of the input.
    pub config_maps: &'a [Value],
    /// Secrets of the input.
    pub secrets: &'a [Value],
}

/// A container's resolved environment.
pub struct Resolved {
    /// What the pod spec defines (`envFrom`, then `env`): the variables
    /// the kubelet expands `$(VAR)` in command and args with.
    pub spec: Vec<(String, EnvValue)>,
    /// What the container gets: the image's `Env`, replaced by the spec's.
    pub all: Vec<(String, EnvValue)>,
}

fn set(out: &mut Vec<(String, EnvValue)>, name: String, value: EnvValue) {
    out.retain(|(n, _)| *n != name);
    out.push((name, value));
}

/// Resolves the environment, in order, one entry per name.
pub fn resolve(input: &EnvInput) -> Result<Resolved, PolicyError> {
    let mut out: Vec<(String, EnvValue)> = Vec::new();
    let err = |variable: &str, detail: String| PolicyError::EnvRef {
        resource: input.pod.resource.clone(),
        container: input.container_name.to_string(),
        variable: variable.to_string(),
        detail,
    };
    for from in array(input.container.get("envFrom")) {
        let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or("");
        let (source, kind, objects) = if let Some(r) = from.get("configMapRef") {
            (r, "ConfigMap", input.config_maps)
        } else if let Some(r) = from.get("secretRef") {
            (r, "Secret", input.secrets)
        } else {
            return Err(err("envFrom", "neither configMapRef nor secretRef".into()));
        };
        let name = source.get("name").and_then(Value::as_str).unwrap_or("");
        let optional = source
            .get("optional")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match find(objects, input.pod, name) {
            Some(object) => {
                for (key, value) in object_data(object, kind).map_err(|d| err("envFrom", d))? {
                    set(&mut out, format!("{prefix}{key}"), EnvValue::Literal(value));
                }
            }
            None if optional => {}
            None => {
                return Err(err(
                    "envFrom",
                    format!("{kind} {name:?} is not in the input"),
                ));
            }
        }
    }
    for entry in array(input.container.get("env")) {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err(err("env", "an entry has no name".into()));
        }
        let value = if let Some(from) = entry.get("valueFrom") {
            match value_from(input, from).map_err(|d| err(&name, d))? {
                Some(v) => v,
                None => continue,
            }
        } else {
            let raw = entry.get("value").and_then(Value::as_str).unwrap_or("");
            expand(raw, lookup(&out))
        };
        set(&mut out, name, value);
    }
    let mut all = Vec::new();
    for entry in input.image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        set(
            &mut all,
            name.to_string(),
            EnvValue::Literal(value.to_string()),
        );
    }
    for (name, value) in &out {
        set(&mut all, name.clone(), value.clone());
    }
    Ok(Resolved { spec: out, all })
}

fn value_from(input: &EnvInput, from: &Value) -> Result<Option<EnvValue>, String> {
    if let Some(field) = from.get("fieldRef") {
        let path = field.get("fieldPath").and_then(Value::as_str).unwrap_or("");
        return field_ref(input.pod, path).map(Some);
    }
    if from.get("resourceFieldRef").is_some() {
        return Ok(Some(EnvValue::Regex("[0-9]+".into())));
    }
    let (source, kind, objects) = if let Some(r) = from.get("configMapKeyRef") {
        (r, "ConfigMap", input.config_maps)
    } else if let Some(r) = from.get("secretKeyRef") {
        (r, "Secret", input.secrets)
    } else {
        return Err("valueFrom names no source accord knows".into());
    };
    let name = source.get("name").and_then(Value::as_str).unwrap_or("");
    let key = source.get("key").and_then(Value::as_str).unwrap_or("");
    let optional = source
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let value = match find(objects, input.pod, name) {
        Some(object) => object_data(object, kind)?.remove(key),
        None => None,
    };
    match value {
        Some(v) => Ok(Some(EnvValue::Literal(v))),
        None if optional => Ok(None),
        None => Err(format!(
            "{kind} {name:?} with key {key:?} is not in the input"
        )),
    }
}

fn field_ref(pod: &PodTemplate, path: &str) -> Result<EnvValue, String> {
    let ip = "[0-9a-fA-F.:,]*".to_string();
    Ok(match path {
        "metadata.name" => match &pod.fixed_name {
            Some(n) => EnvValue::Literal(n.clone()),
            None => EnvValue::Regex(
                pod.name_regex
                    .trim_start_matches('^')
                    .trim_end_matches('$')
                    .to_string(),
            ),
        },
        "metadata.namespace" => match &pod.namespace {
            Some(n) => EnvValue::Literal(n.clone()),
            None => EnvValue::Regex("[a-z0-9]([-a-z0-9]*[a-z0-9])?".into()),
        },
        "metadata.uid" => EnvValue::Regex("[0-9a-f-]{36}".into()),
        "spec.nodeName" => EnvValue::Regex("[A-Za-z0-9.-]*".into()),
        "spec.serviceAccountName" => EnvValue::Literal(
            pod.spec
                .get("serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string(),
        ),
        "status.podIP" | "status.podIPs" | "status.hostIP" | "status.hostIPs" => {
            EnvValue::Regex(ip)
        }
        _ => {
            let label = bracketed(path, "metadata.labels");
            let annotation = bracketed(path, "metadata.annotations");
            match (label, annotation) {
                (Some(k), _) => EnvValue::Literal(pod.label(&k).unwrap_or("").to_string()),
                (_, Some(k)) => EnvValue::Literal(pod.annotation(&k).unwrap_or("").to_string()),
                _ => return Err(format!("fieldRef {path:?} is not supported")),
            }
        }
    })
}

/// `metadata.labels['key']` → `key`.
fn bracketed(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    let inner = rest.strip_prefix("['").and_then(|r| r.strip_suffix("']"));
    let inner = inner.or_else(|| rest.strip_prefix("[\"").and_then(|r| r.strip_suffix("\"]")))?;
    Some(inner.to_string())
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The ConfigMap or Secret `name` in the pod's namespace: a pod only
/// sees its own namespace's. An unwritten (or empty) namespace is
/// `default`, on both sides, as everywhere in `accord generate`.
fn find<'a>(objects: &'a [Value], pod: &PodTemplate, name: &str) -> Option<&'a Value> {
    fn namespace(n: Option<&str>) -> &str {
        n.filter(|n| !n.is_empty()).unwrap_or("default")
    }
    let pod_namespace = namespace(pod.namespace.as_deref());
    objects.iter().find(|o| {
        o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            && namespace(o.pointer("/metadata/namespace").and_then(Value::as_str)) == pod_namespace
    })
}

/// The key → value map of a ConfigMap (`data`) or Secret (`stringData`,
/// then base64 `data`).
fn object_data(object: &Value, kind: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let plain = |field: &str| object.get(field).and_then(Value::as_object);
    if kind == "Secret" {
        for (k, v) in plain("data").into_iter().flatten() {
            let text = v.as_str().unwrap_or("");
            let bytes =
                Base64::decode_vec(text).map_err(|_| format!("Secret data {k:?} is not base64"))?;
            let s =
                String::from_utf8(bytes).map_err(|_| format!("Secret data {k:?} is not UTF-8"))?;
            out.insert(k.clone(), s);
        }
        for (k, v) in plain("stringData").into_iter().flatten() {
            out.insert(k.clone(), scalar(v));
        }
    } else {
        for (k, v) in plain("data").into_iter().flatten() {
            out.insert(k.clone(), scalar(v));
        }
    }
    Ok(out)
}

/// A YAML scalar as Kubernetes would read it into a string.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The anchored regex of one `NAME=VALUE` entry.
pub fn entry_regex(name: &str, value: &EnvValue) -> String {
    match value {
        EnvValue::Literal(v) => format!("^{}={}$", regex_escape(name), regex_escape(v)),
        EnvValue::Regex(r) => format!("^{}=({r})$", regex_escape(name)),
    }
}
