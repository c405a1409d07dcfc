//! `cargo xtask oci [--out DIR] [--push REGISTRY] [--insecure-simulation]`:
//! the container images of the agent and the shim, as OCI image layouts,
//! without Docker.
//!
//! - `accord-agent`: the static `accord-guest` of `cargo xtask image`
//!   ([`image::build_agent`], the `guest-image` profile, the production
//!   checks: no simulated chip's symbol, refuses `--tee
//!   insecure-simulated`) at `/accord-guest`; it is the coordinator and
//!   the initializer (the deployment passes the subcommand).
//! - `accord-shim`: `accord-shim`, built static the same way
//!   ([`image::build_static`]), at `/accord-shim`.
//!
//! Each image is one layer: the binary (0/0, 0755) and an `/etc/passwd`
//! and `/etc/group` naming the non-root user 65532 (`nonroot`), which the
//! config's `User` is. Both binaries must be static (no ELF interpreter:
//! checked), so nothing else is in the images. Layouts go to
//! `OUT/NAME/` (written by [`oci_layout`], reproducible), and
//! `OUT/images.json` lists them (the input of `accord generate
//! --images`). `--push` copies them to a registry ([`oci_push`]) and the
//! references in `images.json` become `REGISTRY/NAME@sha256:…` (pinned
//! by digest; the images are also tagged, see below).
//!
//! Every `images.json` entry also carries the image config's facts that
//! the Kata agent policy needs, read back from the written config:
//! `entrypoint`, `cmd`, `env`, `user`, `working_dir` (`accord generate
//! --images` takes them from there and asks no registry). The config sets
//! `Env` to containerd's default `PATH` ([`DEFAULT_PATH_ENV`]), the `PATH`
//! the container gets anyway, so the listed facts are the runtime's.
//!
//! Tags: production images are pushed tagged with the crate version
//! (`0.1.0`); every image of the test set, the shim too, with
//! `VERSION-insecure-simulation`, so no production tag ever names a test
//! image.
//!
//! `--insecure-simulation` builds the TEST images instead: the agent with
//! the INSECURE simulated chip, named `accord-agent-insecure-simulation`,
//! annotated `dev.accord.insecure-simulation=true`, listed with
//! `"insecure_simulation": true`, written to `target/oci-insecure-simulation`
//! by default (the shim is the same binary in both sets, tagged as the
//! test set). The test set
//! also has `accord-test-mesh-echo`: the static `accord-mesh-echo`
//! (`cli/demo/mesh-echo`) at `/accord-mesh-echo`, the workload (web and
//! db) of the end-to-end container test, which talks mutual TLS with the
//! files the initializer writes. It has no simulated chip, but it is
//! listed and annotated with `insecure_simulation: true` all the same:
//! it exists only for the test, and a gate that refuses INSECURE images
//! must refuse it too. The production set never builds or lists it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::image::{self, Variant};
use crate::oci_layout::{self, Built, ImageSpec, LayerFile};
use crate::{oci_push, workspace_root};

/// The non-root user and group the images run as.
pub const NONROOT: u32 = 65_532;

/// The image config's `Env`: the `PATH` containerd gives a container
/// whose image sets none.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The tag of the images of a set: the crate version, with
/// `-insecure-simulation` for the test set.
pub fn set_tag(insecure_simulation: bool) -> String {
    let version = env!("CARGO_PKG_VERSION");
    if insecure_simulation {
        format!("{version}-insecure-simulation")
    } else {
        version.to_string()
    }
}

/// `images.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesJson {
    pub images: Vec<ImageEntry>,
}

