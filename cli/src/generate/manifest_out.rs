//! The manifest `accord generate` writes or updates: the existing one's
//! reference values, owner keys and threshold are kept (changed only by
//! the flags), and its Policies become the ones generated in this run
//! (a policy no input produces any more is dropped, so an old pod spec
//! stops being admitted).

use accord_core::manifest::{Manifest, ManifestDoc};
use accord_core::pins;
use anyhow::Context;

use super::{Failure, GenerateArgs};
use crate::keys::KeyRole;
use crate::manifest_cmd::owner_key_hex;

/// The manifest before this run's policies: the existing one (if any)
/// with the flags applied. Its `policies` are still the old ones (the
/// coordinator's are the fallback pin when no coordinator is among the
/// inputs). Without `require_reference_values` (the coordinator alone) a
/// manifest without reference values is returned as is: none is written.
pub(super) fn prepare(
    args: &GenerateArgs,
    require_reference_values: bool,
) -> Result<ManifestDoc, Failure> {
    let mut doc = match std::fs::read(&args.manifest) {
        Ok(bytes) => Manifest::from_json(&bytes)
            .map_err(|e| {
                Failure::Invalid(vec![format!(
                    "{}: not a manifest: {e} (fix it, or remove it to start a new one)",
                    args.manifest.display()
                )])
            })?
            .doc()
            .clone(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ManifestDoc {
            policies: Default::default(),
            reference_values: Default::default(),
            workload_owner_pub_keys: Vec::new(),
            seedshare_owner_pub_keys: Vec::new(),
            seedshare_threshold: 1,
        },
        Err(e) => {
            return Err(Failure::Usage(
                anyhow::Error::new(e).context(format!("cannot read {}", args.manifest.display())),
            ));
        }
    };
    if let Some(path) = &args.reference_values {
        let bytes = crate::input::read(path)?;
        doc.reference_values = pins::parse_reference_values(&bytes).map_err(|e| {
            Failure::Invalid(vec![format!(
                "{}: invalid reference values: {e}",
                path.display()
            )])
        })?;
    }
    if doc.reference_values.snp.is_empty() && doc.reference_values.tdx.is_empty() {
        if !require_reference_values {
            return Ok(doc);
        }
        return Err(Failure::Usage(anyhow::anyhow!(
            "no reference values: pass --reference-values F (a JSON object {{\"snp\": [...], \"tdx\": [...]}}) \
             or a manifest (-m) that has them"
        )));
    }
    for path in &args.add_workload_owner_key {
        let key = owner_key_hex(path, KeyRole::WorkloadOwner)?;
        if !doc.workload_owner_pub_keys.contains(&key) {
            doc.workload_owner_pub_keys.push(key);
        }
    }
    for path in &args.add_seedshare_owner_key {
        let key = owner_key_hex(path, KeyRole::SeedshareOwner)?;
        if !doc.seedshare_owner_pub_keys.contains(&key) {
            doc.seedshare_owner_pub_keys.push(key);
        }
    }
    if args.disable_updates {
        doc.workload_owner_pub_keys.clear();
    }
    if let Some(k) = args.seedshare_threshold {
        doc.seedshare_threshold = k;
    }
    if doc.workload_owner_pub_keys.is_empty() && !args.disable_updates {
        eprintln!(
            "warning: no workload owner key: once set, this manifest can never be updated \
             (add one with --add-workload-owner-key, or say so with --disable-updates)"
        );
    }
    Ok(doc)
}

/// The manifest's JSON (pretty, stable key order, newline-terminated),
/// checked to parse back and validate; a refusal lists every violation.
pub(super) fn check(doc: &ManifestDoc) -> Result<String, Vec<String>> {
    let mut json = serde_json::to_string_pretty(doc)
        .context("serializing the manifest")
        .map_err(|e| vec![format!("{e:#}")])?;
    json.push('\n');
    let manifest = Manifest::from_json(json.as_bytes())
        .map_err(|e| vec![format!("generated manifest does not parse back: {e}")])?;
    manifest.validate().map_err(|errors| {
        let mut lines = vec!["the manifest would not validate (nothing written):".to_string()];
        lines.extend(errors.iter().map(ToString::to_string));
        lines
    })?;
    Ok(json)
}
