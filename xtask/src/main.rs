//! `cargo xtask`: repository tasks that cargo alone cannot do.
//!
//! ```text
//! cargo xtask tidy                 repository rules (no std in core, module docs)
//! cargo xtask fuzz-smoke [SECS]    build every fuzz target with nightly and run each SECS seconds (default 60)
//! cargo xtask ci                   the whole CI sequence, as .ci/run runs it
//! cargo xtask bench-table          criterion medians and target ratios (after cargo bench)
//! cargo xtask bench-attest         the coordinator under load: throughput, latency, CPU, RSS
//! cargo xtask bench-exhaustion     honest attestations with and without 1,024 hostile user-API connections
//! cargo xtask measure ...          the SEV-SNP launch digest of a QEMU guest (OVMF, vCPUs, direct boot)
//! cargo xtask bench-ha             three replicas: round-robin load, restart to Ready, open-loop p99
//! cargo xtask image                the guest image (kernel, initramfs, command line) from image/
//! cargo xtask qemu-test            boot the image under QEMU and drive a deployment against it
//! cargo xtask oci                  the agent and shim container images (OCI layouts, images.json)
//! ```

mod bench;
mod bench_attest;
mod bench_exhaustion;
mod bench_ha;
mod bench_proc;
mod bench_tee;
mod container_test;
mod fuzz;
mod image;
mod image_repro;
mod kube_pod;
mod loopback_registry;
mod measure;
mod oci;
mod oci_layout;
mod oci_push;
mod qemu_test;
mod tidy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => tidy::run_all(),
        Some("fuzz-smoke") => {
            let seconds = match args.get(1) {
                Some(text) => text
                    .parse()
                    .with_context(|| format!("fuzz-smoke: `{text}` is not a number of seconds"))?,
                None => 60,
            };
            fuzz::smoke(seconds)
        }
        Some("ci") => ci(),
        Some("bench-table") => bench::table(),
        Some("bench-attest") => bench_attest::run_all(args.get(1..).unwrap_or_default()),
        Some("bench-exhaustion") => bench_exhaustion::run_all(args.get(1..).unwrap_or_default()),
        Some("measure") => measure::run(args.get(1..).unwrap_or_default()),
        Some("bench-ha") => bench_ha::run_all(args.get(1..).unwrap_or_default()),
        Some("image") => match args.get(1..).unwrap_or_default() {
            [] => image::build().map(|_| ()),
            [flag] if flag == "--check-reproducible" => image_repro::run(),
            other => bail!("image: unknown arguments {other:?} (only --check-reproducible)"),
        },
        Some("qemu-test") => qemu_test::run(args.get(1..).unwrap_or_default()),
        Some("oci") => oci::run(args.get(1..).unwrap_or_default()),
        Some("container-test") => container_test::run(args.get(1..).unwrap_or_default()),
        Some("-h" | "--help") | None => {
            print!("{}", HELP);
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

const HELP: &str = "\
cargo xtask TASK

Tasks:
  tidy                 repository rules: accord-core builds without std and nothing in its
                       dependency graph enables std; every module has //! docs
  fuzz-smoke [SECS]    build the cargo-fuzz targets (nightly) and run each for SECS seconds
                       (default 60) on the committed corpus
  ci                   fmt check, clippy -D warnings, the test command, fuzz smoke runs
  bench-table          print criterion medians and the target ratios for BENCHMARKS.md
                       (run `cargo bench -p accord-core --bench verify` first)
  bench-attest [--duration S] [--certs N] [--max-drive-secs S] [--tee NAME]
                       the coordinator under load (release build, simulated TEE, loopback):
                       `accord-demo bench attest` at concurrency 1, 16, 64 (S seconds each, default
                       10), the coordinator's CPU per attestation and RSS, the cryptographic
                       floor, then RSS after N issued certificates (default 100000, at most
                       --max-drive-secs, default 600); prints markdown for BENCHMARKS.md.
                       --tee insecure-simulated-tdx: coordinator and workloads on the simulated
                       TDX (default insecure-simulated, the simulated SEV-SNP chip)
  bench-attest --tdx-vs-snp [--pairs N] [--duration S] [--concurrency N]
                       the coordinator's CPU per attestation on the simulated TDX next to the
                       simulated SEV-SNP chip: one coordinator on each, `accord-demo bench attest`
                       phases interleaved SNP, TDX, … (N pairs, default 5; S seconds each,
                       default 10; concurrency default 16); each pair's TDX ÷ SNP, min and
                       median, and the target (≤ 1.2); prints markdown for BENCHMARKS.md
  bench-exhaustion [--duration S] [--connections N]
                       honest attestations under the memory-exhaustion attack (release build,
                       simulated TEE, loopback): `accord-demo bench attest` closed loop at concurrency 16
                       and open loop at 100/s, ≤ 32 in flight (S seconds each, default 15), alone and while
                       `accord-demo bench exhaust` holds N hostile user-API connections (default 1024,
                       from 64 loopback source addresses) continuously streaming maximum-size
                       frames, half of them well-formed SetManifests; the
                       coordinator's CPU and largest RSS, ratios attack / none; prints markdown
  measure --ovmf FILE --vcpus N --vcpu-type TYPE [--kernel FILE [--initrd FILE] [--append STRING]] [--json]
                       the AMD SEV-SNP launch digest (MEASUREMENT) of a QEMU guest, as hex
                       (96 characters, for ReferenceValues.snp[].TrustedMeasurement); --json adds
                       the inputs' SHA-256s; matches `sev-snp-measure --mode snp`
  bench-ha [--duration S] [--restarts N]
                       three replicas (accord-shim + accord-guest each, release build, simulated
                       TEE, loopback): `accord-demo bench attest` round robin over the three vs one at
                       concurrency 16 and 64 (S seconds each, default 10) with each agent's CPU,
                       open-loop p99 at 64 in flight for several --rate values, and N restarts
                       (default 20) timed from spawn to Ready; prints markdown for BENCHMARKS.md
  image [--check-reproducible]
                       the guest image from image/recipe.toml: static accord-guest (target/image),
                       the kernel package (apt-get download, cached), a reproducible initramfs;
                       writes target/image/out/ and prints the SHA-256 of agent, kernel, initramfs,
                       cmdline; the agent has no simulated chip (its symbols are checked, and it
                       must refuse --tee insecure-simulated); --check-reproducible builds it again from a copy of the sources at
                       another path (cold, ~3.5 min) and fails unless the hashes are the same
  qemu-test [--accel tcg|kvm] [--timeout SECS] [--attestations N] [--host-tools DIR]
                       build the TEST image (target/image/test-out/, hashes printed as test-*: the
                       agent with the INSECURE simulated chip) and boot it under QEMU (TCG by default) with accord-shim on the host,
                       set a manifest, attest a workload, verify; shut the VM down (Ctrl-Alt-Del),
                       boot it again, recover with `accord recover`, verify again; prints boot
                       timings and the agent's RSS (N attestations from the host first: RSS after)
  oci [--out DIR] [--push REGISTRY] [--insecure-simulation]
                       the container images, as OCI image layouts, without Docker: accord-agent (the
                       static production accord-guest of `image`, with its checks; coordinator and
                       initializer) and accord-shim (accord-shim, built static the same way); one
                       reproducible layer each (the binary, /etc/passwd), user 65532; writes
                       DIR/NAME/ and DIR/images.json (default DIR target/oci) and prints each
                       image's digest and compressed/uncompressed size. --push copies them to
                       REGISTRY (HOST[:PORT][/PREFIX]; plain HTTP only to loopback, HTTPS otherwise;
                       ACCORD_REGISTRY_USER/_PASSWORD for basic auth) by digest, and images.json's
                       references become REGISTRY/NAME@sha256:…. --insecure-simulation: the TEST
                       images instead (accord-agent-insecure-simulation, the agent with the INSECURE
                       simulated chip, annotated dev.accord.insecure-simulation=true, and
                       accord-test-mesh-echo, the end-to-end test's mTLS workload; default DIR
                       target/oci-insecure-simulation)
  container-test [--host-tools DIR] [--keep]
                       the end-to-end run in real containers: `oci --insecure-simulation --push`
                       to a loopback docker-registry, `accord generate --coordinator
                       --insecure-simulation --images images.json` on the example's web and db
                       (the mesh test workload as their image), every generated pod run with
                       `podman run` (runtime runc) as derived from the YAML, `accord set` and
                       `verify`, web and db over mutual TLS, a restart into Recovery and `accord
                       recover`; tears everything down and prints sizes and timings. Needs
                       podman, runc, docker-registry and root. --host-tools DIR: take `accord`
                       from DIR (CI: target/debug); --keep: leave the containers running
";

/// The workspace root (the parent of this crate).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Builds the binaries of `packages` (`cargo build --bins`, the release
/// profile or the dev one; `accord-guest` with its `insecure-simulation`
/// feature); returns the directory they are in.
pub(crate) fn build_bins(release: bool, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let mut args = vec!["build", "--bins"];
    if release {
        args.push("--release");
    }
    for package in packages {
        args.extend(["-p", package]);
    }
    // Every caller runs the agent on the INSECURE simulated chip. (A
    // plain feature name applies to each selected package that has it;
    // `accord-guest/insecure-simulation` would name a dependency.)
    if packages.contains(&"accord-guest") {
        args.extend(["--features", "insecure-simulation"]);
    }
    run("cargo", &args)?;
    Ok(workspace_root()
        .join("target")
        .join(if release { "release" } else { "debug" }))
}

/// Runs a command in the workspace root, failing on a non-zero exit.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not start `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Runs `program OPTIONS ARGS` in `dir`, failing on a non-zero exit.
pub(crate) fn run_in(
    program: &str,
    options: &[String],
    args: &[&str],
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    eprintln!("$ {program} {} {}", options.join(" "), args.join(" "));
    let status = Command::new(program)
        .args(options)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not start `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])?;
    fuzz::smoke(60)
}
