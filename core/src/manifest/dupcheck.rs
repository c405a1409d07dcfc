//! Refuses JSON objects with repeated keys (serde_json keeps the last one
//! silently). A first pass over the bytes with a `DeserializeSeed` that
//! visits every value and remembers the keys of each object.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use core::cell::RefCell;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ManifestError;

/// Checks `bytes` is one JSON value without duplicate keys at any depth.
pub(super) fn check(bytes: &[u8]) -> Result<(), ManifestError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Walk {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (found.into_inner(), result) {
        (Some(path), _) => Err(ManifestError::DuplicateKey { path }),
        (None, Err(e)) => Err(ManifestError::Syntax(e.to_string())),
        (None, Ok(())) => Ok(()),
    }
}

/// The path of member `key` of the object at `parent`: `Key` at the top,
/// `parent["key"]` for policy hashes and keys that are not identifiers,
/// else `parent.Key`.
fn child(parent: &str, key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if parent.is_empty() && ident {
        key.to_string()
    } else if parent == "Policies" || !ident {
        format!("{parent}[{key:?}]")
    } else {
        format!("{parent}.{key}")
    }
}

struct Walk<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            let seed = Walk {
                path,
                found: self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = child(&self.path, &key);
            if !seen.insert(key) {
                *self.found.borrow_mut() = Some(path.clone());
                return Err(de::Error::custom(format!("{path}: duplicate key")));
            }
            map.next_value_seed(Walk {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}
