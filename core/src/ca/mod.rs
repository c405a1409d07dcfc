//! STUB (not committed)
#![allow(missing_docs, unused)]
use alloc::string::String;
use alloc::vec::Vec;
use crate::crypto::SecureRandom;
use crate::evidence::Claims;
use crate::kdf::{MeshCaKey, RootCaKey};
use crate::time::UnixTime;
pub struct Ca { mesh: MeshCaKey, c: Vec<u8> }
#[derive(Debug)]
pub enum CaError { X }
impl core::fmt::Display for CaError { fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str("x") } }
pub struct WorkloadCertRequest<'a> { pub public_key_spki: &'a [u8], pub sans: &'a [String], pub workload_secret_id: Option<&'a str>, pub claims: Option<&'a Claims> }
impl Ca {
    pub fn new(root_key: &RootCaKey, mesh_key: MeshCaKey, now: UnixTime, rng: &dyn SecureRandom) -> Result<Ca, CaError> { Ok(Ca{mesh: mesh_key, c: Vec::new()}) }
    pub fn root_cert(&self) -> &[u8] { &self.c }
    pub fn intermediate_cert(&self) -> &[u8] { &self.c }
    pub fn mesh_ca_cert(&self) -> &[u8] { &self.c }
    pub fn mesh_key(&self) -> &MeshCaKey { &self.mesh }
    pub fn issue(&self, request: &WorkloadCertRequest<'_>, now: UnixTime, rng: &dyn SecureRandom) -> Result<Vec<u8>, CaError> { Ok(Vec::new()) }
}
