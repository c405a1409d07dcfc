//! `accord evidence verify`: checks one SEV-SNP report or TDX quote offline,
//! with the same core code the coordinator uses.
//!
//! Exit status 0 and the decoded claims when the evidence is valid; 1 and a
//! one-line reason when it is not; 2 when the command line or an input file
//! is unusable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use accord_core::crypto::{CryptoProvider, default_provider};
use accord_core::evidence::snp::{
    self, Certs, DefaultPolicy, Product, SnpClaims, SnpReferenceValues, TrustRoots,
};
use accord_core::evidence::tdx::{
    self, Collateral, TdxClaims, TdxPolicy, TdxReferenceValues, TrustedRoot, VerifiedCollateral,
};
use accord_core::time::UnixTime;
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::collateral_args::CollateralArgs;
use crate::{evidence_fetch, input};

/// Subcommands of `accord evidence`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Verify one SEV-SNP attestation report or TDX quote.
    ///
    /// SEV-SNP: the report is checked against its VCEK or VLEK, which must
    /// chain to AMD's genuine roots (embedded, pinned) unless --trust-root
    /// replaces them. TDX: full DCAP verification with the collateral
    /// document (PCK chain, CRLs, TCB info, QE identity, TCB level),
    /// chained to Intel's genuine root unless --tdx-trust-root replaces it.
    ///
    /// What is not given is fetched: without --vcek (and none beside the
    /// report) the VCEK comes from AMD's KDS with the product's CRL (unless
    /// --crl); without --collateral the TDX collateral for the quote's FMSPC
    /// comes from Intel's PCS (or a PCCS). Nothing fetched is trusted: it
    /// is verified against the pinned roots like a file would be. With
    /// --cache the collateral is kept and reused while valid (refreshed
    /// before its nextUpdate, and served while still valid when the vendor
    /// fails); --offline uses the cache only. --save-collateral writes what
    /// was used and prints the command that reproduces the verdict offline.
    /// Collateral that cannot be obtained exits 2 with what is missing.
    ///
    /// Without --reference the default policy checks authenticity only, and
    /// still refuses debug-enabled guests unless --allow-debug is given (TDX
    /// also requires TCB status UpToDate). With --reference the reference
    /// values decide.
    #[command(verbatim_doc_comment)]
    Verify(Box<VerifyArgs>),
}

/// CPU generation of an SEV-SNP report.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProductArg {
    /// 3rd-generation EPYC.
    Milan,
    /// 4th-generation EPYC.
    Genoa,
    /// 5th-generation EPYC.
    Turin,
}

impl From<ProductArg> for Product {
    fn from(product: ProductArg) -> Self {
        match product {
            ProductArg::Milan => Product::Milan,
            ProductArg::Genoa => Product::Genoa,
            ProductArg::Turin => Product::Turin,
        }
    }
}

/// Arguments of `accord evidence verify`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("evidence").required(true).args(["snp", "tdx"]))]
// Offline, this command has nothing but the cache.
#[command(mut_arg("offline", |arg| arg.requires("cache")))]
pub struct VerifyArgs {
    /// SEV-SNP attestation report (1184 bytes, binary).
    #[arg(long, value_name = "REPORT")]
    snp: Option<PathBuf>,

    /// VCEK or VLEK certificate (DER or PEM). Default: vcek.pem, vcek.der,
    /// vlek.pem or vlek.der beside the report.
    #[arg(long, value_name = "CERT", requires = "snp")]
    vcek: Option<PathBuf>,

    /// CPU generation. Default: from the report's CPUID (v3+) or the
    /// certificate's product name.
    #[arg(long, value_enum, requires = "snp")]
    product: Option<ProductArg>,

    /// Replace AMD's genuine roots with this ARK (DER or PEM). Meant for the
    /// simulated TEE; prints a warning.
    #[arg(long, value_name = "ARK.pem", requires = "snp")]
    trust_root: Option<PathBuf>,

    /// The ASK that goes with --trust-root. Default: ask.pem or ask.der
    /// beside the report.
    #[arg(long, value_name = "ASK.pem", requires = "trust_root")]
    ask: Option<PathBuf>,

    /// An AMD CRL (DER or PEM, signed by the ARK) to check revocation
    /// against.
    #[arg(long, value_name = "CRL", requires = "snp")]
    crl: Option<PathBuf>,

