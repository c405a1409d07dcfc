//! The example deployment (`accord generate --example DIR`): plain
//! Kubernetes YAML for a coordinator (StatefulSet, `accord.dev/pod-role:
//! coordinator`), `web` (Deployment) and `db` (StatefulSet), all under
//! runtime class `accord-cc` with images pinned by digest, and the image
//! facts file for `--image-facts`. The same files are what `accord-demo
//! demo` deploys, so the README's hand-run and the demo cannot drift.
//!
//! The images are synthetic: no registry has them. Each entry of
//! `image-facts.json` says so in its `Source`, and its digest is the
//! SHA-256 of the text that `Source` quotes (not a real-looking fake).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::manifest_cmd::Failure;

/// The image facts file's name.
pub const IMAGE_FACTS: &str = "image-facts.json";

/// The coordinator's YAML file name.
pub const COORDINATOR: &str = "coordinator.yaml";

/// The example's files: name → contents, the YAML in deployment order.
pub const FILES: &[(&str, &str)] = &[
    (COORDINATOR, include_str!("example/coordinator.yaml")),
    ("web.yaml", include_str!("example/web.yaml")),
    ("db.yaml", include_str!("example/db.yaml")),
    (IMAGE_FACTS, include_str!("example/image-facts.json")),
];

/// The initializer image the example's facts describe (synthetic too):
/// what `--initializer-image` names for the example.
pub const INITIALIZER_IMAGE: &str = "registry.example/accord-demo/initializer@sha256:c120acf3f9d685b92dff6fde6a6bb8a8f2f23adb8670286185a1fc949ebd3c86";

/// The contents of the example's file `name`.
pub fn file(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The example's YAML file names (without the image facts).
pub fn yaml_files() -> impl Iterator<Item = &'static str> {
    FILES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.ends_with(".yaml"))
}

/// Writes the example into `dir` (created if missing). Refuses, writing
/// nothing, if any of its files is already there (naming them all).
/// Returns the paths written.
pub(crate) fn write(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let existing: Vec<String> = FILES
        .iter()
        .map(|(name, _)| dir.join(name))
        .filter(|p| p.exists() || p.is_symlink())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Failure::Invalid(vec![
            format!(
                "{} already has the example's files (nothing written; use an empty directory):",
                dir.display()
            ),
            existing.join(", "),
        ]));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in FILES {
        let path = dir.join(name);
        // create_new: a file that appeared meanwhile is not overwritten.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `accord generate --example DIR`: writes the example and says what to
/// run next.
pub(super) fn run(dir: &Path) -> Result<(), Failure> {
    for path in write(dir)? {
        println!("wrote {}", path.display());
    }
    eprintln!(
        "the images are synthetic (see {IMAGE_FACTS}); next: accord generate --image-facts \
         {IMAGE_FACTS} --reference-values F --initializer-image {INITIALIZER_IMAGE} \
         --add-workload-owner-key … --add-seedshare-owner-key … {}",
        yaml_files().collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::images::ImageFacts;
    use std::collections::BTreeMap;

    /// Every image of the example is in the facts, which say they are
    /// synthetic, and each digest is the SHA-256 of the text its Source
    /// quotes.
    #[test]
    fn the_facts_are_honest_about_the_synthetic_images() {
        let facts: BTreeMap<String, ImageFacts> =
            serde_json::from_str(file(IMAGE_FACTS).unwrap()).unwrap();
        let mut images: Vec<String> = yaml_files()
            .flat_map(|name| {
                file(name)
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("image: "))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        images.push(INITIALIZER_IMAGE.to_string());
        assert_eq!(images.len(), 4);
        for image in &images {
            assert!(facts.contains_key(image), "{image} has no facts");
        }
        assert_eq!(facts.len(), images.len());
        for (image, f) in &facts {
            let source = f.source.as_deref().unwrap();
            assert!(
                source.starts_with("synthetic demo image, facts written for the demo"),
                "{image}: {source}"
            );
            let quoted = source
                .split_once("SHA-256 of the text \"")
                .and_then(|(_, rest)| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{image}: no quoted text in {source:?}"));
            let digest = format!(
                "sha256:{}",
                accord_core::hex::encode(&crate::initdata::policy_hash(quoted.as_bytes()))
            );
            assert_eq!(f.digest.as_deref(), Some(digest.as_str()), "{image}");
            assert!(image.ends_with(&format!("@{digest}")), "{image}");
        }
    }

    #[test]
    fn write_refuses_existing_files_naming_them_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.yaml"), "mine").unwrap();
        match write(dir.path()) {
            Err(Failure::Invalid(lines)) => {
                assert!(lines.join("\n").contains("web.yaml"), "{lines:?}")
            }
            _ => panic!("an existing file was not refused"),
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.yaml")).unwrap(),
            "mine"
        );
        assert!(!dir.path().join(COORDINATOR).exists());
        let Ok(written) = write(&dir.path().join("new")) else {
            panic!("a new directory was refused");
        };
        assert_eq!(written.len(), FILES.len());
        for (path, (_, text)) in written.iter().zip(FILES) {
            assert_eq!(std::fs::read_to_string(path).unwrap(), *text);
        }
    }
}
