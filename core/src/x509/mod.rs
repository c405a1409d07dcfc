//! X.509 certificates and CRLs (placeholder; filled in by the X.509 work).
