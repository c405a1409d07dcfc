//! `cargo xtask bench-table`: reads criterion's results from
//! `target/criterion` (after `cargo bench -p accord-core --bench verify`)
//! and prints the medians and the ratios BENCHMARKS.md records, with the
//! targets of issue 2.

use anyhow::Context;

use crate::workspace_root;

/// Median time in microseconds of one benchmark (`group/function`, with the
/// `/` inside function names as criterion stores them: `_`).
fn median_us(id: &str) -> anyhow::Result<f64> {
    let path = workspace_root()
        .join("target/criterion")
        .join(id)
        .join("new/estimates.json");
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
    Ok(())
}
