//! The connection options of `accord set`, `verify` and `get-manifests`
//! come from one flattened struct (`net::CoordinatorOptions`); people
//! script against them, so their `--help` and `-h` texts must stay byte
//! for byte what they were before (`tests/golden/`, captured from the
//! binary before the refactoring; options may be added, and the golden
//! files then show each addition in review: `accord set --reshare`,
//! `--insecure-simulation` on all three, and the global `-v`). `accord recover --help` explains
//! the k-of-n process. `accord --help` lists no demo and no benchmark
//! (they are `accord-demo`'s).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_accord");

fn help(command: &str, flag: &str) -> String {
    let output = Command::new(BIN).args([command, flag]).output().unwrap();
    assert!(output.status.success(), "{command} {flag}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn set_verify_get_manifests_help_is_unchanged() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for command in ["set", "verify", "get-manifests"] {
        for (flag, suffix) in [("--help", "help"), ("-h", "h")] {
            let want =
                std::fs::read_to_string(golden.join(format!("{command}.{suffix}.txt"))).unwrap();
            assert_eq!(help(command, flag), want, "accord {command} {flag}");
        }
    }
}

#[test]
fn recover_help_explains_the_process() {
    let long = help("recover", "--help");
    for needle in [
        "k-of-n",
        "Each seed-share owner runs `accord recover` once",
        "--seedshare-key <FILE>",
        "--seed-shares <FILE>",
        "--force",
        "--no-trust-state",
        "signed by the deployment's history key",
        "still rebuild the seed offline",
        "rotates the mesh CA",
        "share accepted (have/need)",
        "-c, --coordinator <HOST:PORT>",
        "--timeout <SECS>",
        "--insecure-simulation",
        "refused before anything is sent",
    ] {
        assert!(long.contains(needle), "{needle:?} missing from:\n{long}");
    }
    let overview = Command::new(BIN).arg("--help").output().unwrap();
    let overview = String::from_utf8(overview.stdout).unwrap();
    assert!(overview.contains("recover"), "{overview}");
}

/// The demo, its replicas and the benchmarks are `accord-demo`'s: the
/// user's `accord` neither lists nor accepts them.
#[test]
fn accord_has_no_demo_and_no_bench() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let overview = String::from_utf8(output.stdout).unwrap();
    for command in ["set", "verify", "recover"] {
        assert!(overview.contains(command), "{command}: {overview}");
    }
    for gone in ["demo", "bench", "INSECURE"] {
        assert!(!overview.contains(gone), "{gone} listed:\n{overview}");
    }
    for gone in ["demo", "demo-replica", "bench"] {
        let output = Command::new(BIN).arg(gone).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "accord {gone}");
    }
}

/// `accord evidence verify` fetches what is not given (issue 15): its help
/// names every fetch option and says that nothing fetched is trusted.
#[test]
fn evidence_verify_help_explains_fetching() {
    let output = Command::new(BIN)
        .args(["evidence", "verify", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let long = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--kds-url <URL>",
        "[default: https://kdsintf.amd.com]",
        "--pcs-url <URL>",
        "[default: https://api.trustedservices.intel.com]",
        "--collateral-proxy <URL>",
        "--collateral-ca <CERTS.pem>",
        "--tdx-trust-root <ROOT.der>",
        "--fetch-timeout <SECS>",
        "--cache <DIR>",
        "--offline",
        "--save-collateral <DIR>",
        "Nothing fetched is trusted",
        "exits 2",
    ] {
        assert!(long.contains(needle), "{needle:?} missing from:\n{long}");
    }
}
