//! The fail-closed defaults of reference values (an entry without `VMPL`,
//! `GuestPolicy` or `TdAttributes`) against every real report and quote in
//! `testdata` (sections 1, 2 and 5): which ones the defaults refuse, why,
//! with which named error, and that naming the field explicitly accepts
//! them again.
//!
//! Refused by the defaults:
//!
//! - `snp/milan-report-1.bin`: guest policy 0xb0000 allows DEBUG (bit 19):
//!   `PolicyDebug`. Accepted with `"GuestPolicy": {"SMT": true, "Debug": true}`.
//! - `snp/milan-vlek-report-1.bin`: requested at VMPL 1: `Vmpl { expected: 0,
//!   actual: 1 }`. Accepted with `"VMPL": 1`.
//! - TDX Set 5 (`tdx/tdx-quote-v4-3.bin`, trustee): TDATTRIBUTES
//!   `0100001000000000` has DEBUG (bit 0): `TdAttributeNotAllowed(Debug)`.
//!   Accepted with `"TdAttributes": "0100001000000000"`.
//! - TDX Set 6 (`tdx/tdx-quote-v4-4-tcb-unsupported.bin`, go-tdx-guest):
//!   TDATTRIBUTES `0000004000000000` is PKS alone, without SEPT_VE_DISABLE
//!   (bit 28): `TdAttributeRequired(SeptVeDisable)`. Its TCB level is not
//!   supported, so verification refuses the quote before reference values
//!   apply; the rule is checked on the parsed quote.
//!
//! Every other report and quote (all other SNP reports: policy 0x30000 or
//! 0x3001f, VMPL 0; all other TDs: TDATTRIBUTES `0000001000000000`,
//! SEPT_VE_DISABLE alone) passes the defaults.

use accord_core::crypto::CryptoProvider;
use accord_core::evidence::snp::{
    self, Certs, GuestPolicy, ReferencePolicy, SnpClaims, SnpMismatch, SnpReferenceValues,
    TrustRoots,
};
use accord_core::evidence::tdx::reference::check_default_td_attributes;
use accord_core::evidence::tdx::{
    Collateral, Quote, ReferenceError, TdAttribute, TdxReferenceValues, VerifiedCollateral,
    verify_with_collateral,
};

use crate::common::{at, providers, try_read};
use crate::snp::CASES;
use crate::tdx::{EXPECTED, SETS, expected, load};

/// The SEV-SNP reports of section 5.1 (section 1's are `snp::CASES`):
/// report, certificate, instant.
const SNP_MORE: &[(&str, &str, &str)] = &[
    (
        "snp-more/milan-oak-release-report.bin",
        "snp-more/milan-oak-release-vcek.der",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/milan-teekit-gcp-report.bin",
        "snp-more/milan-teekit-gcp-vcek.pem",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/milan-constellation-report.bin",
        "snp-more/milan-constellation-vcek.der",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/milan-vlek-constellation-aws-2025-report.bin",
        "snp-more/milan-vlek-constellation-aws-2025-vlek.pem",
        "2025-06-01T00:00:00Z",
    ),
    (
        "snp-more/milan-vlek-constellation-aws-2024-report.bin",
        "snp-more/milan-vlek-constellation-aws-2024-vlek.pem",
        "2024-12-01T00:00:00Z",
    ),
    (
        "snp-more/genoa-oak-report.bin",
        "snp-more/genoa-oak-vcek.der",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/genoa-teep-tinfoil-report.bin",
        "snp-more/genoa-teep-tinfoil-vcek.der",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/genoa-routex-v5-report.bin",
        "snp-more/genoa-routex-v5-vcek.pem",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/genoa-routex-v3-report.bin",
        "snp-more/genoa-routex-v3-vcek.pem",
        "2026-07-01T00:00:00Z",
    ),
    (
        "snp-more/turin-oak-report.bin",
        "snp-more/turin-oak-vcek.der",
        "2026-07-01T00:00:00Z",
    ),
];