/// One image of `images.json` (the field names are an interface: `accord
/// generate --images` reads them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    pub name: String,
    /// `NAME@sha256:…`, or `REGISTRY/NAME@sha256:…` after `--push`.
    pub reference: String,
    /// The manifest's digest.
    pub digest: String,
    /// The gzip layers' bytes.
    pub compressed_size: u64,
    /// The layer tars' bytes.
    pub uncompressed_size: u64,
    pub insecure_simulation: bool,
    /// The image config's `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// The image config's `Cmd` (empty: none).
    pub cmd: Vec<String>,
    /// The image config's `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// The image config's `User` (`UID:GID`).
    pub user: String,
    /// The image config's `WorkingDir`.
    pub working_dir: String,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    out: Option<PathBuf>,
    push: Option<String>,
    insecure_simulation: bool,
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        out: None,
        push: None,
        insecure_simulation: false,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--out" => {
                let dir = rest.next().context("oci: --out needs a directory")?;
                parsed.out = Some(PathBuf::from(dir));
            }
            "--push" => {
                let registry = rest
                    .next()
                    .context("oci: --push needs a registry (HOST[:PORT][/PREFIX])")?;
                oci_push::parse_registry(registry)?;
                parsed.push = Some(registry.clone());
            }
            "--insecure-simulation" => parsed.insecure_simulation = true,
            other => bail!(
                "oci: unknown argument `{other}` (expected --out DIR, --push REGISTRY, --insecure-simulation)"
            ),
        }
    }
    Ok(parsed)
}

/// `/etc/passwd` and `/etc/group` for root and the non-root user.
fn etc_files() -> [(String, LayerFile); 2] {
    let file = |text: String| LayerFile {
        mode: 0o644,
        uid: 0,
        gid: 0,
        data: text.into_bytes(),
    };
    [
        (
            "etc/passwd".to_string(),
            file(format!(
                "root:x:0:0:root:/:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/nonexistent:/sbin/nologin\n"
            )),
        ),
        (
            "etc/group".to_string(),
            file(format!("root:x:0:\nnonroot:x:{NONROOT}:\n")),
        ),
    ]
}

/// Fails unless `binary` is a static ELF (no `PT_INTERP`): the images
/// hold no dynamic loader and no libraries.
pub fn check_static(binary: &[u8], what: &str) -> anyhow::Result<()> {
    let field = |at: usize, len: usize| -> anyhow::Result<u64> {
        let bytes = binary
            .get(at..at + len)
            .with_context(|| format!("{what}: truncated ELF header"))?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    if binary.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("{what}: not a 64-bit little-endian ELF");
    }
    let phoff = usize::try_from(field(0x20, 8)?)?;
    let phentsize = usize::try_from(field(0x36, 2)?)?;
    let phnum = usize::try_from(field(0x38, 2)?)?;
    for i in 0..phnum {
        const PT_INTERP: u64 = 3;
        if field(phoff + i * phentsize, 4)? == PT_INTERP {
            bail!(
                "{what} is dynamically linked (it has an ELF interpreter): the image holds no libraries"
            );
        }
    }
    Ok(())
}

/// The image of one static binary at `/FILE`, run as the non-root user,
/// tagged `tag`.
pub fn binary_image(
    name: &str,
    file: &str,
    binary: Vec<u8>,
    insecure_simulation: bool,
    tag: String,
    epoch: u64,
) -> anyhow::Result<ImageSpec> {
    check_static(&binary, file)?;
    let mut files: BTreeMap<String, LayerFile> = etc_files().into_iter().collect();
    files.insert(
        file.to_string(),
        LayerFile {
            mode: 0o755,
            uid: 0,
            gid: 0,
            data: binary,
        },
    );
    Ok(ImageSpec {
        name: name.to_string(),
        files,
        entrypoint: vec![format!("/{file}")],
        env: vec![DEFAULT_PATH_ENV.to_string()],
        user: format!("{NONROOT}:{NONROOT}"),
        tag,
        insecure_simulation,
        epoch,
    })
}

