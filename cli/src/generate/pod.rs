//! One pod template: finding it in a Kubernetes object, and the rewrite
//! `accord generate` applies to it (runtime class, the initializer init
//! container with its security context and its shared volume, the
//! init-data annotation).
//!
//! The rewrite first removes what an earlier run injected (the container
//! [`INITIALIZER_NAME`], the volume [`VOLUME_NAME`] and its mounts), so a
//! second run on its own output reproduces it byte for byte.

use serde_yaml_ng::{Mapping, Value};

/// The injected init container's name.
pub const INITIALIZER_NAME: &str = "accord-initializer";
/// The shared volume the initializer writes `tls-config/` and `secrets/`
/// into.
pub const VOLUME_NAME: &str = "accord-shared";
/// Where the initializer itself mounts the shared volume, and the default
/// in the other containers (`accord.dev/mount-path` overrides).
pub const DEFAULT_MOUNT_PATH: &str = "/accord";

/// The steps from an object to its pod template (the mapping holding
/// `metadata` and `spec`) for a pod-bearing kind.
pub fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&[]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&["spec", "template"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// The pod template of `object` (of kind `kind`), if it has one.
pub fn template<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    let mut node = object;
    for step in template_path(kind)? {
        node = node.get(*step)?;
    }
    Some(node)
}

/// The pod template of `object`, mutable.
pub fn template_mut<'a>(object: &'a mut Value, kind: &str) -> Option<&'a mut Value> {
    let mut node = object;
    for step in template_path(kind)? {
        node = node.get_mut(*step)?;
    }
    Some(node)
}

/// `map[key]` as a mapping, created (appended) when absent.
fn child_map<'a>(map: &'a mut Value, key: &str) -> Result<&'a mut Mapping, String> {
    let Value::Mapping(m) = map else {
        return Err("not a mapping".into());
    };
    let entry = m
        .entry(Value::String(key.into()))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if entry.is_null() {
        *entry = Value::Mapping(Mapping::new());
    }
    match entry {
        Value::Mapping(inner) => Ok(inner),
        _ => Err(format!("{key} is not a mapping")),
    }
}

/// `map[key]` as a sequence, created (appended) when absent.
fn child_seq<'a>(map: &'a mut Mapping, key: &str) -> Result<&'a mut Vec<Value>, String> {
    let entry = map
        .entry(Value::String(key.into()))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if entry.is_null() {
        *entry = Value::Sequence(Vec::new());
    }
    match entry {
        Value::Sequence(s) => Ok(s),
        _ => Err(format!("{key} is not a list")),
    }
}

fn named(item: &Value, name: &str) -> bool {
    item.get("name").and_then(Value::as_str) == Some(name)
}

/// The pod template's `spec.runtimeClassName`.
pub fn runtime_class(template: &Value) -> Option<&str> {
    template.get("spec")?.get("runtimeClassName")?.as_str()
}

/// The pod template's annotations (string values only).
pub fn annotations(template: &Value) -> Result<std::collections::BTreeMap<String, String>, String> {
    match template.get("metadata").and_then(|m| m.get("annotations")) {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(a) => serde_yaml_ng::from_value(a.clone())
            .map_err(|e| format!("pod annotations must map strings to strings: {e}")),
    }
}

/// Sets `spec.runtimeClassName`.
pub fn set_runtime_class(template: &mut Value, name: &str) -> Result<(), String> {
    let spec = child_map(template, "spec")?;
    spec.insert(
        Value::String("runtimeClassName".into()),
        Value::String(name.into()),
    );
    Ok(())
}

/// Sets (or replaces, in place) a pod annotation.
pub fn set_annotation(template: &mut Value, key: &str, value: &str) -> Result<(), String> {
    let metadata = child_map(template, "metadata")?;
    let mut holder = Value::Mapping(std::mem::take(metadata));
    let annotations = child_map(&mut holder, "annotations")?;
    annotations.insert(Value::String(key.into()), Value::String(value.into()));
    if let Value::Mapping(m) = holder {
        *metadata = m;
    }
    Ok(())
}

