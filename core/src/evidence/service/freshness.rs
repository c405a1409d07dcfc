//! The verifier's memory of how new collateral has been: high-water marks.
//!
//! - **CRLs**, per stream (an issuer and what the CRL covers: the VCEK or
//!   VLEK CRL of one ARK, the PCK or root CA CRL of one Intel issuer):
//!   the newest [`CrlVersion`], ordered by cRLNumber and then thisUpdate
//!   (Intel numbers every CRL 1, so only thisUpdate tells them apart).
//! - **TDX TCB info**, per root and FMSPC, and the **TDX QE identity**,
//!   per root: the newest `tcbEvaluationDataNumber`. A root (Intel's
//!   pinned one, or a reference entry's INSECURE explicit root) has its
//!   own marks, so collateral signed under a simulated root can neither
//!   raise a mark that would then refuse Intel's genuine collateral (anyone
//!   can sign a simulated TCB info with any number) nor be refused because
//!   Intel's numbers are higher. The TDX CRL streams are per root too
//!   (their key covers the root).
//!
//! A mark only rises. Collateral below a mark is refused: it is what an
//! attester or a host would pick to hide a revocation or a newer TCB
//! recovery. The marks live in memory; `persist.rs` writes them as bytes
//! and raises another verifier's marks to them (the CLI keeps them in its
//! workspace across runs). A restarted coordinator starts again from none
//! (a documented weakness).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use crate::time::UnixTime;
use crate::x509::Crl;

/// The version of one CRL: its number (big-endian magnitude, leading zeros
/// stripped; empty when absent) and thisUpdate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlVersion {
    /// cRLNumber, big-endian, no leading zeros.
    pub number: Vec<u8>,
    /// thisUpdate.
    pub this_update: UnixTime,
}

impl CrlVersion {
    /// The version of a parsed CRL.
    pub fn of(crl: &Crl<'_>) -> Self {
        let number = crl.crl_number().unwrap_or(&[]);
        let start = number.iter().position(|b| *b != 0).unwrap_or(number.len());
        Self {
            number: number.get(start..).unwrap_or(&[]).to_vec(),
            this_update: crl.this_update(),
        }
    }
}

impl Ord for CrlVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.number
            .len()
            .cmp(&other.number.len())
            .then_with(|| self.number.cmp(&other.number))
            .then_with(|| self.this_update.cmp(&other.this_update))
    }
}

impl PartialOrd for CrlVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for CrlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.number.is_empty() {
            // A cRLNumber of 0 and none at all order the same.
            write!(f, "CRL number 0 (or none) of {}", self.this_update)
        } else {
            write!(
                f,
                "CRL number {} of {}",
                CrlNumber(&self.number),
                self.this_update
            )
        }
    }
}

/// A CRL number, in decimal when it fits a u64, else hex.
struct CrlNumber<'a>(&'a [u8]);

impl fmt::Display for CrlNumber<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 8 {
            let n = self
                .0
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            write!(f, "{n}")
        } else {
            write!(f, "0x{}", crate::hex::encode(self.0))
        }
    }
}

/// Which CRL stream a mark is for: a label and the issuer's identity.
pub type StreamKey = (&'static str, [u8; 32]);

/// The high-water marks.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    pub(super) crls: BTreeMap<StreamKey, CrlVersion>,
    /// The TDX marks of each root (few: the roots the reference values
    /// name).
    pub(super) tdx: Vec<TdxMarks>,
}

/// The TDX marks under one root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TdxMarks {
    /// The root's DER.
    pub(super) root: Vec<u8>,
    pub(super) tcb_info: BTreeMap<[u8; 6], u32>,
    pub(super) qe_identity: Option<u32>,
}

/// A mark that an offered version falls below: the newest seen and the
/// offered one, as text for the error.
pub struct Below {
    /// The newest seen.
    pub newest_seen: String,
    /// The offered one.
    pub offered: String,
}

fn below(newest: impl fmt::Display, offered: impl fmt::Display) -> Below {
    use alloc::string::ToString;
    Below {
        newest_seen: newest.to_string(),
        offered: offered.to_string(),
    }
}

impl Marks {
    /// Whether a CRL of `stream` at `version` is at least as new as the
    /// newest seen.
    pub fn check_crl(&self, stream: &StreamKey, version: &CrlVersion) -> Result<(), Below> {
        match self.crls.get(stream) {
            Some(newest) if version < newest => Err(below(newest, version)),
            _ => Ok(()),
        }
    }

    /// Raises the mark of `stream` to `version` (never lowers it).
    pub fn record_crl(&mut self, stream: StreamKey, version: CrlVersion) {
        match self.crls.get_mut(&stream) {
            Some(newest) if *newest >= version => {}
            Some(newest) => *newest = version,
            None => {
                self.crls.insert(stream, version);
            }
        }
    }

    fn tdx(&self, root: &[u8]) -> Option<&TdxMarks> {
        self.tdx.iter().find(|m| m.root == root)
    }

