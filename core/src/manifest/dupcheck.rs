//! Refuses JSON objects with repeated keys (serde_json keeps the last one
//! silently). A first pass over the bytes with a `DeserializeSeed` that
//! visits every value and remembers the keys of each object.
//!
//! The walk builds no path while it scans: the work per key is one lookup
//! and one insertion in the set of its object's keys, whatever the depth.
//! Only when a duplicate is found is its path put together, while the error
//! unwinds: each enclosing object or array adds its key or index on the
//! way out, and [`check`] formats the segments once.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ManifestError;

/// One step of the path to a duplicate key.
enum Segment {
    /// A member of an object.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// The path of the first duplicate key found, innermost segment first;
/// `None` while none was found.
type Found = RefCell<Option<Vec<Segment>>>;

/// Checks `bytes` is one JSON value without duplicate keys at any depth.
pub(super) fn check(bytes: &[u8]) -> Result<(), ManifestError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Walk { found: &found }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match (found.into_inner(), result) {
        (Some(segments), _) => Err(ManifestError::DuplicateKey {
            path: path(&segments),
        }),
        (None, Err(e)) => Err(ManifestError::Syntax(e.to_string())),
        (None, Ok(())) => Ok(()),
    }
}

/// Formats the segments (innermost first) as a JSON path.
fn path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments.iter().rev() {
        out = match segment {
            Segment::Key(key) => child(&out, key),
            Segment::Index(i) => format!("{out}[{i}]"),
        };
    }
    out
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

/// Adds `segment` to the path of a duplicate found below it, if the error
/// passing through is that one (and not, say, a syntax error).
fn on_the_way_out(found: &Found, segment: Segment) {
    if let Some(segments) = found.borrow_mut().as_mut() {
        segments.push(segment);
    }
}

struct Walk<'a> {
    found: &'a Found,
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
            let seed = Walk { found: self.found };
            match seq.next_element_seed(seed) {
                Ok(Some(())) => i += 1,
                Ok(None) => return Ok(()),
                Err(e) => {
                    on_the_way_out(self.found, Segment::Index(i));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                *self.found.borrow_mut() = Some(alloc::vec![Segment::Key(key)]);
                return Err(de::Error::custom("duplicate key"));
            }
            if let Err(e) = map.next_value_seed(Walk { found: self.found }) {
                on_the_way_out(self.found, Segment::Key(key));
                return Err(e);
            }
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::check;
    use crate::manifest::ManifestError;

    fn duplicate_path(text: &str) -> Option<String> {
        match check(text.as_bytes()) {
            Err(ManifestError::DuplicateKey { path }) => Some(path),
            Ok(()) => None,
            Err(other) => panic!("expected a duplicate key or none, got {other:?}"),
        }
    }

    /// `{"k0":1,…,"k{n-1}":1` without the closing brace.
    fn wide_object(n: usize) -> String {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":1")).collect();
        format!("{{{}", members.join(","))
    }

    #[test]
    fn a_wide_document_scans_and_names_a_late_duplicate() {
        // 100 000 keys in one object, then the first one again.
        let n = 100_000;
        let clean = format!("{}}}", wide_object(n));
        assert_eq!(duplicate_path(&clean), None);
        let repeated = format!("{},\"k0\":2}}", wide_object(n));
        assert_eq!(duplicate_path(&repeated).as_deref(), Some("k0"));
    }

    #[test]
    fn a_deep_and_long_document_names_the_full_path() {
        // 100 nested objects (serde_json allows 128 levels), each with
        // 1 000 members before the next level, inside an array of 100
        // elements: 100 000 keys, the duplicate at the bottom of the last
        // element.
        let depth = 100;
        let mut inner = String::from("{\"x\":1,\"x\":2}");
        for level in (0..depth).rev() {
            inner = format!("{},\"next{level}\":{inner}}}", wide_object(1_000));
        }
        let elements: Vec<&str> = (0..99).map(|_| "{\"a\":[1,2,{}]}").collect();
        let text = format!("{{\"Doc\":[{},{inner}]}}", elements.join(","));
        let mut expected = String::from("Doc[99]");
        for level in 0..depth {
            expected.push_str(&format!(".next{level}"));
        }
        expected.push_str(".x");
        assert_eq!(duplicate_path(&text), Some(expected));
        // The same document without the duplicate passes.
        let clean = text.replacen("\"x\":1,\"x\":2", "\"x\":1,\"y\":2", 1);
        assert_eq!(duplicate_path(&clean), None);
    }

    #[test]
    fn paths_quote_keys_that_are_not_identifiers_and_policy_hashes() {
        assert_eq!(
            duplicate_path(r#"{"a b":{"c":[0,{"d-e":1,"d-e":2}]}}"#).as_deref(),
            Some(r#"["a b"].c[1]["d-e"]"#)
        );
        assert_eq!(
            duplicate_path(r#"[{},{"k":1,"k":1}]"#).as_deref(),
            Some("[1].k")
        );
        assert_eq!(
            duplicate_path(r#"{"Policies":{"ab":{"SANs":[],"SANs":[]}}}"#).as_deref(),
            Some(r#"Policies["ab"].SANs"#)
        );
        // Only the top-level Policies object quotes identifier keys.
        assert_eq!(
            duplicate_path(r#"{"X":{"Policies":{"ab":1,"ab":2}}}"#).as_deref(),
            Some("X.Policies.ab")
        );
        // The same key in sibling objects is no duplicate.
        assert_eq!(duplicate_path(r#"[{"k":1},{"k":1}]"#), None);
    }

    #[test]
    fn syntax_errors_after_a_clean_prefix_are_syntax_errors() {
        for text in [r#"{"a":[1,2,{"b":}]}"#, r#"{"a":1} x"#, r#"{"a":{"b":1"#] {
            assert!(
                matches!(check(text.as_bytes()), Err(ManifestError::Syntax(_))),
                "{text}"
            );
        }
    }
}
