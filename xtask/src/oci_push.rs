//! `cargo xtask oci --push REGISTRY`: copies the built images to a
//! registry over the OCI distribution API (the `oci-client` crate): each
//! blob the registry does not have yet, then the manifest's exact bytes by
//! digest (so the pushed digest is the layout's), then the manifest is
//! read back by digest and its bytes must hash to that digest. Then the
//! same bytes are pushed under the image's tag ([`Built::tag`]: the crate
//! version, or `VERSION-insecure-simulation` for the test set), and the
//! tag must read back as that digest.
//!
//! REGISTRY is `HOST[:PORT][/PREFIX]`; image NAME goes to
//! `HOST[:PORT]/PREFIX/NAME`. Plain HTTP only to a loopback registry
//! (`127.0.0.0/8`, `[::1]`, `localhost`), HTTPS to any other. Anonymous,
//! or HTTP basic with `ACCORD_REGISTRY_USER` and `ACCORD_REGISTRY_PASSWORD`.

use anyhow::{Context, bail};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::oci_layout::{Built, MEDIA_MANIFEST, digest};

/// A registry argument: host (with port) and repository prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    pub host: String,
    pub prefix: String,
    pub loopback: bool,
}

/// Parses `HOST[:PORT][/PREFIX]`.
pub fn parse_registry(text: &str) -> anyhow::Result<Registry> {
    if text.contains("://") {
        bail!("--push `{text}`: give HOST[:PORT][/PREFIX], without a scheme");
    }
    let (host, prefix) = text.split_once('/').unwrap_or((text, ""));
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]/".contains(&b))
    };
    if !valid(host) || (!prefix.is_empty() && !valid(prefix)) || text.ends_with('/') {
        bail!("--push `{text}`: expected HOST[:PORT][/PREFIX]");
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Ok(Registry {
        host: host.to_string(),
        prefix: prefix.to_string(),
        loopback,
    })
}

