//! The collateral `accord evidence verify` fetches when it is not given: the
//! VCEK and the product's CRL from AMD's KDS, or the TDX collateral from
//! Intel's PCS (or a PCCS), through `accord-collateral` and its cache.
//!
//! Nothing fetched is trusted: the caller verifies it with core exactly as
//! it verifies files. The one check made here is on a fetched CRL, against
//! the ARK it must be issued by, so that a CRL which does not verify is
//! neither cached nor preferred to a valid cached one. Progress, and where
//! each piece came from, go to stderr.

use std::path::{Path, PathBuf};

use accord_collateral::{
    Fetched, Source, crl_item, fetch_tdx_collateral, human, pck_target, vcek_item,
};
use accord_core::crypto::CryptoProvider;
use accord_core::evidence::ReferenceValues;
use accord_core::evidence::snp::{
    AttestationReport, CertRole, Product, SnpError, TrustRoots, resolve_product,
};
use accord_core::evidence::tdx::{Collateral, Quote, TdxError, TdxReferenceValues, TrustedRoot};
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, Crl};
use anyhow::{Context, anyhow};

use crate::collateral_args::CollateralArgs;
use crate::evidence::Failure;

/// The options of a reproducing command besides the collateral files.
#[derive(Clone, Debug)]
pub struct Replay {
    /// `--snp R --at T …`, in order.
    pub options: Vec<String>,
}

/// A fetched VCEK and, if asked for, the product's CRL (both DER).
#[derive(Clone, Debug)]
pub struct SnpCollateral {
    /// The VCEK.
    pub leaf: Vec<u8>,
    /// The CRL.
    pub crl: Option<Vec<u8>>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the fetch runtime")
}

/// Says where a piece of collateral came from.
fn tell(fetched: &Fetched) {
    let origin = match fetched.source {
        Source::Vendor => format!("fetched from {}", fetched.url),
        Source::Cache | Source::CacheVendorFailed => {
            format!("from the cache, fetched {} ago", human(fetched.age))
        }
    };
    eprintln!(
        "{}: {origin}, valid until {}",
        fetched.item, fetched.validity.not_after
    );
}

/// Fetches the VCEK for `report` and, with `with_crl`, the CRL for its
/// product (checked to be issued by the ARK of `roots`).
pub(crate) fn snp_collateral(
    options: &CollateralArgs,
    report: &[u8],
    product: Option<Product>,
    roots: &TrustRoots<'_>,
    with_crl: bool,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<SnpCollateral, Failure> {
    let parsed = AttestationReport::parse(report)
        .map_err(|err| Failure::Invalid(format!("SEV-SNP: {}", SnpError::from(err))))?;
    let product = resolve_product(product, parsed.product_from_cpuid())
        .map_err(|err| Failure::Invalid(format!("SEV-SNP: {err}")))?
        .ok_or_else(|| {
            anyhow!(
                "no VCEK given, and the report (version {}) does not name its CPU generation: pass \
                 --product to fetch its VCEK, or --vcek CERT",
                parsed.version
            )
        })?;
    let vcek = vcek_item(&parsed, product).map_err(|err| anyhow!("{err}: pass --vcek CERT"))?;
    let crl = with_crl.then(|| crl_item(&parsed, product));
    let ark = roots
        .get(product, CertRole::Ark, provider)
        .map_err(|err| Failure::Invalid(format!("SEV-SNP: {err}")))?;
    let issued_by_ark = |der: &[u8], _: Option<&str>| -> Result<(), String> {
        let ark = Certificate::from_der(ark).map_err(|err| err.to_string())?;
        Crl::from_der(der)
            .and_then(|crl| crl.verify_issued_by(&ark, provider))
            .map_err(|err| format!("not issued by the {product} ARK ({err})"))
    };
    let fetcher = options.reporting_fetcher()?;
    let (leaf, crl) = runtime()?
        .block_on(async {
            let leaf = fetcher.fetch(&vcek, at).await?;
            let crl = match &crl {
                Some(item) => Some(fetcher.fetch_checked(item, at, &issued_by_ark).await?),
                None => None,
            };
            Ok::<_, accord_collateral::FetchError>((leaf, crl))
        })
        .map_err(|err| anyhow!("{err}"))?;
    tell(&leaf);
    if let Some(crl) = &crl {
        tell(crl);
    }
    Ok(SnpCollateral {
        leaf: leaf.body,
        crl: crl.map(|crl| crl.body),
    })
}

/// Fetches the TDX collateral for the quote's FMSPC and PCK CA, its CRLs
/// checked to be signed under `root` (Intel's pinned root when `None`).
pub(crate) fn tdx_collateral(
    options: &CollateralArgs,
    quote: &[u8],
    root: Option<&TrustedRoot>,
    at: UnixTime,
) -> Result<Collateral, Failure> {
    // A quote that does not parse is refused as the offline path refuses it.
    Quote::parse(quote).map_err(|err| Failure::Invalid(format!("TDX: {}", TdxError::from(err))))?;
    let (fmspc, ca) = pck_target(quote).map_err(|err| Failure::Invalid(format!("TDX: {err}")))?;
    let trust = ReferenceValues {
        tdx: root
            .map(|root| TdxReferenceValues {
                insecure_trusted_root: Some(root.clone()),
                ..TdxReferenceValues::default()
            })
            .into_iter()
            .collect(),
        ..ReferenceValues::default()
    };
    let fetcher = options.reporting_fetcher()?.trusting(trust);
    let fetched = runtime()?
        .block_on(fetch_tdx_collateral(&fetcher, fmspc, ca, at))
        .map_err(|err| anyhow!("{err}"))?;
    for part in &fetched.parts {
        tell(part);
    }
    Ok(fetched.collateral)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    accord_fs_store::write_atomic(&path, bytes, 0o644)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn command(replay: &Replay, files: &[(&str, PathBuf)]) -> String {
    let mut words = vec![
        "accord".to_owned(),
        "evidence".to_owned(),
        "verify".to_owned(),
    ];
    words.extend(replay.options.iter().cloned());
    for (flag, path) in files {
        words.push((*flag).to_owned());
        words.push(path.display().to_string());
    }
    words
        .iter()
        .map(|word| quote_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as a POSIX shell reads it back.
fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Writes `vcek.der` (and `crl.der`) to `dir`; returns the reproducing
/// command.
pub(crate) fn save_snp(
    dir: &Path,
    leaf: &[u8],
    crl: Option<&[u8]>,
    replay: &Replay,
) -> anyhow::Result<String> {
    let mut files = vec![("--vcek", write(dir, "vcek.der", leaf)?)];
    if let Some(crl) = crl {
        files.push(("--crl", write(dir, "crl.der", crl)?));
    }
    Ok(command(replay, &files))
}

/// Writes `collateral.json` to `dir`; returns the reproducing command.
pub(crate) fn save_tdx(
    dir: &Path,
    collateral: &Collateral,
    replay: &Replay,
) -> anyhow::Result<String> {
    let path = write(dir, "collateral.json", collateral.to_json().as_bytes())?;
    Ok(command(replay, &[("--collateral", path)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducing_commands_are_shell_quoted() {
        assert_eq!(quote_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote_word("it's"), r"'it'\''s'");
        assert_eq!(quote_word("--at"), "--at");
        let replay = Replay {
            options: vec!["--snp".into(), "r.bin".into()],
        };
        assert_eq!(
            command(&replay, &[("--vcek", PathBuf::from("d/vcek.der"))]),
            "accord evidence verify --snp r.bin --vcek d/vcek.der"
        );
    }
}
