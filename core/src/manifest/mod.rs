//! The manifest: which workloads may join the mesh, which hardware
//! configurations are trusted, and who owns the deployment.
//!
//! A manifest is JSON with the field names of the system accord is modelled
//! on (`Policies`, `ReferenceValues.snp[]`/`.tdx[]`, `WorkloadOwnerPubKeys`,
//! `SeedshareOwnerPubKeys`), plus accord's `SeedshareThreshold`:
//!
//! ```json
//! {"Policies":{"<64 hex digits>":{"SANs":["coordinator"],
//!     "WorkloadSecretID":"apps/v1/StatefulSet/default/coordinator","Role":"coordinator"}},
//!  "ReferenceValues":{"snp":[{"ProductName":"Milan","TrustedMeasurement":"…", "MinimumTCB":{…}}]},
//!  "WorkloadOwnerPubKeys":["<hex of SubjectPublicKeyInfo DER>"],
//!  "SeedshareOwnerPubKeys":["<hex of SubjectPublicKeyInfo DER>"],
//!  "SeedshareThreshold":1}
//! ```
//!
//! [`Manifest::from_json`] keeps the exact submitted bytes: the manifest is
//! identified by [`Manifest::hash`], SHA-256 over those bytes (no
//! canonicalization). Parsing refuses duplicate object keys anywhere (a
//! plain serde parse would silently keep the last one) and unknown fields;
//! every parse error names its JSON path.
//!
//! [`Manifest::validate`] checks the rules below and reports **all**
//! violations, each as a [`ValidationError`] naming the JSON path
//! (`Policies["ab12…"].SANs[0]: …`):
//!
//! 1. Every policy key is exactly 64 hex digits (a SHA-256 policy hash), and
//!    no two keys name the same hash (keys differing only in letter case).
//! 2. Every `Role` is `""` or `"coordinator"`.
//! 3. Every policy yields a certificate subject: it has at least one SAN
//!    (the subject is the first SAN) or a non-empty `WorkloadSecretID`.
//! 4. SANs are non-empty strings and not repeated within a policy.
//! 5. At least one policy has the `coordinator` role.
//! 6. `ReferenceValues` has at least one `snp` or `tdx` entry; SNP entries
//!    name `TrustedMeasurement` and `MinimumTCB`; TDX entries name `MrTd`,
//!    `MrSeam`, `Rtmrs`, `Xfam` and `MinTCBEvaluationDataNumber` (without
//!    it, collateral of any age that is still within its window would be
//!    accepted) and do not contradict themselves. (Hex lengths are enforced
//!    when parsing.) Fields that are optional fall back to fail-closed
//!    defaults (`evidence::snp` and `evidence::tdx::reference` document
//!    them).
//! 7. Secure entries and entries with an `InsecureTrustedRoot` (the
//!    simulated TEEs, SNP or TDX) are not mixed.
//! 8. Workload-owner keys are SubjectPublicKeyInfo DER of an Ed25519 or
//!    ECDSA P-384 key; seed-share keys of an X25519 key; no key is listed
//!    twice in its list.
//! 9. `SeedshareThreshold` is at least 1 and, when there are seed-share
//!    owners, at most their number.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::CryptoProvider;
use crate::evidence::ReferenceValues;
use crate::evidence::snp::SnpReferenceValues;
use crate::evidence::tdx::TdxReferenceValues;
use crate::hex;

mod dupcheck;
mod keys;

pub use keys::{OwnerKey, SeedshareKey};

/// The `Role` value of a coordinator policy.
pub const ROLE_COORDINATOR: &str = "coordinator";

/// One entry of `Policies`: what a workload with this policy hash gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Subject alternative names of the workload certificate.
    #[serde(rename = "SANs", default)]
    pub sans: Vec<String>,
    /// Input to the workload-secret derivation; empty means none.
    #[serde(
        rename = "WorkloadSecretID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub workload_secret_id: String,
    /// `""` (workload) or `"coordinator"`.
    #[serde(rename = "Role", default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

impl PolicyEntry {
    /// Whether this policy has the coordinator role.
    pub fn is_coordinator(&self) -> bool {
        self.role == ROLE_COORDINATOR
    }

    /// The certificate subject this policy yields: the first SAN, else the
    /// workload secret id (rule 3).
    pub fn subject(&self) -> Option<&str> {
        self.sans
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .or(Some(self.workload_secret_id.as_str()).filter(|s| !s.is_empty()))
    }
}

fn default_threshold() -> u32 {
    1
}

