//! The `podman run` arguments of a Kubernetes pod template, derived from
//! the YAML a user applies, as a kubelet would run its containers
//! (`cargo xtask container-test`).
//!
//! What is carried over, per container: the image (as written: pinned by
//! digest), `command` (as `--entrypoint`), `args` (with the kubelet's
//! `$(VAR)` expansion), `env` (`value`, and `fieldRef` to the pod's
//! name, namespace and IP), `workingDir`, `volumeMounts` of `emptyDir`
//! (a directory per pod, mode 0777 as the kubelet makes it) and
//! `hostPath` volumes (under the test node's root directory, never the
//! machine's own paths), `readOnly`, the security context (user and
//! group, `runAsNonRoot` checked, read-only root filesystem without
//! podman's extra tmpfs mounts, capabilities, no privilege escalation,
//! privileged) and memory and CPU limits. Anything else that would change
//! how the container runs (other volume kinds, `subPath`, `envFrom`, other
//! field references) is refused, so a generated file the test cannot run
//! faithfully fails the test instead of running differently.
//!
//! Not carried over: probes (the test polls them itself), ports (every
//! container shares the host's network namespace), resource requests,
//! scheduling. What the kubelet or the hypervisor adds (the service
//! account's API access, HOST_DATA) the caller passes in [`Launch`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize as _;
use serde_yaml_ng::Value;

/// The annotation that carries a pod's Kata init-data.
pub const INIT_DATA_ANNOTATION: &str = "io.katacontainers.config.hypervisor.cc_init_data";

/// One pod of a workload resource (replica 0 of a StatefulSet, one pod of
/// a Deployment), with its template.
#[derive(Clone, Debug)]
pub struct Pod {
    /// The resource's kind and name, e.g. `StatefulSet/coordinator`.
    pub resource: String,
    /// The pod's name: `NAME-0` for a StatefulSet, `NAME-container-test`
    /// otherwise.
    pub name: String,
    pub namespace: String,
    pub annotations: BTreeMap<String, String>,
    spec: Value,
}

/// What the caller adds to every container of a pod: the test's
/// stand-ins for the kubelet and the hypervisor.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Prefix of the containers' names (`PREFIX-POD-CONTAINER`).
    pub prefix: String,
    /// A label put on every container (`KEY=VALUE`), to find them again.
    pub label: String,
    /// Where the pod's `emptyDir` volumes live (one directory each).
    pub pod_dir: PathBuf,
    /// The test node's root: a `hostPath` of `/P` is `NODE_ROOT/P`.
    pub node_root: PathBuf,
    /// Host names resolving to 127.0.0.1 (the Services).
    pub hosts: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra bind mounts (host path, container path, read-only).
    pub mounts: Vec<(PathBuf, String, bool)>,
}

/// The podman arguments of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRun {
    /// The container's name in the pod spec.
    pub name: String,
    /// The container's name under podman.
    pub podman_name: String,
    /// `podman run`'s arguments after `run` (options, image, args).
    pub args: Vec<String>,
    /// The image reference.
    pub image: String,
}

/// The pods of every workload resource in a multi-document YAML text.
pub fn pods(yaml: &str) -> anyhow::Result<Vec<Pod>> {
    let mut pods = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let doc = Value::deserialize(document).with_context(|| format!("document {i}"))?;
        let kind = str_at(&doc, &["kind"]).unwrap_or_default();
        let name = str_at(&doc, &["metadata", "name"]).unwrap_or_default();
        let namespace = str_at(&doc, &["metadata", "namespace"]).unwrap_or("default");
        let template = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
                at(&doc, &["spec", "template"])
            }
            "Pod" => Some(&doc),
            _ => None,
        };
        let Some(template) = template else { continue };
        let spec = at(template, &["spec"])
            .with_context(|| format!("{kind}/{name}: no pod spec"))?
            .clone();
        let annotations = match at(template, &["metadata", "annotations"]) {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        };
        let pod_name = match kind {
            "StatefulSet" => format!("{name}-0"),
            "Pod" => name.to_string(),
            _ => format!("{name}-container-test"),
        };
        pods.push(Pod {
            resource: format!("{kind}/{name}"),
            name: pod_name,
            namespace: namespace.to_string(),
            annotations,
            spec,
        });
    }
    Ok(pods)
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

fn strings(value: Option<&Value>, what: &str) -> anyhow::Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => bail!("{what}: {other:?} is not a string"),
            })
            .collect(),
        Some(other) => bail!("{what}: {other:?} is not a list"),
    }
}

