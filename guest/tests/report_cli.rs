//! The `accord-guest report` binary against the emulated configfs-tsm tree.

mod common;

use std::process::{Command, Output};

use accord_guest::tee::cert_table;
use common::{Behaviour, Emulator};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord-guest"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn writes_report_and_certificates_into_a_new_directory() {
    let table = cert_table::build(&[
        (cert_table::VCEK_GUID, &[0x30, 0x03, 1, 2, 3]),
        (cert_table::ASK_GUID, &[0x30, 0x01, 4]),
        (cert_table::ARK_GUID, &[0x30, 0x01, 5]),
    ]);
    let kernel = Emulator::start(Behaviour::snp(Some(table)));
    let out = common::temp_dir("out").join("nested/evidence");
    let output = run(&[
        "report",
        "--report-data",
        "c0ffee",
        "--tee",
        "configfs-tsm",
        "--configfs-root",
        kernel.root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("INSECURE"));

    let report = std::fs::read(out.join("report.bin")).unwrap();
    assert_eq!(report.len(), 1184);
    let mut expected = [0u8; 64];
    expected[..3].copy_from_slice(&[0xc0, 0xff, 0xee]);
    assert_eq!(&report[0x50..0x90], &expected[..]);
    for (name, der) in [
        ("vcek.pem", &[0x30, 0x03, 1, 2, 3][..]),
        ("ask.pem", &[0x30, 0x01, 4][..]),
        ("ark.pem", &[0x30, 0x01, 5][..]),
    ] {
        let text = std::fs::read(out.join(name)).unwrap();
        assert!(text.starts_with(b"-----BEGIN CERTIFICATE-----\n"), "{name}");
        let decoded = accord_core::x509::pem::der_or_pem(&text, "CERTIFICATE").unwrap();
        assert_eq!(decoded, der, "{name}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ark.pem", "ask.pem", "report.bin", "vcek.pem"],
        "no temporary files left"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("report.bin") && stdout.contains("vcek.pem"),
        "{stdout}"
    );
}

