//! The OCI image layout writer of `cargo xtask oci`: one reproducible
//! layer (ustar, gzip), the image config, the manifest and `index.json`,
//! written as an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`; opencontainers/image-spec v1.1).
//!
//! Reproducible by construction: the layer's entries are sorted by path,
//! every entry has the same mtime, fixed owners and modes, and no user or
//! group names; the gzip header has no mtime and no file name (level 9,
//! flate2's pure Rust backend); the JSON documents are serialized from
//! structs (fixed field order) and `BTreeMap`s (sorted keys), so the
//! bytes do not depend on serde_json's features; `created` is the given
//! epoch. The same files give the same digests, wherever they are built.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::image::{gzip, sha256_hex};

/// The media types written (image-spec v1.1).
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The annotation (manifest) and label (config) that marks an image with
/// the INSECURE simulated TEE: `"true"` or `"false"`, on every image.
pub const INSECURE_ANNOTATION: &str = "dev.accord.insecure-simulation";

/// One file of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// Permission bits (e.g. 0o755).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub data: Vec<u8>,
}

/// What one image is made of.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The image's name (`accord-agent`, …); also its title annotation.
    pub name: String,
    /// Layer files: path without a leading `/` → file. Parent
    /// directories are added (0/0, 0755).
    pub files: BTreeMap<String, LayerFile>,
    pub entrypoint: Vec<String>,
    /// The config's `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `UID:GID` (empty: root).
    pub user: String,
    /// `org.opencontainers.image.ref.name` in `index.json`, and the tag
    /// `--push` pushes the image with (besides its digest).
    pub tag: String,
    pub insecure_simulation: bool,
    /// Seconds since the epoch: every mtime and `created`.
    pub epoch: u64,
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunConfig {
    #[serde(rename = "User", skip_serializing_if = "String::is_empty", default)]
    user: String,
    #[serde(rename = "Entrypoint")]
    entrypoint: Vec<String>,
    #[serde(rename = "Cmd", skip_serializing_if = "Vec::is_empty", default)]
    cmd: Vec<String>,
    #[serde(rename = "Env", skip_serializing_if = "Vec::is_empty", default)]
    env: Vec<String>,
    #[serde(rename = "WorkingDir")]
    working_dir: String,
    #[serde(rename = "Labels")]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct History {
    created: String,
    created_by: String,
}

/// The image config (image-spec `config.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    created: String,
    architecture: String,
    os: String,
    config: RunConfig,
    rootfs: RootFs,
    history: Vec<History>,
}

impl Config {
    /// The config's `rootfs.diff_ids` (uncompressed layer digests).
    pub fn diff_ids(&self) -> &[String] {
        &self.rootfs.diff_ids
    }
    /// The config's `User`.
    pub fn user(&self) -> &str {
        &self.config.user
    }
    /// The config's `Entrypoint`.
    pub fn entrypoint(&self) -> &[String] {
        &self.config.entrypoint
    }
    /// The config's `Cmd` (empty when it has none).
    pub fn cmd(&self) -> &[String] {
        &self.config.cmd
    }
    /// The config's `Env` (empty when it has none).
    pub fn env(&self) -> &[String] {
        &self.config.env
    }
    /// The config's `WorkingDir`.
    pub fn working_dir(&self) -> &str {
        &self.config.working_dir
    }
    /// The config's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.config.labels
    }
}

/// A built image: its blobs and what `cargo xtask oci` prints.
#[derive(Clone, Debug)]
pub struct Built {
    pub name: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
    /// digest (`sha256:…`) → bytes: the config and the layer.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// The gzip layers' bytes.
    pub compressed_size: u64,
    /// The layer tars' bytes.
    pub uncompressed_size: u64,
    pub insecure_simulation: bool,
    /// The tag the image is pushed with besides its digest.
    pub tag: String,
}

/// `sha256:` and the hex SHA-256.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: digest(bytes),
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    }
}

