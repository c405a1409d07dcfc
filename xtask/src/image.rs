//! `cargo xtask image`: the guest image from the recipe in `image/`.
//!
//! 1. builds the static agent (`accord-guest`, glibc `+crt-static`,
//!    `--target x86_64-unknown-linux-gnu`, target dir `target/image`)
//!    WITHOUT the `insecure-simulation` feature; the `guest-image` profile
//!    keeps the symbols, so xtask checks that none names the simulated
//!    chip, strips the binary itself (`strip --strip-all`, from the
//!    binutils that linked it), and runs it once with `--tee
//!    insecure-simulated` on every subcommand, which must refuse (see
//!    [`check_production_agent`]); the recipe's command line must not
//!    choose the simulated chip either;
//! 2. fetches the kernel package named by the recipe with `apt-get
//!    download` through a private apt configuration under
//!    `target/image/apt` (the system's sources are untouched), checks its
//!    SHA-256 and unpacks it with `dpkg-deb -x` (both cached: reruns are
//!    offline);
//! 3. writes the initramfs itself: newc cpio with sorted entries, uid/gid
//!    0, one mtime (SOURCE_DATE_EPOCH or the recipe's), device nodes as
//!    cpio entries, then gzip with a fixed header (no mtime, no name);
//! 4. prints the SHA-256 of the kernel, the initramfs and the command line.
//!
//! Output: `target/image/out/{vmlinuz,initramfs.cpio.gz,cmdline}`.
//!
//! The TEST image of `cargo xtask qemu-test` ([`build_test`]) is built the
//! same way from the same recipe, but its agent has the INSECURE simulated
//! chip (`--features insecure-simulation`) and its command line adds
//! `accord.tee=insecure-simulated`. It goes to `target/image/test-out/`,
//! and its hashes are printed as `test-agent`, `test-kernel`,
//! `test-initramfs`, `test-cmdline`: it is never the production image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace_root;

/// The recipe (`image/recipe.toml`).
#[derive(Clone, Debug)]
pub struct Recipe {
    pub package: String,
    pub version: String,
    pub suite: String,
    pub mirror: String,
    pub deb_sha256: String,
    pub release: String,
    pub modules: Vec<String>,
    pub cmdline: String,
    pub mtime: u32,
    pub dirs: Vec<String>,
    pub devices: Vec<Device>,
    pub agent: String,
}

/// A character device node of the initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
}

fn get_str(table: &toml::Table, section: &str, key: &str) -> anyhow::Result<String> {
    table
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("recipe: [{section}] {key} (a string) is missing"))
}

fn get_list(table: &toml::Table, section: &str, key: &str) -> anyhow::Result<Vec<String>> {
    table
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(toml::Value::as_array)
        .with_context(|| format!("recipe: [{section}] {key} (a list) is missing"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .with_context(|| format!("recipe: [{section}] {key}: not a string: {v:?}"))
        })
        .collect()
}

impl Recipe {
    /// Parses the recipe text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = text.parse().context("recipe: not TOML")?;
        let devices = get_list(&table, "initramfs", "devices")?
            .iter()
            .map(|line| parse_device(line))
            .collect::<anyhow::Result<_>>()?;
        let mtime = table
            .get("initramfs")
            .and_then(|s| s.get("mtime"))
            .and_then(toml::Value::as_integer)
            .context("recipe: [initramfs] mtime (an integer) is missing")?;
        Ok(Self {
            package: get_str(&table, "kernel", "package")?,
            version: get_str(&table, "kernel", "version")?,
            suite: get_str(&table, "kernel", "suite")?,
            mirror: get_str(&table, "kernel", "mirror")?,
            deb_sha256: get_str(&table, "kernel", "deb_sha256")?,
            release: get_str(&table, "kernel", "release")?,
            modules: get_list(&table, "modules", "order")?,
            cmdline: get_str(&table, "cmdline", "line")?,
            mtime: u32::try_from(mtime).context("recipe: [initramfs] mtime out of range")?,
            dirs: get_list(&table, "initramfs", "dirs")?,
            devices,
            agent: get_str(&table, "initramfs", "agent")?,
        })
    }

    /// Reads `image/recipe.toml`.
    pub fn load() -> anyhow::Result<Self> {
        let path = workspace_root().join("image/recipe.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }
}

/// `PATH c MAJOR MINOR MODE`.
fn parse_device(line: &str) -> anyhow::Result<Device> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [path, "c", major, minor, mode] = parts.as_slice() else {
        bail!("recipe: device `{line}`: expected `PATH c MAJOR MINOR MODE`");
    };
    Ok(Device {
        path: (*path).to_string(),
        major: major.parse().context("device major")?,
        minor: minor.parse().context("device minor")?,
        mode: u32::from_str_radix(mode, 8).context("device mode (octal)")?,
    })
}

