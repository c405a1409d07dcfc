//! `accord-guest`: the agent binary.
fn main() {}