/// RFC 3339 UTC of `epoch` seconds (proleptic Gregorian, no leap seconds).
pub fn rfc3339(epoch: u64) -> String {
    let days = i64::try_from(epoch / 86_400).unwrap_or(i64::MAX / 2);
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Writes `value` as `width - 1` octal digits and a NUL into `field`.
fn octal(field: &mut [u8], value: u64) -> anyhow::Result<()> {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    if text.len() > width {
        bail!("tar: {value} does not fit a {width}-digit octal field");
    }
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
    Ok(())
}

/// One ustar header block.
fn tar_header(
    path: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    kind: u8,
) -> anyhow::Result<[u8; 512]> {
    let mut header = [0u8; 512];
    if path.len() > 100 || path.is_empty() || path.starts_with('/') || path.contains("..") {
        bail!("tar: path `{path}` must be relative, without `..`, at most 100 bytes");
    }
    header[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut header[100..108], u64::from(mode))?;
    octal(&mut header[108..116], u64::from(uid))?;
    octal(&mut header[116..124], u64::from(gid))?;
    octal(&mut header[124..136], size)?;
    octal(&mut header[136..148], mtime)?;
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    octal(&mut header[329..337], 0)?;
    octal(&mut header[337..345], 0)?;
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    Ok(header)
}

/// A ustar archive of `files` and their parent directories (0/0, 0755),
/// sorted by path, every mtime `mtime`, no user or group names.
pub fn tar(files: &BTreeMap<String, LayerFile>, mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut dirs = std::collections::BTreeSet::new();
    for path in files.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(format!("{}/", dir.display()));
            parent = dir.parent();
        }
    }
    // Directories and files in one sorted order (`etc/` before `etc/passwd`).
    let mut entries: BTreeMap<String, Option<&LayerFile>> =
        dirs.into_iter().map(|d| (d, None)).collect();
    for (path, file) in files {
        if entries.insert(path.clone(), Some(file)).is_some() {
            bail!("tar: `{path}` twice");
        }
    }
    let mut out = Vec::new();
    for (path, file) in entries {
        match file {
            None => out.extend_from_slice(&tar_header(&path, 0o755, 0, 0, 0, mtime, b'5')?),
            Some(file) => {
                out.extend_from_slice(&tar_header(
                    &path,
                    file.mode,
                    file.uid,
                    file.gid,
                    file.data.len() as u64,
                    mtime,
                    b'0',
                )?);
                out.extend_from_slice(&file.data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// Compact JSON of a struct (its field order; maps are `BTreeMap`s).
fn to_json<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(value).context("serializing JSON")
}

/// Builds the image's blobs, manifest and index in memory.
pub fn build(spec: &ImageSpec) -> anyhow::Result<Built> {
    let layer_tar = tar(&spec.files, spec.epoch)?;
    let layer = gzip(&layer_tar)?;
    let created = rfc3339(spec.epoch);
    let flag = spec.insecure_simulation.to_string();
    let mut labels = BTreeMap::new();
    labels.insert(INSECURE_ANNOTATION.to_string(), flag.clone());
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        spec.name.clone(),
    );
    let config = Config {
        created: created.clone(),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: RunConfig {
            user: spec.user.clone(),
            entrypoint: spec.entrypoint.clone(),
            cmd: Vec::new(),
            env: spec.env.clone(),
            working_dir: "/".into(),
            labels: labels.clone(),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![digest(&layer_tar)],
        },
        history: vec![History {
            created: created.clone(),
            created_by: "cargo xtask oci".into(),
        }],
    };
    let config = to_json(&config)?;
    let mut annotations = labels;
    annotations.insert("org.opencontainers.image.created".into(), created);
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        config: descriptor(MEDIA_CONFIG, &config),
        layers: vec![descriptor(MEDIA_LAYER, &layer)],
        annotations: annotations.clone(),
    };
    let manifest = to_json(&manifest)?;
    let mut entry = descriptor(MEDIA_MANIFEST, &manifest);
    entry.annotations = annotations;
    entry
        .annotations
        .insert("org.opencontainers.image.ref.name".into(), spec.tag.clone());
    let index = to_json(&Index {
        schema_version: 2,
        media_type: MEDIA_INDEX.into(),
        manifests: vec![entry],
    })?;
    let mut blobs = BTreeMap::new();
    blobs.insert(digest(&config), config);
    let (compressed_size, uncompressed_size) = (layer.len() as u64, layer_tar.len() as u64);
    blobs.insert(digest(&layer), layer);
    Ok(Built {
        name: spec.name.clone(),
        digest: digest(&manifest),
        manifest,
        index,
        blobs,
        compressed_size,
        uncompressed_size,
        insecure_simulation: spec.insecure_simulation,
        tag: spec.tag.clone(),
    })
}

/// Writes `built` as an OCI image layout at `dir` (replacing it).
pub fn write(built: &Built, dir: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let mut all = built.blobs.clone();
    all.insert(built.digest.clone(), built.manifest.clone());
    for (digest, bytes) in &all {
        let hex = digest
            .strip_prefix("sha256:")
            .context("a digest without sha256:")?;
        std::fs::write(blobs.join(hex), bytes)?;
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    std::fs::write(dir.join("index.json"), &built.index)?;
    Ok(())
}

/// What [`read_back`] found in a layout.
#[derive(Clone, Debug)]
pub struct ReadBack {
    pub manifest_digest: String,
    pub manifest: Manifest,
    pub config: Config,
    /// The uncompressed layers.
    pub layer_tars: Vec<Vec<u8>>,
}

/// Reads the blob `descriptor` names from `dir`; checks its size and digest.
fn read_blob(dir: &Path, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
    let hex = descriptor
        .digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("digest `{}` is not sha256:HEX", descriptor.digest))?;
    let path = dir.join("blobs/sha256").join(hex);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 != descriptor.size {
        bail!(
            "{}: {} bytes, the descriptor says {}",
            path.display(),
            bytes.len(),
            descriptor.size
        );
    }
    if digest(&bytes) != descriptor.digest {
        bail!(
            "{}: its content is not {}",
            path.display(),
            descriptor.digest
        );
    }
    Ok(bytes)
}

/// Parses the layout at `dir` back: `oci-layout`, `index.json` (one
/// manifest), the manifest, its config and layers, every blob's size and
/// digest checked against its descriptor, the layers' diff_ids against
/// the config.
pub fn read_back(dir: &Path) -> anyhow::Result<ReadBack> {
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oci-layout"))?)?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        bail!("oci-layout: imageLayoutVersion is not 1.0.0: {layout}");
    }
    let index: Index =
        serde_json::from_slice(&std::fs::read(dir.join("index.json"))?).context("index.json")?;
    let [entry] = index.manifests.as_slice() else {
        bail!(
            "index.json: {} manifests, expected 1",
            index.manifests.len()
        );
    };
    if index.schema_version != 2 || entry.media_type != MEDIA_MANIFEST {
        bail!("index.json: schemaVersion or manifest media type: {index:?}");
    }
    let manifest_bytes = read_blob(dir, entry)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).context("the manifest")?;
    if manifest.media_type != MEDIA_MANIFEST || manifest.config.media_type != MEDIA_CONFIG {
        bail!("the manifest's media types: {manifest:?}");
    }
    let config: Config =
        serde_json::from_slice(&read_blob(dir, &manifest.config)?).context("the config")?;
    let mut layer_tars = Vec::new();
    for layer in &manifest.layers {
        if layer.media_type != MEDIA_LAYER {
            bail!("layer media type `{}`", layer.media_type);
        }
        let gz = read_blob(dir, layer)?;
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw)
            .context("a layer is not gzip")?;
        layer_tars.push(raw);
    }
    let diff_ids: Vec<String> = layer_tars.iter().map(|t| digest(t)).collect();
    if diff_ids != config.diff_ids() {
        bail!(
            "the config's diff_ids {:?} are not the layers' {diff_ids:?}",
            config.diff_ids()
        );
    }
    Ok(ReadBack {
        manifest_digest: entry.digest.clone(),
        manifest,
        config,
        layer_tars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(epoch: u64) -> ImageSpec {
        let mut files = BTreeMap::new();
        files.insert(
            "usr/bin/tool".to_string(),
            LayerFile {
                mode: 0o755,
                uid: 0,
                gid: 0,
                data: b"\x7fELF a tool".repeat(100),
            },
        );
        files.insert(
            "etc/passwd".to_string(),
            LayerFile {
                mode: 0o644,
                uid: 0,
                gid: 0,
                data: b"nonroot:x:65532:65532::/:/sbin/nologin\n".to_vec(),
            },
        );
        ImageSpec {
            name: "tool".into(),
            files,
            entrypoint: vec!["/usr/bin/tool".into()],
            env: vec!["PATH=/usr/bin".into()],
            user: "65532:65532".into(),
            tag: "0.1.0".into(),
            insecure_simulation: false,
            epoch,
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-oci-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Every file of a layout directory: relative path → bytes.
    fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn the_layout_is_the_same_from_two_paths() {
        let (a, b) = (scratch("repro-a"), scratch("repro-b").join("deeper"));
        write(&build(&spec(0)).unwrap(), &a).unwrap();
        write(&build(&spec(0)).unwrap(), &b).unwrap();
        let (ta, tb) = (tree(&a), tree(&b));
        assert_eq!(ta, tb);
        assert_eq!(ta.len(), 5, "{:?}", ta.keys()); // oci-layout, index, 3 blobs
        // A different epoch is a different image: the digest covers it.
        assert_ne!(
            build(&spec(1)).unwrap().digest,
            build(&spec(0)).unwrap().digest
        );
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(b.parent().unwrap());
    }

    #[test]
    fn the_layout_reads_back() {
        let dir = scratch("read");
        let built = build(&spec(1_700_000_000)).unwrap();
        write(&built, &dir).unwrap();
        let back = read_back(&dir).unwrap();
        assert_eq!(back.manifest_digest, built.digest);
        assert_eq!(back.config.user(), "65532:65532");
        assert_eq!(back.config.labels()[INSECURE_ANNOTATION], "false");
        assert_eq!(back.manifest.annotations[INSECURE_ANNOTATION], "false");
        assert_eq!(back.layer_tars.len(), 1);
        assert_eq!(back.layer_tars[0].len() as u64, built.uncompressed_size);
        assert_eq!(back.manifest.layers[0].size, built.compressed_size);
        // gzip header: magic, deflate, no flags (no name), mtime 0.
        let layer = &built.blobs[&back.manifest.layers[0].digest];
        assert_eq!(&layer[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let config: serde_json::Value =
            serde_json::from_slice(&built.blobs[&back.manifest.config.digest]).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");

        // The system's tar agrees on names, order, modes, owners, mtimes.
        let archive = dir.join("layer.tar");
        std::fs::write(&archive, &back.layer_tars[0]).unwrap();
        let output = std::process::Command::new("tar")
            .args(["--numeric-owner", "--full-time", "-tvf"])
            .arg(&archive)
            .env("TZ", "UTC")
            .output()
            .expect("tar (GNU tar) is needed to check the layer");
        assert!(output.status.success(), "{output:?}");
        let listed = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<Vec<&str>> = listed
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let names: Vec<&str> = lines.iter().map(|l| l[5]).collect();
        assert_eq!(
            names,
            ["etc/", "etc/passwd", "usr/", "usr/bin/", "usr/bin/tool"]
        );
        assert_eq!(lines[4][0], "-rwxr-xr-x");
        assert_eq!(lines[4][1], "0/0");
        assert_eq!(lines[4][2], "1100");
        assert!(
            lines
                .iter()
                .all(|l| l[3] == "2023-11-14" && l[4] == "22:13:20")
        );

        // A blob that does not match its descriptor is refused.
        let hex = back.manifest.layers[0]
            .digest
            .strip_prefix("sha256:")
            .unwrap();
        let blob = dir.join("blobs/sha256").join(hex);
        let mut bytes = std::fs::read(&blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&blob, &bytes).unwrap();
        let err = read_back(&dir).unwrap_err().to_string();
        assert!(err.contains("its content is not"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_insecure_image_is_marked() {
        let mut insecure = spec(0);
        insecure.insecure_simulation = true;
        let built = build(&insecure).unwrap();
        assert!(built.insecure_simulation);
        let manifest: Manifest = serde_json::from_slice(&built.manifest).unwrap();
        assert_eq!(manifest.annotations[INSECURE_ANNOTATION], "true");
        assert_ne!(built.digest, build(&spec(0)).unwrap().digest);
    }

    #[test]
    fn dates_and_bad_paths() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        let file = LayerFile {
            mode: 0o644,
            uid: 0,
            gid: 0,
            data: vec![],
        };
        for bad in ["/abs", "a/../b", &"x".repeat(101)] {
            let files = BTreeMap::from([(bad.to_string(), file.clone())]);
            assert!(tar(&files, 0).is_err(), "{bad}");
        }
    }
}
