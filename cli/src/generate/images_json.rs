//! `images.json`: accord's own container images, pinned by digest, as
//! `cargo xtask oci` writes them and `accord generate --images FILE`
//! reads them.
//!
//! The format (a JSON object; unknown fields are ignored, at both levels,
//! so the writer may add sizes, platforms, test images):
//!
//! ```json
//! {"images": [
//!   {"name": "accord-agent", "reference": "REPO/accord-agent@sha256:<64 hex>", "digest": "sha256:<64 hex>"},
//!   {"name": "accord-shim",  "reference": "REPO/accord-shim@sha256:<64 hex>",  "digest": "sha256:<64 hex>"}
//! ]}
//! ```
//!
//! `accord-agent` is the static `accord-guest` binary's image: it runs the
//! coordinator (`accord-guest coordinator`) and the initializer
//! (`accord-guest initializer`). `accord-shim` is the shim's. Every
//! `reference` must be pinned by digest, and that digest must be the
//! entry's `digest`.
//!
//! The image facts the policy needs (Entrypoint, Cmd, Env, User,
//! WorkingDir) of these two images are known to accord itself, which
//! builds them ([`own_facts`]): generating the coordinator's policy asks
//! no registry.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::images::{ImageFacts, pinned_digest};

/// The agent image's name in `images.json` (coordinator and initializer).
pub const AGENT: &str = "accord-agent";
/// The shim image's name in `images.json`.
pub const SHIM: &str = "accord-shim";

#[derive(Deserialize)]
struct File {
    images: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    reference: String,
    digest: String,
}

/// The images of an `images.json`, by name.
#[derive(Debug, Clone, Default)]
pub struct Images {
    by_name: BTreeMap<String, String>,
}

impl Images {
    /// Reads and checks `file`.
    pub fn read(file: &Path) -> anyhow::Result<Self> {
        let bytes = crate::input::read(file)?;
        Self::parse(&bytes).with_context(|| format!("{}", file.display()))
    }

    /// Parses and checks an `images.json`.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let parsed: File = serde_json::from_slice(bytes).context(
            "not an images.json (a JSON object {\"images\": [{\"name\", \"reference\": \
             \"REF@sha256:…\", \"digest\": \"sha256:…\"}, …]})",
        )?;
        let mut by_name = BTreeMap::new();
        for (i, e) in parsed.images.into_iter().enumerate() {
            let Some(own) = pinned_digest(&e.reference) else {
                bail!(
                    "images[{i}] ({}): reference {:?} is not pinned by digest (REF@sha256:<64 lowercase hex>)",
                    e.name,
                    e.reference
                );
            };
            if own != e.digest {
                bail!(
                    "images[{i}] ({}): digest {} is not the reference's own digest {own}",
                    e.name,
                    e.digest
                );
            }
            if by_name.insert(e.name.clone(), e.reference).is_some() {
                bail!("images[{i}]: the name {} is listed twice", e.name);
            }
        }
        Ok(Self { by_name })
    }

    /// The pinned reference of the image `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    /// The pinned reference of the image `name`, or an error naming the
    /// file.
    pub fn require(&self, name: &str, file: &Path) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("{}: lists no image named {name:?}", file.display()))
    }

    /// The facts of every listed image accord built itself, keyed by its
    /// reference.
    pub fn own_facts(&self) -> BTreeMap<String, ImageFacts> {
        self.by_name
            .iter()
            .filter_map(|(name, reference)| {
                let mut facts = own_facts(name)?;
                facts.digest = pinned_digest(reference).map(String::from);
                Some((reference.clone(), facts))
            })
            .collect()
    }
}

/// The `PATH` containerd gives a container whose image sets none; an
/// image of accord's sets this one or none, so the policy pins it either
/// way.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image config of accord's own image `name`, as `cargo xtask oci`
/// builds it: one static binary at the root, no environment but
/// [`DEFAULT_PATH_ENV`], working directory `/`, no USER (the pod spec
/// sets the user). Its facts must not be asked of a registry: accord
/// wrote them.
pub fn own_facts(name: &str) -> Option<ImageFacts> {
    let binary = match name {
        AGENT => "/accord-guest",
        SHIM => "/accord-shim",
        _ => return None,
    };
    Some(ImageFacts {
        entrypoint: vec![binary.to_string()],
        env: vec![DEFAULT_PATH_ENV.to_string()],
        working_dir: "/".to_string(),
        ..ImageFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn reads_the_minimal_format_and_ignores_unknown_fields() {
        let json = format!(
            r#"{{"note": "x", "images": [
              {{"name": "accord-agent", "reference": "r/a@{a}", "digest": "{a}", "size": 1}},
              {{"name": "accord-shim", "reference": "r/s:1@{s}", "digest": "{s}"}}]}}"#,
            a = d('a'),
            s = d('b')
        );
        let images = Images::parse(json.as_bytes()).unwrap();
        assert_eq!(images.get(AGENT), Some(format!("r/a@{}", d('a')).as_str()));
        let facts = images.own_facts();
        assert_eq!(facts.len(), 2);
        assert_eq!(
            facts[&format!("r/a@{}", d('a'))].entrypoint,
            ["/accord-guest"]
        );
    }

    #[test]
    fn refuses_unpinned_mismatched_and_duplicate_entries() {
        let one = |name: &str, reference: &str, digest: &str| {
            format!(
                r#"{{"images": [{{"name": "{name}", "reference": "{reference}", "digest": "{digest}"}}]}}"#
            )
        };
        let err = |json: String| format!("{:#}", Images::parse(json.as_bytes()).unwrap_err());
        assert!(err(one("x", "r/a:1", &d('a'))).contains("not pinned by digest"));
        assert!(
            err(one("x", &format!("r/a@{}", d('a')), &d('b'))).contains("not the reference's own")
        );
        let a = format!(
            r#"{{"name": "x", "reference": "r/a@{0}", "digest": "{0}"}}"#,
            d('a')
        );
        assert!(err(format!(r#"{{"images": [{a}, {a}]}}"#)).contains("listed twice"));
        assert!(err("[]".into()).contains("not an images.json"));
    }
}