    /// TDX quote (v4 or v5, binary).
    #[arg(long, value_name = "QUOTE")]
    tdx: Option<PathBuf>,

    /// TDX collateral document (JSON: TCB info, QE identity, CRLs, issuer
    /// chains). Default: fetched for the quote's FMSPC.
    #[arg(long, value_name = "COLLATERAL.json", requires = "tdx")]
    collateral: Option<PathBuf>,

    /// Replace Intel's genuine SGX Root CA with this root (DER or PEM) for
    /// the TDX collateral and the PCK chain. Meant for the simulated TDX;
    /// prints a warning.
    #[arg(long, value_name = "ROOT.der", requires = "tdx")]
    tdx_trust_root: Option<PathBuf>,

    #[command(flatten)]
    fetch: CollateralArgs,

    /// Write the collateral used (vcek.der, crl.der or collateral.json) to
    /// DIR and print the command that reproduces the verdict offline.
    #[arg(long, value_name = "DIR")]
    save_collateral: Option<PathBuf>,

    /// Instant at which certificates, CRLs and collateral must be valid
    /// (RFC 3339, e.g. 2026-03-01T00:00:00Z). Default: now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,

    /// Reference values: a manifest's `ReferenceValues` object
    /// ({"snp": [...], "tdx": [...]}) or one entry. The evidence is valid if
    /// it satisfies any entry of its kind.
    #[arg(long, value_name = "REFVALUES.json")]
    reference: Option<PathBuf>,

    /// Without --reference, accept guests that allow debugging.
    #[arg(long, conflicts_with = "reference")]
    allow_debug: bool,

    /// Print the decoded claims as JSON.
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    /// The arguments that decide the verdict besides the collateral files,
    /// with the instant pinned: for the reproduce-offline command.
    fn replay(&self, at: UnixTime) -> evidence_fetch::Replay {
        let mut options: Vec<String> = Vec::new();
        let mut push = |flag: &str, path: &Option<PathBuf>| {
            if let Some(path) = path {
                options.push(flag.to_owned());
                options.push(path.display().to_string());
            }
        };
        push("--snp", &self.snp);
        push("--tdx", &self.tdx);
        push("--trust-root", &self.trust_root);
        push("--ask", &self.ask);
        push("--tdx-trust-root", &self.tdx_trust_root);
        push("--reference", &self.reference);
        if let Some(product) = self.product {
            options.push("--product".to_owned());
            options.push(format!("{}", Product::from(product)).to_lowercase());
        }
        options.push("--at".to_owned());
        options.push(at.to_string());
        if self.allow_debug {
            options.push("--allow-debug".to_owned());
        }
        if self.json {
            options.push("--json".to_owned());
        }
        evidence_fetch::Replay { options }
    }
}

/// Why verification ended: the evidence was refused (exit 1) or the input
/// could not be used (exit 2).
pub(crate) enum Failure {
    /// The evidence is invalid.
    Invalid(String),
    /// The command line, an input or the collateral is unusable.
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Usage(err)
    }
}

/// Runs an `accord evidence` subcommand.
pub fn run(command: EvidenceCommand) -> ExitCode {
    let EvidenceCommand::Verify(args) = command;
    let provider = default_provider();
    let outcome = match (&args.snp, &args.tdx) {
        (Some(report), _) => verify_snp(&args, report, provider),
        (None, Some(quote)) => verify_tdx(&args, quote, provider),
        (None, None) => Err(Failure::Usage(anyhow::anyhow!(
            "pass --snp REPORT or --tdx QUOTE"
        ))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(reason)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "valid": false, "reason": reason })
                );
            }
            eprintln!("INVALID: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The reference entries of one kind in a reference file.
fn reference_entries<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: &str,
) -> anyhow::Result<Vec<T>> {
    let bytes = input::read(path)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))?;
    let is_reference_values = value
        .as_object()
        .is_some_and(|o| o.contains_key("snp") || o.contains_key("tdx"));
    if is_reference_values {
        let Some(list) = value.get(kind) else {
            bail!("{}: has no `{kind}` reference values", path.display());
        };
        let entries: Vec<T> = serde_json::from_value(list.clone())
            .with_context(|| format!("{}: invalid `{kind}` reference values", path.display()))?;
        if entries.is_empty() {
            bail!("{}: the `{kind}` list is empty", path.display());
        }
        Ok(entries)
    } else {
        let entry = serde_json::from_value(value)
            .with_context(|| format!("{}: not a {kind} reference-value entry", path.display()))?;
        Ok(vec![entry])
    }
}

