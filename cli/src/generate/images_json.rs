//! `images.json`: accord's own container images, pinned by digest, as
//! `cargo xtask oci` writes them and `accord generate --images FILE`
//! reads them.
//!
//! The format (a JSON object; unknown fields are ignored, at both levels,
//! so the writer may add sizes and platforms):
//!
//! ```json
//! {"images": [
//!   {"name": "accord-agent", "reference": "REPO/accord-agent@sha256:<64 hex>", "digest": "sha256:<64 hex>",
//!    "insecure_simulation": false,
//!    "entrypoint": ["/accord-guest"], "cmd": [], "env": ["PATH=…"], "user": "65532:65532", "working_dir": "/"},
//!   {"name": "accord-shim", …}
//! ]}
//! ```
//!
//! `accord-agent` is the static `accord-guest` binary's image: it runs the
//! coordinator (`accord-guest coordinator`) and the initializer
//! (`accord-guest initializer`). `accord-shim` is the shim's. The test
//! set's agent, built with the INSECURE simulated chip, is
//! `accord-agent-insecure-simulation`, marked `"insecure_simulation":
//! true` ([`Images::agent`] keeps the two apart). Every `reference` must
//! be pinned by digest, and that digest must be the entry's `digest`.
//!
//! The image facts the policy needs (`entrypoint`, `cmd`, `env`, `user`,
//! `working_dir`: the image config's Entrypoint, Cmd, Env, User,
//! WorkingDir) are in every entry, as `cargo xtask oci` read them back
//! from the config it wrote: generating the coordinator's policy asks no
//! registry. An entry without one of them is refused. They are trusted
//! as the file is: whoever writes `images.json` chooses accord's images.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::images::{ImageFacts, pinned_digest};

/// The agent image's name in `images.json` (coordinator and initializer).
pub const AGENT: &str = "accord-agent";
/// The test set's agent image (the INSECURE simulated chip).
pub const AGENT_INSECURE_SIMULATION: &str = "accord-agent-insecure-simulation";
/// The shim image's name in `images.json`.
pub const SHIM: &str = "accord-shim";

/// The facts fields every entry must have.
const FACTS_FIELDS: [&str; 5] = ["entrypoint", "cmd", "env", "user", "working_dir"];

#[derive(Deserialize)]
struct File {
    images: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    reference: String,
    digest: String,
    #[serde(default)]
    insecure_simulation: bool,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    user: String,
    working_dir: String,
}

/// One of accord's images.
#[derive(Debug, Clone)]
struct Image {
    reference: String,
    insecure_simulation: bool,
    facts: ImageFacts,
}

