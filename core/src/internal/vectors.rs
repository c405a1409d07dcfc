//! The real vectors of `../shared/testdata` (its README says where each
//! comes from), named once for the tests that walk all of them through
//! the fetch path: SEV-SNP reports with their VCEKs, the real AMD CRLs
//! with an instant each is current at, and the TDX quotes with their
//! collateral and instant (README 1.4).

/// Every SEV-SNP report signed by a VCEK, with that VCEK (DER or PEM).
pub const SNP_VCEK: &[(&str, &str)] = &[
    ("snp/milan-report-1.bin", "snp/milan-vcek-1.der"),
    ("snp/milan-report-2.bin", "snp/milan-vcek-2.der"),
    ("snp/milan-report-3.bin", "snp/milan-vcek-3.der"),
    ("snp/milan-report-4.bin", "snp/milan-vcek-4.pem"),
    ("snp/genoa-report-1.bin", "snp/genoa-vcek-1.pem"),
    ("snp/genoa-report-2.bin", "snp/genoa-vcek-2.pem"),
    ("snp/turin-report-1.bin", "snp/turin-vcek-1.pem"),
    (
        "snp-more/milan-oak-release-report.bin",
        "snp-more/milan-oak-release-vcek.der",
    ),
    (
        "snp-more/milan-teekit-gcp-report.bin",
        "snp-more/milan-teekit-gcp-vcek.pem",
    ),
    (
        "snp-more/milan-constellation-report.bin",
        "snp-more/milan-constellation-vcek.der",
    ),
    (
        "snp-more/genoa-oak-report.bin",
        "snp-more/genoa-oak-vcek.der",
    ),
    (
        "snp-more/genoa-teep-tinfoil-report.bin",
        "snp-more/genoa-teep-tinfoil-vcek.der",
    ),
    (
        "snp-more/genoa-routex-v5-report.bin",
        "snp-more/genoa-routex-v5-vcek.pem",
    ),
    (
        "snp-more/genoa-routex-v3-report.bin",
        "snp-more/genoa-routex-v3-vcek.pem",
    ),
    (
        "snp-more/turin-oak-report.bin",
        "snp-more/turin-oak-vcek.der",
    ),
];

/// Every SEV-SNP report signed by a VLEK, with that VLEK and an instant it
/// is valid at. (The test data has no VLEK CRL.)
pub const SNP_VLEK: &[(&str, &str, &str)] = &[
    (
        "snp/milan-vlek-report-1.bin",
        "snp/milan-vlek-1.der",
        "2025-06-01T00:00:00Z",
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
];

/// The real AMD VCEK CRLs: the product (as in KDS paths), the file, and an
/// instant it is current at.
pub const SNP_CRLS: &[(&str, &str, &str)] = &[
    (
        "Milan",
        "snp/milan-vcek-crl-2026-08-19.der",
        "2026-09-01T00:00:00Z",
    ),
    (
        "Genoa",
        "snp/genoa-vcek-crl-2026-08-19.der",
        "2026-09-01T00:00:00Z",
    ),
    (
        "Turin",
        "snp/turin-vcek-crl-2026-08-19.der",
        "2026-09-01T00:00:00Z",
    ),
    (
        "Milan",
        "snp/milan-vcek-crl-2025-05-06.der",
        "2026-03-01T00:00:00Z",
    ),
    (
        "Genoa",
        "snp/genoa-vcek-crl-2024-10-23.der",
        "2025-10-01T00:00:00Z",
    ),
];

/// The product (as in KDS paths) a report's file name starts with.
pub fn snp_product_of(report: &str) -> Option<&'static str> {
    let name = report.rsplit('/').next().unwrap_or(report);
    [("milan", "Milan"), ("genoa", "Genoa"), ("turin", "Turin")]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, product)| product)
}

