//! `accord evidence verify` through the fetch path: a loopback KDS/PCS
//! (`accord_collateral::test_vendor`) serves the real vendor data of
//! `../shared/testdata` (or `$ACCORD_TESTDATA`; with
//! `ACCORD_REQUIRE_VECTORS=1` missing vectors fail the tests) in the
//! vendors' URL shapes and headers.
//!
//! - Every real vector gets the same verdict (exit status and output)
//!   fetched as from files.
//! - The cache: a second run asks the vendor nothing, `--offline` works
//!   warm and fails cold naming what is missing, an entry past its
//!   nextUpdate is not served.
//! - A vendor that is down, slow, answers 5xx, garbage or tampered bytes:
//!   the valid cached copy is used; with none, a clear refusal.
//! - `--save-collateral` reproduces the verdict offline.
//! - The INSECURE simulated SEV-SNP chip and TDX through the INSECURE
//!   simulated vendor (`accord-simulated-vendor`): fetched, revoked by a
//!   re-issued CRL, a rollback refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use accord_collateral::test_vendor::{Behavior, ConnectProxy, Vendor, VendorServer};
use accord_core::internal::vectors::{
    SNP_CRLS, SNP_VCEK, TDX, TdxSource, TdxVector, snp_product_of,
};
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, pem};
use accord_simulated_vendor::SimulatedVendor;

fn testdata() -> Option<PathBuf> {
    accord_core::internal::testdata_dir()
}