/// The TDX quotes of section 5.2 with their collateral and instant, and
/// whether their TCB is UpToDate (the others are OutOfDate).
const TDX_MORE: &[(&str, &str, &str, bool)] = &[
    (
        "tdx-more/tdx-v4-teep-neardirect-quote.bin",
        "tdx-more/tdx-v4-teep-neardirect-collateral.json",
        "2026-04-24T02:10:37Z",
        true,
    ),
    (
        "tdx-more/tdx-v4-teep-nearcloud-gateway-quote.bin",
        "tdx-more/tdx-v4-teep-nearcloud-gateway-collateral.json",
        "2026-04-24T02:06:14Z",
        false,
    ),
    (
        "tdx-more/tdx-v4-teep-chutes-quote.bin",
        "tdx-more/tdx-v4-teep-chutes-collateral.json",
        "2026-06-29T02:07:25Z",
        true,
    ),
    (
        "tdx-more/tdx-v4-teep-redpill-phala-quote.bin",
        "tdx-more/tdx-v4-teep-redpill-phala-collateral.json",
        "2026-06-10T01:49:17Z",
        true,
    ),
    (
        "tdx-more/tdx-v4-teep-tinfoil-quote.bin",
        "tdx-more/tdx-v4-teep-tinfoil-collateral.json",
        "2026-06-29T02:08:05Z",
        true,
    ),
    (
        "tdx-more/tdx-v5-automata-alibaba-quote.bin",
        "tdx-more/tdx-v5-automata-alibaba-collateral.json",
        "2026-04-24T02:10:37Z",
        false,
    ),
    (
        "tdx-more/tdx-v4-zkdcap-quote.bin",
        "tdx-more/tdx-v4-zkdcap-collateral.json",
        "2025-02-01T00:00:00Z",
        false,
    ),
    (
        "tdx-more/tdx-v4-oak-quote.bin",
        "tdx-more/tdx-v4-oak-collateral.json",
        "2025-11-01T00:00:00Z",
        true,
    ),
];

fn snp_claims(report: &str, cert: &str, instant: &str) -> Option<SnpClaims> {
    let report_bytes = try_read(report)?;
    let cert_bytes = try_read(cert)?;
    let claims = snp::verify(
        &report_bytes,
        &Certs { leaf: &cert_bytes },
        None,
        &TrustRoots::genuine(),
        None,
        at(instant),
        providers()[0],
    )
    .unwrap_or_else(|e| panic!("{report} at {instant}: {e}"));
    Some(claims)
}

/// What the defaults say of each real SEV-SNP report.
fn snp_default_verdict(report: &str) -> Result<(), Vec<SnpMismatch>> {
    match report {
        // Guest policy 0xb0000: DEBUG allowed.
        "snp/milan-report-1.bin" => Err(vec![SnpMismatch::PolicyDebug {
            expected: false,
            actual: true,
        }]),
        // Requested at VMPL 1 (AWS, VLEK-signed).
        "snp/milan-vlek-report-1.bin" => Err(vec![SnpMismatch::Vmpl {
            expected: 0,
            actual: 1,
        }]),
        _ => Ok(()),
    }
}

#[test]
fn snp_defaults_refuse_the_debug_and_vmpl1_reports_only() {
    let all = CASES
        .iter()
        .map(|c| (c.report, c.cert, c.instant))
        .chain(SNP_MORE.iter().copied());
    let mut refused = Vec::new();
    for (report, cert, instant) in all {
        let Some(claims) = snp_claims(report, cert, instant) else {
            return;
        };
        let verdict = SnpReferenceValues::default().check(&claims);
        assert_eq!(verdict, snp_default_verdict(report), "{report}");
        if verdict.is_err() {
            refused.push(report);
        }
    }
    assert_eq!(
        refused,
        ["snp/milan-report-1.bin", "snp/milan-vlek-report-1.bin"]
    );
}

