//! Image facts: what an image's config says about how its containers run
//! (Entrypoint, Cmd, Env, User, WorkingDir, Volumes) and its layer
//! digests, from `--image-facts FILE` (offline) or from the registry over
//! the OCI distribution API (`oci-client`), with an on-disk cache.
//!
//! The registry is untrusted: an image is always named by digest, the
//! manifest's SHA-256 must be that digest (an image index's too, and then
//! the platform manifest's must be the one the index lists), and the
//! config blob's SHA-256 must be the manifest's config digest; a registry
//! that answers anything else is refused. Only facts checked this way are
//! cached, under the manifest digest. Resolving a tag to a digest
//! (`--pin-images`) trusts the registry's answer at that moment: it is
//! how the user chooses the image, and the YAML then pins it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use accord_core::hex;
use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::ImageConfig;

/// What accord knows of one image. The JSON form (`--image-facts FILE`
/// maps image references to these) uses the OCI image config's names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ImageFacts {
    /// Where these facts come from, in words (`--image-facts` files say
    /// it; not used otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The manifest digest (`sha256:…`): what `--pin-images` writes for a
    /// tag; for a reference with a digest, it must be that digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `Env` (`NAME=value`).
    #[serde(default)]
    pub env: Vec<String>,
    /// `User`.
    #[serde(default)]
    pub user: String,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: String,
    /// `Volumes` (paths).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The manifest's layer digests, in order.
    #[serde(default)]
    pub layers: Vec<String>,
}

impl ImageFacts {
    /// The policy generator's view.
    pub fn config(&self) -> ImageConfig {
        ImageConfig {
            entrypoint: self.entrypoint.clone(),
            cmd: self.cmd.clone(),
            env: self.env.clone(),
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            volumes: self.volumes.clone(),
            passwd: None,
            group: None,
        }
    }
}

/// The `sha256:<64 hex>` digest an image reference is pinned by, if any.
pub fn pinned_digest(image: &str) -> Option<&str> {
    let (_, digest) = image.rsplit_once('@')?;
    let hex_part = digest.strip_prefix("sha256:")?;
    (hex_part.len() == 64
        && hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(digest)
}

/// Where image facts come from.
pub struct ImageSource {
    /// Offline facts (`--image-facts`), keyed by image reference.
    offline: Option<(PathBuf, BTreeMap<String, ImageFacts>)>,
    /// The on-disk cache directory (registry mode).
    cache: Option<PathBuf>,
    /// Registries spoken to over plain HTTP.
    insecure: Vec<String>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Facts accord knows without asking anyone: its own images (from
    /// `--images`), keyed by the pinned reference.
    known: BTreeMap<String, ImageFacts>,
}

impl ImageSource {
    /// Offline: every fact comes from `file`.
    pub fn offline(file: &Path) -> anyhow::Result<Self> {
        let bytes = crate::input::read(file)?;
        let facts: BTreeMap<String, ImageFacts> = serde_json::from_slice(&bytes).with_context(
            || {
                format!(
                    "{}: not image facts (a JSON object: image reference → {{\"Source\", \"Digest\", \"Entrypoint\", \"Cmd\", \"Env\", \"User\", \"WorkingDir\", \"Volumes\", \"Layers\"}})",
                    file.display()
                )
            },
        )?;
        for (reference, f) in &facts {
            if let Some(d) = &f.digest {
                if pinned_digest(&format!("x@{d}")).is_none() {
                    bail!(
                        "{}: {reference}: Digest {d:?} is not sha256:<64 lowercase hex>",
                        file.display()
                    );
                }
                if let Some(own) = pinned_digest(reference)
                    && own != d
                {
                    bail!(
                        "{}: {reference}: Digest {d} is not the reference's own digest",
                        file.display()
                    );
                }
            }
        }
        Ok(Self {
            offline: Some((file.to_path_buf(), facts)),
            cache: None,
            insecure: Vec::new(),
            runtime: None,
            known: BTreeMap::new(),
        })
    }

    /// From registries, cached in `cache`; `insecure` registries
    /// (`host:port`) are spoken to over plain HTTP.
    pub fn registry(cache: PathBuf, insecure: Vec<String>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Self {
            offline: None,
            cache: Some(cache),
            insecure,
            runtime: Some(runtime),
            known: BTreeMap::new(),
        })
    }

    fn client(&self) -> oci_client::Client {
        let protocol = if self.insecure.is_empty() {
            oci_client::client::ClientProtocol::Https
        } else {
            oci_client::client::ClientProtocol::HttpsExcept(self.insecure.clone())
        };
        oci_client::Client::new(oci_client::client::ClientConfig {
            protocol,
            ..Default::default()
        })
    }

    /// Adds facts known without a registry (accord's own images): they
    /// are answered first, by exact reference.
    pub fn with_known(mut self, known: BTreeMap<String, ImageFacts>) -> Self {
        self.known.extend(known);
        self
    }

    /// The digest a tag names now (`--pin-images`).
    pub fn resolve_digest(&self, image: &str) -> anyhow::Result<String> {
        if let Some((file, facts)) = &self.offline {
            let f = facts
                .get(image)
                .ok_or_else(|| anyhow!("{image} is not in {}", file.display()))?;
            return f.digest.clone().ok_or_else(|| {
                anyhow!("{}: {image} has no \"Digest\" to pin it by", file.display())
            });
        }
        let reference = parse_reference(image)?;
        let client = self.client();
        let runtime = self.runtime.as_ref().context("no async runtime")?;
        let digest =
            runtime
                .block_on(client.fetch_manifest_digest(
                    &reference,
                    &oci_client::secrets::RegistryAuth::Anonymous,
                ))
                .with_context(|| format!("resolving {image} at its registry"))?;
        if pinned_digest(&format!("x@{digest}")).is_none() {
            bail!("the registry answered {digest:?} for {image}: not a sha256 digest");
        }
        Ok(digest)
    }

    /// The facts of an image pinned by digest.
    pub fn facts(&self, image: &str) -> anyhow::Result<ImageFacts> {
        let digest = pinned_digest(image)
            .ok_or_else(|| anyhow!("{image} is not pinned by a sha256 digest"))?
            .to_string();
        if let Some(f) = self.known.get(image) {
            return Ok(f.clone());
        }
        if let Some((file, facts)) = &self.offline {
            // By the exact reference, else by digest (the digest names the
            // content, whatever the name).
            let found = facts.get(image).or_else(|| {
                facts.iter().find_map(|(r, f)| {
                    (f.digest.as_deref() == Some(&digest) || pinned_digest(r) == Some(&digest))
                        .then_some(f)
                })
            });
            let mut f = found
                .cloned()
                .ok_or_else(|| anyhow!("{image} is not in {}", file.display()))?;
            f.digest = Some(digest);
            return Ok(f);
        }
        let cache_file = self
            .cache
            .as_ref()
            .map(|dir| dir.join(format!("{}.json", digest.replace(':', "-"))));
        if let Some(path) = &cache_file
            && let Ok(bytes) = std::fs::read(path)
            && let Ok(f) = serde_json::from_slice::<ImageFacts>(&bytes)
            && f.digest.as_deref() == Some(&digest)
        {
            return Ok(f);
        }
        let runtime = self.runtime.as_ref().context("no async runtime")?;
        let facts = runtime
            .block_on(fetch(&self.client(), image, &digest))
            .with_context(|| format!("fetching the image facts of {image}"))?;
        if let Some(path) = &cache_file {
            // A cache that cannot be written costs only time.
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(json) = serde_json::to_vec_pretty(&facts) {
                let _ = crate::workspace::write_atomic(path, &json);
            }
        }
        Ok(facts)
    }
}

fn parse_reference(image: &str) -> anyhow::Result<oci_client::Reference> {
    oci_client::Reference::try_from(image)
        .map_err(|e| anyhow!("{image:?} is not an image reference: {e}"))
}

/// The default cache: `$XDG_CACHE_HOME/accord/images`, else
/// `$HOME/.cache/accord/images`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("accord").join("images")
}

