//! `accord generate`: from plain Kubernetes YAML to attestable Kata pods.
//! [`policy`] writes the Kata agent policy of one pod template.

pub mod policy;