/// One initramfs entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory with its permission bits.
    Dir { mode: u32 },
    /// A regular file.
    File { mode: u32, data: Vec<u8> },
    /// A character device.
    CharDev { mode: u32, major: u32, minor: u32 },
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn newc_header(out: &mut Vec<u8>, fields: [u32; 13], name: &str) {
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// A newc cpio archive of `entries` (path without a leading `/` → entry),
/// in path order, uid/gid 0, every mtime `mtime`, inodes numbered from 1.
pub fn cpio(entries: &std::collections::BTreeMap<String, Entry>, mtime: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (ino, (path, entry)) in (1u32..).zip(entries) {
        let (mode, nlink, data, major, minor): (u32, u32, &[u8], u32, u32) = match entry {
            Entry::Dir { mode } => (S_IFDIR | mode, 2, &[], 0, 0),
            Entry::File { mode, data } => (S_IFREG | mode, 1, data, 0, 0),
            Entry::CharDev { mode, major, minor } => (S_IFCHR | mode, 1, &[], *major, *minor),
        };
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let namesize = u32::try_from(path.len() + 1).unwrap_or(u32::MAX);
        newc_header(
            &mut out,
            [
                ino, mode, 0, 0, nlink, mtime, size, 0, 0, major, minor, namesize, 0,
            ],
            path,
        );
        out.extend_from_slice(data);
        pad4(&mut out);
    }
    newc_header(
        &mut out,
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0],
        "TRAILER!!!",
    );
    out
}

#[cfg(test)]
/// An entry read back: (path, mode, rdev major, rdev minor, data).
#[cfg(test)]
type ReadEntry = (String, u32, u32, u32, Vec<u8>);

#[cfg(test)]
/// Reads a newc archive back: (path, mode, rdev major, rdev minor, data).
pub fn read_cpio(bytes: &[u8]) -> anyhow::Result<Vec<ReadEntry>> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let header = bytes.get(at..at + 110).context("truncated header")?;
        if &header[..6] != b"070701" {
            bail!("bad magic at {at}");
        }
        let field = |i: usize| -> anyhow::Result<u32> {
            let text = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i])?;
            Ok(u32::from_str_radix(text, 16)?)
        };
        let (mode, size, rmaj, rmin, namesize) =
            (field(1)?, field(6)?, field(9)?, field(10)?, field(11)?);
        let name_start = at + 110;
        let name_end = name_start + namesize as usize;
        let name = bytes
            .get(name_start..name_end - 1)
            .context("truncated name")?;
        let name = String::from_utf8(name.to_vec())?;
        let data_start = name_end.div_ceil(4) * 4;
        let data_end = data_start + size as usize;
        let data = bytes
            .get(data_start..data_end)
            .context("truncated data")?
            .to_vec();
        at = data_end.div_ceil(4) * 4;
        if name == "TRAILER!!!" {
            return Ok(entries);
        }
        entries.push((name, mode, rmaj, rmin, data));
    }
}

