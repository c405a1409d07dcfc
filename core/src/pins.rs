//! What a workload pins of its coordinator, and the checks the workload
//! initializer runs on a `MeshCert` reply before it writes anything.
//!
//! The host routes every connection, the initializer's too. Whoever
//! answers hands the workload its certificates, CAs and workload secret,
//! so the initializer must know *which* coordinator it talks to. Its
//! measured init-data carries [`CoordinatorPins`]:
//!
//! - **the coordinator's code**: the coordinator policy hashes (SNP
//!   HOST_DATA / TDX MRCONFIGID) and reference values its evidence must
//!   match. The attested-TLS handshake checks them (the guest's
//!   `atls::PeerPolicy`); this module only carries them.
//! - **the deployment** ([`DeploymentPins`]): a genuine coordinator is not
//!   enough. The host can start its own genuine coordinator with the same
//!   policy, set a manifest that lists the victim's workload policy and
//!   names the host's own seed-share key (or names it first and re-shares
//!   to the victim's owners later), and so know that coordinator's seed
//!   and every workload secret it derives. So the workload also pins who
//!   may know the seed: the seed-share owners and threshold, optionally
//!   the workload owners (who may re-share it), and/or the deployment's
//!   root CA (its key is derived from the seed, so it names one seed).
//!
//! Inside the attested session a genuine coordinator states every
//! distinct sharing of its seed in its verified history and its current
//! workload owners ([`DeploymentStatement`]). [`check_mesh_cert`] refuses
//! the reply unless:
//!
//! 1. **`no-sharing`**: with seed-share owners pinned, the history shares
//!    the seed at least once (a deployment that never shared it is not
//!    the pinned one);
//! 2. **`seedshare-owner`**: every sharing names only pinned owners, each
//!    once;
//! 3. **`seedshare-threshold`**: every sharing's threshold is at least the
//!    pinned one — so no sharing lets fewer than k pinned owners, or
//!    anyone outside them, rebuild the seed (old sharings count: their
//!    owners can still rebuild the seed offline after a re-share);
//! 4. **`workload-owner`**: if workload owners are pinned, the current
//!    ones are among them;
//! 5. the issued chain holds together (`chain-shape`, `certificate`,
//!    `leaf-key`, `leaf-issuer`, `mesh-ca`, `intermediate-issuer`,
//!    `root-self-signed`): the leaf is for the initializer's own key and
//!    signed by the returned intermediate, the mesh CA has the
//!    intermediate's key and name (so the leaf verifies under it, as the
//!    workload's peers will check), the intermediate is signed by the
//!    returned root, and the root by itself;
//! 6. **`root-ca-pin`**: if the root CA is pinned, the returned root's
//!    SubjectPublicKeyInfo has the pinned SHA-256.
//!
//! Validity periods are not checked: the certificates were minted for
//! this reply, and the workload's clock is no better than the
//! coordinator's. Pinning the workload owners matters when the root CA is
//! not pinned: a workload owner can re-share the seed to anyone later,
//! after the workload got its secret.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::crypto::CryptoProvider;
use crate::evidence::ReferenceValues;
use crate::hex::{self, Hex};
use crate::manifest::{Manifest, ManifestDoc, OwnerKey, SeedshareKey};
use crate::protocol::DeploymentStatement;
use crate::x509::{Certificate, X509Error};

/// Everything a workload trusts of its coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorPins {
    /// The coordinator policy hashes (SNP HOST_DATA / TDX MRCONFIGID) its
    /// evidence may carry.
    pub policy_hashes: Vec<[u8; 32]>,
    /// The reference values its evidence must match.
    pub reference: ReferenceValues,
    /// Who may know the deployment's seed.
    pub deployment: DeploymentPins,
}

/// Who may know the deployment's seed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentPins {
    /// The seed-share owners' X25519 keys (empty: not pinned; then the
    /// root CA must be).
    pub seedshare_owners: Vec<SeedshareKey>,
    /// How many of them a sharing must need at least.
    pub seedshare_threshold: u32,
    /// If set, the coordinator's current workload owners must be among
    /// these.
    pub workload_owners: Option<Vec<OwnerKey>>,
    /// If set, SHA-256 of the root CA certificate's SubjectPublicKeyInfo.
    pub root_ca_spki_sha256: Option<[u8; 32]>,
}