/// The images of an `images.json`, by name.
#[derive(Debug, Clone, Default)]
pub struct Images {
    by_name: BTreeMap<String, Image>,
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
             \"REF@sha256:…\", \"digest\": \"sha256:…\", \"entrypoint\", \"cmd\", \"env\", \
             \"user\", \"working_dir\"}, …]})",
        )?;
        let mut by_name = BTreeMap::new();
        for (i, value) in parsed.images.into_iter().enumerate() {
            let name = value
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_string();
            if let Some(missing) = FACTS_FIELDS.iter().find(|f| value.get(**f).is_none()) {
                bail!(
                    "images[{i}] ({name}): no {missing:?}: every entry needs the image config's \
                     facts ({}), as `cargo xtask oci` writes them",
                    FACTS_FIELDS.join(", ")
                );
            }
            let e: Entry =
                serde_json::from_value(value).with_context(|| format!("images[{i}] ({name})"))?;
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
            let facts = ImageFacts {
                source: None,
                digest: Some(e.digest.clone()),
                entrypoint: e.entrypoint,
                cmd: e.cmd,
                env: e.env,
                user: e.user,
                working_dir: e.working_dir,
                volumes: Vec::new(),
                layers: Vec::new(),
            };
            let image = Image {
                reference: e.reference,
                insecure_simulation: e.insecure_simulation,
                facts,
            };
            if by_name.insert(e.name.clone(), image).is_some() {
                bail!("images[{i}]: the name {} is listed twice", e.name);
            }
        }
        Ok(Self { by_name })
    }

    /// The pinned reference of the image `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(|i| i.reference.as_str())
    }

    /// The pinned reference of the image `name`, or an error naming the
    /// file.
    pub fn require(&self, name: &str, file: &Path) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("{}: lists no image named {name:?}", file.display()))
    }

    /// The agent image (coordinator, default initializer): `accord-agent`,
    /// refused if marked `insecure_simulation`; with
    /// `insecure_simulation`, `accord-agent-insecure-simulation`, which
    /// must be marked so. `None` when not listed.
    pub fn agent(&self, insecure_simulation: bool, file: &Path) -> anyhow::Result<Option<&str>> {
        let name = if insecure_simulation {
            AGENT_INSECURE_SIMULATION
        } else {
            AGENT
        };
        let Some(image) = self.by_name.get(name) else {
            return Ok(None);
        };
        if image.insecure_simulation && !insecure_simulation {
            bail!(
                "{}: {name} is marked insecure_simulation: it is an INSECURE test image (the \
                 simulated chip), deployed only with --insecure-simulation",
                file.display()
            );
        }
        if !image.insecure_simulation && insecure_simulation {
            bail!(
                "{}: {name} is not marked \"insecure_simulation\": true: --insecure-simulation \
                 wants the test set's agent, built by `cargo xtask oci --insecure-simulation`",
                file.display()
            );
        }
        Ok(Some(&image.reference))
    }

    /// The name of the listed image marked `insecure_simulation` whose
    /// reference is `reference`, if any.
    pub fn insecure_simulation_name(&self, reference: &str) -> Option<&str> {
        self.by_name
            .iter()
            .find(|(_, i)| i.insecure_simulation && i.reference == reference)
            .map(|(n, _)| n.as_str())
    }

    /// The image facts of every listed image, keyed by its reference.
    pub fn facts(&self) -> BTreeMap<String, ImageFacts> {
        self.by_name
            .values()
            .map(|i| (i.reference.clone(), i.facts.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    const FACTS: &str = r#""entrypoint": ["/x"], "cmd": [], "env": ["PATH=/bin"], "user": "65532:65532", "working_dir": "/""#;

    fn entry(name: &str, reference: &str, digest: &str, insecure: bool) -> String {
        format!(
            r#"{{"name": "{name}", "reference": "{reference}", "digest": "{digest}", "insecure_simulation": {insecure}, {FACTS}}}"#
        )
    }

    #[test]
    fn reads_the_format_with_the_facts_and_ignores_unknown_fields() {
        let json = format!(
            r#"{{"note": "x", "images": [
              {{"name": "accord-agent", "reference": "r/a@{a}", "digest": "{a}", "size": 1,
                "entrypoint": ["/accord-guest"], "cmd": ["c"], "env": ["PATH=/bin", "A=b"],
                "user": "65532:65532", "working_dir": "/w"}},
              {s}]}}"#,
            a = d('a'),
            s = entry("accord-shim", &format!("r/s:1@{}", d('b')), &d('b'), false)
        );
        let images = Images::parse(json.as_bytes()).unwrap();
        let agent = format!("r/a@{}", d('a'));
        assert_eq!(images.get(AGENT), Some(agent.as_str()));
        let facts = images.facts();
        assert_eq!(facts.len(), 2);
        let f = &facts[&agent];
        assert_eq!(f.entrypoint, ["/accord-guest"]);
        assert_eq!(f.cmd, ["c"]);
        assert_eq!(f.env, ["PATH=/bin", "A=b"]);
        assert_eq!(f.user, "65532:65532");
        assert_eq!(f.working_dir, "/w");
        assert_eq!(f.digest.as_deref(), Some(d('a').as_str()));
    }

    #[test]
    fn an_entry_without_a_facts_field_is_refused_naming_it() {
        for field in FACTS_FIELDS {
            let mut value: serde_json::Value = serde_json::from_str(&entry(
                "accord-shim",
                &format!("r/s@{}", d('b')),
                &d('b'),
                false,
            ))
            .unwrap();
            value.as_object_mut().unwrap().remove(field);
            let json = format!(r#"{{"images": [{value}]}}"#);
            let err = format!("{:#}", Images::parse(json.as_bytes()).unwrap_err());
            assert!(
                err.contains("images[0] (accord-shim)") && err.contains(&format!("{field:?}")),
                "{err}"
            );
        }
        // Read from a file, the error names the file too.
        let dir = std::env::temp_dir().join(format!("accord-images-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("images.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"images": [{{"name": "accord-agent", "reference": "r/a@{0}", "digest": "{0}"}}]}}"#,
                d('a')
            ),
        )
        .unwrap();
        let err = format!("{:#}", Images::read(&file).unwrap_err());
        assert!(
            err.contains(&file.display().to_string())
                && err.contains("images[0] (accord-agent)")
                && err.contains("\"entrypoint\""),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_insecure_agent_only_with_the_flag() {
        let file = Path::new("images.json");
        let production = format!(
            r#"{{"images": [{}, {}]}}"#,
            entry(AGENT, &format!("r/a@{}", d('a')), &d('a'), false),
            entry(
                AGENT_INSECURE_SIMULATION,
                &format!("r/t@{}", d('c')),
                &d('c'),
                true
            )
        );
        let images = Images::parse(production.as_bytes()).unwrap();
        assert_eq!(
            images.agent(false, file).unwrap(),
            Some(format!("r/a@{}", d('a')).as_str())
        );
        assert_eq!(
            images.agent(true, file).unwrap(),
            Some(format!("r/t@{}", d('c')).as_str())
        );
        assert_eq!(
            images.insecure_simulation_name(&format!("r/t@{}", d('c'))),
            Some(AGENT_INSECURE_SIMULATION)
        );
        assert_eq!(
            images.insecure_simulation_name(&format!("r/a@{}", d('a'))),
            None
        );
        // An accord-agent marked insecure is refused without the flag.
        let marked = format!(
            r#"{{"images": [{}]}}"#,
            entry(AGENT, &format!("r/a@{}", d('a')), &d('a'), true)
        );
        let err = Images::parse(marked.as_bytes())
            .unwrap()
            .agent(false, file)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("INSECURE test image") && err.contains("--insecure-simulation"),
            "{err}"
        );
        // With the flag, the test agent must be marked.
        let unmarked = format!(
            r#"{{"images": [{}]}}"#,
            entry(
                AGENT_INSECURE_SIMULATION,
                &format!("r/t@{}", d('c')),
                &d('c'),
                false
            )
        );
        let err = Images::parse(unmarked.as_bytes())
            .unwrap()
            .agent(true, file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not marked"), "{err}");
        // Not listed: none.
        let none = format!(
            r#"{{"images": [{}]}}"#,
            entry(SHIM, &format!("r/s@{}", d('b')), &d('b'), false)
        );
        let images = Images::parse(none.as_bytes()).unwrap();
        assert_eq!(images.agent(true, file).unwrap(), None);
        assert_eq!(images.agent(false, file).unwrap(), None);
    }

    #[test]
    fn refuses_unpinned_mismatched_and_duplicate_entries() {
        let one = |name: &str, reference: &str, digest: &str| {
            format!(
                r#"{{"images": [{}]}}"#,
                entry(name, reference, digest, false)
            )
        };
        let err = |json: String| format!("{:#}", Images::parse(json.as_bytes()).unwrap_err());
        assert!(err(one("x", "r/a:1", &d('a'))).contains("not pinned by digest"));
        assert!(
            err(one("x", &format!("r/a@{}", d('a')), &d('b'))).contains("not the reference's own")
        );
        let a = entry("x", &format!("r/a@{}", d('a')), &d('a'), false);
        assert!(err(format!(r#"{{"images": [{a}, {a}]}}"#)).contains("listed twice"));
        assert!(err("[]".into()).contains("not an images.json"));
    }
}
