//! accord-shim: the untrusted host side of the coordinator pod.
//!
//! Not built yet: storage backends, peer discovery, probes and metrics arrive
//! with a later issue. This crate only holds the workspace's shape.
#![forbid(unsafe_code)]
