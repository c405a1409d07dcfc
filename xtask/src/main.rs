//! `cargo xtask`: repository tasks that cargo alone cannot do.
fn main() {}