impl Registry {
    /// The repository of image `name`.
    fn repository(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

fn auth() -> RegistryAuth {
    match (
        std::env::var("ACCORD_REGISTRY_USER"),
        std::env::var("ACCORD_REGISTRY_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) => RegistryAuth::Basic(user, password),
        _ => RegistryAuth::Anonymous,
    }
}

/// Pushes `images` to `registry`; returns each one's reference
/// (`HOST/REPOSITORY@sha256:…`), in order.
pub fn push(images: &[Built], registry: &str) -> anyhow::Result<Vec<String>> {
    let registry = parse_registry(registry)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the push's runtime")?;
    runtime.block_on(push_all(images, &registry))
}

async fn push_all(images: &[Built], registry: &Registry) -> anyhow::Result<Vec<String>> {
    let protocol = if registry.loopback {
        ClientProtocol::HttpsExcept(vec![registry.host.clone()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    });
    let auth = auth();
    let mut references = Vec::new();
    for image in images {
        let reference = Reference::with_digest(
            registry.host.clone(),
            registry.repository(&image.name),
            image.digest.clone(),
        );
        client.store_auth_if_needed(&registry.host, &auth).await;
        for (blob_digest, bytes) in &image.blobs {
            let have = client
                .blob_exists(&reference, blob_digest)
                .await
                .with_context(|| format!("asking {} for {blob_digest}", reference.whole()))?;
            if !have {
                client
                    .push_blob(&reference, bytes.clone(), blob_digest)
                    .await
                    .with_context(|| {
                        format!(
                            "pushing {blob_digest} of {} to {}",
                            image.name, registry.host
                        )
                    })?;
            }
        }
        client
            .push_manifest_raw(
                &reference,
                image.manifest.clone(),
                MEDIA_MANIFEST.parse().context("the manifest media type")?,
            )
            .await
            .with_context(|| format!("pushing the manifest of {}", reference.whole()))?;
        let (body, _) = client
            .pull_manifest_raw(&reference, &auth, &[MEDIA_MANIFEST])
            .await
            .with_context(|| format!("reading back {}", reference.whole()))?;
        if digest(&body) != image.digest {
            bail!(
                "{} serves a manifest with digest {}, not the pushed one",
                reference.whole(),
                digest(&body)
            );
        }
        let tagged = Reference::with_tag(
            registry.host.clone(),
            registry.repository(&image.name),
            image.tag.clone(),
        );
        client
            .push_manifest_raw(
                &tagged,
                image.manifest.clone(),
                MEDIA_MANIFEST.parse().context("the manifest media type")?,
            )
            .await
            .with_context(|| format!("tagging {}", tagged.whole()))?;
        let (body, _) = client
            .pull_manifest_raw(&tagged, &auth, &[MEDIA_MANIFEST])
            .await
            .with_context(|| format!("reading back {}", tagged.whole()))?;
        if digest(&body) != image.digest {
            bail!(
                "{} names a manifest with digest {}, not the pushed {}",
                tagged.whole(),
                digest(&body),
                image.digest
            );
        }
        eprintln!("pushed     {}", reference.whole());
        eprintln!("tagged     {}", tagged.whole());
        references.push(reference.whole());
    }
    Ok(references)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::loopback_registry::LoopbackRegistry;
    use crate::oci_layout::{ImageSpec, LayerFile, build};

    #[test]
    fn registry_arguments() {
        let r = parse_registry("127.0.0.1:5000").unwrap();
        assert_eq!(
            (r.host.as_str(), r.prefix.as_str(), r.loopback),
            ("127.0.0.1:5000", "", true)
        );
        assert!(parse_registry("localhost:5000/a/b").unwrap().loopback);
        assert!(parse_registry("[::1]:5000").unwrap().loopback);
        let remote = parse_registry("ghcr.io/accord").unwrap();
        assert!(!remote.loopback);
        assert_eq!(remote.repository("accord-agent"), "accord/accord-agent");
        // A name that only starts like loopback is not.
        assert!(!parse_registry("127.0.0.1.example.com").unwrap().loopback);
        for bad in ["http://127.0.0.1:5000", "", "a b", "host/", "/x"] {
            assert!(parse_registry(bad).is_err(), "{bad}");
        }
    }

    fn image(name: &str, data: &[u8], tag: &str) -> Built {
        let files = BTreeMap::from([(
            "tool".to_string(),
            LayerFile {
                mode: 0o755,
                uid: 0,
                gid: 0,
                data: data.to_vec(),
            },
        )]);
        build(&ImageSpec {
            name: name.into(),
            files,
            entrypoint: vec!["/tool".into()],
            env: Vec::new(),
            user: "65532:65532".into(),
            tag: tag.into(),
            insecure_simulation: false,
            epoch: 0,
        })
        .unwrap()
    }

    #[test]
    fn images_are_pushed_by_digest_to_a_loopback_registry() {
        let dir = std::env::temp_dir().join(format!("xtask-registry-{}", std::process::id()));
        let registry = LoopbackRegistry::start(&dir).unwrap();
        let images = [
            image("one", b"first", "0.1.0"),
            image("two", b"second", "0.1.0-insecure-simulation"),
        ];
        let target = format!("{}/accord", registry.addr);
        let references = push(&images, &target).unwrap();
        for (image, reference) in images.iter().zip(&references) {
            assert_eq!(
                reference,
                &format!("{}/accord/{}@{}", registry.addr, image.name, image.digest)
            );
            // Read back with plain HTTP, not through the pushing client.
            let (status, body) = registry
                .get(
                    &format!("/v2/accord/{}/manifests/{}", image.name, image.digest),
                    MEDIA_MANIFEST,
                )
                .unwrap();
            assert_eq!(status, 200);
            assert_eq!(body, image.manifest);
            // The tag names the same manifest: pulled by tag with
            // oci-client, and with plain HTTP.
            let tagged = Reference::with_tag(
                registry.addr.clone(),
                format!("accord/{}", image.name),
                image.tag.clone(),
            );
            let client = Client::new(ClientConfig {
                protocol: ClientProtocol::HttpsExcept(vec![registry.addr.clone()]),
                ..ClientConfig::default()
            });
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (by_tag, by_tag_digest) = runtime
                .block_on(client.pull_manifest_raw(
                    &tagged,
                    &RegistryAuth::Anonymous,
                    &[MEDIA_MANIFEST],
                ))
                .unwrap();
            assert_eq!(digest(&by_tag), image.digest, "{}", tagged.whole());
            assert_eq!(by_tag_digest, image.digest);
            let (status, body) = registry
                .get(
                    &format!("/v2/accord/{}/manifests/{}", image.name, image.tag),
                    MEDIA_MANIFEST,
                )
                .unwrap();
            assert_eq!(status, 200);
            assert_eq!(digest(&body), image.digest);
            for (blob_digest, bytes) in &image.blobs {
                let (status, body) = registry
                    .get(
                        &format!("/v2/accord/{}/blobs/{blob_digest}", image.name),
                        "*/*",
                    )
                    .unwrap();
                assert_eq!(status, 200, "{blob_digest}");
                assert_eq!(&body, bytes);
            }
        }
        // Pushing again is idempotent (the blobs are there already).
        assert_eq!(push(&images, &target).unwrap(), references);
        // An unknown digest is not served.
        let (status, _) = registry
            .get(
                &format!("/v2/accord/one/manifests/sha256:{}", "0".repeat(64)),
                MEDIA_MANIFEST,
            )
            .unwrap();
        assert_eq!(status, 404);
        // Nor is a tag that was not pushed: `one` is production only.
        let (status, _) = registry
            .get(
                "/v2/accord/one/manifests/0.1.0-insecure-simulation",
                MEDIA_MANIFEST,
            )
            .unwrap();
        assert_eq!(status, 404);
    }
}
