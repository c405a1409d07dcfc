//! Kubernetes resources: reading multi-document YAML and finding the pod
//! templates (and their annotations) that `accord manifest generate` turns
//! into policies.
//!
//! Pod-bearing kinds and where their pod annotations are:
//!
//! | kind | pod annotations |
//! |---|---|
//! | Pod | `metadata.annotations` |
//! | Deployment, StatefulSet, DaemonSet, ReplicaSet, Job | `spec.template.metadata.annotations` |
//! | CronJob | `spec.jobTemplate.spec.template.metadata.annotations` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_yaml_ng::Value;

/// One YAML document that is a Kubernetes object.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The file it came from.
    pub file: PathBuf,
    /// 0-based index of the document within the file (empty documents
    /// count).
    pub doc_index: usize,
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, `default` when absent.
    pub namespace: String,
    /// `metadata.annotations` of the object itself.
    pub annotations: BTreeMap<String, String>,
    /// The pod template's annotations, for pod-bearing kinds (for a Pod:
    /// its own annotations).
    pub pod_annotations: Option<BTreeMap<String, String>>,
}

impl Resource {
    /// `file, document N, Kind namespace/name`: how errors name a resource.
    pub fn location(&self) -> String {
        format!(
            "{}, document {}, {} {}/{}",
            self.file.display(),
            self.doc_index,
            self.kind,
            self.namespace,
            self.name
        )
    }

    /// An annotation of the pod template, else of the object itself.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.pod_annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .or_else(|| self.annotations.get(key))
            .map(String::as_str)
    }
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Object {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Metadata,
}

/// The YAML files named by the arguments: files as given, directories as
/// every `*.yaml` / `*.yml` directly inside, sorted by name.
pub fn expand_paths(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(arg)
                .with_context(|| format!("cannot read directory {}", arg.display()))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                bail!(
                    "{}: no *.yaml or *.yml files in this directory",
                    arg.display()
                );
            }
            files.extend(inside);
        } else {
            files.push(arg.clone());
        }
    }
    Ok(files)
}

/// Why the resources could not be read: an unreadable file (usage, exit
/// 2) or a malformed document (invalid, exit 1).
#[derive(Debug)]
pub enum ReadError {
    /// The file cannot be read.
    Io(anyhow::Error),
    /// The file is not Kubernetes YAML.
    Invalid(String),
}

/// Parses every document of one YAML file.
pub fn read_file(path: &Path) -> Result<Vec<Resource>, ReadError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(ReadError::Io)?;
    parse(path, &text).map_err(ReadError::Invalid)
}

/// Parses the documents of `text` (from `path`, for messages).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Resource>, String> {
    let mut out = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| format!("{}, document {index}: not YAML: {e}", path.display()))?;
        if value.is_null() {
            continue;
        }
        let object: Object = serde_yaml_ng::from_value(value.clone()).map_err(|e| {
            format!(
                "{}, document {index}: not a Kubernetes object: {e}",
                path.display()
            )
        })?;
        if object.kind.is_empty() {
            return Err(format!(
                "{}, document {index}: not a Kubernetes object (no `kind`)",
                path.display()
            ));
        }
        let name = object.metadata.name.clone().unwrap_or_default();
        let namespace = object
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let template_path: Option<&[&str]> = match object.kind.as_str() {
            "Pod" => Some(&["metadata"]),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                Some(&["spec", "template", "metadata"])
            }
            "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "metadata"]),
            _ => None,
        };
        let here = |what: &str| {
            format!(
                "{}, document {index}, {} {namespace}/{name}: {what}",
                path.display(),
                object.kind
            )
        };
        let pod_annotations = match template_path {
            None => None,
            Some(steps) => {
                let mut node = Some(&value);
                for step in steps {
                    node = node.and_then(|n| n.get(*step));
                }
                let annotations = match node.and_then(|m| m.get("annotations")) {
                    None | Some(Value::Null) => BTreeMap::new(),
                    Some(a) => serde_yaml_ng::from_value(a.clone()).map_err(|e| {
                        here(&format!("pod annotations must map strings to strings: {e}"))
                    })?,
                };
                Some(annotations)
            }
        };
        if name.is_empty() && template_path.is_some() {
            return Err(here("metadata.name is required"));
        }
        out.push(Resource {
            file: path.to_path_buf(),
            doc_index: index,
            api_version: object.api_version,
            kind: object.kind,
            name,
            namespace,
            annotations: object.metadata.annotations.unwrap_or_default(),
            pod_annotations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pod_templates_of_every_kind() {
        let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {a: "1"}}
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns}
spec: {template: {metadata: {annotations: {a: "2"}}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec: {jobTemplate: {spec: {template: {metadata: {annotations: {a: "3"}}}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {x: y}
"#;
        let rs = parse(Path::new("t.yaml"), text).unwrap();
        assert_eq!(rs.len(), 4);
        assert_eq!(rs[0].annotation("a"), Some("1"));
        assert_eq!(rs[1].annotation("a"), Some("2"));
        assert_eq!(rs[1].namespace, "ns");
        assert_eq!(rs[1].doc_index, 2);
        assert_eq!(rs[2].annotation("a"), Some("3"));
        assert_eq!(rs[2].namespace, "default");
        assert!(rs[3].pod_annotations.is_none());
    }

    #[test]
    fn malformed_yaml_names_file_and_document() {
        let err = parse(
            Path::new("t.yaml"),
            "kind: Pod\nmetadata: {name: p}\n---\n: : [\n",
        )
        .unwrap_err();
        assert!(err.contains("t.yaml, document 1"), "{err}");
    }
}