/// Removes a pod annotation (for the policy's input, which cannot hold
/// its own hash), and then an emptied `annotations` and `metadata`, so
/// that the input is the same whether or not an earlier run added them.
pub fn remove_annotation(template: &mut Value, key: &str) {
    let Some(Value::Mapping(metadata)) = template.get_mut("metadata") else {
        return;
    };
    if let Some(Value::Mapping(a)) = metadata.get_mut("annotations") {
        a.shift_remove(key);
        if a.is_empty() {
            metadata.shift_remove("annotations");
        }
    }
    if metadata.is_empty()
        && let Value::Mapping(t) = template
    {
        t.shift_remove("metadata");
    }
}

/// The `(name, image)` of every init container and container, in order.
pub fn containers(template: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(Value::Sequence(items)) = template.get("spec").and_then(|s| s.get(list)) {
            for c in items {
                out.push((
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    c.get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ));
            }
        }
    }
    out
}

/// The ConfigMaps the pod template needs (not marked `optional: true`),
/// each with where it is referenced: `container NAME` (env, envFrom) or
/// `volume NAME` (configMap volumes and projected sources).
pub fn required_config_maps(template: &Value) -> Vec<(String, String)> {
    fn required(r: &Value) -> Option<String> {
        if r.get("optional").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        r.get("name").and_then(Value::as_str).map(String::from)
    }
    let mut out = Vec::new();
    let Some(spec) = template.get("spec") else {
        return out;
    };
    for list in ["initContainers", "containers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let at = format!(
                "container {}",
                c.get("name").and_then(Value::as_str).unwrap_or("")
            );
            for e in c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(name) = e
                    .get("valueFrom")
                    .and_then(|v| v.get("configMapKeyRef"))
                    .and_then(required)
                {
                    out.push((name, at.clone()));
                }
            }
            for e in c
                .get("envFrom")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(name) = e.get("configMapRef").and_then(required) {
                    out.push((name, at.clone()));
                }
            }
        }
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let at = format!(
            "volume {}",
            v.get("name").and_then(Value::as_str).unwrap_or("")
        );
        if let Some(name) = v.get("configMap").and_then(required) {
            out.push((name, at.clone()));
        }
        let sources = v
            .get("projected")
            .and_then(|p| p.get("sources"))
            .and_then(Value::as_sequence);
        for source in sources.into_iter().flatten() {
            if let Some(name) = source.get("configMap").and_then(required) {
                out.push((name, at.clone()));
            }
        }
    }
    out
}

/// Replaces the image of container `name` (`--pin-images`).
pub fn set_image(template: &mut Value, name: &str, image: &str) {
    for list in ["initContainers", "containers"] {
        if let Some(Value::Sequence(items)) = template.get_mut("spec").and_then(|s| s.get_mut(list))
        {
            for c in items.iter_mut().filter(|c| named(c, name)) {
                if let Value::Mapping(m) = c {
                    m.insert(Value::String("image".into()), Value::String(image.into()));
                }
            }
        }
    }
}

/// Removes what an earlier run injected: the initializer, the shared
/// volume and its mounts (and `--insecure-simulation`'s chip volume and
/// its mounts). Keys an earlier run created stay (empty), so
/// that re-injecting puts everything where it was.
pub fn strip_injected(template: &mut Value) {
    let Some(Value::Mapping(spec)) = template.get_mut("spec") else {
        return;
    };
    if let Some(Value::Sequence(inits)) = spec.get_mut("initContainers") {
        inits.retain(|c| !named(c, INITIALIZER_NAME));
    }
    let injected =
        |v: &Value| named(v, VOLUME_NAME) || named(v, super::insecure_simulation::CHIP_VOLUME);
    if let Some(Value::Sequence(volumes)) = spec.get_mut("volumes") {
        volumes.retain(|v| !injected(v));
    }
    for list in ["initContainers", "containers"] {
        if let Some(Value::Sequence(items)) = spec.get_mut(list) {
            for c in items.iter_mut() {
                if let Some(Value::Sequence(mounts)) = c.get_mut("volumeMounts") {
                    mounts.retain(|m| !injected(m));
                }
            }
        }
    }
}

