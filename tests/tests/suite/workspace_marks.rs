//! The CLI's freshness marks are per workspace, also when several
//! workspaces act in one process (the demo, this suite): a workspace that
//! has seen a newer CRL refuses the coordinator's older one, and another
//! workspace in the same process, which has not, accepts it and records
//! only what it saw itself.

use std::path::Path;

use accord_cli::net::Failure;
use accord_cli::verify_cmd;
use accord_core::crypto::default_provider;
use accord_core::evidence::collateral::{CollateralRequest, SnpSigner};
use accord_core::evidence::{ReferenceValues, ServiceVerifier};
use accord_core::time::UnixTime;
use accord_guest::atls::system_now as now;
use accord_guest::tee::simulated::{ATTACHED_CRL_NUMBER, CrlSpec, SimulatedSnp};

use crate::support::cli::Running;
use crate::support::{COORD_POLICY, config};

/// Whether a verifier raised to the marks in workspace `dir` still takes
/// `crl` (the chip's CRL as the coordinator attaches it).
fn marks_accept(dir: &Path, chip: &SimulatedSnp, crl: &[u8]) -> bool {
    let marks = std::fs::read(dir.join("collateral/freshness-marks")).unwrap();
    let mut verifier = ServiceVerifier::new().with_marks(&marks).unwrap();
    verifier
        .offer(
            &CollateralRequest::SnpCrl {
                product: chip.product(),
                signer: SnpSigner::Vcek,
            },
            crl,
            &reference(chip),
            now(),
            default_provider(),
        )
        .is_ok()
}

fn reference(chip: &SimulatedSnp) -> ReferenceValues {
    ReferenceValues {
        snp: vec![chip.reference_values()],
        ..ReferenceValues::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workspaces_in_one_process_keep_their_own_marks() {
    let run = Running::start("marks", accord_demo::demo::Deployment::prepare).await;
    run.set(None).await;
    let chip =
        SimulatedSnp::open(&run.dir.join("coordinator/chip"), &config(COORD_POLICY)).unwrap();
    let parent = run.dir.parent().unwrap();
    let (a, b) = (parent.join("workspace-a"), parent.join("workspace-b"));
    for dir in [&a, &b] {
        std::fs::create_dir_all(dir.join("collateral")).unwrap();
        std::fs::copy(run.dir.join("manifest.json"), dir.join("manifest.json")).unwrap();
    }
    // Workspace A has seen a newer CRL of the chip than the one the
    // coordinator's evidence carries.
    let day = 86_400;
    let newer = chip
        .issue_crl(&CrlSpec {
            number: ATTACHED_CRL_NUMBER + 10,
            this_update: UnixTime(now().0 - day),
            next_update: UnixTime(now().0 + 6 * day),
            revoked: Vec::new(),
        })
        .unwrap();
    let mut seen = ServiceVerifier::new();
    seen.offer(
        &CollateralRequest::SnpCrl {
            product: chip.product(),
            signer: SnpSigner::Vcek,
        },
        &newer,
        &reference(&chip),
        now(),
        default_provider(),
    )
    .unwrap();
    std::fs::write(a.join("collateral/freshness-marks"), seen.export_marks()).unwrap();

    let refused = verify_cmd::verify(&run.verify_args(&a)).await.unwrap_err();
    let Failure::Refused(why) = &refused else {
        panic!("{refused}")
    };
    assert!(why.contains("older than the newest seen"), "{why}");

    // B, in the same process, has seen nothing newer: it accepts the
    // coordinator, and its marks are its own.
    verify_cmd::verify(&run.verify_args(&b)).await.unwrap();
    let attached = chip.attached_crl().unwrap();
    assert!(marks_accept(&b, &chip, &attached), "A's mark reached B");
    assert!(!marks_accept(&a, &chip, &attached));
    // And A still refuses after B's run.
    assert!(verify_cmd::verify(&run.verify_args(&a)).await.is_err());
    run.stop().await;
}
