//! [`TdxClaims`]: an owned, serializable summary of a verified quote, for the
//! CLI's JSON output and for logs. Building it allocates; the verification
//! itself does not.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Serialize;

use crate::hex;

use super::pck::{PlatformConfiguration, SgxType};
use super::quote::TdReportVersion;
use super::tcb::TcbStatus;
use super::verify::VerifiedQuote;

/// The quote header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderClaims {
    /// Quote version.
    pub version: u16,
    /// Attestation key type.
    pub att_key_type: u16,
    /// TEE type.
    pub tee_type: u32,
    /// QE vendor id (hex).
    pub qe_vendor_id: String,
    /// User data (hex).
    pub user_data: String,
}

/// The TD report body, every field as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BodyClaims {
    /// Body version.
    pub report_version: TdReportVersion,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: String,
    /// MRSEAM.
    pub mr_seam: String,
    /// MRSIGNERSEAM.
    pub mr_signer_seam: String,
    /// SEAMATTRIBUTES.
    pub seam_attributes: String,
    /// TDATTRIBUTES.
    pub td_attributes: String,
    /// XFAM.
    pub xfam: String,
    /// MRTD.
    pub mr_td: String,
    /// MRCONFIGID.
    pub mr_config_id: String,
    /// MROWNER.
    pub mr_owner: String,
    /// MROWNERCONFIG.
    pub mr_owner_config: String,
    /// RTMR0..3.
    pub rtmrs: [String; 4],
    /// REPORTDATA.
    pub report_data: String,
    /// TEE_TCB_SVN2 (TD report 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn2: Option<String>,
    /// MRSERVICETD (TD report 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mr_service_td: Option<String>,
}

/// The quoting enclave's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QeClaims {
    /// CPUSVN.
    pub cpu_svn: String,
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: String,
    /// MRENCLAVE.
    pub mr_enclave: String,
    /// MRSIGNER.
    pub mr_signer: String,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
}

/// The PCK certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PckClaims {
    /// Serial number (hex).
    pub serial: String,
    /// FMSPC.
    pub fmspc: String,
    /// PCEID.
    pub pce_id: String,
    /// PCESVN.
    pub pce_svn: u16,
    /// CPUSVN.
    pub cpu_svn: String,
    /// SGX TCB components.
    pub sgx_tcb_components: [u8; 16],
    /// PPID.
    pub ppid: String,
    /// SGX type.
    pub sgx_type: SgxType,
    /// Platform instance id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piid: Option<String>,
    /// Platform configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<PlatformConfiguration>,
}

/// Everything accord reports about a verified TDX quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// Header.
    pub header: HeaderClaims,
    /// TD report body.
    pub body: BodyClaims,
    /// QE report.
    pub qe_report: QeClaims,
    /// PCK certificate.
    pub pck: PckClaims,
    /// Final TCB status.
    pub tcb_status: TcbStatus,
    /// Platform-level status.
    pub platform_tcb_status: TcbStatus,
    /// TDX module level status, when evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdx_module_tcb_status: Option<TcbStatus>,
    /// QE level status.
    pub qe_tcb_status: TcbStatus,
    /// Advisory ids of all matched levels.
    pub advisory_ids: Vec<String>,
    /// The collateral's TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// Date of the matched platform TCB level (RFC 3339).
    pub platform_tcb_date: String,
    /// Start of the window in which all collateral is valid (RFC 3339).
    pub collateral_valid_from: String,
    /// End of that window (RFC 3339).
    pub collateral_valid_until: String,
}

impl VerifiedQuote<'_, '_> {
    /// The owned claims of this quote.
    pub fn to_claims(&self) -> TdxClaims {
        let q = &self.quote;
        let b = &q.body;
        let qe = &q.qe_report;
        let pck = &self.pck;
        TdxClaims {
            header: HeaderClaims {
                version: q.header.version,
                att_key_type: q.header.att_key_type,
                tee_type: q.header.tee_type,
                qe_vendor_id: hex::encode(q.header.qe_vendor_id),
                user_data: hex::encode(q.header.user_data),
            },
            body: BodyClaims {
                report_version: b.version,
                tee_tcb_svn: hex::encode(b.tee_tcb_svn),
                mr_seam: hex::encode(b.mr_seam),
                mr_signer_seam: hex::encode(b.mr_signer_seam),
                seam_attributes: hex::encode(b.seam_attributes),
                td_attributes: hex::encode(b.td_attributes),
                xfam: hex::encode(b.xfam),
                mr_td: hex::encode(b.mr_td),
                mr_config_id: hex::encode(b.mr_config_id),
                mr_owner: hex::encode(b.mr_owner),
                mr_owner_config: hex::encode(b.mr_owner_config),
                rtmrs: b.rtmrs.map(|r| hex::encode(r)),
                report_data: hex::encode(b.report_data),
                tee_tcb_svn2: b.tee_tcb_svn2.map(|v| hex::encode(v)),
                mr_service_td: b.mr_service_td.map(|v| hex::encode(v)),
            },
            qe_report: QeClaims {
                cpu_svn: hex::encode(qe.cpu_svn),
                misc_select: qe.misc_select,
                attributes: hex::encode(qe.attributes),
                mr_enclave: hex::encode(qe.mr_enclave),
                mr_signer: hex::encode(qe.mr_signer),
                isv_prod_id: qe.isv_prod_id,
                isv_svn: qe.isv_svn,
            },
            pck: PckClaims {
                serial: hex::encode(self.pck_serial.as_bytes()),
                fmspc: hex::encode(&pck.fmspc),
                pce_id: hex::encode(&pck.pce_id),
                pce_svn: pck.pce_svn,
                cpu_svn: hex::encode(&pck.cpu_svn),
                sgx_tcb_components: pck.sgx_components,
                ppid: hex::encode(&pck.ppid),
                sgx_type: pck.sgx_type,
                piid: pck.platform_instance_id.map(|p| hex::encode(&p)),
                configuration: pck.configuration,
            },
            tcb_status: self.tcb.status,
            platform_tcb_status: self.tcb.platform.status,
            tdx_module_tcb_status: self.tcb.module.map(|m| m.status),
            qe_tcb_status: self.tcb.qe.status,
            advisory_ids: self.tcb.advisory_ids().map(String::from).collect(),
            tcb_evaluation_data_number: self.collateral.tcb_info().tcb_evaluation_data_number,
            platform_tcb_date: self.tcb.platform.tcb_date.to_string(),
            collateral_valid_from: self.collateral.validity().0.to_string(),
            collateral_valid_until: self.collateral.validity().1.to_string(),
        }
    }
}