/// Where a TDX quote's collateral comes from.
#[derive(Clone, Copy, Debug)]
pub enum TdxSource {
    /// A collateral JSON file (`QuoteCollateralV3`).
    Json(&'static str),
    /// `tdx/tdx-collateral-3.json` with the PCS TCB info of set 3b.
    Json3b,
    /// The raw PCS responses of `tdx/` set 4.
    Pcs4,
    /// The raw PCS responses of a `tdx-more/` vector, by name.
    More(&'static str),
}

impl TdxSource {
    /// For raw PCS responses, their files: TCB info, QE identity, PCK
    /// CRL, root CA CRL, TCB signing chain, PCK CRL issuer chain.
    pub fn pcs_files(&self) -> Option<[alloc::string::String; 6]> {
        use alloc::format;
        use alloc::string::ToString;
        match self {
            Self::Pcs4 => Some(
                [
                    "tdx/tdx-tcbinfo-4-pcs.json",
                    "tdx/tdx-qeidentity-4-pcs.json",
                    "tdx/tdx-pckcrl-platform-4.der",
                    "tdx/tdx-rootcrl-4.der",
                    "tdx/tdx-tcb-signing-chain-4.pem",
                    "tdx/tdx-pckcrl-issuer-chain-4.pem",
                ]
                .map(ToString::to_string),
            ),
            Self::More(name) => Some(
                [
                    "pcs-tcbinfo.json",
                    "pcs-qeidentity.json",
                    "pcs-pckcrl.der",
                    "pcs-rootcrl.der",
                    "tcb-issuer-chain.pem",
                    "pckcrl-issuer-chain.pem",
                ]
                .map(|suffix| format!("tdx-more/{name}-{suffix}")),
            ),
            Self::Json(_) | Self::Json3b => None,
        }
    }

    /// The collateral, read from [`super::testdata_dir`] (`None`, with a
    /// `SKIPPED:` line, when a file is missing).
    #[cfg(feature = "std")]
    pub fn collateral(&self) -> Option<crate::evidence::tdx::Collateral> {
        use crate::evidence::tdx::Collateral;
        let text = |path: &str| {
            super::testdata_file(path)
                .and_then(|bytes| alloc::string::String::from_utf8(bytes).ok())
        };
        let collateral = match self {
            Self::Json(file) => Collateral::from_json(&super::testdata_file(file)?).ok()?,
            Self::Json3b => {
                Collateral::from_json(&super::testdata_file("tdx/tdx-collateral-3.json")?)
                    .ok()?
                    .with_pcs_tcb_info(&text("tdx/tdx-tcbinfo-3b-pcs.json")?)
                    .ok()?
            }
            Self::Pcs4 | Self::More(_) => {
                let [tcb, qe, pck_crl, root_crl, signing, pck_chain] = self.pcs_files()?;
                let signing = text(&signing)?;
                Collateral::from_pcs_parts(
                    &text(&tcb)?,
                    &signing,
                    &text(&qe)?,
                    &signing,
                    &super::testdata_file(&pck_crl)?,
                    &text(&pck_chain)?,
                    &super::testdata_file(&root_crl)?,
                )
                .ok()?
            }
        };
        Some(collateral)
    }
}

/// A real TDX quote, its collateral, the instant it is judged at, and
/// whether it is a debug TD.
#[derive(Clone, Copy, Debug)]
pub struct TdxVector {
    /// The quote's file.
    pub quote: &'static str,
    /// Its collateral.
    pub collateral: TdxSource,
    /// RFC 3339.
    pub at: &'static str,
    /// A debug TD (set 5): accepted only when debug is allowed.
    pub debug: bool,
}

const fn tdx(quote: &'static str, collateral: TdxSource, at: &'static str) -> TdxVector {
    TdxVector {
        quote,
        collateral,
        at,
        debug: false,
    }
}

/// Every real TDX quote with its collateral: sets 1, 2, 3, 3b and 4 (JSON
/// collateral), 5 (debug) and 6 (PCS responses of set 4), and the eight
/// `tdx-more` quotes with their PCS responses.
pub const TDX: &[TdxVector] = &[
    tdx(
        "tdx/tdx-quote-v4-1.bin",
        TdxSource::Json("tdx/tdx-collateral-1.json"),
        "2025-07-01T00:00:00Z",
    ),
    tdx(
        "tdx/tdx-quote-v4-2.bin",
        TdxSource::Json("tdx/tdx-collateral-2.json"),
        "2025-09-15T00:00:00Z",
    ),
    tdx(
        "tdx/tdx-quote-v5-1.bin",
        TdxSource::Json("tdx/tdx-collateral-3.json"),
        "2026-03-01T00:00:00Z",
    ),
    tdx(
        "tdx/tdx-quote-v5-1.bin",
        TdxSource::Json3b,
        "2026-03-01T00:00:00Z",
    ),
    tdx(
        "tdx/tdx-quote-v5-2-tcb-unsupported.bin",
        TdxSource::Json("tdx/tdx-collateral-3.json"),
        "2026-03-01T00:00:00Z",
    ),
    TdxVector {
        quote: "tdx/tdx-quote-v4-3.bin",
        collateral: TdxSource::Pcs4,
        at: "2023-07-01T01:00:00Z",
        debug: true,
    },
    tdx(
        "tdx/tdx-quote-v4-4-tcb-unsupported.bin",
        TdxSource::Pcs4,
        "2023-07-01T01:00:00Z",
    ),
    tdx(
        "tdx-more/tdx-v4-teep-neardirect-quote.bin",
        TdxSource::More("tdx-v4-teep-neardirect"),
        "2026-04-24T02:10:37Z",
    ),
    tdx(
        "tdx-more/tdx-v4-teep-nearcloud-gateway-quote.bin",
        TdxSource::More("tdx-v4-teep-nearcloud-gateway"),
        "2026-04-24T02:06:14Z",
    ),
    tdx(
        "tdx-more/tdx-v4-teep-chutes-quote.bin",
        TdxSource::More("tdx-v4-teep-chutes"),
        "2026-06-29T02:07:25Z",
    ),
    tdx(
        "tdx-more/tdx-v4-teep-redpill-phala-quote.bin",
        TdxSource::More("tdx-v4-teep-redpill-phala"),
        "2026-06-10T01:49:17Z",
    ),
    tdx(
        "tdx-more/tdx-v4-teep-tinfoil-quote.bin",
        TdxSource::More("tdx-v4-teep-tinfoil"),
        "2026-06-29T02:08:05Z",
    ),
    tdx(
        "tdx-more/tdx-v5-automata-alibaba-quote.bin",
        TdxSource::More("tdx-v5-automata-alibaba"),
        "2026-04-24T02:10:37Z",
    ),
    tdx(
        "tdx-more/tdx-v4-zkdcap-quote.bin",
        TdxSource::More("tdx-v4-zkdcap"),
        "2025-02-01T00:00:00Z",
    ),
    tdx(
        "tdx-more/tdx-v4-oak-quote.bin",
        TdxSource::More("tdx-v4-oak"),
        "2025-11-01T00:00:00Z",
    ),
];
