//! Strict DER reading (placeholder; filled in by the X.509 work).
