//! `accord evidence verify` end to end: the real binary on the real vectors
//! in `../shared/testdata` (or `$ACCORD_TESTDATA`). With
//! `ACCORD_REQUIRE_VECTORS=1` a missing vector fails the test.

use std::path::PathBuf;
use std::process::{Command, Output};

fn testdata() -> Option<PathBuf> {
    accord_core::internal::testdata_dir()
}

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .output()
        .unwrap()
}

fn path(dir: &std::path::Path, relative: &str) -> String {
    dir.join(relative).display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn valid_snp_report_prints_claims_as_json() {
    let Some(t) = testdata() else { return };
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/turin-report-1.bin"),
        "--vcek",
        &path(&t, "snp/turin-vcek-1.pem"),
        "--at",
        "2026-03-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["version"], 5);
    assert_eq!(claims["product"], "Turin");
    assert_eq!(
        claims["host_data"],
        "b3452a0ed30f1010bd32740dd1610bc63296ceb0f882f2cac3a3152d651fe7e4"
    );
}

#[test]
fn refused_snp_evidence_exits_1_with_one_line_reason() {
    let Some(t) = testdata() else { return };
    // Debug guest under the default policy.
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-report-1.bin"),
        "--vcek",
        &path(&t, "snp/milan-vcek-1.der"),
        "--at",
        "2026-03-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("debug"), "{}", stderr(&out));
    // ... accepted with --allow-debug.
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-report-1.bin"),
        "--vcek",
        &path(&t, "snp/milan-vcek-1.der"),
        "--at",
        "2026-03-01T00:00:00Z",
        "--allow-debug",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another chip's VCEK.
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-report-2.bin"),
        "--vcek",
        &path(&t, "snp/milan-vcek-1.der"),
        "--at",
        "2026-03-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("INVALID: SEV-SNP:"),
        "{}",
        stderr(&out)
    );
    // An expired VLEK.
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-vlek-report-1.bin"),
        "--vcek",
        &path(&t, "snp/milan-vlek-1.der"),
        "--at",
        "2026-03-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("VLEK"), "{}", stderr(&out));
}

#[test]
fn custom_trust_root_warns_and_wrong_root_is_refused() {
    let Some(t) = testdata() else { return };
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-report-2.bin"),
        "--vcek",
        &path(&t, "snp/milan-vcek-2.der"),
        "--at",
        "2026-03-01T00:00:00Z",
        "--trust-root",
        &path(&t, "snp/genoa-ark.pem"),
        "--ask",
        &path(&t, "snp/genoa-ask.pem"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("WARNING"), "{}", stderr(&out));
    // The genuine Milan roots passed explicitly work (and still warn).
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        &path(&t, "snp/milan-report-2.bin"),
        "--vcek",
        &path(&t, "snp/milan-vcek-2.der"),
        "--at",
        "2026-03-01T00:00:00Z",
        "--trust-root",
        &path(&t, "snp/milan-ark.pem"),
        "--ask",
        &path(&t, "snp/milan-ask.pem"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("WARNING"));
}

#[test]
fn reference_values_decide() {
    let Some(t) = testdata() else { return };
    let dir = std::env::temp_dir().join(format!("accord-cli-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    let bad = dir.join("bad.json");
    let measurement = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
    std::fs::write(
        &good,
        format!(r#"{{"snp":[{{"TrustedMeasurement":"{measurement}","VMPL":0}}]}}"#),
    )
    .unwrap();
    std::fs::write(
        &bad,
        format!(r#"{{"TrustedMeasurement":"{}","VMPL":0}}"#, "00".repeat(48)),
    )
    .unwrap();
    let args = |reference: &PathBuf| {
        accord(&[
            "evidence",
            "verify",
            "--snp",
            &path(&t, "snp/milan-report-2.bin"),
            "--vcek",
            &path(&t, "snp/milan-vcek-2.der"),
            "--at",
            "2026-03-01T00:00:00Z",
            "--reference",
            &reference.display().to_string(),
        ])
    };
    let out = args(&good);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = args(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(measurement),
        "names the actual value: {}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tdx_quotes_verify_and_unsupported_tcb_is_refused() {
    let Some(t) = testdata() else { return };
    let out = accord(&[
        "evidence",
        "verify",
        "--tdx",
        &path(&t, "tdx/tdx-quote-v5-1.bin"),
        "--collateral",
        &path(&t, "tdx/tdx-collateral-3.json"),
        "--at",
        "2026-03-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["tcb_status"], "UpToDate");
    let out = accord(&[
        "evidence",
        "verify",
        "--tdx",
        &path(&t, "tdx/tdx-quote-v5-2-tcb-unsupported.bin"),
        "--collateral",
        &path(&t, "tdx/tdx-collateral-3.json"),
        "--at",
        "2026-03-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TCB"), "{}", stderr(&out));
}

#[test]
fn unusable_input_exits_2() {
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        "/nonexistent/report.bin",
        "--vcek",
        "/nonexistent/v.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/report.bin"),
        "{}",
        stderr(&out)
    );
    let out = accord(&[
        "evidence",
        "verify",
        "--snp",
        "/dev/null",
        "--at",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--at yesterday"), "{}", stderr(&out));
    let out = accord(&["evidence", "verify"]);
    assert_eq!(out.status.code(), Some(2));
}
