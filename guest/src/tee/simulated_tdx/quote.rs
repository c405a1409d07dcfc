//! Building and signing a simulated TDX quote, v4 (TD report 1.0) or v5
//! (TD report 1.5), in the layout `accord_core::evidence::tdx::quote`
//! parses. The layout itself is core's (`accord_core::internal`'s
//! `tdx_quote_signed_part` and `tdx_quote_finish`, which its synthetic
//! test quote uses too); this module fills in the TD report body and the
//! QE report and signs them:
//!
//! - the attestation key signs header and body;
//! - the QE report's REPORTDATA is SHA-256(attestation key ‖ QE
//!   authentication data) ‖ 32 zero bytes, and the PCK key signs the QE
//!   report;
//! - the PCK chain (PCK, PCK Platform CA, simulated root) follows as PEM.

use accord_core::crypto::default_provider;
use accord_core::der::write::pem;
use accord_core::evidence::tdx::quote::{QE_REPORT_LEN, TD_REPORT10_LEN, TD_REPORT15_LEN};
use accord_core::internal::{TdxSignatureData, tdx_quote_finish, tdx_quote_signed_part};

use super::collateral::{QE_ATTRIBUTES, QE_ISV_PROD_ID, QE_ISV_SVN, QE_MRSIGNER, TEE_TCB_SVN};
use super::pki;
use super::store::PlatformState;

/// MRSEAM of the simulated TDX module.
pub const MR_SEAM: [u8; 48] = [0x5e; 48];
/// XFAM of the simulated TD (x87, SSE, AVX, AVX-512, PKRU, AMX: what real
/// TDs report).
pub const XFAM: [u8; 8] = [0xe7, 0x1a, 0x06, 0, 0, 0, 0, 0];
/// TDATTRIBUTES of the simulated TD: SEPT_VE_DISABLE only.
pub const TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];
/// RTMR0..3 of the simulated TD (nothing extended).
pub const RTMRS: [[u8; 48]; 4] = [[0; 48]; 4];
/// The QE authentication data (as Intel's QE: 0, 1, …, 31).
const AUTH_DATA: [u8; 32] = {
    let mut data = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        data[i] = i as u8;
        i += 1;
    }
    data
};

/// What the TD report body says apart from REPORTDATA.
#[derive(Clone, Copy, Debug)]
pub struct TdFields {
    /// Quote version: 4 (TD report 1.0) or 5 (TD report 1.5).
    pub version: u16,
    /// MRTD.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
}

fn put(body: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = body.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

/// The TD report body (1.0 for v4, 1.5 for v5).
fn body(fields: &TdFields, report_data: &[u8; 64]) -> Vec<u8> {
    let len = if fields.version == 5 {
        TD_REPORT15_LEN
    } else {
        TD_REPORT10_LEN
    };
    let mut body = vec![0u8; len];
    put(&mut body, 0, &TEE_TCB_SVN);
    put(&mut body, 16, &MR_SEAM);
    // MRSIGNERSEAM (64) and SEAMATTRIBUTES (112) stay zero: Intel's module.
    put(&mut body, 120, &TD_ATTRIBUTES);
    put(&mut body, 128, &XFAM);
    put(&mut body, 136, &fields.mr_td);
    put(&mut body, 184, &fields.mr_config_id);
    // MROWNER (232), MROWNERCONFIG (280) zero.
    for (i, rtmr) in RTMRS.iter().enumerate() {
        put(&mut body, 328 + 48 * i, rtmr);
    }
    put(&mut body, 520, report_data);
    if fields.version == 5 {
        // TEE_TCB_SVN2 = TEE_TCB_SVN (no TD-preserving update); MRSERVICETD
        // zero (no service TD).
        put(&mut body, 584, &TEE_TCB_SVN);
    }
    body
}

/// The QE report: the simulated QE's identity, REPORTDATA binding the
/// attestation key.
fn qe_report(attestation_key: &[u8; 64], cpu_svn: &[u8; 16]) -> [u8; QE_REPORT_LEN] {
    let mut report = [0u8; QE_REPORT_LEN];
    put(&mut report, 0, cpu_svn);
    put(&mut report, 48, &QE_ATTRIBUTES);
    put(&mut report, 64, &[0x3e; 32]); // MRENCLAVE
    put(&mut report, 128, &QE_MRSIGNER);
    put(&mut report, 256, &QE_ISV_PROD_ID.to_le_bytes());
    put(&mut report, 258, &QE_ISV_SVN.to_le_bytes());
    let binding = default_provider().sha256(&[attestation_key, &AUTH_DATA]);
    put(&mut report, 320, &binding);
    report
}

/// A signed quote over `report_data` from the platform in `state`.
pub fn build(state: &PlatformState, fields: &TdFields, report_data: &[u8; 64]) -> Vec<u8> {
    let body_type = if fields.version == 5 { 3 } else { 2 };
    let mut quote = tdx_quote_signed_part(fields.version, body_type, &body(fields, report_data));
    let signature = pki::sign_raw(&state.attestation_key, &quote);
    let point = pki::point(&state.attestation_key);
    let mut attestation_key = [0u8; 64];
    if let Some(xy) = point.get(1..65) {
        attestation_key.copy_from_slice(xy);
    }
    let qe_report = qe_report(&attestation_key, &state.ids.cpu_svn);
    let qe_report_signature = pki::sign_raw(&state.pck_key, &qe_report);
    let chain = format!(
        "{}{}{}",
        pem("CERTIFICATE", &state.pck),
        pem("CERTIFICATE", &state.pck_ca),
        pem("CERTIFICATE", &state.root)
    );
    tdx_quote_finish(
        &mut quote,
        &TdxSignatureData {
            signature: &signature,
            attestation_key: &attestation_key,
            qe_report: &qe_report,
            qe_report_signature: &qe_report_signature,
            auth_data: &AUTH_DATA,
            pck_chain_pem: chain.as_bytes(),
        },
    );
    quote
}
