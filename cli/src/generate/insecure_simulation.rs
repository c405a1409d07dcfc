//! `accord generate --insecure-simulation`: an INSECURE test deployment
//! of the test images (`cargo xtask oci --insecure-simulation`), for
//! tests in containers, never for a cluster.
//!
//! On top of what `accord generate` writes anyway:
//! - the coordinator's container (the one running `coordinator`) gets
//!   `--tee insecure-simulated`, and every injected initializer `--tee
//!   insecure-simulated`;
//! - the simulated chip's state is shared as the demo shares it: the
//!   coordinator's pods and every pod with an initializer get the
//!   `hostPath` volume [`CHIP_VOLUME`] ([`CHIP_DIR`] on the node, type
//!   Directory), mounted read-only at [`CHIP_DIR`] (the agent's default
//!   chip state) in the coordinator's container and in the initializer;
//! - `coordinator.yaml` starts with [`BANNER`].
//!
//! The pods' policies are generated from the rewritten pods as always, so
//! they allow that mount (a host path is allowed only here, see
//! [`super::policy::Settings::insecure_host_paths`]).

use serde_yaml_ng::{Mapping, Value};

use super::pod;

/// The first line of an INSECURE test deployment's `coordinator.yaml`.
pub const BANNER: &str = "# INSECURE SIMULATION TEST DEPLOYMENT: never deploy\n";

/// The warning `accord generate --insecure-simulation` prints on stderr.
pub const WARNING: &str = "WARNING: --insecure-simulation: this is an INSECURE TEST DEPLOYMENT. \
     The pods use the simulated chip (`--tee insecure-simulated`), whose state is a host \
     directory: its evidence proves nothing and the host holds every key. Never deploy it.";

/// The simulated TEE's provider name.
pub const TEE: &str = "insecure-simulated";

/// The name of the chip's volume.
pub const CHIP_VOLUME: &str = "insecure-simulated-chip";

/// The chip's state: on the node, and where it is mounted (the agent's
/// default `--state` for the simulated chip).
pub const CHIP_DIR: &str = "/var/lib/accord/insecure-simulated-chip";

fn key(k: &str) -> Value {
    Value::String(k.into())
}

/// The chip's read-only mount.
fn chip_mount() -> Value {
    let mut m = Mapping::new();
    m.insert(key("name"), key(CHIP_VOLUME));
    m.insert(key("mountPath"), key(CHIP_DIR));
    m.insert(key("readOnly"), Value::Bool(true));
    Value::Mapping(m)
}

/// The chip's `hostPath` volume.
fn chip_volume() -> Value {
    let mut host = Mapping::new();
    host.insert(key("path"), key(CHIP_DIR));
    host.insert(key("type"), key("Directory"));
    let mut v = Mapping::new();
    v.insert(key("name"), key(CHIP_VOLUME));
    v.insert(key("hostPath"), Value::Mapping(host));
    Value::Mapping(v)
}

/// A mapping's sequence `name`, created if missing.
fn seq<'a>(map: &'a mut Value, name: &str, what: &str) -> Result<&'a mut Vec<Value>, String> {
    let Value::Mapping(m) = map else {
        return Err(format!("{what} is not a mapping"));
    };
    let entry = m
        .entry(key(name))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if entry.is_null() {
        *entry = Value::Sequence(Vec::new());
    }
    match entry {
        Value::Sequence(s) => Ok(s),
        _ => Err(format!("{what}: {name} is not a list")),
    }
}

fn named(v: &Value, name: &str) -> bool {
    v.get("name").and_then(Value::as_str) == Some(name)
}

/// Adds the chip's volume to the pod (once) and its mount to `container`.
fn mount_chip(spec: &mut Value, list: &str, container: usize) -> Result<(), String> {
    let c = seq(spec, list, "spec")?
        .get_mut(container)
        .ok_or_else(|| format!("internal: no container {container} in {list}"))?;
    let mounts = seq(c, "volumeMounts", "a container")?;
    if mounts
        .iter()
        .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(CHIP_DIR))
    {
        return Err(format!(
            "a container already mounts something at {CHIP_DIR}, where \
             --insecure-simulation mounts the simulated chip"
        ));
    }
    mounts.push(chip_mount());
    let volumes = seq(spec, "volumes", "spec")?;
    if !volumes.iter().any(|v| named(v, CHIP_VOLUME)) {
        volumes.push(chip_volume());
    }
    Ok(())
}

