//! `cargo xtask bench-table`: reads criterion's results from
//! `target/criterion` (after `cargo bench -p accord-core --bench verify`)
//! and prints the medians and the ratios BENCHMARKS.md records, with the
//! targets of issue 2 and of issue 15 (`service_warm`).
//!
//! Then, when they were run, the issue 15 benchmarks kept apart: the
//! collateral fetch times (`cargo bench -p accord-collateral --bench
//! fetch`) and virtee/sev on each of its crypto backends beside accord
//! (`bench/sev-openssl`, its own workspace sharing `target/`); each of
//! their ratios is taken within one run.

use anyhow::Context;

use crate::workspace_root;

/// Median time in microseconds of one benchmark (`group/function`, with the
/// `/` inside function names as criterion stores them: `_`).
fn median_us(id: &str) -> anyhow::Result<f64> {
    let path = estimates(id);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} missing: run `cargo bench -p accord-core --bench verify` first",
            path.display()
        )
    })?;
    let estimates: serde_json::Value =
        serde_json::from_str(&text).context("criterion estimates are not JSON")?;
    let nanos = estimates["median"]["point_estimate"]
        .as_f64()
        .context("no median in criterion estimates")?;
    Ok(nanos / 1000.0)
}

/// Where criterion keeps a benchmark's estimates.
fn estimates(id: &str) -> std::path::PathBuf {
    workspace_root()
        .join("target/criterion")
        .join(id)
        .join("new/estimates.json")
}