/// Builds `package`'s binary static, stripped into
/// `target/image/DIR/PACKAGE` (the shim: `target/image/shim/accord-shim`).
fn build_stripped(package: &str, dir: &str) -> anyhow::Result<PathBuf> {
    let built = image::build_static(package, &[])?;
    let dir = image::image_dir().join(dir);
    std::fs::create_dir_all(&dir)?;
    let stripped = dir.join(package);
    // Stripped beside it, then renamed: a reader (the reproducibility
    // test, while CI builds the test set in the background) never sees a
    // half-written binary.
    let partial = dir.join(format!("{package}.partial"));
    image::strip(&built, &partial)?;
    std::fs::rename(&partial, &stripped)
        .with_context(|| format!("renaming {} to {}", partial.display(), stripped.display()))?;
    Ok(stripped)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The image specs of one set (production or test) from the built
/// binaries; `mesh_echo` (the test workload) only in the test set.
pub fn image_specs(
    agent: Vec<u8>,
    shim: Vec<u8>,
    mesh_echo: Option<Vec<u8>>,
    insecure_simulation: bool,
    epoch: u64,
) -> anyhow::Result<Vec<ImageSpec>> {
    let agent_name = if insecure_simulation {
        "accord-agent-insecure-simulation"
    } else {
        "accord-agent"
    };
    let tag = set_tag(insecure_simulation);
    let mut specs = vec![
        binary_image(
            agent_name,
            "accord-guest",
            agent,
            insecure_simulation,
            tag.clone(),
            epoch,
        )?,
        binary_image(
            "accord-shim",
            "accord-shim",
            shim,
            false,
            tag.clone(),
            epoch,
        )?,
    ];
    match (mesh_echo, insecure_simulation) {
        (Some(binary), true) => specs.push(binary_image(
            MESH_ECHO_IMAGE,
            "accord-mesh-echo",
            binary,
            true,
            tag,
            epoch,
        )?),
        (None, false) => {}
        (Some(_), false) => bail!("{MESH_ECHO_IMAGE} is a test image: not in the production set"),
        (None, true) => bail!("the test set needs the {MESH_ECHO_IMAGE} binary"),
    }
    Ok(specs)
}

/// The test set's workload image (`accord-mesh-echo`).
pub const MESH_ECHO_IMAGE: &str = "accord-test-mesh-echo";

/// Builds the layouts of `specs` into `out` (`out/NAME/`, `images.json`);
/// returns the built images and `images.json`'s entries (unpushed).
pub fn write_set(specs: &[ImageSpec], out: &Path) -> anyhow::Result<(Vec<Built>, ImagesJson)> {
    let mut built = Vec::new();
    let mut entries = Vec::new();
    for spec in specs {
        let image = oci_layout::build(spec)?;
        let dir = out.join(&image.name);
        oci_layout::write(&image, &dir)?;
        // Fail closed: the layout on disk parses back to this image.
        let back = oci_layout::read_back(&dir)?;
        let flag = back.config.labels().get(oci_layout::INSECURE_ANNOTATION);
        let config = &back.config;
        if back.manifest_digest != image.digest
            || config.user() != spec.user
            || config.entrypoint() != spec.entrypoint
            || config.env() != spec.env
            || flag != Some(&spec.insecure_simulation.to_string())
            || back.manifest.layers.iter().map(|l| l.size).sum::<u64>() != image.compressed_size
            || back.layer_tars.iter().map(|t| t.len() as u64).sum::<u64>()
                != image.uncompressed_size
        {
            bail!(
                "{}: the written layout does not read back as built",
                dir.display()
            );
        }
        entries.push(ImageEntry {
            name: image.name.clone(),
            reference: format!("{}@{}", image.name, image.digest),
            digest: image.digest.clone(),
            compressed_size: image.compressed_size,
            uncompressed_size: image.uncompressed_size,
            insecure_simulation: image.insecure_simulation,
            entrypoint: config.entrypoint().to_vec(),
            cmd: config.cmd().to_vec(),
            env: config.env().to_vec(),
            user: config.user().to_string(),
            working_dir: config.working_dir().to_string(),
        });
        built.push(image);
    }
    let json = ImagesJson { images: entries };
    write_images_json(&json, out)?;
    Ok((built, json))
}

fn write_images_json(json: &ImagesJson, out: &Path) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(json)?;
    text.push('\n');
    let path = out.join("images.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// `cargo xtask oci ARGS`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = parse_args(args)?;
    let out = args.out.clone().unwrap_or_else(|| {
        workspace_root().join(if args.insecure_simulation {
            "target/oci-insecure-simulation"
        } else {
            "target/oci"
        })
    });
    let variant = if args.insecure_simulation {
        Variant::Test
    } else {
        Variant::Production
    };
    let agent = image::build_agent(variant)?;
    let shim = build_stripped("accord-shim", "shim")?;
    let mesh_echo = if args.insecure_simulation {
        Some(read(&build_stripped("accord-mesh-echo", "mesh-echo")?)?)
    } else {
        None
    };
    let epoch = u64::from(image::mtime(&image::Recipe::load()?)?);
    let specs = image_specs(
        read(&agent)?,
        read(&shim)?,
        mesh_echo,
        args.insecure_simulation,
        epoch,
    )?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let (built, mut json) = write_set(&specs, &out)?;
    if let Some(registry) = &args.push {
        let references = oci_push::push(&built, registry)?;
        for (entry, reference) in json.images.iter_mut().zip(references) {
            entry.reference = reference;
        }
        write_images_json(&json, &out)?;
    }
    if args.insecure_simulation {
        println!(
            "INSECURE TEST IMAGES: the agent has the simulated chip, {MESH_ECHO_IMAGE} is the test's workload; never deploy them"
        );
    }
    for entry in &json.images {
        println!(
            "{:<34} {}  compressed {} bytes ({:.2} MiB), uncompressed {} bytes ({:.2} MiB)",
            entry.name,
            entry.digest,
            entry.compressed_size,
            mib(entry.compressed_size),
            entry.uncompressed_size,
            mib(entry.uncompressed_size)
        );
        println!("{:<34} {}", "", entry.reference);
    }
    println!("layouts and images.json in {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A static ELF header with no program headers, as a stand-in binary.
    fn fake_static() -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            args(&[
                "--out",
                "x",
                "--push",
                "127.0.0.1:5000",
                "--insecure-simulation"
            ])
            .unwrap(),
            Args {
                out: Some("x".into()),
                push: Some("127.0.0.1:5000".into()),
                insecure_simulation: true
            }
        );
        assert!(args(&["--out"]).is_err());
        assert!(args(&["--push", "http://127.0.0.1:5000"]).is_err());
        assert!(args(&["--tag"]).unwrap_err().to_string().contains("--tag"));
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        check_static(&fake_static(), "x").unwrap();
        assert!(check_static(b"#!/bin/sh\n", "x").is_err());
        // This test binary itself is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_static(&me, "me").unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn the_mesh_echo_is_only_in_the_test_set() {
        let test = image_specs(fake_static(), fake_static(), Some(fake_static()), true, 0).unwrap();
        let echo = &test[2];
        assert_eq!(echo.name, MESH_ECHO_IMAGE);
        assert_eq!(echo.entrypoint, ["/accord-mesh-echo"]);
        assert!(echo.files.contains_key("accord-mesh-echo"));
        assert_eq!(echo.user, "65532:65532");
        assert!(echo.insecure_simulation);
        let err = image_specs(fake_static(), fake_static(), Some(fake_static()), false, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in the production set"), "{err}");
        let err = image_specs(fake_static(), fake_static(), None, true, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs the accord-test-mesh-echo binary"),
            "{err}"
        );
        // A dynamic mesh echo is refused like any binary.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(image_specs(fake_static(), fake_static(), Some(me), true, 0).is_err());
    }

    #[test]
    fn images_json_has_the_interface_fields() {
        let dir = std::env::temp_dir().join(format!("xtask-oci-json-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for insecure in [false, true] {
            let mesh_echo = insecure.then(fake_static);
            let specs = image_specs(fake_static(), fake_static(), mesh_echo, insecure, 0).unwrap();
            let (_, json) = write_set(&specs, &dir).unwrap();
            let text: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("images.json")).unwrap()).unwrap();
            let first = &text["images"][0];
            let agent = if insecure {
                "accord-agent-insecure-simulation"
            } else {
                "accord-agent"
            };
            assert_eq!(first["name"], agent);
            assert_eq!(first["insecure_simulation"], insecure);
            assert_eq!(text["images"][1]["name"], "accord-shim");
            assert_eq!(text["images"][1]["insecure_simulation"], false);
            // The test workload: only in the test set, marked as a test image.
            let count = text["images"].as_array().unwrap().len();
            if insecure {
                assert_eq!(count, 3);
                let echo = &text["images"][2];
                assert_eq!(echo["name"], MESH_ECHO_IMAGE);
                assert_eq!(echo["insecure_simulation"], true);
                assert_eq!(echo.as_object().unwrap().len(), 11);
                let back = oci_layout::read_back(&dir.join(MESH_ECHO_IMAGE)).unwrap();
                assert_eq!(back.config.user(), "65532:65532");
                assert_eq!(
                    back.config.labels()[oci_layout::INSECURE_ANNOTATION],
                    "true"
                );
            } else {
                assert_eq!(count, 2);
            }
            let digest = first["digest"].as_str().unwrap();
            assert_eq!(first["reference"], format!("{agent}@{digest}"));
            assert!(first["compressed_size"].as_u64().unwrap() > 0);
            assert!(first["uncompressed_size"].as_u64().unwrap() > 0);
            // The image config's facts, as the config has them.
            assert_eq!(first["entrypoint"], serde_json::json!(["/accord-guest"]));
            assert_eq!(first["cmd"], serde_json::json!([]));
            assert_eq!(first["env"], serde_json::json!([DEFAULT_PATH_ENV]));
            assert_eq!(first["user"], "65532:65532");
            assert_eq!(first["working_dir"], "/");
            assert_eq!(
                text["images"][1]["entrypoint"],
                serde_json::json!(["/accord-shim"])
            );
            assert_eq!(first.as_object().unwrap().len(), 11);
            // The layout on disk is the one listed.
            let back = oci_layout::read_back(&dir.join(agent)).unwrap();
            assert_eq!(back.manifest_digest, json.images[0].digest);
            assert_eq!(back.config.user(), "65532:65532");
            assert_eq!(back.config.entrypoint(), ["/accord-guest"]);
            assert!(back.config.cmd().is_empty());
            assert_eq!(back.config.env(), [DEFAULT_PATH_ENV]);
            assert_eq!(back.config.working_dir(), "/");
            // Every image of a set carries the set's tag.
            let tag = if insecure {
                format!("{}-insecure-simulation", env!("CARGO_PKG_VERSION"))
            } else {
                env!("CARGO_PKG_VERSION").to_string()
            };
            let (built, _) = write_set(&specs, &dir).unwrap();
            assert!(built.iter().all(|b| b.tag == tag), "{tag}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The real images, from the binaries `cargo xtask image` and `cargo
    /// xtask oci` left in target/image (CI runs `cargo xtask image`
    /// first; this test builds nothing). Built twice into two paths, they
    /// must be the same; that the binaries themselves are reproducible is
    /// `cargo xtask image --check-reproducible`'s job.
    #[test]
    fn the_real_images_are_reproducible_and_read_back() {
        let agent = image::image_dir().join("agent/production/accord-guest");
        let shim = image::image_dir().join("shim/accord-shim");
        let Ok(agent) = std::fs::read(&agent) else {
            assert!(
                std::env::var_os("ACCORD_MEASURE_IMAGE").is_none(),
                "ACCORD_MEASURE_IMAGE is set (CI ran `cargo xtask image`) but {} is missing",
                agent.display()
            );
            eprintln!("skipped: no {} (run `cargo xtask image`)", agent.display());
            return;
        };
        // The shim image only when `cargo xtask oci` built it; else a stand-in.
        let shim = std::fs::read(&shim).unwrap_or_else(|_| fake_static());
        let root = std::env::temp_dir().join(format!("xtask-oci-real-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut digests = Vec::new();
        for place in ["a", "b/elsewhere"] {
            let dir = root.join(place);
            std::fs::create_dir_all(&dir).unwrap();
            let specs = image_specs(agent.clone(), shim.clone(), None, false, 0).unwrap();
            let (_, json) = write_set(&specs, &dir).unwrap();
            for entry in &json.images {
                eprintln!(
                    "{} {} compressed {} uncompressed {}",
                    entry.name, entry.digest, entry.compressed_size, entry.uncompressed_size
                );
                let back = oci_layout::read_back(&dir.join(&entry.name)).unwrap();
                assert_eq!(back.manifest_digest, entry.digest);
                assert_eq!(back.manifest.layers[0].size, entry.compressed_size);
            }
            digests.push(json);
        }
        assert_eq!(digests[0], digests[1]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