fn spec_of(template: &mut Value) -> Result<&mut Value, String> {
    template
        .get_mut("spec")
        .filter(|s| s.is_mapping())
        .ok_or_else(|| "the pod template has no spec".to_string())
}

/// The coordinator's pod: its container running `coordinator` gets `--tee
/// insecure-simulated` (replacing its `--tee`) and the chip's mount.
pub fn rewrite_coordinator(template: &mut Value) -> Result<(), String> {
    let spec = spec_of(template)?;
    let containers = seq(spec, "containers", "spec")?;
    let at = containers
        .iter()
        .position(|c| {
            c.get("args")
                .and_then(Value::as_sequence)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                == Some("coordinator")
        })
        .ok_or_else(|| {
            "--insecure-simulation: no container of the coordinator's pod runs `coordinator` \
             (its first arg)"
                .to_string()
        })?;
    let args = seq(&mut containers[at], "args", "a container")?;
    set_tee(args);
    mount_chip(spec, "containers", at)
}

/// Sets `--tee insecure-simulated` in `args` (replacing a `--tee NAME` or
/// `--tee=NAME`, else appended).
fn set_tee(args: &mut Vec<Value>) {
    args.retain(|a| !a.as_str().is_some_and(|s| s.starts_with("--tee=")));
    match args.iter().position(|a| a.as_str() == Some("--tee")) {
        Some(i) if i + 1 < args.len() => args[i + 1] = key(TEE),
        Some(_) => args.push(key(TEE)),
        None => args.extend([key("--tee"), key(TEE)]),
    }
}

/// The initializer's extra arguments.
pub fn initializer_args() -> [String; 2] {
    ["--tee".to_string(), TEE.to_string()]
}

/// A pod with the injected initializer: the chip's mount in it.
pub fn rewrite_initializer_pod(template: &mut Value) -> Result<(), String> {
    let spec = spec_of(template)?;
    let at = seq(spec, "initContainers", "spec")?
        .iter()
        .position(|c| named(c, pod::INITIALIZER_NAME))
        .ok_or_else(|| "internal: no initializer to give the chip".to_string())?;
    mount_chip(spec, "initContainers", at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_is_set_whatever_the_args_say() {
        let s = |v: &[&str]| v.iter().map(|a| key(a)).collect::<Vec<_>>();
        for (before, after) in [
            (
                &["coordinator", "--tee", "configfs-tsm", "--shim", "x"][..],
                &["coordinator", "--tee", TEE, "--shim", "x"][..],
            ),
            (
                &["coordinator", "--tee=sev-guest"],
                &["coordinator", "--tee", TEE],
            ),
            (&["coordinator"], &["coordinator", "--tee", TEE]),
            (&["coordinator", "--tee"], &["coordinator", "--tee", TEE]),
        ] {
            let mut args = s(before);
            set_tee(&mut args);
            assert_eq!(args, s(after), "{before:?}");
        }
    }

    #[test]
    fn a_pod_without_a_coordinator_container_or_with_the_path_taken_is_refused() {
        let mut t: Value =
            serde_yaml_ng::from_str("spec:\n  containers:\n  - name: a\n    args: [initializer]\n")
                .unwrap();
        assert!(
            rewrite_coordinator(&mut t)
                .unwrap_err()
                .contains("runs `coordinator`")
        );
        let mut t: Value = serde_yaml_ng::from_str(&format!(
            "spec:\n  containers:\n  - name: a\n    args: [coordinator]\n    volumeMounts:\n    - name: x\n      mountPath: {CHIP_DIR}\n"
        ))
        .unwrap();
        assert!(rewrite_coordinator(&mut t).unwrap_err().contains(CHIP_DIR));
    }
}