fn mount(path: &str) -> Value {
    let mut m = Mapping::new();
    m.insert(
        Value::String("name".into()),
        Value::String(VOLUME_NAME.into()),
    );
    m.insert(
        Value::String("mountPath".into()),
        Value::String(path.into()),
    );
    Value::Mapping(m)
}

/// The initializer's `securityContext`: what it needs to attest and no
/// more. Root (UID and GID 0), because the guest kernel's report
/// interfaces (`/sys/kernel/config/tsm/report`, `/dev/sev-guest`) belong
/// to root; no capability, no privilege escalation, a read-only root
/// file system, and not privileged: the report interface is exposed to
/// the container by the runtime (see host-shim/deploy/README.md,
/// "Evidence in a Kata pod"). Set on the container, so a pod-level
/// `runAsUser` or `runAsNonRoot: true` meant for the workload does not
/// reach it (`runAsNonRoot: false` overrides the pod's).
pub fn initializer_security_context(chown: bool) -> Value {
    let s = |v: &str| Value::String(v.into());
    let mut capabilities = Mapping::new();
    capabilities.insert(s("drop"), Value::Sequence(vec![s("ALL")]));
    if chown {
        // `--owner`: only to give its own files to the workload's user.
        capabilities.insert(s("add"), Value::Sequence(vec![s("CHOWN")]));
    }
    let mut sc = Mapping::new();
    sc.insert(s("runAsUser"), Value::Number(0.into()));
    sc.insert(s("runAsGroup"), Value::Number(0.into()));
    sc.insert(s("runAsNonRoot"), Value::Bool(false));
    sc.insert(s("allowPrivilegeEscalation"), Value::Bool(false));
    sc.insert(s("readOnlyRootFilesystem"), Value::Bool(true));
    sc.insert(s("capabilities"), Value::Mapping(capabilities));
    Value::Mapping(sc)
}

/// The user (UID) the pod's main container runs as (the first of
/// `containers`), when it is not root: the initializer runs as root (the
/// TEE's report interface) and gives its files (the key and secret are
/// 0400) to this user (`--owner`). The container's
/// `securityContext.runAsUser`, else the pod's, else its image's `User`
/// (`image_user`), which must then be numeric (a name would need the
/// image's /etc/passwd). Containers of other users cannot read the key:
/// give them the same `runAsUser`.
pub fn workload_owner(
    template: &Value,
    image_user: impl Fn(&str) -> Result<String, String>,
) -> Result<Option<u32>, String> {
    let spec = template.get("spec");
    let run_as = |sc: Option<&Value>| {
        sc.and_then(|sc| sc.get("runAsUser"))
            .and_then(Value::as_u64)
    };
    let Some(c) = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_sequence)
        .and_then(|cs| cs.first())
    else {
        return Ok(None);
    };
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    let uid = match run_as(c.get("securityContext"))
        .or_else(|| run_as(spec.and_then(|s| s.get("securityContext"))))
    {
        Some(uid) => uid,
        None => {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let user = image_user(image).map_err(|e| format!("container {name}: {e}"))?;
            let uid = user.split(':').next().unwrap_or("");
            if uid.is_empty() {
                0
            } else {
                uid.parse().map_err(|_| {
                    format!(
                        "container {name}: its image's User {user:?} is not numeric: set \
                         securityContext.runAsUser, so that the initializer knows whom to give \
                         its files"
                    )
                })?
            }
        }
    };
    let uid = u32::try_from(uid)
        .map_err(|_| format!("container {name}: runAsUser {uid} is out of range"))?;
    Ok((uid != 0).then_some(uid))
}