    /// Whether TCB info for `fmspc` under `root` (DER) with `number` is at
    /// least as new as the newest seen under that root.
    pub fn check_tcb_info(&self, root: &[u8], fmspc: [u8; 6], number: u32) -> Result<(), Below> {
        match self.tcb_info(root, fmspc) {
            Some(newest) if number < newest => Err(below(
                TcbEval(newest, "TCB info"),
                TcbEval(number, "TCB info"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether a QE identity under `root` (DER) with `number` is at least
    /// as new as the newest seen under that root.
    pub fn check_qe_identity(&self, root: &[u8], number: u32) -> Result<(), Below> {
        match self.tdx(root).and_then(|m| m.qe_identity) {
            Some(newest) if number < newest => Err(below(
                TcbEval(newest, "QE identity"),
                TcbEval(number, "QE identity"),
            )),
            _ => Ok(()),
        }
    }

    /// Raises the TCB info mark of `fmspc` and the QE identity mark under
    /// `root` (DER).
    pub fn record_tdx(&mut self, root: &[u8], fmspc: [u8; 6], tcb_info: u32, qe_identity: u32) {
        self.record_tcb_info(root, fmspc, tcb_info);
        self.record_qe_identity(root, qe_identity);
    }

    /// Raises every mark to `other`'s where `other`'s is newer (never
    /// lowers one).
    pub fn raise_to(&mut self, other: &Marks) {
        for (stream, version) in &other.crls {
            self.record_crl(*stream, version.clone());
        }
        for theirs in &other.tdx {
            for (fmspc, number) in &theirs.tcb_info {
                self.record_tcb_info(&theirs.root, *fmspc, *number);
            }
            if let Some(number) = theirs.qe_identity {
                self.record_qe_identity(&theirs.root, number);
            }
        }
    }

    fn tdx_mut(&mut self, root: &[u8]) -> Option<&mut TdxMarks> {
        let index = match self.tdx.iter().position(|m| m.root == root) {
            Some(index) => index,
            None => {
                self.tdx.push(TdxMarks {
                    root: root.to_vec(),
                    tcb_info: BTreeMap::new(),
                    qe_identity: None,
                });
                self.tdx.len() - 1
            }
        };
        self.tdx.get_mut(index)
    }

    fn record_tcb_info(&mut self, root: &[u8], fmspc: [u8; 6], number: u32) {
        if let Some(marks) = self.tdx_mut(root) {
            let mark = marks.tcb_info.entry(fmspc).or_insert(number);
            *mark = (*mark).max(number);
        }
    }

    fn record_qe_identity(&mut self, root: &[u8], number: u32) {
        if let Some(marks) = self.tdx_mut(root) {
            marks.qe_identity = Some(marks.qe_identity.map_or(number, |n| n.max(number)));
        }
    }

    /// The newest tcbEvaluationDataNumber seen for `fmspc` under `root`
    /// (DER).
    pub fn tcb_info(&self, root: &[u8], fmspc: [u8; 6]) -> Option<u32> {
        self.tdx(root).and_then(|m| m.tcb_info.get(&fmspc)).copied()
    }
}

struct TcbEval(u32, &'static str);

impl fmt::Display for TcbEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} with tcbEvaluationDataNumber {}", self.1, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(number: &[u8], t: i64) -> CrlVersion {
        CrlVersion {
            number: number.to_vec(),
            this_update: UnixTime(t),
        }
    }

    #[test]
    fn crl_versions_order_by_number_then_date_and_marks_only_rise() {
        assert!(v(&[11], 0) > v(&[6], 100));
        assert!(v(&[1, 0], 0) > v(&[0xff], 100));
        assert!(v(&[1], 200) > v(&[1], 100));
        assert!(v(&[], 200) > v(&[], 100));
        let key = ("test", [0; 32]);
        let mut marks = Marks::default();
        assert!(marks.check_crl(&key, &v(&[6], 0)).is_ok());
        marks.record_crl(key, v(&[11], 0));
        let refused = marks.check_crl(&key, &v(&[6], 5)).err().unwrap();
        assert!(
            refused.newest_seen.contains("CRL number 11"),
            "{}",
            refused.newest_seen
        );
        assert!(
            refused.offered.contains("CRL number 6"),
            "{}",
            refused.offered
        );
        assert!(marks.check_crl(&key, &v(&[11], 0)).is_ok());
        marks.record_crl(key, v(&[6], 0));
        assert!(marks.check_crl(&key, &v(&[10], 0)).is_err());
        // Another stream is independent.
        assert!(marks.check_crl(&("other", [0; 32]), &v(&[1], 0)).is_ok());
    }

    #[test]
    fn tdx_marks_are_per_root_and_fmspc_and_only_rise() {
        let (intel, simulated) = (&[1u8, 2][..], &[3u8][..]);
        let mut marks = Marks::default();
        marks.record_tdx(intel, [1; 6], 18, 18);
        marks.record_tdx(intel, [1; 6], 17, 17);
        assert_eq!(marks.tcb_info(intel, [1; 6]), Some(18));
        assert!(marks.check_tcb_info(intel, [1; 6], 17).is_err());
        assert!(marks.check_tcb_info(intel, [1; 6], 18).is_ok());
        assert!(marks.check_tcb_info(intel, [2; 6], 1).is_ok());
        assert!(marks.check_qe_identity(intel, 17).is_err());
        assert!(marks.check_qe_identity(intel, 19).is_ok());
        // Another root's marks are its own, both ways.
        assert_eq!(marks.tcb_info(simulated, [1; 6]), None);
        assert!(marks.check_tcb_info(simulated, [1; 6], 1).is_ok());
        assert!(marks.check_qe_identity(simulated, 1).is_ok());
        marks.record_tdx(simulated, [1; 6], 900, 900);
        assert_eq!(marks.tcb_info(intel, [1; 6]), Some(18));
        assert!(marks.check_tcb_info(intel, [1; 6], 18).is_ok());
        assert!(marks.check_qe_identity(intel, 18).is_ok());
        assert!(marks.check_tcb_info(simulated, [1; 6], 899).is_err());
    }
}