#[test]
fn detects_tdx_and_writes_the_quote() {
    let kernel = Emulator::start(Behaviour::tdx());
    let out = common::temp_dir("out-tdx");
    let output = run(&[
        "report",
        "--report-data",
        &"11".repeat(64),
        "--configfs-root",
        kernel.root.to_str().unwrap(),
        "--sev-guest-device",
        "/nonexistent/sev-guest",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let quote = std::fs::read(out.join("quote.bin")).unwrap();
    assert_eq!(&quote[568..632], &[0x11; 64][..]);
    assert!(!out.join("report.bin").exists());
}

#[test]
fn prints_json_and_a_summary() {
    let kernel = Emulator::start(Behaviour::snp(None));
    let root = kernel.root.to_str().unwrap();
    let output = run(&[
        "report",
        "--report-data",
        "ab",
        "--tee",
        "configfs-tsm",
        "--configfs-root",
        root,
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["kind"], "SEV-SNP");
    assert_eq!(json["provider"], "configfs-tsm");
    assert_eq!(json["insecure"], false);
    assert_eq!(json["report"].as_str().unwrap().len(), 2 * 1184);
    assert!(json["vcek"].is_null());

    let output = run(&[
        "report",
        "--report-data",
        "ab",
        "--tee",
        "configfs-tsm",
        "--configfs-root",
        root,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("kind:        SEV-SNP"), "{stdout}");
    assert!(stdout.contains("report (1184 bytes):"), "{stdout}");
}

#[test]
fn failures_are_one_line_with_exit_code_1() {
    let mut behaviour = Behaviour::snp(None);
    behaviour.provider = None;
    let kernel = Emulator::start(behaviour);
    let output = run(&[
        "report",
        "--report-data",
        "01",
        "--tee",
        "configfs-tsm",
        "--configfs-root",
        kernel.root.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: ") && text.contains("provider: missing"),
        "{text}"
    );

    let output = run(&[
        "report",
        "--report-data",
        "01",
        "--tee",
        "sev-guest",
        "--sev-guest-device",
        "/nonexistent/sev-guest",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("device missing: /nonexistent/sev-guest"));
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["report", "--report-data", &"00".repeat(65)][..],
        &["report", "--report-data", ""],
        &["report", "--report-data", "0g"],
        &["report", "--report-data", "00", "--tee", "sgx"],
        &[
            "report",
            "--report-data",
            "00",
            "--tee",
            "configfs-tsm",
            "--product",
            "turin",
        ],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// The test-data folder: `$ACCORD_TESTDATA`, else `../shared/testdata`
/// beside the repository (as in core's vector tests).
fn testdata(relative: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("ACCORD_TESTDATA").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
        std::path::PathBuf::from,
    );
    match std::fs::read(dir.join(relative)) {
        Ok(bytes) => Some(bytes),
        Err(err) if std::env::var("ACCORD_REQUIRE_VECTORS").is_ok_and(|v| v == "1") => {
            panic!("ACCORD_REQUIRE_VECTORS=1 but {relative} is unreadable: {err}")
        }
        Err(err) => {
            eprintln!("SKIPPED: test vector {relative} unavailable ({err}); set ACCORD_TESTDATA");
            None
        }
    }
}

/// A real Genoa report and its certificates, handed out by the emulated
/// kernel, come out of `accord-guest report --out` in files that verify
/// against AMD's genuine roots.
#[test]
fn real_snp_evidence_written_to_disk_verifies() {
    use accord_core::evidence::snp;
    use accord_core::x509::pem::der_or_pem;

    let (Some(report), Some(vcek), Some(ask), Some(ark)) = (
        testdata("snp/genoa-report-1.bin"),
        testdata("snp/genoa-vcek-1.pem"),
        testdata("snp/genoa-ask.pem"),
        testdata("snp/genoa-ark.pem"),
    ) else {
        return;
    };
    let vcek = der_or_pem(&vcek, "CERTIFICATE").unwrap();
    let ask = der_or_pem(&ask, "CERTIFICATE").unwrap();
    let ark = der_or_pem(&ark, "CERTIFICATE").unwrap();
    let report_data = snp::AttestationReport::parse(&report)
        .unwrap()
        .report_data
        .to_vec();
    let table = cert_table::build(&[
        (cert_table::VCEK_GUID, &vcek),
        (cert_table::ASK_GUID, &ask),
        (cert_table::ARK_GUID, &ark),
    ]);
    let mut behaviour = Behaviour::snp(Some(table));
    let chip_report = report.clone();
    // A real chip signs whatever inblob asks for; a recorded report only
    // answers its own report data.
    behaviour.outblob = std::sync::Arc::new(move |inblob, _| {
        if inblob == &chip_report[0x50..0x90] {
            chip_report.clone()
        } else {
            common::snp_report(inblob, 0)
        }
    });
    let kernel = Emulator::start(behaviour);
    let out = common::temp_dir("out-real");
    let output = run(&[
        "report",
        "--report-data",
        &accord_core::hex::encode(&report_data),
        "--tee",
        "configfs-tsm",
        "--configfs-root",
        kernel.root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let written = std::fs::read(out.join("report.bin")).unwrap();
    assert_eq!(written, report);
    let leaf = std::fs::read(out.join("vcek.pem")).unwrap();
    let claims = snp::verify(
        &written,
        &snp::Certs { leaf: &leaf },
        None,
        &snp::TrustRoots::genuine(),
        None,
        accord_core::time::UnixTime::parse_rfc3339("2026-03-01T00:00:00Z").unwrap(),
        accord_core::crypto::default_provider(),
    )
    .unwrap();
    assert_eq!(claims.report_data.0.to_vec(), report_data);
    assert_eq!(
        der_or_pem(&std::fs::read(out.join("ask.pem")).unwrap(), "CERTIFICATE").unwrap(),
        ask
    );
}