/// The kubelet's `$(VAR)` expansion: `$(NAME)` of a defined variable is
/// its value, `$$` is `$`, anything else stays as written.
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(value) = env.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Kubernetes memory quantity to bytes (`200Mi`, `1Gi`, `500M`, `1024`).
fn memory_bytes(quantity: &str) -> anyhow::Result<u64> {
    const UNITS: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| Some((quantity.strip_suffix(suffix)?, *unit)))
        .unwrap_or((quantity, 1));
    let n: u64 = number
        .parse()
        .with_context(|| format!("memory quantity {quantity:?}"))?;
    Ok(n * unit)
}

/// Kubernetes CPU quantity to podman's `--cpus` (`500m` → `0.5`).
fn cpus(quantity: &str) -> anyhow::Result<String> {
    let millis: u64 = match quantity.strip_suffix('m') {
        Some(m) => m.parse(),
        None => quantity.parse::<u64>().map(|c| c * 1000),
    }
    .with_context(|| format!("cpu quantity {quantity:?}"))?;
    Ok(format!("{}.{:03}", millis / 1000, millis % 1000))
}

impl Pod {
    /// The init containers' and the containers' podman arguments, in
    /// order.
    pub fn runs(&self, launch: &Launch) -> anyhow::Result<(Vec<ContainerRun>, Vec<ContainerRun>)> {
        let list = |key: &str| -> anyhow::Result<Vec<ContainerRun>> {
            match self.spec.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Sequence(cs)) => cs.iter().map(|c| self.run(c, launch)).collect(),
                Some(_) => bail!("{}: spec.{key} is not a list", self.resource),
            }
        };
        Ok((list("initContainers")?, list("containers")?))
    }

    /// The volume `name` of the pod spec.
    fn volume(&self, name: &str) -> Option<&Value> {
        let Some(Value::Sequence(volumes)) = self.spec.get("volumes") else {
            return None;
        };
        volumes.iter().find(|v| str_at(v, &["name"]) == Some(name))
    }

    fn run(&self, c: &Value, launch: &Launch) -> anyhow::Result<ContainerRun> {
        let name = str_at(c, &["name"]).context("a container without a name")?;
        let what = format!("{} container {name}", self.resource);
        let image = str_at(c, &["image"]).with_context(|| format!("{what}: no image"))?;
        let podman_name = format!("{}-{}-{name}", launch.prefix, self.name);
        let mut args = vec![
            "--name".to_string(),
            podman_name.clone(),
            "--label".into(),
            launch.label.clone(),
            "--network".into(),
            "host".into(),
        ];
        for host in &launch.hosts {
            args.push(format!("--add-host={host}:127.0.0.1"));
        }
        for key in ["envFrom", "lifecycle", "stdin", "tty"] {
            if c.get(key).is_some() {
                bail!("{what}: `{key}` is not supported by the container test");
            }
        }

        // Environment: the pod spec's, then the launcher's.
        let mut env = BTreeMap::new();
        if let Some(Value::Sequence(vars)) = c.get("env") {
            for var in vars {
                let key = str_at(var, &["name"])
                    .with_context(|| format!("{what}: env without a name"))?;
                let value = if let Some(v) = var.get("value") {
                    v.as_str()
                        .with_context(|| format!("{what}: env {key}: not a string"))?
                        .to_string()
                } else if let Some(path) = str_at(var, &["valueFrom", "fieldRef", "fieldPath"]) {
                    match path {
                        "metadata.name" => self.name.clone(),
                        "metadata.namespace" => self.namespace.clone(),
                        "status.podIP" => "127.0.0.1".to_string(),
                        other => bail!("{what}: env {key}: fieldRef {other} is not supported"),
                    }
                } else {
                    bail!("{what}: env {key}: only value and fieldRef are supported");
                };
                let value = expand(&value, &env);
                env.insert(key.to_string(), value);
            }
        }
        for (key, value) in &launch.env {
            env.insert(key.clone(), value.clone());
        }
        for (key, value) in &env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }

        // Volumes.
        if let Some(Value::Sequence(mounts)) = c.get("volumeMounts") {
            for m in mounts {
                let volume = str_at(m, &["name"])
                    .with_context(|| format!("{what}: a mount without a name"))?;
                let path = str_at(m, &["mountPath"])
                    .with_context(|| format!("{what}: mount {volume}: no mountPath"))?;
                if m.get("subPath").is_some() || m.get("subPathExpr").is_some() {
                    bail!("{what}: mount {volume}: subPath is not supported");
                }
                let read_only = m.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
                let source = self
                    .volume_source(volume, launch)
                    .with_context(|| format!("{what}: mount {volume}"))?;
                args.push("--volume".into());
                args.push(format!(
                    "{}:{path}{}",
                    source.display(),
                    if read_only { ":ro" } else { "" }
                ));
            }
        }
        for (host, path, read_only) in &launch.mounts {
            args.push("--volume".into());
            args.push(format!(
                "{}:{path}{}",
                host.display(),
                if *read_only { ":ro" } else { "" }
            ));
        }

        // Security context: the pod's, overridden by the container's.
        let pod_sc = self.spec.get("securityContext");
        let sc = c.get("securityContext");
        let field = |key: &str| {
            sc.and_then(|s| s.get(key))
                .or_else(|| pod_sc.and_then(|s| s.get(key)))
        };
        let user = field("runAsUser").and_then(Value::as_u64);
        let group = field("runAsGroup").and_then(Value::as_u64);
        if field("runAsNonRoot").and_then(Value::as_bool) == Some(true) && user == Some(0) {
            bail!("{what}: runAsNonRoot with runAsUser 0");
        }
        match (user, group) {
            (Some(u), Some(g)) => args.push(format!("--user={u}:{g}")),
            (Some(u), None) => args.push(format!("--user={u}")),
            (None, Some(_)) => bail!("{what}: runAsGroup without runAsUser is not supported"),
            (None, None) => {}
        }
        if let Some(sc) = sc {
            if sc.get("readOnlyRootFilesystem").and_then(Value::as_bool) == Some(true) {
                // No tmpfs on /tmp, /run, …: Kubernetes mounts none.
                args.push("--read-only".into());
                args.push("--read-only-tmpfs=false".into());
            }
            if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
                args.push("--security-opt=no-new-privileges".into());
            }
            if sc.get("privileged").and_then(Value::as_bool) == Some(true) {
                args.push("--privileged".into());
            }
            for cap in strings(
                at(sc, &["capabilities", "drop"]),
                &format!("{what}: capabilities.drop"),
            )? {
                args.push(format!("--cap-drop={}", cap.to_lowercase()));
            }
            for cap in strings(
                at(sc, &["capabilities", "add"]),
                &format!("{what}: capabilities.add"),
            )? {
                args.push(format!("--cap-add={}", cap.to_lowercase()));
            }
        }

        // Limits.
        if let Some(memory) = str_at(c, &["resources", "limits", "memory"]) {
            args.push(format!("--memory={}", memory_bytes(memory)?));
        }
        if let Some(cpu) = at(c, &["resources", "limits", "cpu"]) {
            let cpu = match cpu {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => bail!("{what}: cpu limit {cpu:?}"),
            };
            args.push(format!("--cpus={}", cpus(&cpu)?));
        }

        if let Some(dir) = str_at(c, &["workingDir"]) {
            args.push(format!("--workdir={dir}"));
        }
        let command = strings(c.get("command"), &format!("{what}: command"))?;
        if !command.is_empty() {
            let command: Vec<String> = command.iter().map(|a| expand(a, &env)).collect();
            args.push(format!("--entrypoint={}", serde_json::to_string(&command)?));
        }
        args.push(image.to_string());
        for arg in strings(c.get("args"), &format!("{what}: args"))? {
            args.push(expand(&arg, &env));
        }
        Ok(ContainerRun {
            name: name.to_string(),
            podman_name,
            args,
            image: image.to_string(),
        })
    }

    /// Where the volume `name` lives on this machine.
    fn volume_source(&self, name: &str, launch: &Launch) -> anyhow::Result<PathBuf> {
        let volume = self
            .volume(name)
            .with_context(|| format!("the pod has no volume {name}"))?;
        if volume.get("emptyDir").is_some() {
            return Ok(launch.pod_dir.join("volumes").join(name));
        }
        if let Some(path) = str_at(volume, &["hostPath", "path"]) {
            let relative = Path::new(path)
                .strip_prefix("/")
                .with_context(|| format!("hostPath {path} is not absolute"))?;
            if relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                bail!("hostPath {path}: `..` is not supported");
            }
            return Ok(launch.node_root.join(relative));
        }
        bail!("only emptyDir and hostPath volumes are supported by the container test")
    }

    /// The `emptyDir` volumes' directories, to create (mode 0777) before
    /// the pod starts.
    pub fn empty_dirs(&self, launch: &Launch) -> Vec<PathBuf> {
        let Some(Value::Sequence(volumes)) = self.spec.get("volumes") else {
            return Vec::new();
        };
        volumes
            .iter()
            .filter(|v| v.get("emptyDir").is_some())
            .filter_map(|v| str_at(v, &["name"]))
            .map(|name| launch.pod_dir.join("volumes").join(name))
            .collect()
    }

    /// Whether the pod gets API access (`automountServiceAccountToken` is
    /// not false and it names a service account).
    pub fn has_api_access(&self) -> bool {
        self.spec.get("serviceAccountName").is_some()
            && self
                .spec
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
                != Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata: {name: coordinator}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: coordinator}
