//! `cargo xtask measure`: the AMD SEV-SNP launch digest of a QEMU guest,
//! for a manifest's `ReferenceValues.snp[].TrustedMeasurement`.
//!
//! Reads the files and hands them to `accord_core::measure`, which replays
//! what QEMU feeds `SNP_LAUNCH_UPDATE` (see its module docs). The reference
//! implementation is the `sev-snp-measure` Python package (`--mode snp`,
//! VMM type QEMU, guest features 0x1); `xtask/tests/measure.rs` compares
//! the two.

use std::path::PathBuf;

use accord_core::hex;
use accord_core::measure::{self, DEFAULT_GUEST_FEATURES, KernelHashes, Ovmf, SnpLaunch, VcpuType};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The usage text.
pub const USAGE: &str = "\
cargo xtask measure --ovmf FILE --vcpus N --vcpu-type TYPE
                    [--kernel FILE [--initrd FILE] [--append STRING]] [--json]";

/// Parsed command line.
#[derive(Debug, Default)]
struct Args {
    ovmf: Option<PathBuf>,
    vcpus: Option<u32>,
    vcpu_type: Option<String>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    json: bool,
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut out = Args::default();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--ovmf" => out.ovmf = Some(value("--ovmf")?.into()),
            "--vcpus" => {
                let text = value("--vcpus")?;
                let n: u32 = text
                    .parse()
                    .with_context(|| format!("--vcpus `{text}` is not a number"))?;
                if n == 0 {
                    bail!("--vcpus must be at least 1");
                }
                out.vcpus = Some(n);
            }
            "--vcpu-type" => out.vcpu_type = Some(value("--vcpu-type")?),
            "--kernel" => out.kernel = Some(value("--kernel")?.into()),
            "--initrd" => out.initrd = Some(value("--initrd")?.into()),
            "--append" => out.append = Some(value("--append")?),
            "--json" => out.json = true,
            other => bail!("measure: unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    Ok(out)
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes))
}

/// Runs `cargo xtask measure ARGS`, printing the digest (or JSON).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = parse_args(args)?;
    let ovmf_path = args
        .ovmf
        .clone()
        .context(format!("--ovmf is required\n\n{USAGE}"))?;
    let vcpus = args
        .vcpus
        .context(format!("--vcpus is required\n\n{USAGE}"))?;
    let type_name = args
        .vcpu_type
        .clone()
        .context(format!("--vcpu-type is required\n\n{USAGE}"))?;
    let vcpu_type = VcpuType::by_name(&type_name).map_err(|_| {
        let known: Vec<&str> = measure::VCPU_TYPES.iter().map(|t| t.name).collect();
        anyhow::anyhow!(
            "unknown --vcpu-type `{type_name}` (known: {})",
            known.join(", ")
        )
    })?;
    if args.kernel.is_none() && (args.initrd.is_some() || args.append.is_some()) {
        bail!("--initrd and --append need --kernel (direct boot)");
    }

    let ovmf_bytes = read(&ovmf_path, "OVMF image")?;
    let ovmf_name = ovmf_path.display();
    let ovmf = Ovmf::parse(&ovmf_bytes).map_err(|err| anyhow::anyhow!("{ovmf_name}: {err}"))?;

    let mut inputs = serde_json::Map::new();
    inputs.insert(
        "ovmf".into(),
        serde_json::json!({ "path": ovmf_name.to_string(), "sha256": sha256_hex(&ovmf_bytes) }),
    );
    let hashes = match &args.kernel {
        None => None,
        Some(kernel_path) => {
            let kernel = read(kernel_path, "kernel")?;
            let initrd = args
                .initrd
                .as_ref()
                .map(|path| read(path, "initrd"))
                .transpose()?;
            let hashes = KernelHashes::new(&kernel, initrd.as_deref(), args.append.as_deref());
            inputs.insert(
                "kernel".into(),
                serde_json::json!({ "path": kernel_path.display().to_string(), "sha256": hex::encode(&hashes.kernel) }),
            );
            inputs.insert(
                "initrd".into(),
                serde_json::json!({
                    "path": args.initrd.as_ref().map(|p| p.display().to_string()),
                    "sha256": hex::encode(&hashes.initrd),
                }),
            );
            inputs.insert(
                "append".into(),
                serde_json::json!({
                    "value": args.append.clone().unwrap_or_default(),
                    "sha256_with_nul": hex::encode(&hashes.cmdline),
                }),
            );
            Some(hashes)
        }
    };

    let digest = measure::snp_launch_digest(&SnpLaunch {
        ovmf: &ovmf,
        vcpus,
        vcpu_signature: vcpu_type.signature(),
        guest_features: DEFAULT_GUEST_FEATURES,
        kernel_hashes: hashes.as_ref(),
    })
    .map_err(|err| anyhow::anyhow!("{ovmf_name}: {err}"))?;

    if args.json {
        let out = serde_json::json!({
            "digest": hex::encode(&digest),
            "vcpus": vcpus,
            "vcpu_type": vcpu_type.name,
            "vcpu_signature": format!("{:#x}", vcpu_type.signature()),
            "guest_features": format!("{DEFAULT_GUEST_FEATURES:#x}"),
            "inputs": inputs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", hex::encode(&digest));
    }
    Ok(())
}
