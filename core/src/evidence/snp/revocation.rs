//! AMD certificate revocation lists.
//!
//! AMD's KDS publishes one CRL per product (`/vcek/v1/<product>/crl`),
//! signed by the ARK with RSASSA-PSS SHA-384. It lists revoked intermediates
//! (ASK/ASVK) and may list leaves. [`check`] verifies the CRL's signature
//! against the ARK, requires `thisUpdate <= at <= nextUpdate`, and refuses
//! any listed certificate of the chain.
//!
//! Tested with CRLs generated under a test root (`core/tests/vectors/snp_pki.rs`)
//! and, through the in-service verifier (`evidence::ServiceVerifier`,
//! which holds CRLs and applies them to cached chains), with the real AMD
//! VCEK CRLs of the test data (`core/tests/vectors/service.rs`).

use crate::crypto::CryptoProvider;
use crate::hex;
use crate::time::UnixTime;
use crate::x509::{Certificate, Crl};

use super::error::{CertRole, SnpError};

/// Verifies `crl_der` (issued by `ark`, current at `at`) and refuses any of
/// `chain` whose serial it lists.
pub fn check(
    crl_der: &[u8],
    ark: &Certificate<'_>,
    chain: &[(&Certificate<'_>, CertRole)],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<(), SnpError> {
    let crl = Crl::from_der(crl_der).map_err(SnpError::Crl)?;
    crl.verify_issued_by(ark, provider).map_err(SnpError::Crl)?;
    crl.check_validity(at).map_err(SnpError::Crl)?;
    for (cert, role) in chain {
        if crl.is_revoked(cert.serial()) {
            return Err(SnpError::Revoked {
                role: *role,
                serial: hex::encode(cert.serial()),
            });
        }
    }
    Ok(())
}