/// Why a set of pins cannot be used (the initializer refuses to start).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinsError {
    /// No coordinator policy hash: no coordinator would be accepted.
    NoCoordinatorPolicy,
    /// No reference values: no platform would be trusted.
    NoReferenceValues,
    /// Neither seed-share owners nor the root CA are pinned: any genuine
    /// coordinator, of any deployment, would be accepted.
    NoDeploymentPin,
    /// The seed-share threshold is 0.
    ThresholdZero,
    /// The threshold exceeds the number of (distinct) pinned owners.
    ThresholdAboveOwners {
        /// The pinned threshold.
        threshold: u32,
        /// Distinct pinned owners.
        owners: usize,
    },
}

impl fmt::Display for PinsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCoordinatorPolicy => f.write_str(
                "no coordinator policy hash is pinned: no coordinator would be accepted",
            ),
            Self::NoReferenceValues => f.write_str(
                "no coordinator reference values are pinned: no platform would be trusted",
            ),
            Self::NoDeploymentPin => f.write_str(
                "the deployment is not pinned (neither seed-share owners nor the root CA): \
                 any genuine coordinator, of any deployment, could hand out the workload secret",
            ),
            Self::ThresholdZero => {
                f.write_str("the pinned seed-share threshold must be at least 1")
            }
            Self::ThresholdAboveOwners { threshold, owners } => write!(
                f,
                "the pinned seed-share threshold {threshold} exceeds the {owners} pinned seed-share owner(s)"
            ),
        }
    }
}

impl core::error::Error for PinsError {}

/// Why a `MeshCert` reply was refused; [`Refusal::check`] names the check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Seed-share owners are pinned but the coordinator's history never
    /// shared its seed.
    NoSharing {
        /// Distinct pinned owners.
        pinned_owners: usize,
    },
    /// A sharing names an owner that is not pinned.
    SharingOwnerNotPinned {
        /// The sharing's index (oldest first).
        sharing: usize,
        /// The owner's X25519 key.
        owner: [u8; 32],
        /// Distinct pinned owners.
        pinned_owners: usize,
    },
    /// A sharing names the same owner twice (that owner would hold two
    /// shares).
    SharingOwnerRepeated {
        /// The sharing's index.
        sharing: usize,
        /// The owner's X25519 key.
        owner: [u8; 32],
    },
    /// A sharing's threshold is below the pinned one.
    SharingThresholdTooLow {
        /// The sharing's index.
        sharing: usize,
        /// Its threshold.
        threshold: u8,
        /// The pinned threshold.
        pinned: u32,
    },
    /// The coordinator names a workload owner that is not pinned.
    WorkloadOwnerNotPinned {
        /// The owner's key as stated (hex SPKI).
        owner: String,
        /// How many owners are pinned.
        pinned_owners: usize,
    },
    /// The coordinator names a workload owner key that does not parse.
    WorkloadOwnerUnreadable {
        /// The key as stated.
        owner: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The certificate chain is not (leaf, intermediate).
    ChainShape {
        /// Certificates returned.
        got: usize,
    },
    /// A returned certificate does not parse.
    Certificate {
        /// `leaf`, `intermediate`, `mesh CA` or `root CA`.
        which: &'static str,
        /// Why.
        error: X509Error,
    },
    /// The leaf is not for the initializer's key.
    LeafKeyNotOurs {
        /// SHA-256 of the initializer's SubjectPublicKeyInfo.
        expected: [u8; 32],
        /// SHA-256 of the leaf's.
        got: [u8; 32],
    },
    /// The leaf is not signed by the returned intermediate.
    LeafIssuer(X509Error),
    /// The mesh CA does not have the intermediate's key.
    MeshCaKey {
        /// SHA-256 of the intermediate's SubjectPublicKeyInfo.
        expected: [u8; 32],
        /// SHA-256 of the mesh CA's.
        got: [u8; 32],
    },
    /// The leaf does not verify under the mesh CA (name or signature).
    MeshCaIssuer(X509Error),
    /// The intermediate is not signed by the returned root.
    IntermediateIssuer(X509Error),
    /// The root is not self-signed.
    RootSelfSigned(X509Error),
    /// The root CA is not the pinned one.
    RootCaPin {
        /// The pinned SHA-256 of the root's SubjectPublicKeyInfo.
        expected: [u8; 32],
        /// The returned root's.
        got: [u8; 32],
    },
}

