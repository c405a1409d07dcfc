//! `cargo xtask measure` against the reference implementation, the
//! `sev-snp-measure` Python package, on Debian's OVMF.fd, on synthetic
//! firmware with a kernel-hashes section (direct boot), and on the SEV
//! hashes table of this project's own guest image (`target/image/out`).
//!
//! Inputs (installed by `.ci/run`): the OVMF image at `$ACCORD_MEASURE_OVMF`
//! (default `target/measure-inputs/ovmf/usr/share/ovmf/OVMF.fd`) and a
//! Python with `sevsnpmeasure` importable at `$ACCORD_MEASURE_PYTHON`
//! (default `target/measure-inputs/venv/bin/python`). With
//! `ACCORD_REQUIRE_VECTORS=1` (set by CI) a missing input fails the test;
//! otherwise the test prints SKIPPED and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use accord_core::hex;
use accord_core::measure::{KernelHashes, ovmf};
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn require() -> bool {
    std::env::var("ACCORD_REQUIRE_VECTORS").is_ok_and(|v| v == "1")
}

fn skip_or_fail(what: &str) -> Option<()> {
    assert!(
        !require(),
        "ACCORD_REQUIRE_VECTORS=1 but {what} (.ci/run prepares every input of these tests)"
    );
    eprintln!("SKIPPED: {what}");
    None
}

/// The Python interpreter with `sevsnpmeasure`, or None (after SKIPPED).
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("ACCORD_MEASURE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/measure-inputs/venv/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import sevsnpmeasure"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(path)
    } else {
        skip_or_fail(&format!(
            "no Python with sevsnpmeasure at {} (set ACCORD_MEASURE_PYTHON)",
            path.display()
        ))?;
        None
    }
}