#[test]
fn snp_reports_refused_by_default_pass_when_the_entry_allows_them() {
    let case = |name: &str| CASES.iter().find(|c| c.report == name).unwrap();
    let debug = case("snp/milan-report-1.bin");
    let Some(claims) = snp_claims(debug.report, debug.cert, debug.instant) else {
        return;
    };
    let errs = SnpReferenceValues::default().check(&claims).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "policy.debug (bit 19): expected false, got true"
    );
    let allows_debug =
        SnpReferenceValues::from_json(r#"{"GuestPolicy": {"SMT": true, "Debug": true}}"#).unwrap();
    allows_debug.check(&claims).unwrap();

    let vmpl1 = case("snp/milan-vlek-report-1.bin");
    let Some(claims) = snp_claims(vmpl1.report, vmpl1.cert, vmpl1.instant) else {
        return;
    };
    let errs = SnpReferenceValues::default().check(&claims).unwrap_err();
    assert_eq!(errs[0].to_string(), "vmpl: expected 0, got 1");
    SnpReferenceValues::from_json(r#"{"VMPL": 1}"#)
        .unwrap()
        .check(&claims)
        .unwrap();
    // Naming VMPL 0 explicitly is the same as the default.
    assert_eq!(
        SnpReferenceValues::from_json(r#"{"VMPL": 0}"#)
            .unwrap()
            .check(&claims),
        SnpReferenceValues::default().check(&claims)
    );
}

#[test]
fn snp_default_guest_policy_names_each_refused_bit() {
    // A real report whose policy passes the defaults (0x3001f), with one
    // more bit set at a time in its claims.
    let case = CASES
        .iter()
        .find(|c| c.report == "snp/milan-report-3.bin")
        .unwrap();
    let Some(claims) = snp_claims(case.report, case.cert, case.instant) else {
        return;
    };
    assert_eq!(claims.policy.raw, 0x3001f);
    SnpReferenceValues::default().check(&claims).unwrap();
    let with = |bits: u64| {
        let mut c = claims.clone();
        c.policy = GuestPolicy(c.policy.raw | bits).into();
        SnpReferenceValues::default().check(&c)
    };
    let cases: [(u64, SnpMismatch, &str); 5] = [
        (
            1 << 19,
            SnpMismatch::PolicyDebug {
                expected: false,
                actual: true,
            },
            "policy.debug (bit 19): expected false, got true",
        ),
        (
            1 << 18,
            SnpMismatch::PolicyMigrateMa {
                expected: false,
                actual: true,
            },
            "policy.migrate_ma (bit 18): expected false, got true",
        ),
        (
            1 << 21,
            SnpMismatch::PolicyFlag {
                name: "CXLAllowed",
                expected: false,
                actual: true,
            },
            "policy.CXLAllowed (bit 21): expected false, got true",
        ),
        (
            1 << 26,
            SnpMismatch::PolicyUnknownBits { bits: 1 << 26 },
            "policy: expected reserved bits clear, got bit(s) 26 set (0x4000000)",
        ),
        (
            1 << 26 | 1 << 63,
            SnpMismatch::PolicyUnknownBits {
                bits: 1 << 26 | 1 << 63,
            },
            "policy: expected reserved bits clear, got bit(s) 26, 63 set (0x8000000004000000)",
        ),
    ];
    for (bits, mismatch, text) in cases {
        let errs = with(bits).unwrap_err();
        assert_eq!(errs, vec![mismatch], "{bits:#x}");
        assert_eq!(errs[0].to_string(), text);
    }
    // The restrictions are not required by default, and SMT is allowed
    // (every real report allows it).
    for bit in [20, 22, 23, 24, 25] {
        with(1 << bit).unwrap_or_else(|e| panic!("bit {bit}: {e:?}"));
    }
    assert!(claims.policy.smt);
    // Everything allowed by the default, written out, behaves the same.
    let explicit = SnpReferenceValues {
        guest_policy: Some(ReferencePolicy::ABSENT),
        ..SnpReferenceValues::default()
    };
    for bits in [0, 1 << 18, 1 << 19, 1 << 21, 1 << 26] {
        let mut c = claims.clone();
        c.policy = GuestPolicy(c.policy.raw | bits).into();
        assert_eq!(explicit.check(&c), SnpReferenceValues::default().check(&c));
    }
}

/// Parses a quote, cutting Set 6's 39 unauthenticated trailing bytes.
fn td_attributes(path: &str, bytes: &[u8]) -> [u8; 8] {
    let bytes = if path == "tdx/tdx-quote-v4-4-tcb-unsupported.bin" {
        &bytes[..bytes.len() - 39]
    } else {
        bytes
    };
    *Quote::parse(bytes)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .body
        .td_attributes
}

/// What the default TDATTRIBUTES rule says of each real quote.
fn tdx_default_verdict(quote: &str) -> Result<(), ReferenceError> {
    match quote {
        // Set 5: a debug TD.
        "tdx/tdx-quote-v4-3.bin" => Err(ReferenceError::TdAttributeNotAllowed(TdAttribute::Debug)),
        // Set 6: PKS only, no SEPT_VE_DISABLE.
        "tdx/tdx-quote-v4-4-tcb-unsupported.bin" => Err(ReferenceError::TdAttributeRequired(
            TdAttribute::SeptVeDisable,
        )),
        _ => Ok(()),
    }
}

#[test]
fn tdx_default_attributes_refuse_set_5_and_set_6_only() {
    let all = EXPECTED
        .iter()
        .map(|e| e.quote)
        .chain(TDX_MORE.iter().map(|(quote, ..)| *quote));
    let mut refused = Vec::new();
    for path in all {
        let Some(bytes) = try_read(path) else {
            return;
        };
        let attributes = td_attributes(path, &bytes);
        let verdict = check_default_td_attributes(&attributes);
        assert_eq!(verdict, tdx_default_verdict(path), "{path}");
        if verdict.is_err() {
            refused.push(path);
        }
    }
    assert_eq!(
        refused,
        [
            "tdx/tdx-quote-v4-3.bin",
            "tdx/tdx-quote-v4-4-tcb-unsupported.bin"
        ]
    );
    // Set 6's error names the missing bit.
    assert_eq!(
        tdx_default_verdict("tdx/tdx-quote-v4-4-tcb-unsupported.bin")
            .unwrap_err()
            .to_string(),
        "TdAttributes: SEPT_VE_DISABLE (bit 28) is clear, which an entry without \
         TdAttributes requires"
    );
}

fn compare(
    quote: &[u8],
    collateral: &Collateral,
    instant: &str,
    provider: &dyn CryptoProvider,
    reference: &TdxReferenceValues,
) -> Result<(), ReferenceError> {
    let t = at(instant);
    let vc = VerifiedCollateral::verify(collateral, t, provider).unwrap();
    let verified = verify_with_collateral(&vc, quote, t, provider).unwrap();
    reference.expect()?.compare(&verified)
}

#[test]
fn tdx_defaults_accept_every_up_to_date_quote_but_the_debug_td() {
    let provider = providers()[0];
    for set in SETS.iter().filter(|s| s.accept) {
        let Some((quote, collateral)) = load(set) else {
            return;
        };
        let e = expected(set.name);
        let verdict = compare(
            &quote,
            &collateral,
            set.at,
            provider,
            &TdxReferenceValues::default(),
        );
        assert_eq!(verdict, tdx_default_verdict(e.quote), "set {}", set.name);
        // Naming the quote's TDATTRIBUTES accepts it, Set 5 included.
        let explicit: TdxReferenceValues =
            serde_json::from_value(serde_json::json!({ "TdAttributes": e.td_attributes })).unwrap();
        compare(&quote, &collateral, set.at, provider, &explicit)
            .unwrap_or_else(|err| panic!("set {}: {err}", set.name));
    }
    for (quote_path, collateral_path, instant, up_to_date) in TDX_MORE {
        if !up_to_date {
            continue;
        }
        let Some(quote) = try_read(quote_path) else {
            return;
        };
        let Some(json) = try_read(collateral_path) else {
            return;
        };
        let collateral = Collateral::from_json(&json).unwrap();
        compare(
            &quote,
            &collateral,
            instant,
            provider,
            &TdxReferenceValues::default(),
        )
        .unwrap_or_else(|err| panic!("{quote_path}: {err}"));
    }
}