impl Refusal {
    /// What was wrong, without the check's name (expected and got).
    pub fn reason(&self) -> Reason<'_> {
        Reason(self)
    }

    /// The name of the check that failed (stable; the initializer prints
    /// it).
    pub fn check(&self) -> &'static str {
        match self {
            Self::NoSharing { .. } => "no-sharing",
            Self::SharingOwnerNotPinned { .. } | Self::SharingOwnerRepeated { .. } => {
                "seedshare-owner"
            }
            Self::SharingThresholdTooLow { .. } => "seedshare-threshold",
            Self::WorkloadOwnerNotPinned { .. } | Self::WorkloadOwnerUnreadable { .. } => {
                "workload-owner"
            }
            Self::ChainShape { .. } => "chain-shape",
            Self::Certificate { .. } => "certificate",
            Self::LeafKeyNotOurs { .. } => "leaf-key",
            Self::LeafIssuer(_) => "leaf-issuer",
            Self::MeshCaKey { .. } | Self::MeshCaIssuer(_) => "mesh-ca",
            Self::IntermediateIssuer(_) => "intermediate-issuer",
            Self::RootSelfSigned(_) => "root-self-signed",
            Self::RootCaPin { .. } => "root-ca-pin",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "check {}: {}", self.check(), self.reason())
    }
}

/// A [`Refusal`]'s reason, without the check's name ([`Refusal::reason`]).
pub struct Reason<'a>(&'a Refusal);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Refusal::NoSharing { pinned_owners } => write!(
                f,
                "the coordinator's history never shared its seed; expected sharings among the {pinned_owners} pinned seed-share owner(s)"
            ),
            Refusal::SharingOwnerNotPinned {
                sharing,
                owner,
                pinned_owners,
            } => write!(
                f,
                "sharing {sharing} of the coordinator's history names seed-share owner {}, which is not one of the {pinned_owners} pinned owner(s) (whoever holds it could rebuild the seed)",
                Hex(owner)
            ),
            Refusal::SharingOwnerRepeated { sharing, owner } => write!(
                f,
                "sharing {sharing} of the coordinator's history names seed-share owner {} twice",
                Hex(owner)
            ),
            Refusal::SharingThresholdTooLow {
                sharing,
                threshold,
                pinned,
            } => write!(
                f,
                "sharing {sharing} of the coordinator's history needs {threshold} owner(s), expected at least the pinned {pinned}"
            ),
            Refusal::WorkloadOwnerNotPinned {
                owner,
                pinned_owners,
            } => write!(
                f,
                "the coordinator's workload owner {owner} is not one of the {pinned_owners} pinned workload owner(s) (it could re-share the seed)"
            ),
            Refusal::WorkloadOwnerUnreadable { owner, reason } => write!(
                f,
                "the coordinator's workload owner {owner} does not parse: {reason}"
            ),
            Refusal::ChainShape { got } => {
                write!(f, "expected 2 certificates (leaf, intermediate), got {got}")
            }
            Refusal::Certificate { which, error } => {
                write!(f, "the {which} certificate does not parse: {error}")
            }
            Refusal::LeafKeyNotOurs { expected, got } => write!(
                f,
                "the leaf is not for the initializer's key: expected SubjectPublicKeyInfo SHA-256 {}, got {}",
                Hex(expected),
                Hex(got)
            ),
            Refusal::LeafIssuer(error) => {
                write!(
                    f,
                    "the leaf is not issued by the returned intermediate: {error}"
                )
            }
            Refusal::MeshCaKey { expected, got } => write!(
                f,
                "the mesh CA does not have the intermediate's key: expected SubjectPublicKeyInfo SHA-256 {}, got {}",
                Hex(expected),
                Hex(got)
            ),
            Refusal::MeshCaIssuer(error) => {
                write!(f, "the leaf does not verify under the mesh CA: {error}")
            }
            Refusal::IntermediateIssuer(error) => write!(
                f,
                "the intermediate is not issued by the returned root CA: {error}"
            ),
            Refusal::RootSelfSigned(error) => {
                write!(f, "the root CA is not self-signed: {error}")
            }
            Refusal::RootCaPin { expected, got } => write!(
                f,
                "the root CA is not the pinned one: expected SubjectPublicKeyInfo SHA-256 {}, got {}",
                Hex(expected),
                Hex(got)
            ),
        }
    }
}

