//! Empty: this package exists for its benchmark (`benches/sev.rs`), which
//! times accord's SNP verification beside virtee/sev built with one crypto
//! backend (feature `openssl`, the default here, or `nossl`).
