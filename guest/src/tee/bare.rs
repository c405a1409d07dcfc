//! **INSECURE SIMULATION** (tests and the demo): a TEE whose evidence
//! carries no collateral, so that a verifier must get it elsewhere (the
//! shim, a fetcher) or refuse by name.

use std::sync::Arc;

use accord_core::evidence::Evidence;

use super::{TeeError, TeeProvider};

/// Wraps a (simulated) TEE and strips the collateral its evidence
/// carries: the SEV-SNP CRL, the TDX collateral.
pub struct Bare(pub Arc<dyn TeeProvider>);

impl TeeProvider for Bare {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn is_insecure(&self) -> bool {
        true
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let mut evidence = self.0.evidence(report_data)?;
        match &mut evidence {
            Evidence::Snp(snp) => snp.crl = None,
            Evidence::Tdx(tdx) => tdx.collateral = None,
        }
        Ok(evidence)
    }
}
