//! Differential test against Phala's dcap-qvl 0.7 (an independent DCAP
//! implementation): for every TDX vector and a set of negative variants,
//! accord and dcap-qvl must agree on accept/reject, TCB status, advisory ids
//! and the key fields.
//!
//! Policy difference, overridden here: dcap-qvl accepts any status but
//! `Revoked` and leaves the status decision to the caller; accord's default
//! accepts only `UpToDate`. So accord is run with
//! `TdxPolicy::authenticity_only()` (debug allowed as dcap-qvl's
//! `allow_debug` is set), and accord's default verdict must equal
//! "dcap-qvl accepts and the status is UpToDate".
//!
//! Known, documented disagreement: dcap-qvl ignores bytes after the
//! signature data, accord rejects non-zero ones (Set 6's 39-byte ASCII
//! trailer). Both reject Set 6 (dcap-qvl for its TCB); with the trailer
//! removed both reject it for its TCB.
//!
//! Second documented disagreement: validity windows are closed intervals in
//! accord (`thisUpdate <= t <= nextUpdate`, as `testdata/README.md` states
//! the windows), while dcap-qvl (webpki) treats a CRL as expired at exactly
//! its `nextUpdate`. At that one instant accord accepts and dcap-qvl reports
//! `CrlExpired`; one second later both reject.

use accord_core::evidence::tdx::{Collateral, TcbStatus, TdxPolicy, verify_with_policy};
use accord_core::time::UnixTime;
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::verify::QuoteVerifier;

use crate::common::{at, providers};
use crate::tdx::{SETS, Set, collateral, expected, load};

fn to_dcap(c: &Collateral) -> QuoteCollateralV3 {
    serde_json::from_str(&c.to_json()).expect("dcap-qvl reads accord's collateral JSON")
}

/// Runs both verifiers and checks they agree; returns whether they accepted.
fn agree(label: &str, set: &Set, quote: &[u8], coll: &Collateral, t: UnixTime) -> bool {
    agree_with(label, set, quote, coll, t, false)
}