const MANIFEST_TYPES: &[&str] = &[
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(&Sha256::digest(bytes)))
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct ManifestJson {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConfigInner {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    volumes: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    config: Option<ConfigInner>,
}

/// Pulls one manifest by digest and checks its bytes hash to it.
async fn pull_manifest(
    client: &oci_client::Client,
    reference: &oci_client::Reference,
    digest: &str,
) -> anyhow::Result<ManifestJson> {
    let by_digest = reference.clone_with_digest(digest.to_string());
    let (bytes, _) = client
        .pull_manifest_raw(
            &by_digest,
            &oci_client::secrets::RegistryAuth::Anonymous,
            MANIFEST_TYPES,
        )
        .await
        .with_context(|| format!("pulling manifest {digest}"))?;
    let actual = sha256_digest(&bytes);
    if actual != digest {
        bail!("the registry answered a manifest with digest {actual} for {digest}: refused");
    }
    serde_json::from_slice(&bytes).with_context(|| format!("manifest {digest} is not JSON"))
}

async fn fetch(
    client: &oci_client::Client,
    image: &str,
    digest: &str,
) -> anyhow::Result<ImageFacts> {
    let reference = parse_reference(image)?;
    let mut manifest = pull_manifest(client, &reference, digest).await?;
    if let Some(list) = &manifest.manifests {
        let chosen = list
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| anyhow!("image index {digest} has no linux/amd64 manifest"))?;
        let platform_digest = chosen.digest.clone();
        manifest = pull_manifest(client, &reference, &platform_digest).await?;
        if manifest.manifests.is_some() {
            bail!("image index {digest} lists another index: refused");
        }
    }
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| anyhow!("manifest {digest} has no config"))?;
    let mut blob = Vec::new();
    client
        .pull_blob(&reference, config.digest.as_str(), &mut blob)
        .await
        .with_context(|| format!("pulling config blob {}", config.digest))?;
    let actual = sha256_digest(&blob);
    if actual != config.digest {
        bail!(
            "the registry answered a config blob with digest {actual} for {}: refused",
            config.digest
        );
    }
    let parsed: ConfigJson = serde_json::from_slice(&blob)
        .with_context(|| format!("config blob {} is not an image config", config.digest))?;
    let inner = parsed.config.unwrap_or_default();
    Ok(ImageFacts {
        source: None,
        digest: Some(digest.to_string()),
        entrypoint: inner.entrypoint.unwrap_or_default(),
        cmd: inner.cmd.unwrap_or_default(),
        env: inner.env.unwrap_or_default(),
        user: inner.user.unwrap_or_default(),
        working_dir: inner.working_dir.unwrap_or_default(),
        volumes: inner.volumes.unwrap_or_default().into_keys().collect(),
        layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_digest_wants_sha256_and_64_hex() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(pinned_digest(&format!("r/x@{d}")), Some(d.as_str()));
        assert_eq!(pinned_digest(&format!("r/x:1@{d}")), Some(d.as_str()));
        assert_eq!(pinned_digest("r/x:1"), None);
        assert_eq!(
            pinned_digest(&format!("r/x@sha512:{}", "a".repeat(64))),
            None
        );
        assert_eq!(
            pinned_digest(&format!("r/x@sha256:{}", "A".repeat(64))),
            None
        );
        assert_eq!(
            pinned_digest(&format!("r/x@sha256:{}", "a".repeat(63))),
            None
        );
    }
}