spec:
  template:
    metadata:
      annotations: {a: b}
    spec:
      serviceAccountName: coordinator
      initContainers:
      - name: init
        image: r/i@sha256:11
        args: [\"--pod\", \"$(POD_NAME)\", \"$$(POD_NAME)\", \"$(UNSET)\"]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      containers:
      - name: agent
        image: r/a@sha256:22
        command: [/bin/x]
        args: [coordinator]
        securityContext:
          runAsUser: 0
          runAsGroup: 0
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
        resources: {limits: {memory: 200Mi, cpu: 500m}}
        volumeMounts:
        - {name: cache, mountPath: /cache}
        - {name: chip, mountPath: /chip, readOnly: true}
      volumes:
      - {name: cache, emptyDir: {}}
      - name: chip
        hostPath: {path: /var/lib/chip, type: Directory}
";

    fn launch() -> Launch {
        Launch {
            prefix: "t".into(),
            label: "k=v".into(),
            pod_dir: "/pods/p".into(),
            node_root: "/node".into(),
            hosts: vec!["svc".into()],
            env: vec![("HD".into(), "00".into())],
            mounts: vec![],
        }
    }

    #[test]
    fn a_statefulset_becomes_podman_arguments() {
        let pods = pods(YAML).unwrap();
        assert_eq!(pods.len(), 1);
        let pod = &pods[0];
        assert_eq!(pod.name, "coordinator-0");
        assert_eq!(pod.namespace, "default");
        assert_eq!(pod.annotations["a"], "b");
        assert!(pod.has_api_access());
        let (init, containers) = pod.runs(&launch()).unwrap();
        let init = &init[0];
        assert_eq!(init.podman_name, "t-coordinator-0-init");
        let tail: Vec<&str> = init
            .args
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "r/i@sha256:11",
                "--pod",
                "coordinator-0",
                "$(POD_NAME)",
                "$(UNSET)"
            ]
        );
        assert!(init.args.contains(&"POD_NAME=coordinator-0".to_string()));
        assert!(init.args.contains(&"HD=00".to_string()));
        assert!(init.args.contains(&"--add-host=svc:127.0.0.1".to_string()));
        let agent = &containers[0];
        for expected in [
            "--user=0:0",
            "--read-only",
            "--read-only-tmpfs=false",
            "--security-opt=no-new-privileges",
            "--cap-drop=all",
            "--memory=209715200",
            "--cpus=0.500",
            "/pods/p/volumes/cache:/cache",
            "/node/var/lib/chip:/chip:ro",
            "--entrypoint=[\"/bin/x\"]",
        ] {
            assert!(
                agent.args.contains(&expected.to_string()),
                "{expected}: {:?}",
                agent.args
            );
        }
        assert_eq!(agent.args.last().unwrap(), "coordinator");
        assert_eq!(
            pod.empty_dirs(&launch()),
            [PathBuf::from("/pods/p/volumes/cache")]
        );
    }

    #[test]
    fn what_cannot_run_faithfully_is_refused() {
        let refuse = |from: &str, to: &str| {
            let yaml = YAML.replace(from, to);
            let pod = pods(&yaml).unwrap().remove(0);
            format!("{:#}", pod.runs(&launch()).unwrap_err())
        };
        assert!(
            refuse(
                "{name: cache, emptyDir: {}}",
                "{name: cache, configMap: {name: x}}"
            )
            .contains("only emptyDir and hostPath")
        );
        assert!(
            refuse("fieldPath: metadata.name", "fieldPath: spec.nodeName")
                .contains("spec.nodeName")
        );
        assert!(refuse("mountPath: /cache}", "mountPath: /cache, subPath: x}").contains("subPath"));
        assert!(refuse("path: /var/lib/chip", "path: /var/../etc").contains(".."));
        assert!(
            refuse(
                "runAsGroup: 0\n",
                "runAsGroup: 0\n          runAsNonRoot: true\n"
            )
            .contains("runAsNonRoot")
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(memory_bytes("64Mi").unwrap(), 64 << 20);
        assert_eq!(memory_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(memory_bytes("4096").unwrap(), 4096);
        assert!(memory_bytes("lots").is_err());
        assert_eq!(cpus("2").unwrap(), "2.000");
        assert_eq!(cpus("250m").unwrap(), "0.250");
    }
}
