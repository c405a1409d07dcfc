//! What to fetch for a piece of evidence, read with core's parsers, and the
//! TDX collateral assembled from its PCS parts.
//!
//! - SEV-SNP: the VCEK is addressed by the report's product, hardware id
//!   (`AttestationReport::hw_id`) and REPORTED_TCB.
//! - TDX: the collateral is addressed by the FMSPC and the issuing CA of
//!   the PCK certificate in the quote; the four PCS answers become core's
//!   [`Collateral`] through `Collateral::from_pcs_parts`, which cuts the
//!   signed bytes out of the responses without re-serializing them.

use accord_core::evidence::snp::{AttestationReport, Product, SigningKey, TcbVersion};
use accord_core::evidence::tdx::pck::PckExtension;
use accord_core::evidence::tdx::{Collateral, Quote};
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, pem};

use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::item::{Item, KeyKind, PckCa};

/// The VCEK item for a report verified as `product`. Refused for a report
/// signed by a VLEK (AMD serves VLEKs to the cloud provider only) and for a
/// REPORTED_TCB that does not decode for `product`.
pub fn vcek_item(report: &AttestationReport<'_>, product: Product) -> Result<Item, String> {
    if report.flags.signing_key == SigningKey::Vlek {
        return Err(
            "the report is signed by a VLEK, which AMD's KDS serves only to the cloud provider"
                .into(),
        );
    }
    let tcb = TcbVersion::decode(report.reported_tcb, product).map_err(|_| {
        format!(
            "REPORTED_TCB {:#018x} does not decode for {product}",
            report.reported_tcb
        )
    })?;
    Ok(Item::Vcek {
        product,
        hw_id: report.hw_id(product).to_vec(),
        tcb,
    })
}

/// The CRL item for a report's signing key.
pub fn crl_item(report: &AttestationReport<'_>, product: Product) -> Item {
    let key = match report.flags.signing_key {
        SigningKey::Vlek => KeyKind::Vlek,
        SigningKey::Vcek => KeyKind::Vcek,
    };
    Item::Crl { key, product }
}

/// The FMSPC and issuing CA of the PCK certificate in a quote.
pub fn pck_target(quote: &[u8]) -> Result<([u8; 6], PckCa), String> {
    let quote = Quote::parse(quote).map_err(|err| format!("the quote does not parse: {err}"))?;
    let text = std::str::from_utf8(quote.pck_chain_pem)
        .map_err(|_| "the quote's PCK chain is not PEM text".to_owned())?;
    let chain = pem::decode_all(text, "CERTIFICATE")
        .map_err(|err| format!("the quote's PCK chain is not PEM: {err}"))?;
    let leaf_der = chain
        .first()
        .ok_or_else(|| "the quote carries no PCK certificate".to_owned())?;
    let leaf = Certificate::from_der(leaf_der)
        .map_err(|err| format!("the quote's PCK certificate does not parse: {err}"))?;
    let extension = PckExtension::from_certificate(&leaf)
        .map_err(|err| format!("the quote's PCK certificate: {err}"))?;
    let issuer = leaf.issuer_common_name().unwrap_or("");
    let ca = PckCa::from_issuer_common_name(issuer).ok_or_else(|| {
        format!(
            "the PCK certificate's issuer {issuer:?} is neither the Platform nor the Processor CA"
        )
    })?;
    Ok((extension.fmspc, ca))
}

/// TDX collateral as fetched: the assembled document and its four parts
/// (TCB info, QE identity, PCK CRL, Root CA CRL) with their sources.
#[derive(Clone, Debug)]
pub struct TdxCollateral {
    /// The collateral core verifies.
    pub collateral: Collateral,
    /// The parts it was built from.
    pub parts: Vec<Fetched>,
}

/// Fetches the collateral for `fmspc` and `ca`, for use at `at`; its CRLs
/// are served and cached only if signed by the issuers the fetcher trusts
/// ([`Fetcher::fetch_authenticated`]).
pub async fn fetch_tdx_collateral(
    fetcher: &Fetcher,
    fmspc: [u8; 6],
    ca: PckCa,
    at: UnixTime,
) -> Result<TdxCollateral, FetchError> {
    let tcb_info = fetcher
        .fetch_authenticated(&Item::TcbInfo { fmspc }, at)
        .await?;
    let qe_identity = fetcher.fetch_authenticated(&Item::QeIdentity, at).await?;
    let pck_crl = fetcher
        .fetch_authenticated(&Item::PckCrl { ca }, at)
        .await?;
    let root_crl = fetcher.fetch_authenticated(&Item::RootCaCrl, at).await?;
    let text = |fetched: &Fetched| {
        String::from_utf8(fetched.body.clone()).map_err(|_| {
            FetchError(format!(
                "{} ({}) is not UTF-8 text",
                fetched.item, fetched.url
            ))
        })
    };
    let chain = |fetched: &Fetched| fetched.issuer_chain.clone().unwrap_or_default();
    let collateral = Collateral::from_pcs_parts(
        &text(&tcb_info)?,
        &chain(&tcb_info),
        &text(&qe_identity)?,
        &chain(&qe_identity),
        &pck_crl.body,
        &chain(&pck_crl),
        &root_crl.body,
    )
    .map_err(|err| FetchError(format!("the PCS answers do not form TDX collateral: {err}")))?;
    Ok(TdxCollateral {
        collateral,
        parts: vec![tcb_info, qe_identity, pck_crl, root_crl],
    })
}
