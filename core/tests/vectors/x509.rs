//! X.509 parsing and signature checks on the real vendor certificates and
//! CRLs in the test data (AMD RSA-PSS chains, Intel ECDSA chains and CRLs).

use accord_core::x509::{Certificate, Crl, PublicKey, SignatureAlgorithm, X509Error, pem};

use crate::common::{at, providers};
use crate::vector;

fn certs(pem_text: &[u8]) -> Vec<Vec<u8>> {
    pem::decode_all(std::str::from_utf8(pem_text).unwrap(), "CERTIFICATE").unwrap()
}

#[test]
fn amd_chains_verify_and_tampering_fails() {
    for product in ["milan", "genoa", "turin"] {
        let ark = certs(&vector!(&format!("snp/{product}-ark.pem"))).remove(0);
        let ask = certs(&vector!(&format!("snp/{product}-ask.pem"))).remove(0);
        let ark = Certificate::from_der(&ark).unwrap();
        let ask = Certificate::from_der(&ask).unwrap();
        assert_eq!(ark.signature_algorithm(), SignatureAlgorithm::RsaPssSha384);
        assert!(matches!(ark.public_key(), PublicKey::Rsa(key) if key.modulus.len() == 512));
        assert_eq!(
            ark.subject_common_name(),
            Some(format!("ARK-{}", capitalized(product)).as_str())
        );
        assert_eq!(ask.basic_constraints_ca(), Ok(Some(true)));
        ask.check_critical_extensions(&[]).unwrap();
        for provider in providers() {
            ark.verify_issued_by(&ark, *provider).unwrap();
            ask.verify_issued_by(&ark, *provider).unwrap();
            assert_eq!(
                ark.verify_issued_by(&ask, *provider),
                Err(X509Error::IssuerMismatch)
            );
        }
        ask.check_validity(at("2026-03-01T00:00:00Z")).unwrap();
        assert!(matches!(
            ask.check_validity(at("2019-01-01T00:00:00Z")),
            Err(X509Error::NotYetValid { .. })
        ));
        assert!(matches!(
            ask.check_validity(at("2049-01-01T00:00:00Z")),
            Err(X509Error::Expired { .. })
        ));
    }
    // A Genoa VCEK does not verify under the Milan ASK (each product has
    // its own ASK).
    let genoa_vcek = certs(&vector!("snp/genoa-vcek-1.pem")).remove(0);
    let genoa_vcek = Certificate::from_der(&genoa_vcek).unwrap();
    let milan_ask = certs(&vector!("snp/milan-ask.pem")).remove(0);
    let milan_ask = Certificate::from_der(&milan_ask).unwrap();
    assert!(matches!(genoa_vcek.public_key(), PublicKey::Ec { point, .. } if point.len() == 97));
    for provider in providers() {
        assert!(
            genoa_vcek
                .verify_signature(milan_ask.public_key(), *provider)
                .is_err()
        );
    }
}

fn capitalized(product: &str) -> String {
    let mut chars = product.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[test]
fn every_byte_of_a_signed_certificate_matters() {
    let ark_der = certs(&vector!("snp/milan-ark.pem")).remove(0);
    let ask_der = certs(&vector!("snp/milan-ask.pem")).remove(0);
    let ark = Certificate::from_der(&ark_der).unwrap();
    let provider = providers()[providers().len() - 1];
    // Flip each byte of the ASK's tbsCertificate (in steps, to keep RSA-4096
    // checks affordable): either parsing or the signature must fail.
    let tbs_start = 4; // after the outer SEQUENCE header
    let tbs_len = Certificate::from_der(&ask_der).unwrap().tbs().len();
    for index in (tbs_start..tbs_start + tbs_len).step_by(7) {
        let mut mutated = ask_der.clone();
        mutated[index] ^= 0x01;
        let accepted = Certificate::from_der(&mutated)
            .is_ok_and(|c| c.verify_issued_by(&ark, provider).is_ok());
        assert!(
            !accepted,
            "flipping byte {index} of the ASK was not detected"
        );
    }
}

#[test]
fn intel_chains_and_crls_verify() {
    let root_der = vector!("tdx/intel-sgx-root-ca.der");
    let root = Certificate::from_der(&root_der).unwrap();
    for set in ["v4-1", "v4-2", "v4-3", "v5-1"] {
        let chain = certs(&vector!(&format!("tdx/tdx-pck-chain-{set}.pem")));
        assert_eq!(chain.len(), 3, "{set}");
        let pck = Certificate::from_der(&chain[0]).unwrap();
        let ca = Certificate::from_der(&chain[1]).unwrap();
        assert_eq!(pck.subject_common_name(), Some("Intel SGX PCK Certificate"));
        assert_eq!(
            chain[2], root_der,
            "{set}: the quote's root is the pinned root"
        );
        for provider in providers() {
            pck.verify_issued_by(&ca, *provider).unwrap();
            ca.verify_issued_by(&root, *provider).unwrap();
            root.verify_issued_by(&root, *provider).unwrap();
            assert!(ca.verify_issued_by(&pck, *provider).is_err());
        }
    }
    let crl_issuer = certs(&vector!("tdx/tdx-pckcrl-issuer-chain-4.pem"));
    let platform_ca = Certificate::from_der(&crl_issuer[0]).unwrap();
    let pck_crl_der = vector!("tdx/tdx-pckcrl-platform-4.der");
    let pck_crl = Crl::from_der(&pck_crl_der).unwrap();
    let root_crl_der = vector!("tdx/tdx-rootcrl-4.der");
    let root_crl = Crl::from_der(&root_crl_der).unwrap();
    assert_eq!(pck_crl.revoked_serials().count(), 44);
    assert_eq!(root_crl.revoked_serials().count(), 0);
    let first_revoked = pck_crl.revoked_serials().next().unwrap().to_vec();
    assert!(pck_crl.is_revoked(&first_revoked));
    assert!(!pck_crl.is_revoked(&[0x01]));
    for provider in providers() {
        pck_crl.verify_issued_by(&platform_ca, *provider).unwrap();
        root_crl.verify_issued_by(&root, *provider).unwrap();
        assert_eq!(
            pck_crl.verify_issued_by(&root, *provider),
            Err(X509Error::IssuerMismatch)
        );
    }
    pck_crl.check_validity(at("2023-07-01T01:00:00Z")).unwrap();
    assert!(matches!(
        pck_crl.check_validity(at("2023-07-08T07:27:53Z")),
        Err(X509Error::Expired { .. })
    ));
    // A flipped bit in the signed part breaks the CRL signature.
    let mut tampered = pck_crl_der.clone();
    let last_tbs_byte = 4 + pck_crl.tbs().len() - 1;
    tampered[last_tbs_byte] ^= 0x01;
    let tampered_ok = Crl::from_der(&tampered)
        .is_ok_and(|crl| crl.verify_issued_by(&platform_ca, providers()[0]).is_ok());
    assert!(!tampered_ok);
}

#[test]
fn parsers_never_panic_on_truncation() {
    let der = vector!("tdx/intel-sgx-root-ca.der");
    for len in 0..der.len() {
        assert!(Certificate::from_der(&der[..len]).is_err());
    }
    let crl = vector!("tdx/tdx-rootcrl-4.der");
    for len in 0..crl.len() {
        assert!(Crl::from_der(&crl[..len]).is_err());
    }
}
