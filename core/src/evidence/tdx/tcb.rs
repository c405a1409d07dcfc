//! TCB-level evaluation: which TCB level of the (verified) TCB info and QE
//! identity a quote's platform, TDX module and quoting enclave are at.
//!
//! The algorithm is Intel QVL's, as dcap-qvl and go-tdx-guest implement it:
//!
//! 1. **Platform**: the first `tcbLevels` entry where all 16 PCK SGX TCB
//!    components ≥ `sgxtcbcomponents`, PCK PCESVN ≥ `pcesvn`, and all 16
//!    TEE_TCB_SVN bytes ≥ `tdxtcbcomponents`. No match is "TCB level not
//!    supported" and the quote is rejected.
//! 2. **TDX module**: if `TEE_TCB_SVN[1]` > 0, the identity `TDX_%02X` of it
//!    (missing → reject); its MRSIGNER must equal MRSIGNERSEAM and its
//!    attributes match SEAMATTRIBUTES under the mask; its level is the first
//!    with `isvsvn` ≤ `TEE_TCB_SVN[0]` (none → reject). With `TEE_TCB_SVN[1]` = 0
//!    only the base `tdxModule` signer/attributes are checked.
//! 3. **QE**: the first QE identity level with `isvsvn` ≤ the QE's ISVSVN
//!    (none → reject).
//! 4. **Final status**: the worst of the three (see [`TcbStatus::worst`]);
//!    advisory ids are the union, in order of first appearance.
//!
//! TDX 1.5's TEE_TCB_SVN2 (current TCB after a TD-preserving update) is not
//! evaluated, as in the README's reference algorithm; dcap-qvl additionally
//! evaluates it to produce `TDRelaunchAdvised`.
//!
//! Evaluation borrows from the TCB info and QE identity and allocates nothing.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::collateral::{IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel, TdxModule};
use super::error::{IdentityField, TdxError};
use super::quote::TdReport;

/// A TCB status from Intel's collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched, but software mitigations are needed.
    SWHardeningNeeded,
    /// Patched, but the platform configuration must change.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// Missing security patches.
    OutOfDate,
    /// Missing patches and configuration changes needed.
    OutOfDateConfigurationNeeded,
    /// The platform's keys are revoked.
    Revoked,
}

impl TcbStatus {
    /// The status name as Intel spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SWHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
        }
    }

    /// `(out_of_date, configuration_needed, sw_hardening_needed)`.
    const fn flags(self) -> (bool, bool, bool) {
        match self {
            Self::UpToDate | Self::Revoked => (false, false, false),
            Self::SWHardeningNeeded => (false, false, true),
            Self::ConfigurationNeeded => (false, true, false),
            Self::ConfigurationAndSWHardeningNeeded => (false, true, true),
            Self::OutOfDate => (true, false, false),
            Self::OutOfDateConfigurationNeeded => (true, true, false),
        }
    }

    /// The worse of two statuses, as a join over the three properties a
    /// status expresses (out of date, configuration needed, software
    /// hardening needed), with `Revoked` dominating. An out-of-date status
    /// subsumes software hardening (Intel has no
    /// "OutOfDateSWHardeningNeeded"). This never yields a better status than
    /// Intel QVL's convergence rule, and agrees with it whenever the
    /// component status is `UpToDate`, `OutOfDate` or `Revoked`.
    pub const fn worst(self, other: Self) -> Self {
        if matches!(self, Self::Revoked) || matches!(other, Self::Revoked) {
            return Self::Revoked;
        }
        let (a_ood, a_cfg, a_sw) = self.flags();
        let (b_ood, b_cfg, b_sw) = other.flags();
        match (a_ood || b_ood, a_cfg || b_cfg, a_sw || b_sw) {
            (true, true, _) => Self::OutOfDateConfigurationNeeded,
            (true, false, _) => Self::OutOfDate,
            (false, true, true) => Self::ConfigurationAndSWHardeningNeeded,
            (false, true, false) => Self::ConfigurationNeeded,
            (false, false, true) => Self::SWHardeningNeeded,
            (false, false, false) => Self::UpToDate,
        }
    }

    /// Parses Intel's spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::UpToDate,
            Self::SWHardeningNeeded,
            Self::ConfigurationNeeded,
            Self::ConfigurationAndSWHardeningNeeded,
            Self::OutOfDate,
            Self::OutOfDateConfigurationNeeded,
            Self::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inputs of TCB evaluation taken from the PCK certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformTcb {
    /// The 16 SGX TCB component SVNs.
    pub sgx_components: [u8; 16],
    /// PCESVN.
    pub pce_svn: u16,
}