impl core::error::Error for Refusal {}

impl CoordinatorPins {
    /// The pins a manifest implies: its coordinator policies, its
    /// reference values, its seed-share owners and threshold and its
    /// workload owners (no root CA pin). Validate the manifest first
    /// (keys that do not parse are skipped).
    pub fn from_manifest(doc: &ManifestDoc) -> Self {
        Self {
            policy_hashes: doc.coordinator_policy_hashes(),
            reference: doc.reference_values.clone(),
            deployment: DeploymentPins {
                seedshare_owners: doc.seedshare_keys(),
                seedshare_threshold: doc.seedshare_threshold,
                workload_owners: Some(doc.owner_keys()),
                root_ca_spki_sha256: None,
            },
        }
    }

    /// Fails closed: something must be pinned of the code and of the
    /// deployment, and the threshold must be usable.
    pub fn check(&self) -> Result<(), PinsError> {
        if self.policy_hashes.is_empty() {
            return Err(PinsError::NoCoordinatorPolicy);
        }
        if self.reference.snp.is_empty() && self.reference.tdx.is_empty() {
            return Err(PinsError::NoReferenceValues);
        }
        self.deployment.check()
    }
}

impl DeploymentPins {
    /// Fails closed: seed-share owners (with a threshold from 1 to their
    /// number) or the root CA must be pinned.
    pub fn check(&self) -> Result<(), PinsError> {
        let owners = self.owner_set().len();
        if owners == 0 {
            return match self.root_ca_spki_sha256 {
                Some(_) => Ok(()),
                None => Err(PinsError::NoDeploymentPin),
            };
        }
        if self.seedshare_threshold == 0 {
            return Err(PinsError::ThresholdZero);
        }
        if usize::try_from(self.seedshare_threshold).map_or(true, |k| k > owners) {
            return Err(PinsError::ThresholdAboveOwners {
                threshold: self.seedshare_threshold,
                owners,
            });
        }
        Ok(())
    }

    fn owner_set(&self) -> BTreeSet<[u8; 32]> {
        self.seedshare_owners.iter().map(|k| k.0).collect()
    }
}

/// Parses a seed-share owner's key: the raw 32-byte X25519 key or the
/// manifest's form (SubjectPublicKeyInfo DER), either as hex.
pub fn parse_seedshare_owner(text: &str) -> Result<SeedshareKey, String> {
    let text = text.trim();
    if let Ok(raw) = hex::decode_array::<32>(text) {
        if raw == [0; 32] {
            return Err("X25519 key is all zeros".into());
        }
        return Ok(SeedshareKey(raw));
    }
    SeedshareKey::from_hex(text)
}

/// Parses reference values (the manifest's `ReferenceValues` object) as a
/// manifest would: duplicate keys and unknown fields refused, then the
/// manifest's reference-value rules (required fields, no mixing of the
/// simulated root with secure entries). Errors name the JSON path.
pub fn parse_reference_values(json: &[u8]) -> Result<ReferenceValues, String> {
    let mut wrapped = b"{\"ReferenceValues\":".to_vec();
    wrapped.extend_from_slice(json);
    wrapped.extend_from_slice(b"\n}");
    let manifest = Manifest::from_json(&wrapped).map_err(|e| format!("{e}"))?;
    if let Err(errors) = manifest.validate() {
        let relevant: Vec<String> = errors
            .iter()
            .filter(|e| e.path.starts_with("ReferenceValues"))
            .map(|e| format!("{e}"))
            .collect();
        if !relevant.is_empty() {
            return Err(relevant.join("; "));
        }
    }
    Ok(manifest.doc().reference_values.clone())
}