/// Debian's OVMF.fd, or None (after SKIPPED).
fn debian_ovmf() -> Option<PathBuf> {
    let path = std::env::var_os("ACCORD_MEASURE_OVMF")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/measure-inputs/ovmf/usr/share/ovmf/OVMF.fd"));
    if path.is_file() {
        Some(path)
    } else {
        skip_or_fail(&format!(
            "no OVMF image at {} (set ACCORD_MEASURE_OVMF)",
            path.display()
        ))?;
        None
    }
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("measure")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn reference(python: &Path, args: &[&str]) -> Output {
    Command::new(python)
        .args(["-m", "sevsnpmeasure.cli", "--mode", "snp"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout_ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("measure-{name}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Both tools on the same arguments; returns the digest they agree on.
fn compare(python: &Path, args: &[&str]) -> String {
    let ours = stdout_ok(&xtask(args), "cargo xtask measure");
    let theirs = stdout_ok(&reference(python, args), "sev-snp-measure");
    assert_eq!(ours, theirs, "digests differ for {args:?}");
    assert_eq!(ours.len(), 96);
    ours
}

#[test]
fn debian_ovmf_matches_sev_snp_measure() {
    let (Some(python), Some(ovmf)) = (python(), debian_ovmf()) else {
        return;
    };
    let ovmf = ovmf.to_str().unwrap();
    for vcpu_type in [
        "EPYC-v4",
        "EPYC-Rome",
        "EPYC-Milan",
        "EPYC-Genoa",
        "EPYC-Turin",
    ] {
        for vcpus in ["1", "2", "4", "64"] {
            let digest = compare(
                &python,
                &["--ovmf", ovmf, "--vcpus", vcpus, "--vcpu-type", vcpu_type],
            );
            eprintln!("{vcpu_type} x{vcpus}: {digest}");
        }
    }

    // --json: the same digest, and the OVMF image's SHA-256.
    let plain = stdout_ok(
        &xtask(&["--ovmf", ovmf, "--vcpus", "2", "--vcpu-type", "EPYC-Milan"]),
        "measure",
    );
    let json = stdout_ok(
        &xtask(&[
            "--ovmf",
            ovmf,
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Milan",
            "--json",
        ]),
        "measure --json",
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["digest"], plain.as_str());
    // Usable as is as a manifest's TrustedMeasurement.
    let values: accord_core::evidence::snp::SnpReferenceValues =
        serde_json::from_value(serde_json::json!({ "TrustedMeasurement": plain })).unwrap();
    let measured = values.trusted_measurement.unwrap();
    assert_eq!(hex::encode(&measured.0), plain);
    let expected = hex::encode(&Sha256::digest(std::fs::read(ovmf).unwrap()));
    assert_eq!(json["inputs"]["ovmf"]["sha256"], expected.as_str());

    // Debian's build has no SNP_KERNEL_HASHES section: both refuse direct boot.
    let kernel = tmp("debian-kernel", b"not really a kernel");
    let kernel = kernel.to_str().unwrap();
    let args = [
        "--ovmf",
        ovmf,
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--kernel",
        kernel,
    ];
    let ours = xtask(&args);
    assert!(!ours.status.success());
    assert!(
        stderr(&ours).contains("SNP_KERNEL_HASHES"),
        "{}",
        stderr(&ours)
    );
    assert!(!reference(&python, &args).status.success());
}

/// The guest image built by `cargo xtask image` (`$ACCORD_MEASURE_IMAGE`,
/// default `target/image/out`): kernel, initramfs and command line, or
/// None (after SKIPPED; `.ci/run` builds the image before the tests).
fn built_image() -> Option<(PathBuf, PathBuf, String)> {
    let dir = std::env::var_os("ACCORD_MEASURE_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/image/out"));
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initramfs.cpio.gz"));
    match std::fs::read_to_string(dir.join("cmdline")) {
        Ok(cmdline) if kernel.is_file() && initrd.is_file() => {
            Some((kernel, initrd, cmdline.trim_end_matches('\n').to_string()))
        }
        _ => {
            skip_or_fail(&format!(
                "no guest image in {} (run `cargo xtask image`, or set ACCORD_MEASURE_IMAGE)",
                dir.display()
            ))?;
            None
        }
    }
}

/// The SEV hashes table of this project's own image (what a direct-boot
/// launch of it measures) equals the one `sev-snp-measure` builds.
#[test]
fn the_images_hashes_table_matches_sev_hashes() {
    let Some(python) = python() else {
        return;
    };
    let Some((kernel, initrd, cmdline)) = built_image() else {
        return;
    };
    check_hashes_table(&python, &kernel, Some(&initrd), Some(&cmdline));
}

/// Our table and page for (kernel, initrd, append) against `SevHashes`.
fn check_hashes_table(python: &Path, kernel: &Path, initrd: Option<&Path>, append: Option<&str>) {
    let script = "import sys\nfrom sevsnpmeasure.sev_hashes import SevHashes\n\
                  h = SevHashes(sys.argv[1], sys.argv[2] or None, sys.argv[3] if sys.argv[4] == '1' else None)\n\
                  print(h.construct_table().hex())\n\
                  print(h.construct_page(0xc00).hex())";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(kernel)
        .arg(initrd.unwrap_or(Path::new("")))
        .arg(append.unwrap_or(""))
        .arg(if append.is_some() { "1" } else { "0" })
        .output()
        .unwrap();
    let text = stdout_ok(&out, "sev_hashes");
    let mut lines = text.lines();
    let hashes = KernelHashes::new(
        &std::fs::read(kernel).unwrap(),
        initrd.map(|p| std::fs::read(p).unwrap()).as_deref(),
        append,
    );
    assert_eq!(
        hex::encode(&hashes.table()),
        lines.next().unwrap(),
        "{kernel:?}"
    );
    let page = accord_core::measure::hashes_page(&hashes, 0x80_fc00).unwrap();
    assert_eq!(hex::encode(&page), lines.next().unwrap(), "{kernel:?}");
}

#[test]
fn hashes_table_matches_sev_hashes() {
    let Some(python) = python() else {
        return;
    };
    let kernel: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    let initrd: Vec<u8> = (0..3_000u32).map(|i| (i ^ 0x5a) as u8).collect();
    let mut cases: Vec<(PathBuf, Option<PathBuf>, Option<&str>)> = vec![
        (
            tmp("k1", &kernel),
            Some(tmp("i1", &initrd)),
            Some("console=ttyS0 root=/dev/vda1"),
        ),
        (tmp("k2", b""), None, None),
        (tmp("k3", &kernel), None, Some("unicode: \u{e9}\u{4e2d}")),
        (tmp("k4", b"x"), Some(tmp("i4", b"")), Some("")),
    ];
    if let Some(vmlinuz) = std::fs::read_dir("/boot").ok().and_then(|dir| {
        dir.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .filter(|p| std::fs::read(p).is_ok())
    }) {
        eprintln!("also hashing {}", vmlinuz.display());
        cases.push((vmlinuz, None, Some("quiet")));
    }
    for (kernel, initrd, append) in cases {
        check_hashes_table(&python, &kernel, initrd.as_deref(), append);
    }
}

fn entry(out: &mut Vec<u8>, guid: accord_core::measure::Guid, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(&u16::try_from(data.len() + 18).unwrap().to_le_bytes());
    out.extend_from_slice(&guid.0);
}

/// A synthetic AmdSev-style image: 64 KiB, metadata with a kernel-hashes
/// section, the hash table GPA inside that section's page.
fn synthetic_amdsev_ovmf() -> Vec<u8> {
    let len = 0x10000;
    let mut image: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut table = Vec::new();
    entry(
        &mut table,
        ovmf::SEV_ES_RESET_BLOCK_GUID,
        &0x80_b004u32.to_le_bytes(),
    );
    let mut hash_entry = 0x80_fc00u32.to_le_bytes().to_vec();
    hash_entry.extend_from_slice(&0x400u32.to_le_bytes());
    entry(&mut table, ovmf::SEV_HASH_TABLE_RV_GUID, &hash_entry);
    entry(
        &mut table,
        ovmf::SEV_METADATA_GUID,
        &0x2000u32.to_le_bytes(),
    );
    let sections: [(u32, u32, u32); 6] = [
        (0x80_0000, 0x9000, 1),
        (0x80_a000, 0x3000, 1),
        (0x80_d000, 0x1000, 2),
        (0x80_e000, 0x1000, 3),
        (0x80_f000, 0x1000, 0x10),
        (0x81_0000, 0x10000, 1),
    ];
    let mut meta = b"ASEV".to_vec();
    meta.extend_from_slice(&(16 + 12 * sections.len() as u32).to_le_bytes());
    meta.extend_from_slice(&1u32.to_le_bytes());
    meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (gpa, size, kind) in sections {
        for word in [gpa, size, kind] {
            meta.extend_from_slice(&word.to_le_bytes());
        }
    }
    let start = len - 0x2000;
    image[start..start + meta.len()].copy_from_slice(&meta);
    let footer = len - 50;
    image[footer - table.len()..footer].copy_from_slice(&table);
    image[footer..footer + 2]
        .copy_from_slice(&u16::try_from(table.len() + 18).unwrap().to_le_bytes());
    image[footer + 2..footer + 18].copy_from_slice(&ovmf::FOOTER_GUID.0);
    image
}

#[test]
fn direct_boot_matches_sev_snp_measure() {
    let Some(python) = python() else {
        return;
    };
    let image = tmp("amdsev.fd", &synthetic_amdsev_ovmf());
    let image = image.to_str().unwrap();
    let kernel = tmp("direct-kernel", &[0x4d, 0x5a, 1, 2, 3, 4]);
    let initrd = tmp("direct-initrd", b"070701 cpio");
    let (kernel, initrd) = (kernel.to_str().unwrap(), initrd.to_str().unwrap());
    let base = ["--ovmf", image, "--vcpus", "4", "--vcpu-type", "EPYC-Genoa"];
    let without = compare(&python, &base);
    let with_all = compare(
        &python,
        &[
            &base[..],
            &[
                "--kernel",
                kernel,
                "--initrd",
                initrd,
                "--append",
                "console=ttyS0",
            ],
        ]
        .concat(),
    );
    let kernel_only = compare(&python, &[&base[..], &["--kernel", kernel]].concat());
    eprintln!("synthetic: {without}\n  direct boot: {with_all}\n  kernel only: {kernel_only}");
    assert_ne!(without, with_all);
    assert_ne!(with_all, kernel_only);
}

#[test]
fn malformed_inputs_are_refused_without_panic() {
    let image = synthetic_amdsev_ovmf();
    let check = |name: &str, bytes: &[u8], expect: &str| {
        let path = tmp(name, bytes);
        let out = xtask(&[
            "--ovmf",
            path.to_str().unwrap(),
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
        ]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(err.contains(expect), "{name}: expected `{expect}` in {err}");
    };
    check("truncated.fd", &image[..0x8000], "no GUIDed footer table");
    check("unaligned.fd", &image[..image.len() - 1], "4096-byte pages");
    check("empty.fd", b"", "4096-byte pages");
    let mut no_metadata = image.clone();
    let at = no_metadata.len() - 0x2000;
    no_metadata[at..at + 4].copy_from_slice(b"XXXX");
    check("bad-signature.fd", &no_metadata, "signature ASEV");
    check("zeros.fd", &vec![0; 0x4000], "no GUIDed footer table");

    let path = tmp("ok.fd", &image);
    let path = path.to_str().unwrap();
    let out = xtask(&["--ovmf", path, "--vcpus", "1", "--vcpu-type", "EPYC-Nope"]);
    assert!(
        stderr(&out).contains("unknown --vcpu-type `EPYC-Nope`"),
        "{}",
        stderr(&out)
    );
    let out = xtask(&["--ovmf", path, "--vcpus", "0", "--vcpu-type", "EPYC"]);
    assert!(
        stderr(&out).contains("--vcpus must be at least 1"),
        "{}",
        stderr(&out)
    );
    let out = xtask(&[
        "--ovmf",
        path,
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC",
        "--append",
        "x",
    ]);
    assert!(stderr(&out).contains("need --kernel"), "{}", stderr(&out));
    let out = xtask(&["--vcpus", "1", "--vcpu-type", "EPYC"]);
    assert!(
        stderr(&out).contains("--ovmf is required"),
        "{}",
        stderr(&out)
    );
}