/// As [`agree`]; with `crl_edge`, dcap-qvl's `CrlExpired` at exactly a CRL's
/// nextUpdate is the known disagreement and accord's verdict is returned.
fn agree_with(
    label: &str,
    set: &Set,
    quote: &[u8],
    coll: &Collateral,
    t: UnixTime,
    crl_edge: bool,
) -> bool {
    let dcap = QuoteVerifier::new_prod().allow_debug(set.debug).verify(
        quote,
        &to_dcap(coll),
        u64::try_from(t.0).unwrap(),
    );
    for provider in providers() {
        let policy = TdxPolicy {
            allow_debug: set.debug,
            ..TdxPolicy::authenticity_only()
        };
        let ours = verify_with_policy(quote, coll, t, *provider, &policy);
        let strict = verify_with_policy(
            quote,
            coll,
            t,
            *provider,
            &TdxPolicy {
                allow_debug: set.debug,
                ..TdxPolicy::default()
            },
        );
        match (&ours, &dcap) {
            (Ok(_), Err(theirs)) if crl_edge && format!("{theirs:#}").contains("CrlExpired") => {
                eprintln!("{label}: known disagreement at CRL nextUpdate (dcap-qvl: {theirs:#})");
                return true;
            }
            (Ok(claims), Ok(report)) => {
                assert_eq!(claims.tcb_status.as_str(), report.status, "{label}: status");
                assert_eq!(
                    claims.advisory_ids, report.advisory_ids,
                    "{label}: advisories"
                );
                let td = report.report.as_td10().expect("TD report");
                assert_eq!(claims.body.mr_td, hex(&td.mr_td), "{label}");
                assert_eq!(claims.body.report_data, hex(&td.report_data), "{label}");
                assert_eq!(claims.body.rtmrs[3], hex(&td.rt_mr3), "{label}");
                assert_eq!(claims.body.tee_tcb_svn, hex(&td.tee_tcb_svn), "{label}");
                assert_eq!(
                    strict.is_ok(),
                    report.status == TcbStatus::UpToDate.as_str(),
                    "{label}: policy"
                );
            }
            (Err(ours), Err(theirs)) => {
                assert!(strict.is_err(), "{label}");
                eprintln!("{label}: both reject (accord: {ours}; dcap-qvl: {theirs:#})");
            }
            (ours, theirs) => panic!(
                "{label} [{}]: accord {:?} but dcap-qvl {:?}",
                provider.name(),
                ours.as_ref().map(|c| c.tcb_status),
                theirs
                    .as_ref()
                    .map(|r| r.status.clone())
                    .map_err(|e| format!("{e:#}"))
            ),
        }
    }
    dcap.is_ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn accord_and_dcap_qvl_agree_on_every_set() {
    for set in SETS {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        let accepted = agree(&format!("set {}", set.name), set, &quote, &coll, at(set.at));
        assert_eq!(accepted, set.accept, "set {}", set.name);
        if set.name == "6" {
            let trimmed = &quote[..quote.len() - 39];
            assert!(!agree("set 6 trimmed", set, trimmed, &coll, at(set.at)));
        }
    }
}

#[test]
fn accord_and_dcap_qvl_agree_on_window_edges() {
    for set in SETS {
        let Some((start, end)) = set.window else {
            continue;
        };
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for (t, accept) in [
            (at(start), true),
            (at(end), true),
            (UnixTime(at(start).0 - 1), false),
            (UnixTime(at(end).0 + 1), false),
        ] {
            let got = agree_with(
                &format!("set {} at {t}", set.name),
                set,
                &quote,
                &coll,
                t,
                t == at(end),
            );
            assert_eq!(got, accept, "set {} at {t}", set.name);
        }
    }
}

#[test]
fn accord_and_dcap_qvl_agree_on_negatives() {
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    let t = at(set.at);
    let mut bad = quote.clone();
    bad[48 + 136] ^= 1;
    assert!(!agree("MRTD flipped", set, &bad, &coll, t));
    let mut c = coll.clone();
    c.tcb_info = c.tcb_info.replacen("\"UpToDate\"", "\"OutOfDate\"", 1);
    assert!(!agree("tcb_info edited", set, &quote, &c, t));
    let mut c = coll.clone();
    c.qe_identity_signature[3] ^= 1;
    assert!(!agree("QE identity signature", set, &quote, &c, t));
    let Some(other) = collateral(crate::tdx::Source::Json("tdx/tdx-collateral-2.json")) else {
        return;
    };
    assert!(!agree(
        "wrong FMSPC",
        set,
        &quote,
        &other,
        at("2025-09-15T00:00:00Z")
    ));
    let _ = expected(set.name);
}

/// Speed of cached verification against a full dcap-qvl verification of the
/// same quote, like for like: accord's aws-lc-rs provider against dcap-qvl's
/// ring backend (the fast ones), accord's RustCrypto provider against
/// dcap-qvl's RustCrypto backend.
///
/// The goal was ≥ 4×. Measured on the 2-core build machine (release,
/// single-threaded, best of 7 rounds): aws-lc-rs 211 µs cached vs
/// dcap-qvl/ring 740 µs (3.5×); RustCrypto 595 µs vs dcap-qvl/RustCrypto
/// 1.90 ms (3.2×). Against dcap-qvl built with only its RustCrypto backend the
/// aws-lc-rs cached path is about 9× faster. The cached path
/// spends ~10 µs outside crypto; the rest is the three P-256 verifications
/// every quote needs (attestation key, QE report, PCK leaf; ~67 µs each with
/// aws-lc-rs here), so 4× needs a faster P-256 verify (e.g. a provider that
/// keeps parsed keys), not less checking. The assertion guards against
/// regressions only. Run:
/// `cargo test --release -p accord-core --features aws-lc-rs --test vectors -- --ignored tdx_speed --nocapture --test-threads=1`.
#[test]
#[ignore = "timing; run with --release"]
fn tdx_speed_cached_vs_dcap_qvl() {
    use std::time::{Duration, Instant};
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    let t = at(set.at);
    let dcap_coll = to_dcap(&coll);
    let now = u64::try_from(t.0).unwrap();
    let n = 100u32;
    // The best of several rounds, to damp noise from other work on the machine.
    let time = |f: &dyn Fn()| -> Duration {
        f();
        (0..7)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..n {
                    f();
                }
                start.elapsed() / n
            })
            .min()
            .unwrap()
    };
    let ring = QuoteVerifier::new_prod().with_config::<dcap_qvl::configs::RingConfig>();
    let rc = QuoteVerifier::new_prod().with_config::<dcap_qvl::configs::RustCryptoConfig>();
    let dcap_ring = time(&|| {
        ring.verify(&quote, &dcap_coll, now).unwrap();
    });
    let dcap_rc = time(&|| {
        rc.verify(&quote, &dcap_coll, now).unwrap();
    });
    for provider in providers() {
        let vc =
            accord_core::evidence::tdx::VerifiedCollateral::verify(&coll, t, *provider).unwrap();
        let cached = time(&|| {
            accord_core::evidence::tdx::verify_with_collateral(&vc, &quote, t, *provider).unwrap();
        });
        let full = time(&|| {
            verify_with_policy(&quote, &coll, t, *provider, &TdxPolicy::default()).unwrap();
        });
        let fast = provider.name() != "rustcrypto";
        let dcap = if fast { dcap_ring } else { dcap_rc };
        let ratio = dcap.as_secs_f64() / cached.as_secs_f64();
        eprintln!(
            "accord {}: cached {cached:?}, full {full:?}; dcap-qvl ({}) full {dcap:?}; speed-up {ratio:.1}x",
            provider.name(),
            if fast { "ring" } else { "rustcrypto" },
        );
        // A regression guard, not the 4x goal (see the doc comment).
        assert!(
            ratio >= 2.5,
            "{}: cached verification only {ratio:.1}x faster than dcap-qvl",
            provider.name()
        );
    }
}
