//! A generated TDX platform under a generated root: the INSECURE simulated
//! TDX of `accord_core::internal::tdx_sim` (the guest's
//! `--tee insecure-simulated-tdx` builds on it too) with fixed keys per
//! `seed`, so two seeds are two unrelated roots: a self-signed root, a
//! PCK Platform (or Processor) CA, a PCK certificate with the SGX
//! extension, a TCB Signing certificate, the signed TCB info and QE
//! identity, the PCK and root CA CRLs, and a v4 quote signed by the
//! attestation key whose QE report the PCK key signs.

use accord_core::evidence::collateral::TdxCa;
use accord_core::hex;
use accord_core::internal::tdx_sim::{self as sim, Issue, PlatformIds, TdFields};
use accord_core::time::UnixTime;
use p256::ecdsa::SigningKey;

/// The instant the collateral is issued (2026-01-01); it is valid for 30
/// days.
pub const ISSUED: UnixTime = UnixTime(1_767_225_600);

fn key(seed: u8, role: u8) -> SigningKey {
    let mut scalar = [seed; 32];
    scalar[0] = 0x11;
    scalar[31] = role;
    SigningKey::from_slice(&scalar).unwrap()
}

/// A generated platform under its own root.
pub struct Platform {
    sim: sim::Platform,
    /// The root certificate (DER).
    pub root: Vec<u8>,
}

impl Platform {
    /// The platform of `seed` (each seed its own keys and root) with
    /// `fmspc`, under a PCK Platform CA.
    pub fn new(seed: u8, fmspc: [u8; 6]) -> Self {
        Self::with_ca(seed, fmspc, TdxCa::Platform)
    }

    /// The same under the PCK CA `ca`.
    pub fn with_ca(seed: u8, fmspc: [u8; 6], ca: TdxCa) -> Self {
        let (root_key, pck_ca_key, pck_key) = (key(seed, 1), key(seed, 2), key(seed, 3));
        let (tcb_signing_key, attestation_key) = (key(seed, 4), key(seed, 5));
        let components = [2, 2, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        let ids = PlatformIds {
            ppid: [7; 16],
            sgx_components: components,
            pce_svn: 13,
            cpu_svn: components,
            pce_id: [0, 0],
            fmspc,
            piid: [9; 16],
        };
        let root = sim::issue_root(&[1], &root_key);
        let sim = sim::Platform {
            root: root.clone(),
            pck_ca: sim::issue_pck_ca(&[2], ca, &root_key, &pck_ca_key),
            pck: sim::issue_pck(&[3], &ids, ca, &pck_ca_key, &pck_key),
            tcb_signing: sim::issue_tcb_signing(&[4], &root_key, &tcb_signing_key),
            root_key,
            pck_ca_key,
            pck_key,
            tcb_signing_key,
            attestation_key,
            ids,
        };
        Self { sim, root }
    }

    /// `{"InsecureTrustedRoot":{"RootCA":"<hex>"}}`, a reference entry
    /// trusting this platform's root.
    pub fn entry(&self) -> String {
        format!(
            r#"{{"InsecureTrustedRoot":{{"RootCA":"{}"}}}}"#,
            hex::encode(&self.root)
        )
    }

    /// Collateral JSON issued at `issued` with `tcbEvaluationDataNumber`
    /// `evaluation` (TCB info and QE identity), valid for 30 days.
    pub fn collateral(&self, issued: UnixTime, evaluation: u32) -> Vec<u8> {
        self.collateral_revoking(issued, evaluation, &[])
    }

    /// The same with the PCK CRL revoking `revoked` serials.
    pub fn collateral_revoking(
        &self,
        issued: UnixTime,
        evaluation: u32,
        revoked: &[Vec<u8>],
    ) -> Vec<u8> {
        self.sim
            .pcs_responses_evaluated(&Issue::at(issued, revoked), evaluation)
            .collateral()
            .unwrap()
            .to_json()
            .into_bytes()
    }

    /// The PCK certificate's serial.
    pub fn pck_serial(&self) -> Vec<u8> {
        vec![3]
    }

    /// A signed v4 quote over `report_data`.
    pub fn quote(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let fields = TdFields {
            version: 4,
            mr_td: [0; 48],
            mr_config_id: [0; 48],
        };
        self.sim.quote(&fields, report_data)
    }
}
