//! `accord-guest reference-values`: the printed reference values accept the
//! simulated chip's evidence (and only with a root that is trusted
//! explicitly); other TEEs are refused.

use std::process::Command;

use accord_core::evidence::{self, ReferenceValues};
use accord_guest::atls::system_now;
use accord_guest::tee::{self, TeeOptions};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("accord-refvals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn printed_reference_values_accept_the_chips_evidence() {
    let chip = temp_dir("chip");
    let output = Command::new(env!("CARGO_BIN_EXE_accord-guest"))
        .args(["reference-values", "--tee", "insecure-simulated", "--state"])
        .arg(&chip)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("INSECURE SIMULATION"));
    let reference: ReferenceValues = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reference.snp.len(), 1);
    assert!(
        reference.snp[0].host_data.is_none(),
        "host data is left to Policies"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("InsecureTrustedRoot"), "{text}");

    // Evidence from the same chip, with some host data, verifies.
    let mut options = TeeOptions {
        simulated_state: chip.clone(),
        ..TeeOptions::default()
    };
    options.simulated.host_data = [7; 32];
    let provider = tee::open("insecure-simulated", &options).unwrap();
    let evidence = provider.evidence(&[1; 64]).unwrap();
    let claims = evidence::verify(
        &evidence,
        &reference,
        system_now(),
        accord_core::crypto::default_provider(),
    )
    .unwrap();
    assert_eq!(claims.policy_hash(), Some([7; 32]));

    // Another chip's evidence does not.
    let other = TeeOptions {
        simulated_state: temp_dir("other-chip"),
        ..TeeOptions::default()
    };
    let provider = tee::open("insecure-simulated", &other).unwrap();
    let evidence = provider.evidence(&[1; 64]).unwrap();
    assert!(
        evidence::verify(
            &evidence,
            &reference,
            system_now(),
            accord_core::crypto::default_provider()
        )
        .is_err()
    );
}

#[test]
fn only_for_the_simulated_chip() {
    let output = Command::new(env!("CARGO_BIN_EXE_accord-guest"))
        .args(["reference-values", "--tee", "sev-guest"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only for --tee insecure-simulated"));
    let output = Command::new(env!("CARGO_BIN_EXE_accord-guest"))
        .args(["reference-values", "--tee", "tdx"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("or insecure-simulated-tdx"));
    // Each simulated TEE refuses the other's flag.
    for (tee, flag, value) in [
        ("insecure-simulated-tdx", "--product", "turin"),
        ("insecure-simulated", "--tdx-quote-version", "5"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_accord-guest"))
            .args(["reference-values", "--tee", tee, flag, value, "--state"])
            .arg(temp_dir("misfit"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("{flag} applies only to")),
            "{output:?}"
        );
    }
}