/// Checks a `MeshCert` reply against `pins`: the deployment statement,
/// then the certificates (see the [module docs](self)). `own_spki` is the
/// initializer's SubjectPublicKeyInfo; `cert_chain` is (leaf,
/// intermediate).
pub fn check_mesh_cert(
    crypto: &dyn CryptoProvider,
    pins: &DeploymentPins,
    own_spki: &[u8],
    cert_chain: &[Vec<u8>],
    mesh_ca: &[u8],
    root_ca: &[u8],
    statement: &DeploymentStatement,
) -> Result<(), Refusal> {
    check_statement(pins, statement)?;
    check_chain(crypto, pins, own_spki, cert_chain, mesh_ca, root_ca)
}

/// Checks the coordinator's statement of who may know its seed against
/// `pins` (checks 1–4 of the [module docs](self)).
pub fn check_statement(
    pins: &DeploymentPins,
    statement: &DeploymentStatement,
) -> Result<(), Refusal> {
    let pinned = pins.owner_set();
    if !pinned.is_empty() {
        if statement.sharings.is_empty() {
            return Err(Refusal::NoSharing {
                pinned_owners: pinned.len(),
            });
        }
        for (index, sharing) in statement.sharings.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for owner in &sharing.owners {
                if !pinned.contains(owner) {
                    return Err(Refusal::SharingOwnerNotPinned {
                        sharing: index,
                        owner: *owner,
                        pinned_owners: pinned.len(),
                    });
                }
                if !seen.insert(*owner) {
                    return Err(Refusal::SharingOwnerRepeated {
                        sharing: index,
                        owner: *owner,
                    });
                }
            }
            if u32::from(sharing.threshold) < pins.seedshare_threshold {
                return Err(Refusal::SharingThresholdTooLow {
                    sharing: index,
                    threshold: sharing.threshold,
                    pinned: pins.seedshare_threshold,
                });
            }
        }
    }
    if let Some(allowed) = &pins.workload_owners {
        for stated in &statement.workload_owners {
            let key =
                OwnerKey::from_hex(stated).map_err(|reason| Refusal::WorkloadOwnerUnreadable {
                    owner: stated.clone(),
                    reason,
                })?;
            if !allowed.contains(&key) {
                return Err(Refusal::WorkloadOwnerNotPinned {
                    owner: stated.clone(),
                    pinned_owners: allowed.len(),
                });
            }
        }
    }
    Ok(())
}

fn parse<'a>(which: &'static str, der: &'a [u8]) -> Result<Certificate<'a>, Refusal> {
    Certificate::from_der(der).map_err(|error| Refusal::Certificate { which, error })
}

/// Checks the issued certificates (checks 5 and 6 of the [module
/// docs](self)).
pub fn check_chain(
    crypto: &dyn CryptoProvider,
    pins: &DeploymentPins,
    own_spki: &[u8],
    cert_chain: &[Vec<u8>],
    mesh_ca: &[u8],
    root_ca: &[u8],
) -> Result<(), Refusal> {
    let [leaf, intermediate] = cert_chain else {
        return Err(Refusal::ChainShape {
            got: cert_chain.len(),
        });
    };
    let leaf = parse("leaf", leaf)?;
    let intermediate = parse("intermediate", intermediate)?;
    let mesh = parse("mesh CA", mesh_ca)?;
    let root = parse("root CA", root_ca)?;
    let digest = |spki: &[u8]| crypto.sha256(&[spki]);

    if leaf.spki_der() != own_spki {
        return Err(Refusal::LeafKeyNotOurs {
            expected: digest(own_spki),
            got: digest(leaf.spki_der()),
        });
    }
    leaf.verify_issued_by(&intermediate, crypto)
        .map_err(Refusal::LeafIssuer)?;
    if mesh.spki_der() != intermediate.spki_der() {
        return Err(Refusal::MeshCaKey {
            expected: digest(intermediate.spki_der()),
            got: digest(mesh.spki_der()),
        });
    }
    leaf.verify_issued_by(&mesh, crypto)
        .map_err(Refusal::MeshCaIssuer)?;
    intermediate
        .verify_issued_by(&root, crypto)
        .map_err(Refusal::IntermediateIssuer)?;
    root.verify_issued_by(&root, crypto)
        .map_err(Refusal::RootSelfSigned)?;
    if let Some(expected) = pins.root_ca_spki_sha256 {
        let got = digest(root.spki_der());
        if got != expected {
            return Err(Refusal::RootCaPin { expected, got });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
