//! Verification against the real hardware evidence in `../shared/testdata`
//! (override the folder with `ACCORD_TESTDATA`). With
//! `ACCORD_REQUIRE_VECTORS=1` (set by CI) a missing vector fails the test
//! loudly instead of skipping it.

#[path = "vectors/common.rs"]
mod common;
#[path = "vectors/defaults.rs"]
mod defaults;
#[path = "vectors/evidence.rs"]
mod evidence;
#[path = "vectors/service.rs"]
mod service;
#[path = "vectors/snp.rs"]
mod snp;
#[path = "vectors/snp_pki.rs"]
mod snp_pki;
#[path = "vectors/snp_sev_diff.rs"]
mod snp_sev_diff;
#[path = "vectors/tdx.rs"]
mod tdx;
#[path = "vectors/tdx_dcap_diff.rs"]
mod tdx_dcap_diff;
#[path = "vectors/x509.rs"]
mod x509;