/// What a ratio should be.
enum Target {
    AtMost(f64),
    AtLeast(f64),
    Info(&'static str),
}

/// Prints the table and the ratio checks; fails if a benchmark is missing.
pub fn table() -> anyhow::Result<()> {
    let rows = [
        "p384_verify_floor/aws-lc-rs",
        "p384_verify_floor/ring",
        "p384_verify_floor/rustcrypto",
        "p256_verify_floor_aws-lc-rs",
        "snp_cold_chain/accord_aws-lc-rs",
        "snp_cold_chain/accord_rustcrypto",
        "snp_cold_chain/sev",
        "snp_cached_chain/accord_aws-lc-rs",
        "snp_cached_chain/accord_rustcrypto",
        "snp_cached_chain/sev",
        "tdx_cold_collateral/accord_aws-lc-rs",
        "tdx_cold_collateral/accord_rustcrypto",
        "tdx_cold_collateral/dcap-qvl_ring",
        "tdx_cold_collateral/dcap-qvl_rustcrypto",
        "tdx_cached_collateral/accord_aws-lc-rs",
        "tdx_cached_collateral/accord_rustcrypto",
        "tdx_cached_collateral/accord_aws-lc-rs_known-platform",
        "tdx_cached_collateral/accord_rustcrypto_known-platform",
        "service_warm/snp_aws-lc-rs",
        "service_warm/snp_rustcrypto",
        "service_warm/tdx_aws-lc-rs",
        "service_warm/tdx_rustcrypto",
        "service_warm/tdx-attached_aws-lc-rs",
        "service_warm/tdx-attached_rustcrypto",
    ];
    println!("| benchmark | median |");
    println!("|---|---:|");
    for id in rows {
        println!("| `{id}` | {:.1} µs |", median_us(id)?);
    }
    let ratio = |a: &str, b: &str| -> anyhow::Result<f64> { Ok(median_us(a)? / median_us(b)?) };
    let checks = [
        (
            "SNP cached chain (aws-lc-rs) / bare P-384 verify (aws-lc-rs)",
            ratio(
                "snp_cached_chain/accord_aws-lc-rs",
                "p384_verify_floor/aws-lc-rs",
            )?,
            Target::AtMost(1.5),
        ),
        (
            "sev cached / accord SNP cached chain (aws-lc-rs)",
            ratio("snp_cached_chain/sev", "snp_cached_chain/accord_aws-lc-rs")?,
            Target::AtLeast(2.0),
        ),
        (
            "sev cold / accord SNP cold chain (aws-lc-rs)",
            ratio("snp_cold_chain/sev", "snp_cold_chain/accord_aws-lc-rs")?,
            Target::Info("no target"),
        ),
        (
            "dcap-qvl full (ring) / accord TDX cached collateral (aws-lc-rs)",
            ratio(
                "tdx_cold_collateral/dcap-qvl_ring",
                "tdx_cached_collateral/accord_aws-lc-rs",
            )?,
            Target::AtLeast(4.0),
        ),
        (
            "dcap-qvl full (ring) / accord TDX cached collateral + remembered platform (aws-lc-rs)",
            ratio(
                "tdx_cold_collateral/dcap-qvl_ring",
                "tdx_cached_collateral/accord_aws-lc-rs_known-platform",
            )?,
            Target::AtLeast(4.0),
        ),
        (
            "dcap-qvl full (ring) / accord TDX full (aws-lc-rs)",
            ratio(
                "tdx_cold_collateral/dcap-qvl_ring",
                "tdx_cold_collateral/accord_aws-lc-rs",
            )?,
            Target::Info("no target"),
        ),
        (
            "ring / aws-lc-rs bare P-384 verify",
            ratio("p384_verify_floor/ring", "p384_verify_floor/aws-lc-rs")?,
            Target::Info("why aws-lc-rs"),
        ),
        // Issue 15: what the in-service verifier adds to the cached paths
        // (revocation lookup, chain-key hash, FMSPC, reference values).
        (
            "service warm SNP / SNP cached chain (aws-lc-rs)",
            ratio(
                "service_warm/snp_aws-lc-rs",
                "snp_cached_chain/accord_aws-lc-rs",
            )?,
            Target::AtMost(1.1),
        ),
        (
            "service warm SNP / SNP cached chain (rustcrypto)",
            ratio(
                "service_warm/snp_rustcrypto",
                "snp_cached_chain/accord_rustcrypto",
            )?,
            Target::AtMost(1.1),
        ),
        (
            "service warm TDX / TDX cached collateral + remembered platform (aws-lc-rs)",
            ratio(
                "service_warm/tdx_aws-lc-rs",
                "tdx_cached_collateral/accord_aws-lc-rs_known-platform",
            )?,
            Target::AtMost(1.1),
        ),
        (
            "service warm TDX / TDX cached collateral + remembered platform (rustcrypto)",
            ratio(
                "service_warm/tdx_rustcrypto",
                "tdx_cached_collateral/accord_rustcrypto_known-platform",
            )?,
            Target::AtMost(1.1),
        ),
        (
            "TDX / SNP, core verification, cached (aws-lc-rs, remembered platform)",
            ratio(
                "tdx_cached_collateral/accord_aws-lc-rs_known-platform",
                "snp_cached_chain/accord_aws-lc-rs",
            )?,
            Target::AtMost(1.2),
        ),
        (
            "TDX / SNP, core verification, cached (aws-lc-rs, PCK chain checked)",
            ratio(
                "tdx_cached_collateral/accord_aws-lc-rs",
                "snp_cached_chain/accord_aws-lc-rs",
            )?,
            Target::AtMost(1.2),
        ),
        (
            "TDX / SNP, service warm (aws-lc-rs)",
            ratio("service_warm/tdx_aws-lc-rs", "service_warm/snp_aws-lc-rs")?,
            Target::AtMost(1.2),
        ),
    ];
    println!();
    println!("| ratio | value | target | met |");
    println!("|---|---:|---|---|");
    let mut missed = 0;
    for (name, value, target) in checks {
        let (text, ok) = match target {
            Target::AtMost(limit) => (format!("≤ {limit}"), value <= limit),
            Target::AtLeast(limit) => (format!("≥ {limit}"), value >= limit),
            Target::Info(why) => (format!("({why})"), true),
        };
        missed += usize::from(!ok);
        println!(
            "| {name} | {value:.2} | {text} | {} |",
            if ok { "yes" } else { "NO" }
        );
    }
    if missed > 0 {
        eprintln!("{missed} target(s) missed");
    }
    kept_apart()
}

/// The issue 15 benchmarks run apart from `verify`: printed when their
/// results are there, with the command that makes them when not.
fn kept_apart() -> anyhow::Result<()> {
    let fetch = [
        "collateral_fetch/snp_cold",
        "collateral_fetch/snp_no_cache",
        "collateral_fetch/snp_warm",
        "collateral_fetch/tdx_cold",
        "collateral_fetch/tdx_no_cache",
        "collateral_fetch/tdx_warm",
    ];
    println!();
    if fetch.iter().all(|id| estimates(id).is_file()) {
        println!("| collateral fetch (loopback vendor) | median |");
        println!("|---|---:|");
        for id in fetch {
            println!("| `{id}` | {:.1} µs |", median_us(id)?);
        }
    } else {
        println!("(collateral fetch: run `cargo bench -p accord-collateral --bench fetch`)");
    }
    for backend in ["openssl", "nossl"] {
        let id = |kind: &str, what: &str| format!("sev_{backend}_{kind}/{what}");
        println!();
        if !estimates(&id("cached", "sev")).is_file() {
            let features = if backend == "openssl" {
                ""
            } else {
                " --no-default-features --features nossl"
            };
            println!(
                "(sev on {backend}: run `cargo bench{features} --bench sev` in bench/sev-openssl)"
            );
            continue;
        }
        println!("| sev ({backend}) beside accord, one run | median | sev ÷ accord |");
        println!("|---|---:|---:|");
        for kind in ["cold", "cached"] {
            let sev = median_us(&id(kind, "sev"))?;
            println!("| `{}` | {sev:.1} µs | |", id(kind, "sev"));
            for provider in ["aws-lc-rs", "rustcrypto"] {
                let accord = median_us(&id(kind, &format!("accord_{provider}")))?;
                println!(
                    "| `{}` | {accord:.1} µs | {:.2} |",
                    id(kind, &format!("accord_{provider}")),
                    sev / accord
                );
            }
        }
    }
    Ok(())
}