/// gzip (level 9) with a fixed header: mtime 0, no file name.
pub fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The initramfs entries for `recipe`, the agent binary and the module
/// files (in load order, as (file name, bytes)).
pub fn initramfs_entries(
    recipe: &Recipe,
    agent: Vec<u8>,
    modules: Vec<(String, Vec<u8>)>,
) -> std::collections::BTreeMap<String, Entry> {
    let mut entries = std::collections::BTreeMap::new();
    for dir in &recipe.dirs {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        entries.insert(dir.clone(), Entry::Dir { mode });
    }
    for device in &recipe.devices {
        entries.insert(
            device.path.clone(),
            Entry::CharDev {
                mode: device.mode,
                major: device.major,
                minor: device.minor,
            },
        );
    }
    entries.insert(
        recipe.agent.clone(),
        Entry::File {
            mode: 0o755,
            data: agent,
        },
    );
    let mut order = String::new();
    for (name, data) in modules {
        order.push_str(&name);
        order.push('\n');
        entries.insert(format!("modules/{name}"), Entry::File { mode: 0o644, data });
    }
    entries.insert(
        "modules/order".to_string(),
        Entry::File {
            mode: 0o644,
            data: order.into_bytes(),
        },
    );
    entries
}

/// The mtime for every entry: SOURCE_DATE_EPOCH if set, else the recipe's.
pub fn mtime(recipe: &Recipe) -> anyhow::Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{text}` is not a number")),
        Err(_) => Ok(recipe.mtime),
    }
}

/// Which image to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The production image: no simulated chip in the agent or the
    /// command line.
    Production,
    /// The QEMU test image: the agent with the INSECURE simulated chip,
    /// chosen on the command line.
    Test,
}

/// What the test image's command line adds to the recipe's.
pub const TEST_CMDLINE: &str = "accord.tee=insecure-simulated";

impl Variant {
    /// `production` or `test`.
    fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Test => "test",
        }
    }

    /// The prefix of the printed hash labels (`agent` or `test-agent`).
    fn label(self, what: &str) -> String {
        match self {
            Self::Production => what.to_string(),
            Self::Test => format!("test-{what}"),
        }
    }

    /// Where the image goes.
    fn out_dir(self) -> PathBuf {
        match self {
            Self::Production => image_dir().join("out"),
            Self::Test => image_dir().join("test-out"),
        }
    }

    /// The cargo features of the agent.
    fn features(self) -> &'static [&'static str] {
        match self {
            Self::Production => &[],
            Self::Test => &["--features", "insecure-simulation"],
        }
    }

    /// The kernel command line: the recipe's (checked, for production) or
    /// the recipe's plus [`TEST_CMDLINE`].
    fn cmdline(self, recipe: &Recipe) -> anyhow::Result<String> {
        match self {
            Self::Production => {
                check_production_cmdline(&recipe.cmdline)?;
                Ok(recipe.cmdline.clone())
            }
            Self::Test => Ok(format!("{} {TEST_CMDLINE}", recipe.cmdline)),
        }
    }
}

/// Refuses a production command line that chooses a simulated TEE
/// (`accord.tee=insecure-simulated`, `…-tdx`) or sets what only the simulated chip
/// reads (`accord.host-data`, `accord.measurement`).
pub fn check_production_cmdline(cmdline: &str) -> anyhow::Result<()> {
    for word in cmdline.split_whitespace() {
        let simulated = word.starts_with(TEST_CMDLINE)
            || word.starts_with("accord.host-data=")
            || word.starts_with("accord.measurement=");
        if simulated {
            bail!(
                "image/recipe.toml: the production command line has `{word}`: the production image has no \
                 simulated chip (only `cargo xtask qemu-test`'s test image adds `{TEST_CMDLINE}`)"
            );
        }
    }
    Ok(())
}

/// The built image.
#[derive(Clone, Debug)]
pub struct Image {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub cmdline: String,
}

/// `target/image`.
pub fn image_dir() -> PathBuf {
    workspace_root().join("target/image")
}

/// The cargo profile of the image's agent (Cargo.toml: opt-level 2, fat
/// LTO, one codegen unit, symbols kept: xtask checks them, then strips).
pub const AGENT_PROFILE: &str = "guest-image";

/// The agent binary's size target (issue 7): printed against, not enforced.
const AGENT_SIZE_TARGET: usize = 8 << 20;

/// Where build paths are remapped to in the agent binary.
const REMAPPED_WORKSPACE: &str = "/accord";
const REMAPPED_CARGO_HOME: &str = "/cargo";

/// `$CARGO_HOME` (or `~/.cargo`): the registry sources live there.
fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// The build-host paths that must not appear in the agent, with what they
/// are remapped to.
fn remapped_paths() -> Vec<(PathBuf, &'static str)> {
    let mut paths = vec![(workspace_root(), REMAPPED_WORKSPACE)];
    if let Some(home) = cargo_home() {
        paths.push((home, REMAPPED_CARGO_HOME));
    }
    paths
}

/// Builds `package`'s binary of the same name static, the way the agent
/// is built (see [`build_agent`]); returns cargo's output path (shared by
/// every build of that binary: copy it out at once).
pub fn build_static(package: &str, features: &[&str]) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut rustflags = vec!["-Ctarget-feature=+crt-static".to_string()];
    let mut cflags = Vec::new();
    for (from, to) in remapped_paths() {
        let from = from.display().to_string();
        if from.contains(char::is_whitespace) {
            bail!("the build path `{from}` has white space: the C flags cannot remap it");
        }
        rustflags.push(format!("--remap-path-prefix={from}={to}"));
        cflags.push(format!("-ffile-prefix-map={from}={to}"));
    }
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--profile",
            AGENT_PROFILE,
            "--target",
            "x86_64-unknown-linux-gnu",
            "-p",
            package,
            "--bin",
            package,
        ])
        .args(features)
        .arg("--target-dir")
        .arg(image_dir())
        // The unit separator is CARGO_ENCODED_RUSTFLAGS' own, so no flag is
        // split on spaces; with --target these flags reach only the
        // target's crates, not build scripts.
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .env("CFLAGS_x86_64_unknown_linux_gnu", cflags.join(" "))
        .current_dir(workspace_root());
    eprintln!(
        "$ CARGO_ENCODED_RUSTFLAGS='{}' CFLAGS_x86_64_unknown_linux_gnu='{}' {command:?}",
        rustflags.join(" "),
        cflags.join(" ")
    );
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the static {package} failed ({status})");
    }
    let built = image_dir()
        .join("x86_64-unknown-linux-gnu")
        .join(AGENT_PROFILE)
        .join(package);
    Ok(built)
}

/// Builds the static agent (`accord-guest`) with `--target
/// x86_64-unknown-linux-gnu`, glibc `+crt-static`, the `guest-image`
/// profile, the variant's features and every build path remapped (Rust's
/// `--remap-path-prefix`, C's `-ffile-prefix-map`), so the binary depends
/// on the sources, not on where they were checked out. The production
/// agent's symbols are checked ([`check_no_simulated_symbols`]); then the
/// binary is stripped into `target/image/agent/VARIANT/accord-guest`, and
/// the production one must refuse the simulated chip
/// ([`check_refuses_simulation`]). Returns the stripped agent's path.
pub fn build_agent(variant: Variant) -> anyhow::Result<PathBuf> {
    let built = build_static("accord-guest", variant.features())?;
    // Both variants share cargo's output path: copy this one out at once.
    let dir = image_dir().join("agent").join(variant.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let unstripped = dir.join("accord-guest.unstripped");
    std::fs::copy(&built, &unstripped)
        .with_context(|| format!("copying {} to {}", built.display(), unstripped.display()))?;
    if variant == Variant::Production {
        check_no_simulated_symbols(&unstripped)?;
    }
    let agent = dir.join("accord-guest");
    strip(&unstripped, &agent)?;
    if variant == Variant::Production {
        check_refuses_simulation(&agent)?;
    }
    Ok(agent)
}

/// Strips `unstripped` into `out` (`strip --strip-all`, the binutils that
/// linked it) and fails if `out` still names a build-host path.
pub fn strip(unstripped: &Path, out: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(out);
    let dir = out
        .parent()
        .context("strip: an output without a directory")?;
    crate::run_in(
        "strip",
        &[],
        &[
            "--strip-all",
            "-o",
            &out.display().to_string(),
            &unstripped.display().to_string(),
        ],
        dir,
    )?;
    let bytes = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
    check_no_build_paths(&bytes)
}

/// Fails unless `nm` lists the agent's own symbols (`accord_guest`) and
/// none of them names the simulated chip (`simulated`, any case): the
/// production agent must not carry the chip, not even unreachable.
pub fn check_no_simulated_symbols(unstripped: &Path) -> anyhow::Result<()> {
    let output = Command::new("nm")
        .arg(unstripped)
        .output()
        .context("running nm (binutils) on the agent")?;
    if !output.status.success() {
        bail!(
            "nm {} failed ({}): {}",
            unstripped.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let symbols = String::from_utf8_lossy(&output.stdout);
    let found = simulated_symbols(&symbols);
    // Fail closed: a list without the agent's own code proves nothing.
    let own = symbols
        .lines()
        .filter(|l| l.contains("accord_guest"))
        .count();
    if own == 0 {
        bail!(
            "nm lists no accord_guest symbol in {}: the symbol check cannot see the agent (stripped?)",
            unstripped.display()
        );
    }
    if !found.is_empty() {
        bail!(
            "the production agent has {} symbol(s) of the INSECURE simulated chip, e.g. {}: \
             it must be built without the `insecure-simulation` feature",
            found.len(),
            found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "symbols    no `simulated` symbol among {} ({own} of accord_guest)",
        symbols.lines().count()
    );
    Ok(())
}

/// The symbol names in `nm` output that name the simulated chip.
fn simulated_symbols(nm_output: &str) -> Vec<String> {
    nm_output
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|name| name.to_ascii_lowercase().contains("simulated"))
        .map(str::to_string)
        .collect()
}

/// What the production agent must say to `--tee insecure-simulated`.
const NOT_BUILT: &str = "built without the `insecure-simulation` feature";

/// Runs the production agent with `--tee insecure-simulated` on every
/// subcommand that takes `--tee`: each must exit 1 naming the missing
/// feature, and create nothing. (The workspace's tests cannot check
/// this: they build the agent with the feature.)
pub fn check_refuses_simulation(agent: &Path) -> anyhow::Result<()> {
    let scratch = image_dir().join("refusal-check");
    let _ = std::fs::remove_dir_all(&scratch);
    let state = scratch.join("state").display().to_string();
    let out = scratch.join("out").display().to_string();
    let runs: [&[&str]; 4] = [
        &["report", "--report-data", "00"],
        &["coordinator", "--state", &state],
        &["initializer", "--coordinator", "127.0.0.1:9", "--out", &out],
        &["reference-values"],
    ];
    for args in runs {
        let output = Command::new(agent)
            .args(args)
            .args(["--tee", "insecure-simulated"])
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {}", agent.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(1) || !stderr.contains(NOT_BUILT) {
            bail!(
                "the production agent did not refuse `{} --tee insecure-simulated` ({}; stderr: {})",
                args.join(" "),
                output.status,
                stderr.trim()
            );
        }
        if scratch.exists() {
            bail!(
                "`accord-guest {} --tee insecure-simulated` created {} before refusing",
                args.join(" "),
                scratch.display()
            );
        }
    }
    println!("refusal    the agent refuses --tee insecure-simulated: {NOT_BUILT}");
    Ok(())
}

/// Fails when the agent still names a build-host path (the image would
/// then differ between checkouts).
fn check_no_build_paths(agent: &[u8]) -> anyhow::Result<()> {
    for (path, _) in remapped_paths() {
        let needle = path.display().to_string();
        if needle.len() > 1
            && agent
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        {
            bail!(
                "the agent binary contains the build path `{needle}`: the image would not be reproducible from another checkout"
            );
        }
    }
    Ok(())
}

/// apt-get options for the private configuration under `dir`.
fn apt_options(dir: &Path) -> Vec<String> {
    [
        ("Dir::Etc::SourceList", "/dev/null".into()),
        (
            "Dir::Etc::SourceParts",
            dir.join("parts").display().to_string(),
        ),
        ("Dir::State::Lists", dir.join("lists").display().to_string()),
        (
            "Dir::Cache::Archives",
            dir.join("archives").display().to_string(),
        ),
        ("Dir::State::status", "/dev/null".into()),
    ]
    .into_iter()
    .flat_map(|(key, value)| ["-o".to_string(), format!("{key}={value}")])
    .collect()
}

/// What the suite's `linux-image-amd64` points at now, as a hint.
fn current_kernel_hint(options: &[String]) -> String {
    let output = Command::new("apt-cache")
        .args(options)
        .args(["show", "linux-image-amd64"])
        .output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .map(str::to_string)
    };
    match (field("Version:"), field("Depends:")) {
        (Some(version), Some(depends)) => {
            format!("The suite's linux-image-amd64 is {version} now, depending on {depends}.")
        }
        _ => "(`apt-cache show linux-image-amd64` gave no hint.)".to_string(),
    }
}

/// Fetches (once) and unpacks (once) the kernel package; returns the
/// unpacked tree.
fn fetch_kernel(recipe: &Recipe) -> anyhow::Result<PathBuf> {
    let apt = image_dir().join("apt");
    let debs = apt.join("debs");
    let tree = image_dir().join("kernel").join(&recipe.release);
    // The marker names what was unpacked: a changed recipe unpacks again.
    let done = tree.join(".unpacked");
    let unpacked = format!(
        "{}={} {}\n",
        recipe.package, recipe.version, recipe.deb_sha256
    );
    if std::fs::read_to_string(&done).ok().as_deref() == Some(unpacked.as_str()) {
        return Ok(tree);
    }
    let deb_name = format!(
        "{}_{}_amd64.deb",
        recipe.package,
        recipe.version.replace(':', "%3a")
    );
    let deb = debs.join(&deb_name);
    let cached = std::fs::read(&deb).ok().map(|b| sha256_hex(&b));
    if cached.as_deref() != Some(recipe.deb_sha256.as_str()) {
        for dir in ["parts", "lists/partial", "archives/partial", "debs"] {
            std::fs::create_dir_all(apt.join(dir))?;
        }
        std::fs::write(
            apt.join("parts/image.sources"),
            format!(
                "Types: deb\nURIs: {}\nSuites: {}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
                recipe.mirror, recipe.suite
            ),
        )?;
        let options = apt_options(&apt);
        crate::run_in("apt-get", &options, &["update"], &debs)?;
        let spec = format!("{}={}", recipe.package, recipe.version);
        if let Err(err) = crate::run_in("apt-get", &options, &["download", &spec], &debs) {
            bail!(
                "{err:#}\n{spec} is not in {} {} (any more?): kernels age out of \
                 backports. {} Update [kernel] in image/recipe.toml (package, version, \
                 deb_sha256, release) and the expected hashes.",
                recipe.mirror,
                recipe.suite,
                current_kernel_hint(&options)
            );
        }
        let got =
            sha256_hex(&std::fs::read(&deb).with_context(|| format!("reading {}", deb.display()))?);
        if got != recipe.deb_sha256 {
            bail!(
                "{}: SHA-256 {got}, the recipe says {}",
                deb.display(),
                recipe.deb_sha256
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree)?;
    crate::run_in(
        "dpkg-deb",
        &[],
        &[
            "-x",
            &deb.display().to_string(),
            &tree.display().to_string(),
        ],
        &debs,
    )?;
    std::fs::write(&done, unpacked)?;
    Ok(tree)
}

/// `cargo xtask image`: builds the production image, prints the hashes.
pub fn build() -> anyhow::Result<Image> {
    build_variant(Variant::Production)
}

/// The TEST image of `cargo xtask qemu-test` (INSECURE simulated chip).
pub fn build_test() -> anyhow::Result<Image> {
    build_variant(Variant::Test)
}

/// Builds `variant`, prints its hashes (labelled by [`Variant::label`]).
fn build_variant(variant: Variant) -> anyhow::Result<Image> {
    let recipe = Recipe::load()?;
    let cmdline = variant.cmdline(&recipe)?;
    let agent_path = build_agent(variant)?;
    let agent =
        std::fs::read(&agent_path).with_context(|| format!("reading {}", agent_path.display()))?;
    println!(
        "{:<10} {}  {} ({} bytes, {:.2} MiB; static, stripped)",
        variant.label("agent"),
        sha256_hex(&agent),
        agent_path.display(),
        agent.len(),
        agent.len() as f64 / f64::from(1 << 20)
    );
    if variant == Variant::Production && agent.len() > AGENT_SIZE_TARGET {
        println!(
            "WARNING: the agent is over its {} MiB target (issue 7); see BENCHMARKS.md, \"The guest image\", for what the profile trades",
            AGENT_SIZE_TARGET >> 20
        );
    }
    let tree = fetch_kernel(&recipe)?;
    let module_dir = tree
        .join("lib/modules")
        .join(&recipe.release)
        .join("kernel");
    let mut modules = Vec::new();
    for path in &recipe.modules {
        let file = module_dir.join(path);
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("module path `{path}`"))?
            .to_string();
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        modules.push((name, data));
    }
    let entries = initramfs_entries(&recipe, agent, modules);
    let initramfs = gzip(&cpio(&entries, mtime(&recipe)?))?;

    let out = variant.out_dir();
    std::fs::create_dir_all(&out)?;
    let kernel_src = tree
        .join("boot")
        .join(format!("vmlinuz-{}", recipe.release));
    let kernel_bytes =
        std::fs::read(&kernel_src).with_context(|| format!("reading {}", kernel_src.display()))?;
    let image = Image {
        kernel: out.join("vmlinuz"),
        initramfs: out.join("initramfs.cpio.gz"),
        cmdline,
    };
    std::fs::write(&image.kernel, &kernel_bytes)?;
    std::fs::write(&image.initramfs, &initramfs)?;
    std::fs::write(out.join("cmdline"), format!("{}\n", image.cmdline))?;
    println!(
        "{:<10} {}  {} ({} bytes)",
        variant.label("kernel"),
        sha256_hex(&kernel_bytes),
        image.kernel.display(),
        kernel_bytes.len()
    );
    println!(
        "{:<10} {}  {} ({} bytes)",
        variant.label("initramfs"),
        sha256_hex(&initramfs),
        image.initramfs.display(),
        initramfs.len()
    );
    println!(
        "{:<10} {}  {:?}",
        variant.label("cmdline"),
        sha256_hex(image.cmdline.as_bytes()),
        image.cmdline
    );
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe::parse(include_str!("../../image/recipe.toml")).unwrap()
    }

    fn build_fake() -> Vec<u8> {
        let recipe = recipe();
        let modules = recipe
            .modules
            .iter()
            .map(|p| {
                let name = p.rsplit('/').next().unwrap().to_string();
                (name.clone(), format!("fake module {name}").into_bytes())
            })
            .collect();
        let entries = initramfs_entries(&recipe, b"\x7fELF fake agent".to_vec(), modules);
        gzip(&cpio(&entries, 0)).unwrap()
    }

    #[test]
    fn the_recipe_parses() {
        let recipe = recipe();
        assert!(
            recipe
                .modules
                .iter()
                .any(|m| m.ends_with("virtio_net.ko.xz"))
        );
        assert!(recipe.cmdline.contains("console=ttyS0"));
        assert_eq!(recipe.devices[0].path, "dev/console");
        assert_eq!((recipe.devices[0].major, recipe.devices[0].minor), (5, 1));
    }

    #[test]
    fn the_production_command_line_has_no_simulated_chip() {
        let recipe = recipe();
        check_production_cmdline(&recipe.cmdline).unwrap();
        assert_eq!(
            Variant::Production.cmdline(&recipe).unwrap(),
            recipe.cmdline
        );
        let test = Variant::Test.cmdline(&recipe).unwrap();
        assert!(test.ends_with(" accord.tee=insecure-simulated"), "{test}");
        for word in [
            "accord.tee=insecure-simulated",
            "accord.tee=insecure-simulated-tdx",
            "accord.host-data=00",
            "accord.measurement=00",
        ] {
            let err = check_production_cmdline(&format!("console=ttyS0 {word} quiet"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(word), "{err}");
        }
        check_production_cmdline("console=ttyS0 accord.tee=sev-guest").unwrap();
    }

    #[test]
    fn simulated_symbols_are_found_in_nm_output() {
        let nm = "0000000000401000 T main\n\
                  0000000000402000 t _ZN12accord_guest3tee9simulated4open17h0123456789abcdefE\n\
                  0000000000403000 t _ZN12accord_guest3tee12SimulatedSnp6report17h0123456789abcdefE\n\
                  0000000000404000 t _ZN12accord_guest3tee9sev_guest3new17h0123456789abcdefE\n\
                                   U getrandom\n";
        assert_eq!(
            simulated_symbols(nm),
            vec![
                "_ZN12accord_guest3tee9simulated4open17h0123456789abcdefE",
                "_ZN12accord_guest3tee12SimulatedSnp6report17h0123456789abcdefE",
            ]
        );
        assert!(simulated_symbols("0000000000401000 T main\n").is_empty());
    }

    #[test]
    fn the_initramfs_is_reproducible() {
        let (a, b) = (build_fake(), build_fake());
        assert_eq!(a, b);
        // gzip header: magic, deflate, no flags (no name), mtime 0.
        assert_eq!(&a[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn the_cpio_reads_back() {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&build_fake()[..]),
            &mut raw,
        )
        .unwrap();
        let entries = read_cpio(&raw).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        let console = entries.iter().find(|e| e.0 == "dev/console").unwrap();
        assert_eq!((console.1, console.2, console.3), (S_IFCHR | 0o600, 5, 1));
        let init = entries.iter().find(|e| e.0 == "init").unwrap();
        assert_eq!(init.1, S_IFREG | 0o755);
        assert_eq!(init.4, b"\x7fELF fake agent");
        let order = entries.iter().find(|e| e.0 == "modules/order").unwrap();
        assert!(String::from_utf8_lossy(&order.4).starts_with("failover.ko.xz\n"));

        // The system's cpio agrees, when there is one.
        let dir = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = dir.join("a.cpio");
        std::fs::write(&archive, &raw).unwrap();
        if let Ok(output) = Command::new("cpio")
            .args(["-it", "--quiet", "-F"])
            .arg(&archive)
            .output()
        {
            assert!(output.status.success(), "{output:?}");
            let listed = String::from_utf8_lossy(&output.stdout);
            assert_eq!(listed.lines().collect::<Vec<_>>(), names);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
