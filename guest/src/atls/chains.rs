//! The process-wide cache of verified SEV-SNP certificate chains.
//!
//! A coordinator sees the same few VCEKs on every connection; verifying
//! their chain (an RSA-PSS and a P-384 signature) each time costs about as
//! much as the report itself. The cache is keyed by
//! [`accord_core::evidence::chain_key`] (leaf, roots, product), holds at
//! most [`CAPACITY`] chains (oldest dropped first), and every use re-checks
//! the chain's validity windows at the verification instant.

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};

use accord_core::evidence::ChainStore;
use accord_core::evidence::snp::VerifiedChain;

/// How many chains are kept.
pub const CAPACITY: usize = 64;

/// A bounded, thread-safe [`ChainStore`].
#[derive(Default)]
pub struct ChainCache {
    chains: Mutex<VecDeque<([u8; 32], VerifiedChain)>>,
}

impl ChainStore for ChainCache {
    fn get(&self, key: &[u8; 32]) -> Option<VerifiedChain> {
        let chains = self.chains.lock().ok()?;
        chains
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, chain)| chain.clone())
    }

    fn put(&self, key: [u8; 32], chain: VerifiedChain) {
        // A poisoned lock only means another verification panicked; the
        // cache is then simply not used.
        let Ok(mut chains) = self.chains.lock() else {
            return;
        };
        if chains.iter().any(|(k, _)| *k == key) {
            return;
        }
        if chains.len() >= CAPACITY {
            chains.pop_front();
        }
        chains.push_back((key, chain));
    }
}

impl ChainCache {
    /// How many chains are held.
    pub fn len(&self) -> usize {
        self.chains.lock().map_or(0, |c| c.len())
    }

    /// The keys held, oldest first.
    pub fn keys(&self) -> Vec<[u8; 32]> {
        self.chains
            .lock()
            .map_or_else(|_| Vec::new(), |c| c.iter().map(|(k, _)| *k).collect())
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache every attested-TLS verification in this process shares.
pub static CHAINS: LazyLock<ChainCache> = LazyLock::new(ChainCache::default);