/// The parsed contents of a manifest (what serializes back to JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDoc {
    /// Policy hash (64 hex digits) → policy.
    #[serde(rename = "Policies", default)]
    pub policies: BTreeMap<String, PolicyEntry>,
    /// Trusted hardware configurations.
    #[serde(rename = "ReferenceValues", default)]
    pub reference_values: ReferenceValues,
    /// Hex of SubjectPublicKeyInfo DER (Ed25519 or ECDSA P-384).
    #[serde(rename = "WorkloadOwnerPubKeys", default)]
    pub workload_owner_pub_keys: Vec<String>,
    /// Hex of SubjectPublicKeyInfo DER (X25519).
    #[serde(rename = "SeedshareOwnerPubKeys", default)]
    pub seedshare_owner_pub_keys: Vec<String>,
    /// How many seed-share owners are needed to recover (k of n).
    #[serde(rename = "SeedshareThreshold", default = "default_threshold")]
    pub seedshare_threshold: u32,
}

/// A manifest as submitted: its exact bytes and their parsed contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    raw: Vec<u8>,
    doc: ManifestDoc,
}

/// Why a manifest could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not well-formed JSON.
    Syntax(String),
    /// An object has the same key twice; `path` names the repeated member.
    DuplicateKey {
        /// JSON path of the repeated member.
        path: String,
    },
    /// A value has the wrong shape (type, hex length, unknown field, …).
    Invalid {
        /// JSON path of the offending value.
        path: String,
        /// The problem.
        message: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m) => write!(f, "manifest is not valid JSON: {m}"),
            Self::DuplicateKey { path } => write!(f, "{path}: duplicate key"),
            Self::Invalid { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl core::error::Error for ManifestError {}

/// One violated validation rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON path of the offending value, e.g. `WorkloadOwnerPubKeys[1]`.
    pub path: String,
    /// The problem.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl core::error::Error for ValidationError {}

/// The path of a policy: `Policies["<key>"]`.
pub fn policy_path(key: &str) -> String {
    format!("Policies[{key:?}]")
}

fn invalid(path: String, err: impl fmt::Display) -> ManifestError {
    ManifestError::Invalid {
        path,
        message: err.to_string(),
    }
}

/// Deserializes `value` as `T`, naming `path` on failure.
fn field<'de, T: Deserialize<'de>>(value: &'de Value, path: &str) -> Result<T, ManifestError> {
    T::deserialize(value).map_err(|e| invalid(path.to_string(), e))
}

/// Deserializes one reference-value entry; on failure, narrows the path to
/// the member that fails on its own (`ReferenceValues.snp[0].TrustedMeasurement`).
fn entry<T: serde::de::DeserializeOwned>(value: &Value, path: &str) -> Result<T, ManifestError> {
    let err = match T::deserialize(value) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if let Value::Object(members) = value {
        for (key, member) in members {
            let mut single = serde_json::Map::new();
            single.insert(key.clone(), member.clone());
            let probe = Value::Object(single);
            if let Err(e) = T::deserialize(&probe) {
                return Err(invalid(format!("{path}.{key}"), e));
            }
        }
    }
    Err(invalid(path.to_string(), err))
}

impl Manifest {
    /// Parses a manifest, keeping its exact bytes. Refuses malformed JSON,
    /// duplicate keys, unknown fields and wrongly shaped values; does not
    /// apply the validation rules ([`validate`](Self::validate)).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        dupcheck::check(bytes)?;
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        let Value::Object(top) = &value else {
            return Err(invalid("$".into(), "manifest must be a JSON object"));
        };
        let mut doc = ManifestDoc {
            policies: BTreeMap::new(),
            reference_values: ReferenceValues::default(),
            workload_owner_pub_keys: Vec::new(),
            seedshare_owner_pub_keys: Vec::new(),
            seedshare_threshold: default_threshold(),
        };
        for (key, v) in top {
            match key.as_str() {
                "Policies" => {
                    let Value::Object(policies) = v else {
                        return Err(invalid(key.clone(), "must be an object"));
                    };
                    for (hash, p) in policies {
                        let entry: PolicyEntry = field(p, &policy_path(hash))?;
                        doc.policies.insert(hash.clone(), entry);
                    }
                }
                "ReferenceValues" => doc.reference_values = reference_values(v)?,
                "WorkloadOwnerPubKeys" => doc.workload_owner_pub_keys = field(v, key)?,
                "SeedshareOwnerPubKeys" => doc.seedshare_owner_pub_keys = field(v, key)?,
                "SeedshareThreshold" => doc.seedshare_threshold = field(v, key)?,
                _ => return Err(invalid(key.clone(), "unknown field")),
            }
        }
        Ok(Self {
            raw: bytes.to_vec(),
            doc,
        })
    }

    /// The exact bytes the manifest was parsed from.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The parsed contents.
    pub fn doc(&self) -> &ManifestDoc {
        &self.doc
    }

    /// SHA-256 over the exact bytes: the manifest's identity.
    pub fn hash(&self, crypto: &dyn CryptoProvider) -> [u8; 32] {
        crypto.sha256(&[&self.raw])
    }

    /// Checks every rule of the [module docs](self), reporting all
    /// violations.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        self.doc.validate()
    }
}