fn accord(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read(t: &Path, relative: &str) -> Vec<u8> {
    std::fs::read(t.join(relative)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

fn text(t: &Path, relative: &str) -> String {
    String::from_utf8(read(t, relative)).unwrap()
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn p(t: &Path, relative: &str) -> String {
    t.join(relative).display().to_string()
}

fn der_certificate(bytes: &[u8]) -> Vec<u8> {
    pem::der_or_pem(bytes, "CERTIFICATE").unwrap()
}

/// A KDS serving every VCEK of the vectors and the CRLs given.
fn kds(t: &Path, crls: &[(&str, &str)]) -> VendorServer {
    let mut vendor = Vendor::default();
    for (_, vcek) in SNP_VCEK {
        vendor.add_vcek(&der_certificate(&read(t, vcek))).unwrap();
    }
    for (product, crl) in crls {
        vendor.set_crl("vcek", product, &read(t, crl));
    }
    VendorServer::start(vendor).unwrap()
}

/// `--product` for version 2 reports, which do not name it.
fn product_args(t: &Path, report: &str) -> Vec<String> {
    if read(t, report)[0] == 2 {
        args(&["--product", &snp_product_of(report).unwrap().to_lowercase()])
    } else {
        Vec::new()
    }
}

fn snp_fetch_args(
    t: &Path,
    server: &VendorServer,
    cache: &Path,
    report: &str,
    at: &str,
) -> Vec<String> {
    let mut a = args(&[
        "evidence",
        "verify",
        "--snp",
        &p(t, report),
        "--kds-url",
        &server.base_url(),
        "--cache",
        &cache.display().to_string(),
        "--at",
        at,
        "--json",
    ]);
    a.extend(product_args(t, report));
    a
}

#[test]
fn real_snp_vectors_get_the_same_verdict_fetched_as_from_files() {
    let Some(t) = testdata() else { return };
    let mut valid = 0;
    for (product, crl, at) in SNP_CRLS {
        let server = kds(&t, &[(product, crl)]);
        let cache = tempfile::tempdir().unwrap();
        for (report, vcek) in SNP_VCEK
            .iter()
            .filter(|(r, _)| snp_product_of(r) == Some(*product))
        {
            let mut offline = args(&[
                "evidence",
                "verify",
                "--snp",
                &p(&t, report),
                "--vcek",
                &p(&t, vcek),
                "--crl",
                &p(&t, crl),
                "--at",
                at,
                "--json",
            ]);
            offline.extend(product_args(&t, report));
            let from_files = accord(&offline);
            let fetched = accord(&snp_fetch_args(&t, &server, cache.path(), report, at));
            assert_eq!(
                (
                    fetched.status.code(),
                    String::from_utf8_lossy(&fetched.stdout)
                ),
                (
                    from_files.status.code(),
                    String::from_utf8_lossy(&from_files.stdout)
                ),
                "{report} with {crl} at {at}\nfetched: {}\nfrom files: {}",
                stderr(&fetched),
                stderr(&from_files)
            );
            if fetched.status.success() {
                valid += 1;
            }
        }
        // The VCEKs and the CRL really came from the server.
        assert!(
            server.requests().iter().any(|r| r.ends_with("/crl")),
            "{:?}",
            server.requests()
        );
    }
    // Most of the pairs verify (not two identical refusals everywhere).
    assert!(valid >= 20, "only {valid} valid");
}

/// The CA (`platform`/`processor`) a PCK CRL issuer chain starts with.
fn ca_of(chain: &str) -> &'static str {
    let first = pem::decode_all(chain, "CERTIFICATE").unwrap().remove(0);
    let cert = Certificate::from_der(&first).unwrap();
    if cert.subject_common_name().unwrap().contains("Processor") {
        "processor"
    } else {
        "platform"
    }
}

/// A PCS serving one set's collateral (the raw PCS responses where the
/// test data has them, else the collateral in PCS envelopes), and the
/// same collateral as a file for the offline path.
fn pcs(t: &Path, source: &TdxSource, dir: &Path) -> (VendorServer, PathBuf) {
    let mut vendor = Vendor::default();
    let collateral = source.collateral().unwrap();
    match source.pcs_files() {
        None => vendor.set_tdx_collateral(&collateral).unwrap(),
        Some([tcb, qe, pck_crl, root_crl, tcb_chain, pck_chain]) => {
            let tcb_info: serde_json::Value = serde_json::from_str(&collateral.tcb_info).unwrap();
            let fmspc = tcb_info["fmspc"].as_str().unwrap();
            vendor.set_tcb_info(fmspc, &read(t, &tcb), &text(t, &tcb_chain));
            vendor.set_qe_identity(&read(t, &qe), &text(t, &tcb_chain));
            let pck_chain = text(t, &pck_chain);
            vendor.set_pck_crl(ca_of(&pck_chain), &read(t, &pck_crl), &pck_chain);
            vendor.set_root_crl(&read(t, &root_crl));
        }
    }
    let file = dir.join("offline-collateral.json");
    std::fs::write(&file, collateral.to_json()).unwrap();
    (VendorServer::start(vendor).unwrap(), file)
}

fn tdx_fetch_args(
    t: &Path,
    server: &VendorServer,
    cache: &Path,
    quote: &str,
    at: &str,
) -> Vec<String> {
    args(&[
        "evidence",
        "verify",
        "--tdx",
        &p(t, quote),
        "--pcs-url",
        &server.base_url(),
        "--cache",
        &cache.display().to_string(),
        "--at",
        at,
        "--json",
    ])
}

#[test]
fn real_tdx_vectors_get_the_same_verdict_fetched_as_from_files() {
    let Some(t) = testdata() else { return };
    let mut valid = 0;
    for &TdxVector {
        quote,
        collateral: ref parts,
        at,
        debug,
    } in TDX
    {
        let dir = tempfile::tempdir().unwrap();
        let (server, file) = pcs(&t, parts, dir.path());
        let cache = dir.path().join("cache");
        let mut offline = args(&[
            "evidence",
            "verify",
            "--tdx",
            &p(&t, quote),
            "--collateral",
            &file.display().to_string(),
            "--at",
            at,
            "--json",
        ]);
        let mut fetch = tdx_fetch_args(&t, &server, &cache, quote, at);
        if debug {
            offline.push("--allow-debug".into());
            fetch.push("--allow-debug".into());
        }
        let from_files = accord(&offline);
        let fetched = accord(&fetch);
        assert_eq!(
            (
                fetched.status.code(),
                String::from_utf8_lossy(&fetched.stdout)
            ),
            (
                from_files.status.code(),
                String::from_utf8_lossy(&from_files.stdout)
            ),
            "{quote} at {at}\nfetched: {}\nfrom files: {}",
            stderr(&fetched),
            stderr(&from_files)
        );
        // Set 6's quote is refused before anything is fetched: 39 bytes
        // after the signature data.
        let expected = if quote.contains("v4-4") { 0 } else { 4 };
        assert_eq!(
            server.requests().len(),
            expected,
            "{quote}: {:?}",
            server.requests()
        );
        if fetched.status.success() {
            valid += 1;
        }
    }
    assert!(valid >= 9, "only {valid} valid");
}

const MILAN_2: &str = "snp/milan-report-2.bin";
const MILAN_CRL: (&str, &str) = ("Milan", "snp/milan-vcek-crl-2026-08-19.der");
/// The Milan CRL of 2026-08-19 is current (nextUpdate 2026-10-04) and not
/// yet due for refresh (46-day window: refreshed in its last 11.5 days).
const CURRENT: &str = "2026-09-01T00:00:00Z";
/// Still current, but due for refresh.
const DUE: &str = "2026-09-30T00:00:00Z";
/// Past its nextUpdate.
const STALE: &str = "2026-10-05T00:00:00Z";

#[test]
fn the_cache_serves_repeat_runs_and_offline_runs() {
    let Some(t) = testdata() else { return };
    let mut server = kds(&t, &[MILAN_CRL]);
    let cache = tempfile::tempdir().unwrap();
    let first = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("fetching the VCEK of Milan chip"),
        "{}",
        stderr(&first)
    );
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
    assert!(cache.path().join("kds/crl/vcek/Milan.der").is_file());

    // The second run asks the vendor nothing.
    let second = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT));
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
    assert!(
        stderr(&second).contains("from the cache, fetched"),
        "{}",
        stderr(&second)
    );

    // Offline, from the warm cache, with the vendor gone.
    server.stop();
    let mut offline = snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT);
    offline.push("--offline".into());
    let warm = accord(&offline);
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert_eq!(warm.stdout, first.stdout);

    // Offline, cold: exit 2, naming what is missing and where.
    let cold_dir = tempfile::tempdir().unwrap();
    let mut cold = snp_fetch_args(&t, &server, cold_dir.path(), MILAN_2, CURRENT);
    cold.push("--offline".into());
    let cold = accord(&cold);
    assert_eq!(cold.status.code(), Some(2), "{}", stderr(&cold));
    assert!(
        stderr(&cold).contains("offline: the VCEK of Milan chip")
            && stderr(&cold).contains("is not in the cache"),
        "{}",
        stderr(&cold)
    );

    // Past the CRL's nextUpdate the cached CRL is not served, offline or not.
    let mut stale_offline = snp_fetch_args(&t, &server, cache.path(), MILAN_2, STALE);
    stale_offline.push("--offline".into());
    let stale = accord(&stale_offline);
    assert_eq!(stale.status.code(), Some(2), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("the VCEK CRL for Milan")
            && stderr(&stale).contains("past its nextUpdate"),
        "{}",
        stderr(&stale)
    );
    let online = snp_fetch_args(&t, &server, cache.path(), MILAN_2, STALE);
    let stale = accord(&online);
    assert_eq!(stale.status.code(), Some(2), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("cannot connect") && stderr(&stale).contains("past its nextUpdate"),
        "{}",
        stderr(&stale)
    );
}

