//! The Kata agent policy of one pod.
//!
//! STUB: replaced by the katapolicy branch. This placeholder has the real
//! module's interface and returns a deterministic placeholder policy that
//! names the pod's containers and images and hashes its input, so that
//! `accord generate` can be built and tested before the real generator is
//! merged. It enforces nothing.

// STUB: replaced by the katapolicy branch

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// What the image itself says about how its containers run (the OCI image
/// config), plus the image's `/etc/passwd` and `/etc/group` if known.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `User`.
    pub user: String,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Volumes`.
    pub volumes: Vec<String>,
    /// The image's `/etc/passwd`, if known.
    pub passwd: Option<String>,
    /// The image's `/etc/group`, if known.
    pub group: Option<String>,
}

/// One pod-bearing Kubernetes object and what its policy depends on.
pub struct PodInput<'a> {
    /// The whole object as JSON.
    pub resource: &'a serde_json::Value,
    /// The ConfigMaps of the input.
    pub config_maps: &'a [serde_json::Value],
    /// The Secrets of the input.
    pub secrets: &'a [serde_json::Value],
    /// Image facts, keyed by the container's `image` string.
    pub images: &'a BTreeMap<String, ImageConfig>,
}

/// Settings of the policy generator.
#[derive(Debug, Default)]
pub struct Settings {}

/// Why no policy could be generated.
#[derive(Debug)]
pub enum PolicyError {
    /// The object is not usable.
    Invalid(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The placeholder policy (STUB).
pub fn generate_policy(input: &PodInput, _settings: &Settings) -> Result<String, PolicyError> {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(input.resource).unwrap_or_default());
    hasher.update(serde_json::to_vec(input.images).unwrap_or_default());
    let digest: [u8; 32] = hasher.finalize().into();
    Ok(format!(
        "# STUB policy: replaced by the katapolicy branch\npackage agent_policy\n\n\
         default AllowRequestsFailingPolicy := false\n\n# input {}\n",
        accord_core::hex::encode(&digest)
    ))
}
