//! The attestation-claim extensions of workload certificates: one
//! non-critical extension per claim under `1.3.9901.2.1.N` (SEV-SNP) or
//! `1.3.9901.2.2.N` (TDX), and the workload secret id under
//! `1.3.9901.3.1`. The table is in the [module docs](super) and in
//! `docs/certificate-extensions.md`.

use alloc::vec::Vec;

use crate::der::write::{boolean, octets, small_uint};
use crate::evidence::Claims;
use crate::evidence::snp::{SigningKey, SnpClaims, TcbClaim};
use crate::evidence::tdx::TdxClaims;
use crate::hex;

use super::CaError;

/// The arc of SEV-SNP claims: `1.3.9901.2.1`.
pub const SNP_ARC: [u64; 5] = [1, 3, 9901, 2, 1];
/// The arc of TDX claims: `1.3.9901.2.2`.
pub const TDX_ARC: [u64; 5] = [1, 3, 9901, 2, 2];
/// The workload secret id extension: `1.3.9901.3.1`.
pub const WORKLOAD_SECRET_ID: [u64; 5] = [1, 3, 9901, 3, 1];

/// One claim extension: the last arc under its claims arc, and the DER of
/// its value (INTEGER, BOOLEAN or OCTET STRING).
pub(super) struct ClaimExtension {
    pub(super) arc: [u64; 6],
    pub(super) value: Vec<u8>,
}

struct Builder {
    arc: [u64; 5],
    out: Vec<ClaimExtension>,
}

impl Builder {
    fn push(&mut self, n: u64, value: Vec<u8>) {
        let [a, b, c, d, e] = self.arc;
        self.out.push(ClaimExtension {
            arc: [a, b, c, d, e, n],
            value,
        });
    }
    fn int(&mut self, n: u64, v: impl Into<u64>) {
        self.push(n, small_uint(v.into()));
    }
    fn flag(&mut self, n: u64, v: bool) {
        self.push(n, boolean(v));
    }
    fn bytes(&mut self, n: u64, v: &[u8]) {
        self.push(n, octets(v));
    }
    /// Four TCB components from `first`: bootloader, SNP, TEE, microcode.
    fn tcb(&mut self, first: u64, tcb: &TcbClaim) {
        self.int(first, tcb.parts.bootloader);
        self.int(first + 1, tcb.parts.snp);
        self.int(first + 2, tcb.parts.tee);
        self.int(first + 3, tcb.parts.microcode);
    }
    /// A hex field of the TDX claims, decoded.
    fn hex(&mut self, n: u64, field: &'static str, text: &str) -> Result<(), CaError> {
        let decoded = hex::decode(text).map_err(|_| CaError::BadClaims { field })?;
        self.bytes(n, &decoded);
        Ok(())
    }
}

fn snp(c: &SnpClaims) -> Vec<ClaimExtension> {
    let mut b = Builder {
        arc: SNP_ARC,
        out: Vec::new(),
    };
    b.int(1, c.version);
    b.int(2, c.guest_svn);
    b.int(3, c.policy.abi_major);
    b.int(4, c.policy.abi_minor);
    b.flag(5, c.policy.debug);
    b.flag(6, c.policy.migrate_ma);
    b.flag(7, c.policy.smt);
    b.flag(8, c.policy.single_socket);
    b.bytes(9, &c.family_id.0);
    b.bytes(10, &c.image_id.0);
    b.int(11, c.vmpl);
    b.tcb(12, &c.current_tcb);
    b.flag(16, c.platform_info.smt_enabled);
    b.flag(17, c.platform_info.tsme_enabled);
    b.flag(18, c.author_key_en);
    b.flag(19, c.mask_chip_key);
    b.int(
        20,
        match c.signing_key {
            SigningKey::Vcek => 0u8,
            SigningKey::Vlek => 1,
        },
    );
    b.bytes(21, &c.report_data.0);
    b.bytes(22, &c.measurement.0);
    b.bytes(23, &c.host_data.0);
    b.bytes(24, &c.id_key_digest.0);
    b.bytes(25, &c.author_key_digest.0);
    b.bytes(26, &c.report_id.0);
    b.bytes(27, &c.report_id_ma.0);
    b.tcb(28, &c.reported_tcb);
    b.bytes(32, &c.chip_id.0);
    b.tcb(33, &c.committed_tcb);
    b.int(37, c.current_version.build);
    b.int(38, c.current_version.minor);
    b.int(39, c.current_version.major);
    b.int(40, c.committed_version.build);
    b.int(41, c.committed_version.minor);
    b.int(42, c.committed_version.major);
    b.tcb(43, &c.launch_tcb);
    b.out
}

fn tdx(c: &TdxClaims) -> Result<Vec<ClaimExtension>, CaError> {
    let mut b = Builder {
        arc: TDX_ARC,
        out: Vec::new(),
    };
    let (h, body, qe) = (&c.header, &c.body, &c.qe_report);
    b.int(1, h.version);
    b.int(2, h.att_key_type);
    b.int(3, h.tee_type);
    b.hex(6, "header.qe_vendor_id", &h.qe_vendor_id)?;
    b.hex(7, "header.user_data", &h.user_data)?;
    b.hex(8, "body.tee_tcb_svn", &body.tee_tcb_svn)?;
    b.hex(9, "body.mr_seam", &body.mr_seam)?;
    b.hex(10, "body.mr_signer_seam", &body.mr_signer_seam)?;
    b.hex(11, "body.seam_attributes", &body.seam_attributes)?;
    b.hex(12, "body.td_attributes", &body.td_attributes)?;
    b.hex(13, "body.xfam", &body.xfam)?;
    b.hex(14, "body.mr_td", &body.mr_td)?;
    b.hex(15, "body.mr_config_id", &body.mr_config_id)?;
    b.hex(16, "body.mr_owner", &body.mr_owner)?;
    b.hex(17, "body.mr_owner_config", &body.mr_owner_config)?;
    for (n, rtmr) in (18u64..).zip(body.rtmrs.iter()) {
        b.hex(n, "body.rtmrs", rtmr)?;
    }
    b.hex(22, "body.report_data", &body.report_data)?;
    b.hex(29, "qe_report.cpu_svn", &qe.cpu_svn)?;
    b.int(30, qe.misc_select);
    b.hex(32, "qe_report.attributes", &qe.attributes)?;
    b.hex(33, "qe_report.mr_enclave", &qe.mr_enclave)?;
    b.hex(35, "qe_report.mr_signer", &qe.mr_signer)?;
    b.int(37, qe.isv_prod_id);
    b.int(38, qe.isv_svn);
    Ok(b.out)
}

/// The claim extensions for `claims`, in arc order.
pub(super) fn claim_extensions(claims: &Claims) -> Result<Vec<ClaimExtension>, CaError> {
    match claims {
        Claims::Snp(c) => Ok(snp(c)),
        Claims::Tdx(c) => tdx(c),
    }
}