#[test]
fn tdx_collateral_is_cached_too() {
    let Some(t) = testdata() else { return };
    let TdxVector {
        quote,
        collateral: ref parts,
        at,
        ..
    } = TDX[0];
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _) = pcs(&t, parts, dir.path());
    let cache = dir.path().join("cache");
    let first = accord(&tdx_fetch_args(&t, &server, &cache, quote, at));
    assert!(first.status.success(), "{}", stderr(&first));
    let requests = server.requests();
    assert!(
        requests.contains(&"/tdx/certification/v4/qe/identity".to_owned()),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"/sgx/certification/v4/pckcrl?ca=platform&encoding=der".to_owned()),
        "{requests:?}"
    );
    let second = accord(&tdx_fetch_args(&t, &server, &cache, quote, at));
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(server.requests().len(), 4);
    server.stop();
    let mut offline = tdx_fetch_args(&t, &server, &cache, quote, at);
    offline.push("--offline".into());
    let warm = accord(&offline);
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert_eq!(warm.stdout, first.stdout);
}

#[test]
fn a_failing_vendor_is_ridden_out_with_the_valid_cache_then_refused() {
    let Some(t) = testdata() else { return };
    let mut server = kds(&t, &[MILAN_CRL]);
    let cases: &[(Behavior, &str)] = &[
        (Behavior::Status(503), "/vcek/v1/Milan/crl answered 503"),
        (
            Behavior::Garbage,
            "answered garbage for the VCEK CRL for Milan",
        ),
        (
            Behavior::Tamper,
            "served the VCEK CRL for Milan that does not verify",
        ),
        (Behavior::Hang, "no complete answer within 1 s"),
    ];
    for (behavior, reason) in cases {
        let cache = tempfile::tempdir().unwrap();
        server.set_behavior(Behavior::Serve);
        let warm = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT));
        assert!(warm.status.success(), "{}", stderr(&warm));
        server.set_behavior(*behavior);
        let before = server.requests().len();
        let mut due = snp_fetch_args(&t, &server, cache.path(), MILAN_2, DUE);
        due.extend(args(&["--fetch-timeout", "1"]));
        let out = accord(&due);
        // The CRL was due: the vendor was asked (the VCEK was not: it is
        // not reissued), failed, and the valid cached CRL was used.
        assert_eq!(server.requests().len(), before + 1, "{behavior:?}");
        assert!(out.status.success(), "{behavior:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(reason) && stderr(&out).contains("using the cached copy"),
            "{behavior:?}: {}",
            stderr(&out)
        );
        // Without a cache: refused.
        let cold = tempfile::tempdir().unwrap();
        let mut cold_args = snp_fetch_args(&t, &server, cold.path(), MILAN_2, DUE);
        cold_args.extend(args(&["--fetch-timeout", "1"]));
        let out = accord(&cold_args);
        assert_eq!(out.status.code(), Some(2), "{behavior:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error: KDS http://"),
            "{}",
            stderr(&out)
        );
    }
    // Down: connection refused.
    server.set_behavior(Behavior::Serve);
    let cache = tempfile::tempdir().unwrap();
    let warm = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT));
    assert!(warm.status.success(), "{}", stderr(&warm));
    server.stop();
    let out = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, DUE));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    let cold = tempfile::tempdir().unwrap();
    let out = accord(&snp_fetch_args(&t, &server, cold.path(), MILAN_2, DUE));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn an_older_crl_from_the_vendor_does_not_replace_a_newer_cached_one() {
    let Some(t) = testdata() else { return };
    let server = kds(&t, &[MILAN_CRL]);
    let cache = tempfile::tempdir().unwrap();
    let warm = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT));
    assert!(warm.status.success(), "{}", stderr(&warm));
    let cached = std::fs::read(cache.path().join("kds/crl/vcek/Milan.der")).unwrap();
    // The vendor (or whoever is in between) now serves the 2025 CRL.
    server.update(|v| {
        v.set_crl(
            "vcek",
            "Milan",
            &read(&t, "snp/milan-vcek-crl-2025-05-06.der"),
        )
    });
    let out = accord(&snp_fetch_args(&t, &server, cache.path(), MILAN_2, DUE));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("served an older issue"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(cache.path().join("kds/crl/vcek/Milan.der")).unwrap(),
        cached
    );
}