/// The matched levels and the final status. Borrows the collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbEvaluation<'c> {
    /// The matched platform level.
    pub platform: &'c TcbLevel,
    /// The matched TDX module level (when `TEE_TCB_SVN[1]` > 0).
    pub module: Option<&'c IsvTcbLevel>,
    /// The matched QE level.
    pub qe: &'c IsvTcbLevel,
    /// The worst of the three.
    pub status: TcbStatus,
}

impl<'c> TcbEvaluation<'c> {
    /// Advisory ids of all matched levels, each once, in order of first
    /// appearance (platform, module, QE).
    pub fn advisory_ids(&self) -> impl Iterator<Item = &'c str> + '_ {
        let lists = [
            Some(self.platform.advisory_ids.as_slice()),
            self.module.map(|m| m.advisory_ids.as_slice()),
            Some(self.qe.advisory_ids.as_slice()),
        ];
        let all = lists.into_iter().flatten().flatten();
        all.enumerate().filter_map(move |(i, id)| {
            let earlier = lists.into_iter().flatten().flatten().take(i);
            let mut earlier = earlier;
            if earlier.any(|e| e == id) {
                None
            } else {
                Some(id.as_str())
            }
        })
    }
}

/// Whether `actual` equals `expected` on the bits set in `mask`.
pub(super) fn masked_eq(actual: &[u8], expected: &[u8], mask: &[u8]) -> bool {
    actual.len() == expected.len()
        && actual.len() == mask.len()
        && actual
            .iter()
            .zip(expected)
            .zip(mask)
            .all(|((a, e), m)| a & m == e & m)
}

fn check_module(module: &TdxModule, body: &TdReport<'_>) -> Result<(), TdxError> {
    if module.mr_signer != *body.mr_signer_seam {
        return Err(TdxError::Identity(IdentityField::MrSignerSeam));
    }
    if !masked_eq(
        body.seam_attributes,
        &module.attributes,
        &module.attributes_mask,
    ) {
        return Err(TdxError::Identity(IdentityField::SeamAttributes));
    }
    Ok(())
}

/// Writes `TDX_%02X` of `version` into `out`.
fn module_id(version: u8) -> [u8; 6] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let hi = DIGITS
        .get(usize::from(version >> 4))
        .copied()
        .unwrap_or(b'0');
    let lo = DIGITS
        .get(usize::from(version & 0xf))
        .copied()
        .unwrap_or(b'0');
    [b'T', b'D', b'X', b'_', hi, lo]
}