/// Injects the initializer (first init container, running `args`), the
/// shared emptyDir volume, and its mount at `mount_path` in every other
/// container. Refuses a container that already mounts something else at
/// `mount_path`.
pub fn inject_initializer(
    template: &mut Value,
    image: &str,
    args: &[String],
    mount_path: &str,
) -> Result<(), String> {
    let spec = child_map(template, "spec")?;
    for list in ["initContainers", "containers"] {
        if let Some(Value::Sequence(items)) = spec.get_mut(list) {
            for c in items.iter_mut() {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let Value::Mapping(cm) = c else {
                    return Err(format!("a container in {list} is not a mapping"));
                };
                let mounts =
                    child_seq(cm, "volumeMounts").map_err(|e| format!("container {name}: {e}"))?;
                if mounts
                    .iter()
                    .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(mount_path))
                {
                    return Err(format!(
                        "container {name} already mounts a volume at {mount_path}, where the \
                         initializer's files go: choose another path with the pod annotation \
                         accord.dev/mount-path"
                    ));
                }
                mounts.push(mount(mount_path));
            }
        }
    }
    let mut init = Mapping::new();
    init.insert(
        Value::String("name".into()),
        Value::String(INITIALIZER_NAME.into()),
    );
    init.insert(Value::String("image".into()), Value::String(image.into()));
    init.insert(
        Value::String("args".into()),
        Value::Sequence(args.iter().map(|a| Value::String(a.clone())).collect()),
    );
    init.insert(
        Value::String("volumeMounts".into()),
        Value::Sequence(vec![mount(DEFAULT_MOUNT_PATH)]),
    );
    init.insert(
        Value::String("securityContext".into()),
        initializer_security_context(args.iter().any(|a| a == "--owner")),
    );
    child_seq(spec, "initContainers")?.insert(0, Value::Mapping(init));
    let mut volume = Mapping::new();
    volume.insert(
        Value::String("name".into()),
        Value::String(VOLUME_NAME.into()),
    );
    volume.insert(
        Value::String("emptyDir".into()),
        Value::Mapping(Mapping::new()),
    );
    child_seq(spec, "volumes")?.push(Value::Mapping(volume));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "kind: Pod\nmetadata:\n  name: p\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - name: app\n    image: r/app@sha256:00\n";

    #[test]
    fn inject_then_strip_is_the_spec_again_with_empty_lists() {
        let mut doc: Value = serde_yaml_ng::from_str(POD).unwrap();
        let t = template_mut(&mut doc, "Pod").unwrap();
        inject_initializer(t, "r/init@sha256:11", &["initializer".into()], "/accord").unwrap();
        assert_eq!(containers(t)[0].0, INITIALIZER_NAME);
        let once = serde_yaml_ng::to_string(&doc).unwrap();
        let t = template_mut(&mut doc, "Pod").unwrap();
        strip_injected(t);
        assert_eq!(containers(t).len(), 1);
        inject_initializer(t, "r/init@sha256:11", &["initializer".into()], "/accord").unwrap();
        assert_eq!(serde_yaml_ng::to_string(&doc).unwrap(), once);
    }

    #[test]
    fn the_initializer_runs_as_root_without_capabilities_whatever_the_pod_says() {
        let text = POD.replace(
            "  runtimeClassName: accord-cc\n",
            "  runtimeClassName: accord-cc\n  securityContext: {runAsUser: 1000, runAsNonRoot: true}\n",
        );
        let mut doc: Value = serde_yaml_ng::from_str(&text).unwrap();
        let t = template_mut(&mut doc, "Pod").unwrap();
        inject_initializer(t, "r/init@sha256:11", &["initializer".into()], "/accord").unwrap();
        let init = &t["spec"]["initContainers"][0];
        let expected: Value = serde_yaml_ng::from_str(
            "runAsUser: 0\nrunAsGroup: 0\nrunAsNonRoot: false\nallowPrivilegeEscalation: false\n\
             readOnlyRootFilesystem: true\ncapabilities: {drop: [ALL]}\n",
        )
        .unwrap();
        assert_eq!(init["securityContext"], expected);
        assert!(init["securityContext"].get("privileged").is_none());
        // The workload's own container keeps what it had.
        assert!(t["spec"]["containers"][0].get("securityContext").is_none());
    }

    #[test]
    fn a_mount_at_the_same_path_is_refused() {
        let text = POD.replace(
            "    image: r/app@sha256:00\n",
            "    image: r/app@sha256:00\n    volumeMounts:\n    - {name: x, mountPath: /accord}\n",
        );
        let mut doc: Value = serde_yaml_ng::from_str(&text).unwrap();
        let t = template_mut(&mut doc, "Pod").unwrap();
        let err = inject_initializer(t, "i", &[], "/accord").unwrap_err();
        assert!(
            err.contains("container app") && err.contains("accord.dev/mount-path"),
            "{err}"
        );
    }

    #[test]
    fn removing_the_last_annotation_removes_the_emptied_maps() {
        let mut t: Value = serde_yaml_ng::from_str("spec: {}").unwrap();
        let before = t.clone();
        set_annotation(&mut t, "k", "v").unwrap();
        assert_ne!(t, before);
        remove_annotation(&mut t, "k");
        assert_eq!(t, before);
    }

    #[test]
    fn finds_the_config_maps_a_pod_needs() {
        let t: Value = serde_yaml_ng::from_str(
            "spec:\n  containers:\n  - name: a\n    env:\n    - {name: X, valueFrom: {configMapKeyRef: {name: one, key: k}}}\n    - {name: Y, valueFrom: {configMapKeyRef: {name: opt, key: k, optional: true}}}\n    envFrom:\n    - configMapRef: {name: two}\n  volumes:\n  - {name: v, configMap: {name: three}}\n  - name: p\n    projected: {sources: [{configMap: {name: four}}]}\n",
        )
        .unwrap();
        let found: Vec<String> = required_config_maps(&t)
            .into_iter()
            .map(|(n, at)| format!("{n}@{at}"))
            .collect();
        assert_eq!(
            found,
            [
                "one@container a",
                "two@container a",
                "three@volume v",
                "four@volume p"
            ]
        );
    }

    #[test]
    fn templates_of_every_kind() {
        let d: Value = serde_yaml_ng::from_str(
            "kind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {runtimeClassName: x}}}}}",
        )
        .unwrap();
        assert_eq!(runtime_class(template(&d, "CronJob").unwrap()), Some("x"));
        assert!(template(&d, "ConfigMap").is_none());
    }

    #[test]
    fn the_initializer_gives_its_files_to_the_containers_user() {
        let owner = |yaml: &str, image_user: &str| {
            let t: Value = serde_yaml_ng::from_str(yaml).unwrap();
            let user = image_user.to_string();
            workload_owner(&t, |_| Ok(user.clone()))
        };
        let one = "spec:\n  containers:\n  - {name: a, image: i}\n";
        // The image's user, numeric, with or without a group.
        assert_eq!(owner(one, "65532:65532"), Ok(Some(65532)));
        assert_eq!(owner(one, "1000"), Ok(Some(1000)));
        // Root (or no user): no owner.
        assert_eq!(owner(one, ""), Ok(None));
        assert_eq!(owner(one, "0:0"), Ok(None));
        // A name cannot be resolved: refused, saying what to set.
        assert!(owner(one, "nonroot").unwrap_err().contains("runAsUser"));
        // The pod's runAsUser wins over the image's, the container's over
        // the pod's; the first container's user is the owner.
        let pod = "spec:\n  securityContext: {runAsUser: 7}\n  containers:\n  - {name: a, image: i}\n  - {name: b, image: i, securityContext: {runAsUser: 8}}\n";
        assert_eq!(owner(pod, "nonroot"), Ok(Some(7)));
        let two = "spec:\n  securityContext: {runAsUser: 7}\n  containers:\n  - {name: a, image: i, securityContext: {runAsUser: 8}}\n";
        assert_eq!(owner(two, ""), Ok(Some(8)));
        let root =
            "spec:\n  containers:\n  - {name: a, image: i, securityContext: {runAsUser: 0}}\n";
        assert_eq!(owner(root, "65532"), Ok(None));
        assert_eq!(owner("spec: {}\n", ""), Ok(None));
        // With --owner the initializer may chown, nothing more.
        let sc = initializer_security_context(true);
        assert_eq!(
            serde_yaml_ng::to_string(&sc["capabilities"]).unwrap(),
            "drop:\n- ALL\nadd:\n- CHOWN\n"
        );
        assert!(
            initializer_security_context(false)["capabilities"]
                .get("add")
                .is_none()
        );
    }
}
