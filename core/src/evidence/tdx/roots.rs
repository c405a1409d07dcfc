//! The pinned trust anchor: Intel's SGX Root CA, the root of every PCK
//! certificate, CRL and TCB signing certificate.
//!
//! `intel-sgx-root-ca.der` beside this file is Intel's public root
//! certificate (CN=Intel SGX Root CA, O=Intel Corporation, valid 2018-05-21 ..
//! 2049-12-31, self-signed ECDSA P-256), byte-identical to dcap-qvl's
//! `src/TrustedRootCA.der` and go-tdx-guest's `verify/trusted_root.pem`, and
//! to the root carried in every real quote. Its SHA-256 fingerprint is pinned
//! here and checked by a test, so the file cannot change unnoticed.

/// DER of the Intel SGX Root CA.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("intel-sgx-root-ca.der");

/// SHA-256 fingerprint of [`INTEL_SGX_ROOT_CA_DER`].
pub const INTEL_SGX_ROOT_CA_SHA256: [u8; 32] = [
    0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
    0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::all_providers;
    use crate::x509::Certificate;

    #[test]
    fn pinned_root_matches_its_fingerprint_and_is_self_signed() {
        for provider in all_providers() {
            assert_eq!(
                provider.sha256(&[INTEL_SGX_ROOT_CA_DER]),
                INTEL_SGX_ROOT_CA_SHA256
            );
            let root = Certificate::from_der(INTEL_SGX_ROOT_CA_DER).unwrap();
            assert_eq!(root.subject_common_name(), Some("Intel SGX Root CA"));
            root.verify_issued_by(&root, *provider).unwrap();
        }
    }
}