/// Evaluates the platform, TDX module and QE TCB levels of a quote.
pub fn evaluate<'c>(
    tcb_info: &'c TcbInfo,
    qe_identity: &'c QeIdentity,
    platform: &PlatformTcb,
    body: &TdReport<'_>,
    qe_isv_svn: u16,
) -> Result<TcbEvaluation<'c>, TdxError> {
    let tee = body.tee_tcb_svn;
    let platform_level = tcb_info
        .tcb_levels
        .iter()
        .find(|level| {
            platform
                .sgx_components
                .iter()
                .zip(&level.sgx_components)
                .all(|(a, m)| a >= m)
                && platform.pce_svn >= level.pce_svn
                && tee.iter().zip(&level.tdx_components).all(|(a, m)| a >= m)
        })
        .ok_or(TdxError::TcbLevelNotSupported)?;

    check_module(&tcb_info.tdx_module, body)?;
    let module_version = tee[1];
    let module = if module_version > 0 {
        let id = module_id(module_version);
        let identity = tcb_info
            .tdx_module_identities
            .iter()
            .find(|m| m.id.as_bytes().eq_ignore_ascii_case(&id))
            .ok_or(TdxError::TdxModuleIdentityMissing {
                version: module_version,
            })?;
        check_module(&identity.module, body)?;
        let level = identity
            .tcb_levels
            .iter()
            .find(|l| l.isv_svn <= u16::from(tee[0]))
            .ok_or(TdxError::TdxModuleTcbLevelNotSupported)?;
        Some(level)
    } else {
        None
    };

    let qe = qe_identity
        .tcb_levels
        .iter()
        .find(|l| l.isv_svn <= qe_isv_svn)
        .ok_or(TdxError::QeTcbLevelNotSupported)?;

    let mut status = platform_level.status;
    if let Some(m) = module {
        status = status.worst(m.status);
    }
    status = status.worst(qe.status);
    Ok(TcbEvaluation {
        platform: platform_level,
        module,
        qe,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::tdx::collateral::{TcbLevel, TdxModuleIdentity};
    use crate::evidence::tdx::quote::{TdReport, TdReportVersion};
    use crate::time::UnixTime;
    use TcbStatus::*;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| String::from(*s)).collect()
    }

    fn isv(svn: u16, status: TcbStatus, advisories: &[&str]) -> IsvTcbLevel {
        IsvTcbLevel {
            isv_svn: svn,
            tcb_date: UnixTime(0),
            status,
            advisory_ids: ids(advisories),
        }
    }

    fn level(sgx: u8, pce: u16, tdx0: u8, status: TcbStatus, advisories: &[&str]) -> TcbLevel {
        TcbLevel {
            sgx_components: [sgx; 16],
            pce_svn: pce,
            tdx_components: [tdx0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            tcb_date: UnixTime(0),
            status,
            advisory_ids: ids(advisories),
        }
    }

    fn module() -> TdxModule {
        TdxModule {
            mr_signer: [0; 48],
            attributes: [0; 8],
            attributes_mask: [0xff; 8],
        }
    }

    fn tcb_info() -> TcbInfo {
        TcbInfo {
            issue_date: UnixTime(0),
            next_update: UnixTime(1),
            fmspc: [0; 6],
            pce_id: [0; 2],
            tcb_type: 0,
            tcb_evaluation_data_number: 17,
            tdx_module: module(),
            tdx_module_identities: vec![TdxModuleIdentity {
                id: String::from("TDX_01"),
                module: module(),
                tcb_levels: vec![isv(4, UpToDate, &[]), isv(2, OutOfDate, &["INTEL-SA-2"])],
            }],
            tcb_levels: vec![
                level(5, 11, 5, UpToDate, &[]),
                level(3, 11, 3, SWHardeningNeeded, &["INTEL-SA-1"]),
                level(2, 5, 2, OutOfDate, &["INTEL-SA-0", "INTEL-SA-1"]),
            ],
        }
    }

    fn qe_identity() -> QeIdentity {
        QeIdentity {
            issue_date: UnixTime(0),
            next_update: UnixTime(1),
            tcb_evaluation_data_number: 17,
            misc_select: 0,
            misc_select_mask: 0,
            attributes: [0; 16],
            attributes_mask: [0; 16],
            mr_signer: [0; 32],
            isv_prod_id: 2,
            tcb_levels: vec![
                isv(8, UpToDate, &[]),
                isv(6, OutOfDate, &["INTEL-SA-1", "INTEL-SA-9"]),
            ],
        }
    }

    struct Body {
        tee: [u8; 16],
        zero48: [u8; 48],
        zero8: [u8; 8],
        zero64: [u8; 64],
    }

    fn body(tee0: u8, module_version: u8) -> Body {
        let mut tee = [0u8; 16];
        tee[0] = tee0;
        tee[1] = module_version;
        Body {
            tee,
            zero48: [0; 48],
            zero8: [0; 8],
            zero64: [0; 64],
        }
    }

    fn report(b: &Body) -> TdReport<'_> {
        TdReport {
            version: TdReportVersion::V1_0,
            tee_tcb_svn: &b.tee,
            mr_seam: &b.zero48,
            mr_signer_seam: &b.zero48,
            seam_attributes: &b.zero8,
            td_attributes: &b.zero8,
            xfam: &b.zero8,
            mr_td: &b.zero48,
            mr_config_id: &b.zero48,
            mr_owner: &b.zero48,
            mr_owner_config: &b.zero48,
            rtmrs: [&b.zero48; 4],
            report_data: &b.zero64,
            tee_tcb_svn2: None,
            mr_service_td: None,
        }
    }

    #[test]
    fn evaluates_platform_module_and_qe_levels() {
        let info = tcb_info();
        let qe = qe_identity();
        let platform = PlatformTcb {
            sgx_components: [5; 16],
            pce_svn: 11,
        };
        let b = body(5, 1);
        let e = evaluate(&info, &qe, &platform, &report(&b), 8).unwrap();
        assert_eq!(e.status, UpToDate);
        assert!(e.module.is_some());
        assert_eq!(e.advisory_ids().count(), 0);

        // Platform one level down, module out of date, QE out of date.
        let platform = PlatformTcb {
            sgx_components: [3; 16],
            pce_svn: 11,
        };
        let b = body(3, 1);
        let e = evaluate(&info, &qe, &platform, &report(&b), 7).unwrap();
        assert_eq!(e.platform.status, SWHardeningNeeded);
        assert_eq!(e.module.map(|m| m.status), Some(OutOfDate));
        assert_eq!(e.qe.status, OutOfDate);
        assert_eq!(e.status, OutOfDate);
        let advisories: Vec<&str> = e.advisory_ids().collect();
        assert_eq!(advisories, ["INTEL-SA-1", "INTEL-SA-2", "INTEL-SA-9"]);

        // One SGX component below every level: not supported.
        let mut comps = [5u8; 16];
        comps[7] = 1;
        let low = PlatformTcb {
            sgx_components: comps,
            pce_svn: 11,
        };
        assert_eq!(
            evaluate(&info, &qe, &low, &report(&b), 8),
            Err(TdxError::TcbLevelNotSupported)
        );
        // PCESVN too low for the first levels, fine for the last.
        let pce = PlatformTcb {
            sgx_components: [5; 16],
            pce_svn: 5,
        };
        assert_eq!(
            evaluate(&info, &qe, &pce, &report(&b), 8)
                .unwrap()
                .platform
                .status,
            OutOfDate
        );
        // Module version without an identity; module SVN below every level.
        let b2 = body(5, 2);
        assert_eq!(
            evaluate(&info, &qe, &platform, &report(&b2), 8),
            Err(TdxError::TdxModuleIdentityMissing { version: 2 })
        );
        let b1 = body(1, 1);
        let low_platform = PlatformTcb {
            sgx_components: [2; 16],
            pce_svn: 5,
        };
        assert_eq!(
            evaluate(&info, &qe, &low_platform, &report(&b1), 8),
            Err(TdxError::TcbLevelNotSupported)
        );
        let mut info2 = tcb_info();
        info2.tcb_levels.push(level(0, 0, 0, OutOfDate, &[]));
        assert_eq!(
            evaluate(&info2, &qe, &low_platform, &report(&b1), 8),
            Err(TdxError::TdxModuleTcbLevelNotSupported)
        );
        // Module version 0: only the base module is checked.
        let b0 = body(0, 0);
        let e = evaluate(&info2, &qe, &low_platform, &report(&b0), 8).unwrap();
        assert!(e.module.is_none());
        // QE below every level.
        assert_eq!(
            evaluate(&info, &qe, &platform, &report(&b), 5),
            Err(TdxError::QeTcbLevelNotSupported)
        );
        // Module signer mismatch.
        let mut info3 = tcb_info();
        info3.tdx_module.mr_signer[0] = 1;
        assert_eq!(
            evaluate(&info3, &qe, &platform, &report(&b), 8),
            Err(TdxError::Identity(IdentityField::MrSignerSeam))
        );
    }

    #[test]
    fn worst_is_a_join() {
        let all = [
            UpToDate,
            SWHardeningNeeded,
            ConfigurationNeeded,
            ConfigurationAndSWHardeningNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
            Revoked,
        ];
        for a in all {
            assert_eq!(a.worst(UpToDate), a);
            assert_eq!(a.worst(a), a);
            assert_eq!(a.worst(Revoked), Revoked);
            assert_eq!(TcbStatus::from_name(a.as_str()), Some(a));
            for b in all {
                assert_eq!(a.worst(b), b.worst(a));
            }
        }
        assert_eq!(
            ConfigurationNeeded.worst(OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(SWHardeningNeeded.worst(OutOfDate), OutOfDate);
        assert_eq!(
            SWHardeningNeeded.worst(ConfigurationNeeded),
            ConfigurationAndSWHardeningNeeded
        );
        assert_eq!(module_id(1), *b"TDX_01");
        assert_eq!(module_id(0xab), *b"TDX_AB");
    }
}
