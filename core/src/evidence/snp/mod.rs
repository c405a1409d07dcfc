//! AMD SEV-SNP attestation reports (placeholder).