fn reference_values(v: &Value) -> Result<ReferenceValues, ManifestError> {
    const PATH: &str = "ReferenceValues";
    let Value::Object(groups) = v else {
        return Err(invalid(PATH.into(), "must be an object"));
    };
    let mut out = ReferenceValues::default();
    for (group, list) in groups {
        let path = format!("{PATH}.{group}");
        let Value::Array(items) = list else {
            return Err(invalid(path, "must be an array"));
        };
        match group.as_str() {
            "snp" => {
                for (i, item) in items.iter().enumerate() {
                    out.snp
                        .push(entry::<SnpReferenceValues>(item, &format!("{path}[{i}]"))?);
                }
            }
            "tdx" => {
                for (i, item) in items.iter().enumerate() {
                    out.tdx
                        .push(entry::<TdxReferenceValues>(item, &format!("{path}[{i}]"))?);
                }
            }
            _ => return Err(invalid(path, "unknown field (expected `snp` or `tdx`)")),
        }
    }
    Ok(out)
}

/// Collects validation errors.
#[derive(Default)]
struct Errors(Vec<ValidationError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl ManifestDoc {
    /// Checks every rule of the [module docs](self), reporting all
    /// violations.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errs = Errors::default();
        self.validate_policies(&mut errs);
        self.validate_reference_values(&mut errs);
        self.validate_keys(&mut errs);
        if errs.0.is_empty() {
            Ok(())
        } else {
            Err(errs.0)
        }
    }

    /// The policy for a policy hash (keys are matched case-insensitively).
    pub fn policy(&self, hash: &[u8; 32]) -> Option<&PolicyEntry> {
        self.policies
            .iter()
            .find(|(key, _)| hex::decode_array::<32>(key).is_ok_and(|k| &k == hash))
            .map(|(_, p)| p)
    }

    /// The policy hashes with the coordinator role (what clients pin
    /// HOST_DATA / MRCONFIGID to). Keys that are not 64 hex digits are
    /// skipped: call after [`validate`](Self::validate).
    pub fn coordinator_policy_hashes(&self) -> Vec<[u8; 32]> {
        self.policies
            .iter()
            .filter(|(_, p)| p.is_coordinator())
            .filter_map(|(key, _)| hex::decode_array::<32>(key).ok())
            .collect()
    }

    /// The workload owners' keys, in manifest order. Keys that do not parse
    /// are skipped: call after [`validate`](Self::validate).
    pub fn owner_keys(&self) -> Vec<OwnerKey> {
        self.workload_owner_pub_keys
            .iter()
            .filter_map(|k| OwnerKey::from_hex(k).ok())
            .collect()
    }

    /// The seed-share owners' keys, in manifest order. Keys that do not
    /// parse are skipped: call after [`validate`](Self::validate).
    pub fn seedshare_keys(&self) -> Vec<SeedshareKey> {
        self.seedshare_owner_pub_keys
            .iter()
            .filter_map(|k| SeedshareKey::from_hex(k).ok())
            .collect()
    }

    fn validate_policies(&self, errs: &mut Errors) {
        let mut hashes = BTreeMap::new();
        for (key, policy) in &self.policies {
            let path = policy_path(key);
            if let Ok(hash) = hex::decode_array::<32>(key)
                && let Some(first) = hashes.insert(hash, key)
            {
                errs.push(
                    path.clone(),
                    format!("same policy hash as {}", policy_path(first)),
                );
            }
            if key.len() != 64 || hex::decode(key).is_err() {
                errs.push(
                    path.clone(),
                    format!(
                        "policy hash must be exactly 64 hex digits (got {} characters)",
                        key.chars().count()
                    ),
                );
            }
            if !policy.role.is_empty() && policy.role != ROLE_COORDINATOR {
                errs.push(
                    format!("{path}.Role"),
                    format!(
                        "unknown role {:?} (expected \"\" or \"coordinator\")",
                        policy.role
                    ),
                );
            }
            if policy.sans.is_empty() && policy.workload_secret_id.is_empty() {
                errs.push(
                    path.clone(),
                    "policy yields no certificate subject: needs at least one SAN or a WorkloadSecretID",
                );
            }
            let mut seen = BTreeSet::new();
            for (i, san) in policy.sans.iter().enumerate() {
                if san.is_empty() {
                    errs.push(format!("{path}.SANs[{i}]"), "SAN must not be empty");
                } else if !seen.insert(san.as_str()) {
                    errs.push(
                        format!("{path}.SANs[{i}]"),
                        format!("duplicate SAN {san:?}"),
                    );
                }
            }
        }
        if !self.policies.values().any(PolicyEntry::is_coordinator) {
            errs.push("Policies", "no policy has the \"coordinator\" role");
        }
    }

    fn validate_reference_values(&self, errs: &mut Errors) {
        let rv = &self.reference_values;
        if rv.snp.is_empty() && rv.tdx.is_empty() {
            errs.push(
                "ReferenceValues",
                "no snp or tdx entry: no platform would be trusted",
            );
        }
        for (i, e) in rv.snp.iter().enumerate() {
            let path = format!("ReferenceValues.snp[{i}]");
            if e.trusted_measurement.is_none() {
                errs.push(format!("{path}.TrustedMeasurement"), "required");
            }
            if e.minimum_tcb.is_none() {
                errs.push(format!("{path}.MinimumTCB"), "required");
            }
        }
        for (i, e) in rv.tdx.iter().enumerate() {
            let path = format!("ReferenceValues.tdx[{i}]");
            let required = [
                ("MrTd", e.mr_td.is_some()),
                ("MrSeam", e.mr_seam.is_some()),
                ("Rtmrs", e.rtmrs.is_some()),
                ("Xfam", e.xfam.is_some()),
                (
                    "MinTCBEvaluationDataNumber",
                    e.min_tcb_evaluation_data_number.is_some(),
                ),
            ];
            for (name, present) in required {
                if !present {
                    errs.push(format!("{path}.{name}"), "required");
                }
            }
            if let Err(err) = e.expect() {
                errs.push(path, err.to_string());
            }
        }
        let insecure_snp: Vec<usize> = rv
            .snp
            .iter()
            .enumerate()
            .filter(|(_, e)| e.insecure_trusted_root.is_some())
            .map(|(i, _)| i)
            .collect();
        let insecure_tdx: Vec<usize> = rv
            .tdx
            .iter()
            .enumerate()
            .filter(|(_, e)| e.insecure_trusted_root.is_some())
            .map(|(i, _)| i)
            .collect();
        let insecure = insecure_snp.len() + insecure_tdx.len();
        let secure = rv.snp.len() + rv.tdx.len() - insecure;
        if insecure > 0 && secure > 0 {
            let mut which = Vec::new();
            if !insecure_snp.is_empty() {
                which.push(format!("snp{insecure_snp:?}"));
            }
            if !insecure_tdx.is_empty() {
                which.push(format!("tdx{insecure_tdx:?}"));
            }
            errs.push(
                "ReferenceValues",
                format!(
                    "secure entries and entries with an InsecureTrustedRoot ({}) must not be mixed",
                    which.join(", ")
                ),
            );
        }
    }

    fn validate_keys(&self, errs: &mut Errors) {
        let mut seen = BTreeSet::new();
        for (i, text) in self.workload_owner_pub_keys.iter().enumerate() {
            let path = format!("WorkloadOwnerPubKeys[{i}]");
            match OwnerKey::from_hex(text) {
                Err(e) => errs.push(path, e),
                Ok(k) if !seen.insert(k.clone()) => errs.push(path, "duplicate key"),
                Ok(_) => {}
            }
        }
        let mut seen = BTreeSet::new();
        for (i, text) in self.seedshare_owner_pub_keys.iter().enumerate() {
            let path = format!("SeedshareOwnerPubKeys[{i}]");
            match SeedshareKey::from_hex(text) {
                Err(e) => errs.push(path, e),
                Ok(k) if !seen.insert(k) => errs.push(path, "duplicate key"),
                Ok(_) => {}
            }
        }
        let n = self.seedshare_owner_pub_keys.len();
        let k = self.seedshare_threshold;
        if k == 0 {
            errs.push("SeedshareThreshold", "must be at least 1");
        } else if n > 0 && usize::try_from(k).map_or(true, |k| k > n) {
            errs.push(
                "SeedshareThreshold",
                format!("{k} exceeds the number of seed-share owners ({n})"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
