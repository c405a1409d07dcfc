//! STUB (not committed)
#![allow(missing_docs, unused)]
use alloc::vec::Vec;
use crate::crypto::{CryptoProvider, SecureRandom};
use crate::kdf::{Salt, SecretSeed};
use crate::manifest::SeedshareKey;
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Commitments { pub threshold: u8, pub points: [Vec<[u8; 32]>; 4] }
impl Commitments {
    pub fn encode(&self) -> Vec<u8> { Vec::new() }
    pub fn decode(b: &[u8]) -> Result<Self, SeedShareError> { Err(SeedShareError::NoOwners) }
    pub fn hash(&self, p: &dyn CryptoProvider) -> [u8; 32] { [0; 32] }
}
pub struct Share { pub index: u8, values: [[u8; 32]; 4] }
impl Share { pub fn from_bytes(b: &[u8]) -> Result<Share, SeedShareError> { Err(SeedShareError::NoOwners) } }
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedShare { pub owner: [u8; 32], pub index: u8, pub encapsulated_key: [u8; 32], pub ciphertext: Vec<u8> }
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeedShareDocument { pub version: u32, pub salt: [u8; 32], pub commitments: Commitments, pub shares: Vec<SealedShare> }
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedShareError { BadShare { index: u8 }, NotEnoughShares { have: usize, need: u8 }, DuplicateIndex(u8), NoOwners }
impl core::fmt::Display for SeedShareError { fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str("x") } }
pub fn split(seed: &SecretSeed, salt: &Salt, owners: &[SeedshareKey], threshold: u8, provider: &dyn CryptoProvider, rng: &dyn SecureRandom) -> Result<SeedShareDocument, SeedShareError> { Err(SeedShareError::NoOwners) }
pub fn open(sealed: &SealedShare, commitments: &Commitments, owner_secret: &[u8; 32], provider: &dyn CryptoProvider) -> Result<Share, SeedShareError> { Err(SeedShareError::NoOwners) }
pub fn verify_share(commitments: &Commitments, share: &Share) -> Result<(), SeedShareError> { Ok(()) }
pub fn reconstruct(commitments: &Commitments, shares: &[Share]) -> Result<SecretSeed, SeedShareError> { Err(SeedShareError::NoOwners) }
pub fn owner_public_key(secret: &[u8; 32]) -> SeedshareKey { SeedshareKey(*secret) }
