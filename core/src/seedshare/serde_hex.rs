//! Serde helpers for the seed share document: byte strings as lowercase hex
//! in human-readable formats (JSON), as plain serde bytes/arrays otherwise
//! (postcard).

use alloc::string::String;
use alloc::vec::Vec;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hex;

/// A 32-byte string (hex in human-readable formats).
#[derive(Clone, Copy)]
pub(super) struct Hex32(pub [u8; 32]);

impl Serialize for Hex32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        array::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        array::deserialize(deserializer).map(Self)
    }
}

/// The commitment points: a sequence of 4 sequences of 32-byte strings.
pub(super) struct Points<'a>(pub &'a [Vec<[u8; 32]>; super::CHUNKS]);

impl Serialize for Points<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|chunk| chunk.iter().copied().map(Hex32).collect::<Vec<_>>()),
        )
    }
}

/// `[u8; 32]` as hex / a plain array.
pub(super) mod array {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        bytes: &[u8; 32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            bytes.serialize(serializer)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 32], D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            hex::decode_array(&text).map_err(D::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer)
        }
    }
}

/// A [`SeedshareKey`](crate::manifest::SeedshareKey) as its raw 32 bytes.
pub(super) mod key {
    use super::*;
    use crate::manifest::SeedshareKey;

    pub(crate) fn serialize<S: Serializer>(
        key: &SeedshareKey,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        array::serialize(&key.0, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SeedshareKey, D::Error> {
        array::deserialize(deserializer).map(SeedshareKey)
    }
}

/// `Vec<u8>` as hex / a plain sequence.
pub(super) mod bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Vec<u8>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            bytes.serialize(serializer)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            hex::decode(&text).map_err(D::Error::custom)
        } else {
            Vec::<u8>::deserialize(deserializer)
        }
    }
}
