//! What the `accord generate` tests share: running `accord` in a
//! directory with a private, empty image cache (no registry is reachable,
//! so nothing may come from the user's cache), reading the YAML it wrote,
//! and decoding a pod template's init-data annotation.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use base64ct::{Base64, Encoding};

/// YAML as `serde_yaml_ng` reads it.
pub type Yaml = serde_yaml_ng::Value;

/// Runs `accord ARGS` in `dir`, its image cache `dir/xdg-cache`.
pub fn accord_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .args(args)
        .output()
        .unwrap()
}

/// The documents of a multi-document YAML text, empty ones left out.
pub fn docs(text: &str) -> Vec<Yaml> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|de| Yaml::deserialize(de).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The init-data TOML in a pod template's annotation.
pub fn init_data(template: &Yaml) -> String {
    let value =
        template["metadata"]["annotations"]["io.katacontainers.config.hypervisor.cc_init_data"]
            .as_str()
            .expect("no init-data annotation");
    let gz = Base64::decode_vec(value).unwrap();
    let mut toml = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut toml)
        .unwrap();
    toml
}

/// The pod template of a workload document (a Pod is its own).
pub fn template(doc: &Yaml) -> &Yaml {
    match doc["kind"].as_str().unwrap() {
        "Pod" => doc,
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => &doc["spec"]["template"],
    }
}
