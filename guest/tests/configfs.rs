//! configfs-tsm against the emulated kernel of `common`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use accord_core::evidence::Evidence;
use accord_guest::tee::{
    self, ConfigfsTsm, TeeError, TeeOptions, TeeProvider, cert_table, configfs_tsm,
};
use common::{Behaviour, Emulator};

fn report_data() -> [u8; 64] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn snp_report_with_certificate_table() {
    let table = cert_table::build(&[
        (cert_table::VCEK_GUID, b"vcek-der"),
        (cert_table::ASK_GUID, b"ask-der"),
        (cert_table::ARK_GUID, b"ark-der"),
    ]);
    let kernel = Emulator::start(Behaviour::snp(Some(table)));
    let provider = ConfigfsTsm::new(&kernel.root);
    let Evidence::Snp(snp) = provider.evidence(&report_data()).unwrap() else {
        panic!("expected SNP evidence");
    };
    assert_eq!(snp.report.len(), 1184);
    assert_eq!(&snp.report[0x50..0x90], &report_data()[..]);
    assert_eq!(snp.vcek.as_deref(), Some(&b"vcek-der"[..]));
    assert_eq!(snp.ask.as_deref(), Some(&b"ask-der"[..]));
    assert_eq!(snp.ark.as_deref(), Some(&b"ark-der"[..]));
}

#[test]
fn snp_report_without_auxblob_and_explicit_privlevel() {
    let kernel = Emulator::start(Behaviour::snp(None));
    let provider = ConfigfsTsm::new(&kernel.root).with_privlevel(2);
    let Evidence::Snp(snp) = provider.evidence(&[9; 64]).unwrap() else {
        panic!("expected SNP evidence");
    };
    assert_eq!(&snp.report[0x30..0x34], &2u32.to_le_bytes());
    assert_eq!(snp.vcek, None);
}

#[test]
fn tdx_quote_and_tdx_requirement() {
    let kernel = Emulator::start(Behaviour::tdx());
    let provider = ConfigfsTsm::tdx(&kernel.root);
    assert_eq!(provider.name(), "tdx");
    let Evidence::Tdx(tdx) = provider.evidence(&report_data()).unwrap() else {
        panic!("expected TDX evidence");
    };
    assert_eq!(&tdx.quote[568..632], &report_data()[..]);
    assert_eq!(tdx.collateral, None);

    // An explicit privilege level needs the attribute.
    let err = ConfigfsTsm::tdx(&kernel.root)
        .with_privlevel(1)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("privlevel: missing"), "{err}");

    // Older kernels show privlevel for TDX too.
    let mut old = Behaviour::tdx();
    old.privlevel = true;
    let old_kernel = Emulator::start(old);
    assert!(matches!(
        ConfigfsTsm::tdx(&old_kernel.root)
            .evidence(&report_data())
            .unwrap(),
        Evidence::Tdx(_)
    ));

    let snp_kernel = Emulator::start(Behaviour::snp(None));
    let err = ConfigfsTsm::tdx(&snp_kernel.root)
        .evidence(&report_data())
        .unwrap_err();
    assert!(
        matches!(
            err,
            TeeError::Unavailable {
                provider: "tdx",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("`sev_guest`, not `tdx_guest`"),
        "{err}"
    );
}

#[test]
fn a_concurrent_writer_is_detected_and_retried() {
    let behaviour = Behaviour::snp(None);
    behaviour.interfere.store(1, Ordering::SeqCst);
    let interfere = behaviour.interfere.clone();
    let kernel = Emulator::start(behaviour);
    let provider = ConfigfsTsm::new(&kernel.root);
    let Evidence::Snp(snp) = provider.evidence(&report_data()).unwrap() else {
        panic!("expected SNP evidence");
    };
    assert_eq!(&snp.report[0x50..0x90], &report_data()[..]);
    assert_eq!(
        interfere.load(Ordering::SeqCst),
        0,
        "the writer did interfere once"
    );
}

#[test]
fn a_persistent_concurrent_writer_is_a_clear_error() {
    let behaviour = Behaviour::tdx();
    behaviour.interfere.store(u32::MAX, Ordering::SeqCst);
    let kernel = Emulator::start(behaviour);
    let text = ConfigfsTsm::tdx(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("from 0 to 2, expected 1 after our 1 writes"),
        "{text}"
    );

    let behaviour = Behaviour::snp(None);
    behaviour.interfere.store(u32::MAX, Ordering::SeqCst);
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err();
    assert!(matches!(
        err,
        TeeError::Conflict {
            attempts: configfs_tsm::MAX_ATTEMPTS,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("concurrent writer")
            && text.contains("from 0 to 3, expected 2 after our 2 writes"),
        "{text}"
    );
}

#[test]
fn a_missing_provider_is_an_error() {
    let mut behaviour = Behaviour::snp(None);
    behaviour.provider = None;
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("provider: missing"), "{err}");
}

#[test]
fn a_short_outblob_is_an_error() {
    let mut behaviour = Behaviour::snp(None);
    behaviour.outblob =
        Arc::new(|inblob, level| common::snp_report(inblob, level)[..1000].to_vec());
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("outblob: 1000 bytes, but an SEV-SNP report is 1184"),
        "{err}"
    );

    let mut behaviour = Behaviour::tdx();
    behaviour.outblob = Arc::new(|inblob, _| common::tdx_quote(inblob)[..600].to_vec());
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("600 bytes are not a TDX quote"), "{err}");
}

#[test]
fn an_outblob_for_other_report_data_is_refused() {
    let mut behaviour = Behaviour::snp(None);
    behaviour.outblob = Arc::new(|_, level| common::snp_report(&[0xee; 64], level));
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the report data written"), "{err}");
}

#[test]
fn unknown_providers_are_refused() {
    let mut behaviour = Behaviour::snp(None);
    behaviour.provider = Some("arm_cca_guest");
    let kernel = Emulator::start(behaviour);
    let err = ConfigfsTsm::new(&kernel.root)
        .evidence(&report_data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`arm_cca_guest` is not supported"), "{err}");
}

#[test]
fn detection_finds_configfs_and_a_missing_root_is_unavailable() {
    let kernel = Emulator::start(Behaviour::snp(None));
    let options = TeeOptions {
        configfs_root: kernel.root.clone(),
        sev_guest_device: "/nonexistent/sev-guest".into(),
        ..TeeOptions::default()
    };
    let provider = tee::detect(&options).unwrap();
    assert_eq!(provider.name(), "configfs-tsm");
    assert!(!provider.is_insecure());
    assert!(matches!(
        provider.evidence(&report_data()).unwrap(),
        Evidence::Snp(_)
    ));

    let missing = TeeOptions {
        configfs_root: kernel.root.join("nope"),
        ..options
    };
    let err = ConfigfsTsm::new(&missing.configfs_root)
        .evidence(&report_data())
        .unwrap_err();
    assert!(matches!(err, TeeError::Unavailable { .. }), "{err}");
    assert!(matches!(
        tee::detect(&missing),
        Err(TeeError::NothingDetected)
    ));
}