/// Joins the reasons of several rejected reference entries into one line.
fn no_entry_matched(reasons: Vec<String>) -> String {
    if reasons.len() == 1 {
        reasons.into_iter().next().unwrap_or_default()
    } else {
        let listed: Vec<String> = reasons
            .iter()
            .enumerate()
            .map(|(i, r)| format!("entry {i}: {r}"))
            .collect();
        format!("no reference entry matched ({})", listed.join("; "))
    }
}

fn warn_custom_root(path: &Path) {
    eprintln!(
        "WARNING: --trust-root {} replaces AMD's genuine roots; this evidence proves nothing about real \
         AMD hardware (use it only for the INSECURE simulated TEE or tests)",
        path.display()
    );
}

fn warn_custom_tdx_root(path: &Path) {
    eprintln!(
        "WARNING: --tdx-trust-root {} replaces Intel's genuine SGX Root CA; this evidence proves nothing \
         about real Intel hardware (use it only for the INSECURE simulated TDX or tests)",
        path.display()
    );
}

fn verify_snp(
    args: &VerifyArgs,
    report_path: &Path,
    provider: &dyn CryptoProvider,
) -> Result<(), Failure> {
    let at = input::instant(args.at.as_deref())?;
    let report = input::read(report_path)?;
    let leaf_path = match &args.vcek {
        Some(path) => Some(path.clone()),
        None => input::sibling(
            report_path,
            &["vcek.pem", "vcek.der", "vlek.pem", "vlek.der"],
        ),
    };
    let custom = match &args.trust_root {
        Some(ark_path) => {
            warn_custom_root(ark_path);
            let ark = input::read_first_certificate(ark_path)?;
            let ask_path = match &args.ask {
                Some(path) => path.clone(),
                None => {
                    input::sibling(report_path, &["ask.pem", "ask.der"]).with_context(|| {
                        format!(
                            "--trust-root needs its ASK: pass --ask ASK.pem (none beside {})",
                            report_path.display()
                        )
                    })?
                }
            };
            Some((ark, input::read_first_certificate(&ask_path)?))
        }
        None => None,
    };
    let roots = match &custom {
        Some((ark, ask)) => TrustRoots::custom(ark, ask),
        None => TrustRoots::genuine(),
    };
    let given_crl = args.crl.as_deref().map(input::read_crl).transpose()?;
    let (leaf, crl) = match leaf_path {
        Some(path) => (input::read_certificate(&path)?, given_crl),
        None => {
            let fetched = evidence_fetch::snp_collateral(
                &args.fetch,
                &report,
                args.product.map(Product::from),
                &roots,
                given_crl.is_none(),
                at,
                provider,
            )?;
            (fetched.leaf, given_crl.or(fetched.crl))
        }
    };
    if let Some(dir) = &args.save_collateral {
        let command = evidence_fetch::save_snp(dir, &leaf, crl.as_deref(), &args.replay(at))?;
        eprintln!("to reproduce this verdict offline: {command}");
    }
    let claims = snp::verify(
        &report,
        &Certs { leaf: &leaf },
        args.product.map(Product::from),
        &roots,
        crl.as_deref(),
        at,
        provider,
    )
    .map_err(|err| Failure::Invalid(format!("SEV-SNP: {err}")))?;

    let policy_result = match &args.reference {
        Some(path) => {
            let entries: Vec<SnpReferenceValues> = reference_entries(path, "snp")?;
            let mut reasons = Vec::new();
            for entry in &entries {
                match entry.check(&claims) {
                    Ok(()) => {
                        reasons.clear();
                        break;
                    }
                    Err(mismatches) => reasons.push(join(&mismatches)),
                }
            }
            if reasons.len() == entries.len() {
                Err(no_entry_matched(reasons))
            } else {
                Ok(())
            }
        }
        None => DefaultPolicy {
            allow_debug: args.allow_debug,
        }
        .check(&claims)
        .map_err(|mismatches| format!("{} (pass --allow-debug to accept)", join(&mismatches))),
    };
    policy_result.map_err(|reason| Failure::Invalid(format!("SEV-SNP: {reason}")))?;
    print_snp(&claims, args.json, custom.is_some(), at)
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_snp(
    claims: &SnpClaims,
    json: bool,
    custom_root: bool,
    at: UnixTime,
) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string_pretty(claims).context("serializing claims")?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "VALID: SEV-SNP report v{} from {} ({}), signed by the {}, verified at {at}{}",
        claims.version,
        claims.product,
        claims.product_name,
        claims.signing_key,
        if custom_root {
            " against a CUSTOM root"
        } else {
            " against AMD's genuine roots"
        }
    );
    let value = serde_json::to_value(claims).context("serializing claims")?;
    for key in [
        "measurement",
        "host_data",
        "report_data",
        "chip_id",
        "vmpl",
        "guest_svn",
        "reported_tcb",
        "policy",
    ] {
        if let Some(field) = value.get(key) {
            println!("  {key}: {field}");
        }
    }
    Ok(())
}