#[test]
fn saved_collateral_reproduces_the_verdict_offline() {
    let Some(t) = testdata() else { return };
    let server = kds(&t, &[MILAN_CRL]);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved");
    let mut fetch = snp_fetch_args(&t, &server, &dir.path().join("cache"), MILAN_2, CURRENT);
    fetch.extend(args(&["--save-collateral", &saved.display().to_string()]));
    let out = accord(&fetch);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stderr(&out)
        .lines()
        .find_map(|l| {
            l.strip_prefix("to reproduce this verdict offline: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(
        line.contains("--vcek") && line.contains("--crl") && line.contains(CURRENT),
        "{line}"
    );
    // The printed command, word by word (the paths here need no quoting).
    let words: Vec<String> = line.split(' ').skip(1).map(str::to_owned).collect();
    let again = accord(&words);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(again.stdout, out.stdout);

    // TDX: collateral.json.
    let TdxVector {
        quote,
        collateral: ref parts,
        at,
        ..
    } = TDX[2];
    let (server, _) = pcs(&t, parts, dir.path());
    let mut fetch = tdx_fetch_args(&t, &server, &dir.path().join("tdx-cache"), quote, at);
    fetch.extend(args(&["--save-collateral", &saved.display().to_string()]));
    let out = accord(&fetch);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(saved.join("collateral.json").is_file());
    let line = stderr(&out)
        .lines()
        .find_map(|l| {
            l.strip_prefix("to reproduce this verdict offline: ")
                .map(str::to_owned)
        })
        .unwrap();
    let words: Vec<String> = line.split(' ').skip(1).map(str::to_owned).collect();
    let again = accord(&words);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn fetches_go_through_the_collateral_proxy() {
    let Some(t) = testdata() else { return };
    let server = kds(&t, &[MILAN_CRL]);
    let cache = tempfile::tempdir().unwrap();
    let mut a = snp_fetch_args(&t, &server, cache.path(), MILAN_2, CURRENT);
    // The KDS name does not resolve; only the proxy can reach it.
    let kds = a.iter().position(|w| w == "--kds-url").unwrap();
    a[kds + 1] = format!(
        "http://kds.invalid:{}",
        server.base_url().rsplit(':').next().unwrap()
    );
    a.extend(args(&["--collateral-proxy", &server.base_url()]));
    let out = accord(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.proxied(), 2);
}

fn unix_now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime(i64::try_from(secs).unwrap())
}

/// `t0` plus `hours`, RFC 3339.
fn later(t0: UnixTime, hours: i64) -> String {
    UnixTime(t0.0 + hours * 3600).to_string()
}

const HOURS_PER_DAY: i64 = 24;

/// The INSECURE simulated SEV-SNP chip, trusted only through --trust-root,
/// through the INSECURE simulated KDS (`accord-simulated-vendor`): its VCEK
/// and its ARK-signed CRL are fetched and the report verifies; once the
/// vendor revokes the ASK, the CRL fetched at refresh refuses the report by
/// name; a rollback to the older CRL does not replace the newer cached one.
#[test]
fn simulated_snp_evidence_goes_through_the_simulated_kds_and_its_crl() {
    use accord_core::evidence::snp::Product;
    use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("chip");
    let vendor = SimulatedVendor::start_with_state_dirs(&[(&state, Product::Genoa)], None).unwrap();
    let chip = SimulatedSnp::open(&state, &SimulatedConfig::default()).unwrap();
    let report_path = dir.path().join("report.bin");
    std::fs::write(&report_path, chip.report(&[7; 64])).unwrap();
    let cache = dir.path().join("cache");
    let run = |at: &str, cache: &Path| {
        accord(&args(&[
            "evidence",
            "verify",
            "--snp",
            &report_path.display().to_string(),
            "--trust-root",
            &state.join("ark.pem").display().to_string(),
            "--ask",
            &state.join("ask.pem").display().to_string(),
            "--kds-url",
            &vendor.kds_url(),
            "--cache",
            &cache.display().to_string(),
            "--at",
            at,
        ]))
    };
    let t0 = unix_now();
    let ok = run(&later(t0, 0), &cache);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("against a CUSTOM root"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    for what in ["the VCEK of Genoa chip", "the VCEK CRL for Genoa"] {
        let fetched = format!("fetched from {}", vendor.kds_url());
        assert!(
            stderr(&ok)
                .lines()
                .any(|line| line.starts_with(what) && line.contains(&fetched)),
            "{what}: {}",
            stderr(&ok)
        );
    }
    assert_eq!(vendor.count("/vcek/v1/Genoa/crl"), 1);

    // The vendor revokes the ASK (CRL number 2). A cold verifier gets the
    // new CRL at once and refuses the report by name.
    assert_eq!(
        vendor
            .revoke_snp(Product::Genoa, &chip.ask_serial())
            .unwrap(),
        2
    );
    let ask_serial = accord_core::hex::encode(&chip.ask_serial());
    let revoked = format!("ASK certificate (serial {ask_serial}) is revoked");
    let cold = run(&later(t0, 0), &dir.path().join("cold"));
    assert_eq!(cold.status.code(), Some(1), "{}", stderr(&cold));
    assert!(stderr(&cold).contains(&revoked), "{}", stderr(&cold));
    // The warm cache holds CRL 1 (valid 7 days from a day ago) until it is
    // due for refresh; then CRL 2 is fetched, kept and enforced.
    let due = run(&later(t0, 5 * HOURS_PER_DAY), &cache);
    assert_eq!(due.status.code(), Some(1), "{}", stderr(&due));
    assert!(stderr(&due).contains(&revoked), "{}", stderr(&due));
    let cached_crl = std::fs::read(cache.join("kds/crl/vcek/Genoa.der")).unwrap();
    assert_eq!(Some(cached_crl.clone()), vendor.snp_crl(Product::Genoa));

    // A rollback to CRL 1 (older thisUpdate): refused as an older issue,
    // the cache keeps CRL 2, the report stays revoked.
    assert_eq!(vendor.serve_older_snp_crl(Product::Genoa).unwrap(), 1);
    let before = vendor.count("/vcek/v1/Genoa/crl");
    let rollback = run(&later(t0, 5 * HOURS_PER_DAY + 6), &cache);
    assert_eq!(vendor.count("/vcek/v1/Genoa/crl"), before + 1);
    assert_eq!(rollback.status.code(), Some(1), "{}", stderr(&rollback));
    assert!(
        stderr(&rollback).contains("served an older issue"),
        "{}",
        stderr(&rollback)
    );
    assert!(
        stderr(&rollback).contains(&revoked),
        "{}",
        stderr(&rollback)
    );
    assert_eq!(
        std::fs::read(cache.join("kds/crl/vcek/Genoa.der")).unwrap(),
        cached_crl
    );
}

/// The INSECURE simulated TDX, trusted only through --tdx-trust-root,
/// through the INSECURE simulated PCS: the collateral is fetched and the
/// quote verifies; once the vendor revokes the PCK certificate it is
/// refused; a rollback to the older collateral does not replace the newer
/// cached one.
#[test]
fn simulated_tdx_evidence_goes_through_the_simulated_pcs() {
    use accord_guest::tee::simulated::SimulatedConfig;
    use accord_guest::tee::simulated_tdx::SimulatedTdx;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("tdx");
    let vendor = SimulatedVendor::start_with_state_dirs(&[], Some(&state)).unwrap();
    let platform = SimulatedTdx::open(&state, &SimulatedConfig::default()).unwrap();
    let quote_path = dir.path().join("quote.bin");
    std::fs::write(&quote_path, platform.quote(&[3; 64])).unwrap();
    let root_path = dir.path().join("root.der");
    std::fs::write(&root_path, platform.root_ca_der()).unwrap();
    let cache = dir.path().join("cache");
    let run = |at: &str, cache: &Path, trust: bool| {
        let mut a = args(&[
            "evidence",
            "verify",
            "--tdx",
            &quote_path.display().to_string(),
            "--pcs-url",
            &vendor.pcs_url(),
            "--cache",
            &cache.display().to_string(),
            "--at",
            at,
        ]);
        if trust {
            a.extend(args(&[
                "--tdx-trust-root",
                &root_path.display().to_string(),
            ]));
        }
        accord(&a)
    };
    let t0 = unix_now();
    let ok = run(&later(t0, 0), &cache, true);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("TCB status \"UpToDate\" against a CUSTOM root"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(
        stderr(&ok).contains("WARNING: --tdx-trust-root"),
        "{}",
        stderr(&ok)
    );
    for path in [
        "/tdx/certification/v4/tcb",
        "/tdx/certification/v4/qe/identity",
        "/sgx/certification/v4/pckcrl",
        "/sgx/certification/v4/rootcacrl",
    ] {
        assert_eq!(vendor.count(path), 1, "{path}");
    }
    // Without the simulated root, Intel's genuine root refuses it: its
    // CRLs are neither served from the cache nor fetched.
    let genuine = run(&later(t0, 0), &cache, false);
    assert_eq!(genuine.status.code(), Some(2), "{}", stderr(&genuine));
    assert!(
        stderr(&genuine).contains("PCK platform CA CRL that does not verify"),
        "{}",
        stderr(&genuine)
    );

    // The vendor revokes the PCK certificate: refused when fetched.
    vendor.revoke_pck(&platform.pck_serial()).unwrap();
    let cold_cache = dir.path().join("cold");
    let cold = run(&later(t0, 0), &cold_cache, true);
    assert_eq!(cold.status.code(), Some(1), "{}", stderr(&cold));
    assert!(
        stderr(&cold).contains("INVALID: TDX") && stderr(&cold).contains("revoked"),
        "{}",
        stderr(&cold)
    );
    // A rollback to the older collateral, once the cached one is due for
    // refresh (30-day windows, a quarter of which is left after 23 days):
    // refused as an older issue; the newer one is kept and enforced.
    let cached_crl = std::fs::read(cold_cache.join("pcs/pckcrl/platform.der")).unwrap();
    vendor.serve_older_tdx_collateral().unwrap();
    let rollback = run(&later(t0, 23 * HOURS_PER_DAY), &cold_cache, true);
    assert_eq!(rollback.status.code(), Some(1), "{}", stderr(&rollback));
    assert!(
        stderr(&rollback).contains("served an older issue"),
        "{}",
        stderr(&rollback)
    );
    assert!(
        stderr(&rollback).contains("revoked"),
        "{}",
        stderr(&rollback)
    );
    assert_eq!(
        std::fs::read(cold_cache.join("pcs/pckcrl/platform.der")).unwrap(),
        cached_crl
    );
}

/// HTTPS: the vendor's certificate must chain to a trusted root (here a
/// test CA passed with --collateral-ca; by default Mozilla's roots), and
/// https goes through a proxy as a CONNECT tunnel.
#[test]
fn https_is_verified_and_tunnels_through_the_proxy() {
    let Some(t) = testdata() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A test CA and a server certificate for localhost under it.
    let openssl = |words: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir.path())
            .args(words)
            .output()
            .expect("running openssl");
        assert!(out.status.success(), "openssl {words:?}: {}", stderr(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=accord test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "req.pem",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.path().join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let cert_pem = dir.path().join("cert.pem");
    let cert = pem::der_or_pem(&std::fs::read(&cert_pem).unwrap(), "CERTIFICATE").unwrap();
    let key_text = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let key = pem::decode_all(&key_text, "PRIVATE KEY").unwrap().remove(0);
    let mut vendor = Vendor::default();
    for (_, vcek) in SNP_VCEK {
        vendor.add_vcek(&der_certificate(&read(&t, vcek))).unwrap();
    }
    vendor.set_crl("vcek", MILAN_CRL.0, &read(&t, MILAN_CRL.1));
    let server = VendorServer::start_tls(vendor, vec![cert], key).unwrap();
    let kds_url = format!("https://localhost:{}", server.port());
    let run = |extra: &[&str]| {
        let mut a = args(&[
            "evidence",
            "verify",
            "--snp",
            &p(&t, MILAN_2),
            "--product",
            "milan",
            "--kds-url",
            &kds_url,
            "--at",
            CURRENT,
        ]);
        a.extend(args(extra));
        accord(&a)
    };
    // The test CA is not among Mozilla's roots: refused, naming TLS.
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("TLS:"), "{}", stderr(&refused));
    assert!(server.requests().is_empty());
    let ca = dir.path().join("ca.pem").display().to_string();
    let ok = run(&["--collateral-ca", &ca]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(server.requests().len(), 2);
    let proxy = ConnectProxy::start().unwrap();
    let tunnelled = run(&["--collateral-ca", &ca, "--collateral-proxy", &proxy.url()]);
    assert!(tunnelled.status.success(), "{}", stderr(&tunnelled));
    assert_eq!(proxy.tunnels(), 2);
    assert_eq!(server.requests().len(), 4);
}