fn verify_tdx(
    args: &VerifyArgs,
    quote_path: &Path,
    provider: &dyn CryptoProvider,
) -> Result<(), Failure> {
    let at = input::instant(args.at.as_deref())?;
    let quote = input::read(quote_path)?;
    let custom_root = match &args.tdx_trust_root {
        Some(path) => {
            warn_custom_tdx_root(path);
            Some(TrustedRoot {
                root_ca: input::read_first_certificate(path)?,
            })
        }
        None => None,
    };
    let collateral = match &args.collateral {
        Some(path) => Collateral::from_json(&input::read(path)?)
            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?,
        None => evidence_fetch::tdx_collateral(&args.fetch, &quote, custom_root.as_ref(), at)?,
    };
    if let Some(dir) = &args.save_collateral {
        let command = evidence_fetch::save_tdx(dir, &collateral, &args.replay(at))?;
        eprintln!("to reproduce this verdict offline: {command}");
    }

    let claims: TdxClaims = match &args.reference {
        None => {
            let policy = TdxPolicy {
                allow_debug: args.allow_debug,
                ..TdxPolicy::default()
            };
            let verified = match &custom_root {
                None => tdx::verify_with_policy(&quote, &collateral, at, provider, &policy),
                Some(root) => {
                    VerifiedCollateral::verify_with_root(&collateral, Some(root), at, provider)
                        .and_then(|verified_collateral| {
                            let verified = tdx::verify_with_collateral(
                                &verified_collateral,
                                &quote,
                                at,
                                provider,
                            )?;
                            policy.check(&verified)?;
                            Ok(verified.to_claims())
                        })
                }
            };
            verified.map_err(|err| Failure::Invalid(format!("TDX: {err}")))?
        }
        Some(path) => {
            let entries: Vec<TdxReferenceValues> = reference_entries(path, "tdx")?;
            let verified_collateral = VerifiedCollateral::verify_with_root(
                &collateral,
                custom_root.as_ref(),
                at,
                provider,
            )
            .map_err(|err| Failure::Invalid(format!("TDX: {err}")))?;
            let mut reasons = Vec::new();
            let mut accepted = None;
            for entry in &entries {
                let expected = entry
                    .expect()
                    .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
                match tdx::verify_with_reference(
                    &verified_collateral,
                    &quote,
                    at,
                    provider,
                    &expected,
                ) {
                    Ok(verified) => {
                        accepted = Some(verified.to_claims());
                        break;
                    }
                    Err(err) => reasons.push(err.to_string()),
                }
            }
            accepted
                .ok_or_else(|| Failure::Invalid(format!("TDX: {}", no_entry_matched(reasons))))?
        }
    };
    if args.json {
        let text = serde_json::to_string_pretty(&claims).context("serializing claims")?;
        println!("{text}");
        return Ok(());
    }
    let value = serde_json::to_value(&claims).context("serializing claims")?;
    println!(
        "VALID: TDX quote v{} verified at {at}, TCB status {}{}",
        value["header"]["version"],
        value["tcb_status"],
        if custom_root.is_some() {
            " against a CUSTOM root"
        } else {
            ""
        }
    );
    for (section, key) in [
        ("body", "mr_td"),
        ("body", "mr_config_id"),
        ("body", "report_data"),
        ("pck", "fmspc"),
    ] {
        if let Some(field) = value.get(section).and_then(|s| s.get(key)) {
            println!("  {key}: {field}");
        }
    }
    Ok(())
}
