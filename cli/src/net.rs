//! What `accord set`, `accord verify`, `accord get-manifests` and
//! `accord recover` share: their coordinator connection options
//! ([`CoordinatorOptions`]), attesting the coordinator against a
//! manifest's coordinator policy, connecting with retries (and progress on
//! stderr), the exit-status convention and advice for the coordinator's
//! error codes.
//!
//! The INSECURE simulated chip: a manifest whose reference values trust
//! the simulated SEV-SNP root (an `snp` entry with `InsecureTrustedRoot`)
//! accepts evidence anyone can make, so it proves nothing about hardware.
//! Before connecting, every manifest a command checks the coordinator
//! against is checked ([`CoordinatorOptions::check_simulation`]): such a
//! manifest is refused (exit 1, naming the file and the JSON path of each
//! such entry) unless `--insecure-simulation` is given, and then accepted
//! with one `WARNING: INSECURE SIMULATION: …` line on stderr (once per
//! process, so the demo and the tests, which run many commands, warn
//! once).
//!
//! The coordinator's evidence is verified with collateral from
//! [`CoordinatorOptions::collateral_source`] (the `--kds-url`/`--pcs-url`
//! fetcher over a cache, default `collateral/cache` in the workspace; with
//! `--offline`, nothing fetched: what the evidence carries, plus `--cache`
//! if given), the process's verifier first raised to the workspace's
//! freshness marks and those written back after the coordinator passed
//! ([`crate::freshness`]).
//!
//! Exit status: 0 success; 1 refused (attestation or verification
//! failed, the coordinator refused the request); 2 usage, I/O or network
//! errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use accord_core::evidence::ReferenceValues;
use accord_core::manifest::Manifest;
use accord_core::protocol::{ErrorCode, ErrorReply, UserCall};
use accord_guest::atls::{AtlsError, Clock, CollateralSource, PeerPolicy};
use accord_guest::client::UserClient;
use anyhow::Context;
use clap::Args;

use crate::collateral_args::CollateralArgs;
use crate::collateral_source::FetcherSource;
use crate::workspace::Workspace;
use crate::{freshness, input};

/// Default seconds to wait for the coordinator.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How often "waiting for the coordinator" is repeated.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// The least time one connection attempt gets.
const MIN_ATTEMPT: Duration = Duration::from_secs(5);

/// How long to sleep between connection attempts.
const RETRY_DELAY: Duration = Duration::from_millis(300);

/// The coordinator connection options every network command takes
/// (flattened into their arguments). The help texts are those of
/// `accord verify`; `accord set` rewords `--manifest` and `--workspace`
/// (`SetArgs`), so every command's `--help` reads as it always did.
#[derive(Clone, Debug, Args)]
#[command(
    mut_arg("cache", |arg| arg.help(CACHE_HELP)),
    mut_arg("offline", |arg| arg.help(OFFLINE_HELP))
)]
pub struct CoordinatorOptions {
    /// The coordinator's user API.
    #[arg(long, short = 'c', value_name = "HOST:PORT")]
    pub coordinator: String,

    /// The manifest the coordinator must run. Default: manifest.json in
    /// the workspace.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The workspace directory (trust state and `verify/`).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub workspace: PathBuf,

    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for the coordinator.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,

    /// Accept a manifest that trusts the INSECURE simulated SEV-SNP root
    /// (InsecureTrustedRoot), for testing only: its evidence proves
    /// nothing about hardware.
    #[arg(long)]
    pub insecure_simulation: bool,

    /// Where the collateral the coordinator's evidence is verified with
    /// comes from.
    #[command(flatten)]
    pub collateral: CollateralArgs,
}

/// `--cache` of the network commands.
const CACHE_HELP: &str = "Cache directory for the collateral fetched for the coordinator's evidence. \
     Default: collateral/cache in the workspace (with --offline: no cache unless given)";

/// `--offline` of the network commands.
const OFFLINE_HELP: &str = "Fetch nothing: verify the coordinator with the collateral its evidence \
     carries (its VCEK and CRL, or its TDX collateral), and --cache if given. Collateral older \
     than what this workspace has seen (collateral/freshness-marks) is still refused";

/// What a network command says when a fetch fails.
const FALLBACK: &str = "using the collateral the coordinator's evidence carries";

impl CoordinatorOptions {
    /// The options for `coordinator` with the defaults of the command
    /// line (workspace `.`, no `--json`, [`DEFAULT_TIMEOUT_SECS`]).
    pub fn new(coordinator: impl Into<String>) -> Self {
        Self {
            coordinator: coordinator.into(),
            manifest: None,
            workspace: PathBuf::from("."),
            json: false,
            timeout: DEFAULT_TIMEOUT_SECS,
            insecure_simulation: false,
            collateral: CollateralArgs::default(),
        }
    }

    /// The same options with `--offline`: nothing is fetched, the
    /// coordinator's evidence carries its collateral.
    #[must_use]
    pub fn offline(mut self) -> Self {
        self.collateral.offline = true;
        self
    }

    /// The same options fetching from `url` for both the KDS and the PCS
    /// paths (the simulated vendor, a local mirror).
    #[must_use]
    pub fn fetching_from(mut self, url: &str) -> Self {
        self.collateral = CollateralArgs {
            cache: self.collateral.cache.take(),
            ..CollateralArgs::from_vendor(url)
        };
        self
    }

    /// Where the verifier's collateral comes from: a fetcher at
    /// `--kds-url`/`--pcs-url` over the cache (`--cache`, default
    /// `collateral/cache` in the workspace); offline, the cache if given,
    /// else nothing (what the evidence carries). Fetched CRLs are cached
    /// only if signed under the roots `trust` names (the reference values
    /// the coordinator is verified against).
    pub fn collateral_source(
        &self,
        trust: &ReferenceValues,
    ) -> anyhow::Result<Option<Arc<dyn CollateralSource>>> {
        let cache = match (&self.collateral.cache, self.collateral.offline) {
            (Some(dir), _) => Some(dir.clone()),
            (None, false) => Some(self.workspace().collateral_cache()),
            (None, true) => return Ok(None),
        };
        let fetcher = self.collateral.fetcher(cache)?.trusting(trust.clone());
        Ok(Some(Arc::new(
            FetcherSource::new(fetcher).announcing(FALLBACK),
        )))
    }

    /// The same options with `--insecure-simulation`: manifests trusting
    /// the INSECURE simulated root are accepted (the demo, tests).
    #[must_use]
    pub fn accepting_insecure_simulation(mut self) -> Self {
        self.insecure_simulation = true;
        self
    }

    /// The same options with workspace `dir`.
    #[must_use]
    pub fn in_workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = dir.into();
        self
    }

    /// The workspace.
    pub fn workspace(&self) -> Workspace {
        Workspace::new(&self.workspace)
    }

    /// `--manifest`, else `manifest.json` in the workspace (which must
    /// exist).
    pub fn manifest_path(&self) -> anyhow::Result<PathBuf> {
        match &self.manifest {
            Some(path) => Ok(path.clone()),
            None => self.workspace().require_manifest(),
        }
    }

    /// `--timeout`.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// Refuses the manifests the coordinator is checked against if one
    /// trusts the INSECURE simulated root ([`simulated_root_entries`]),
    /// unless `--insecure-simulation`; with it, prints the warning (once
    /// per process). `manifests` are (what to call the file, manifest).
    pub fn check_simulation(&self, manifests: &[(String, &Manifest)]) -> Result<(), Failure> {
        let Some(found) = simulated_root_trust(manifests) else {
            return Ok(());
        };
        if !self.insecure_simulation {
            return Err(Failure::Refused(format!(
                "{found}: evidence verified against it proves nothing about hardware \
                 (anyone can run the simulated chip and have it report any measurement); \
                 pass --insecure-simulation to accept it for testing"
            )));
        }
        if !INSECURE_WARNED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "WARNING: INSECURE SIMULATION: {found}, accepted because of --insecure-simulation: \
                 evidence verified against it proves nothing about hardware; use it for testing only"
            );
        }
        Ok(())
    }

    /// Reads the manifest ([`Self::manifest_path`]) and checks it for the
    /// simulated root ([`Self::check_simulation`]). Returns its exact
    /// bytes and the parsed manifest.
    pub fn checked_manifest(&self) -> Result<(Vec<u8>, Manifest), Failure> {
        let path = self.manifest_path()?;
        let (bytes, manifest) = read_manifest(&path)?;
        self.check_simulation(&[(path.display().to_string(), &manifest)])?;
        Ok((bytes, manifest))
    }

    /// Connects to the coordinator, attesting it against `manifest`'s
    /// coordinator policy ([`connect`]).
    pub async fn connect_to(&self, manifest: &Manifest) -> Result<UserClient, Failure> {
        self.connect_with_policy(&coordinator_policy(manifest))
            .await
    }

    /// Connects to the coordinator, attesting it against `policy`
    /// ([`connect`]) with the collateral of [`Self::collateral_source`],
    /// the verifier raised to the workspace's freshness marks first
    /// ([`freshness`]) and those recorded after it passed.
    pub async fn connect_with_policy(&self, policy: &PeerPolicy) -> Result<UserClient, Failure> {
        let marks = self.workspace().freshness_marks();
        let verifier = freshness::workspace_verifier(&marks)?;
        let source = self.collateral_source(&policy.reference)?;
        let client = connect(
            &self.coordinator,
            policy,
            self.timeout(),
            source,
            Some(Arc::clone(&verifier)),
        )
        .await?;
        freshness::save(&marks, &verifier)?;
        Ok(client)
    }

    /// [`Self::checked_manifest`], then [`Self::connect_to`] the
    /// coordinator. Returns the manifest's exact bytes, the parsed
    /// manifest and the client.
    pub async fn connect_attested(&self) -> Result<(Vec<u8>, Manifest, UserClient), Failure> {
        let (bytes, manifest) = self.checked_manifest()?;
        let client = self.connect_to(&manifest).await?;
        Ok((bytes, manifest, client))
    }
}

/// Why a network command stopped.
#[derive(Debug)]
pub enum Failure {
    /// Refused: attestation or verification failed, or the coordinator
    /// refused the request (exit 1).
    Refused(String),
    /// The command line, a file or the network failed (exit 2).
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Usage(err)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "REFUSED: {why}"),
            Self::Usage(err) => write!(f, "error: {err:#}"),
        }
    }
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Refused(_) => ExitCode::from(1),
            Self::Usage(_) => ExitCode::from(2),
        }
    }
}

/// Prints the failure (if any) on stderr and returns the exit status.
pub fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}

/// A multi-threaded tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Reads a manifest's exact bytes and parses them.
pub fn read_manifest(path: &Path) -> Result<(Vec<u8>, Manifest), Failure> {
    let bytes = input::read(path)?;
    let manifest = Manifest::from_json(&bytes)
        .map_err(|e| Failure::Refused(format!("{}: not a manifest: {e}", path.display())))?;
    Ok((bytes, manifest))
}

/// Whether the INSECURE warning was printed in this process.
static INSECURE_WARNED: AtomicBool = AtomicBool::new(false);

/// The JSON paths of the reference-value entries of `manifest` that trust
/// an INSECURE simulated root (`ReferenceValues.snp[i].InsecureTrustedRoot`
/// for the simulated SEV-SNP chip, `ReferenceValues.tdx[i].…` for the
/// simulated TDX).
pub fn simulated_root_entries(manifest: &Manifest) -> Vec<String> {
    let reference = &manifest.doc().reference_values;
    let snp = reference
        .snp
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.insecure_trusted_root.is_some())
        .map(|(i, _)| format!("ReferenceValues.snp[{i}].InsecureTrustedRoot"));
    let tdx = reference
        .tdx
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.insecure_trusted_root.is_some())
        .map(|(i, _)| format!("ReferenceValues.tdx[{i}].InsecureTrustedRoot"));
    snp.chain(tdx).collect()
}

/// `FILE: PATH[, PATH…] [and FILE: …] trust(s) the INSECURE simulated
/// SEV-SNP root` (`TDX root`, `SEV-SNP and TDX roots`), or `None` when no
/// manifest does.
fn simulated_root_trust(manifests: &[(String, &Manifest)]) -> Option<String> {
    let found: Vec<String> = manifests
        .iter()
        .filter_map(|(file, manifest)| {
            let entries = simulated_root_entries(manifest);
            (!entries.is_empty()).then(|| format!("{file}: {}", entries.join(", ")))
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let verb = if found.len() == 1 { "trusts" } else { "trust" };
    let snp = found.iter().any(|f| f.contains("ReferenceValues.snp["));
    let tdx = found.iter().any(|f| f.contains("ReferenceValues.tdx["));
    let roots = match (snp, tdx) {
        (true, true) => "SEV-SNP and TDX roots",
        (false, true) => "TDX root",
        _ => "SEV-SNP root",
    };
    Some(format!(
        "{} {verb} the INSECURE simulated {roots}",
        found.join(" and ")
    ))
}

/// What a coordinator running `manifest` must prove: the manifest's
/// reference values, and a policy hash among its coordinator policies.
pub fn coordinator_policy(manifest: &Manifest) -> PeerPolicy {
    PeerPolicy {
        reference: manifest.doc().reference_values.clone(),
        expected_policy_hashes: Some(manifest.doc().coordinator_policy_hashes()),
        at: Clock::System,
    }
}

/// Whether `err` says the coordinator's evidence was refused (rather than
/// the network failing).
fn is_attestation_failure(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<AtlsError>(),
            Some(
                AtlsError::Evidence(_)
                    | AtlsError::NotBound { .. }
                    | AtlsError::Reflected { .. }
                    | AtlsError::PolicyHashNotAllowed { .. }
                    | AtlsError::EvidenceRequired
            )
        )
    })
}

/// Connects to the user API at `addr` and attests the coordinator against
/// `policy`, retrying for up to `timeout` while the coordinator cannot be
/// reached (saying so on stderr every few seconds). A coordinator whose
/// evidence is refused is a [`Failure::Refused`] at once. `verifier`
/// (else the process-wide one) judges the evidence.
pub async fn connect(
    addr: &str,
    policy: &PeerPolicy,
    timeout: Duration,
    collateral: Option<Arc<dyn CollateralSource>>,
    verifier: Option<freshness::Verifier>,
) -> Result<UserClient, Failure> {
    let start = Instant::now();
    let mut last_note: Option<Instant> = None;
    loop {
        // One attempt may not outlast the deadline by much (TCP connect
        // alone waits up to 10 s).
        let remaining = timeout.saturating_sub(start.elapsed());
        let attempt = tokio::time::timeout(
            remaining.max(MIN_ATTEMPT),
            UserClient::connect_verifying(
                addr,
                policy.clone(),
                collateral.clone(),
                verifier.clone(),
            ),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("connecting to {addr}: timed out")));
        match attempt {
            Ok(client) => return Ok(client),
            Err(err) if is_attestation_failure(&err) => {
                return Err(Failure::Refused(format!(
                    "the coordinator at {addr} failed attestation against the manifest's coordinator policy: {err:#}"
                )));
            }
            Err(err) => {
                if start.elapsed() >= timeout {
                    return Err(Failure::Usage(err.context(format!(
                        "no attested connection to the coordinator at {addr} within {}s",
                        timeout.as_secs()
                    ))));
                }
                if last_note.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    let why = format!("{err:#}").replace('\n', " ");
                    eprintln!("waiting for the coordinator at {addr}… ({why})");
                    last_note = Some(Instant::now());
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Sends one request; a transport failure is a [`Failure::Usage`].
pub async fn call<C: UserCall>(client: &mut UserClient, request: C) -> Result<C::Reply, Failure> {
    Ok(client
        .call(request)
        .await
        .context("talking to the coordinator")?)
}

/// The protocol name of an error code (as in `docs/protocol.md`).
pub fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NoManifest => "no_manifest",
        ErrorCode::NeedsRecovery => "needs_recovery",
        ErrorCode::AlreadyRecovered => "already_recovered",
        ErrorCode::ManifestConflict => "manifest_conflict",
        ErrorCode::InvalidSignature => "invalid_signature",
        ErrorCode::PermissionDenied => "permission_denied",
        ErrorCode::InvalidArgument => "invalid_argument",
        ErrorCode::Internal => "internal",
        ErrorCode::Protocol => "protocol",
    }
}

/// What to do about an error code; `update` when the request was a
/// manifest update.
pub fn advice(code: ErrorCode, update: bool) -> Option<&'static str> {
    match code {
        ErrorCode::NeedsRecovery => Some("the coordinator is in recovery: run `accord recover`"),
        ErrorCode::PermissionDenied | ErrorCode::InvalidSignature if update => Some(
            "pass --workload-owner-key with a key listed in the current manifest's WorkloadOwnerPubKeys",
        ),
        ErrorCode::ManifestConflict => {
            Some("someone else updated the manifest: run `accord verify` and retry")
        }
        ErrorCode::NoManifest => Some("no manifest is set yet: run `accord set` first"),
        _ => None,
    }
}

/// The failure for a coordinator's refusal: code, message and advice.
/// Internal and protocol errors are not refusals of the request (exit 2).
pub fn refusal(reply: &ErrorReply, update: bool) -> Failure {
    refusal_with_advice(reply, advice(reply.code, update))
}

/// [`refusal`] with the advice a command chose for this request.
pub fn refusal_with_advice(reply: &ErrorReply, advice: Option<&str>) -> Failure {
    let mut text = format!(
        "the coordinator refused ({}): {}",
        code_name(reply.code),
        reply.message
    );
    if let Some(advice) = advice {
        text.push_str("\nhint: ");
        text.push_str(advice);
    }
    match reply.code {
        ErrorCode::Internal | ErrorCode::Protocol => Failure::Usage(anyhow::anyhow!(text)),
        _ => Failure::Refused(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(snp: &str) -> Manifest {
        let json = format!(r#"{{"ReferenceValues":{{"snp":{snp}}}}}"#);
        Manifest::from_json(json.as_bytes()).unwrap()
    }

    const SIMULATED: &str = r#"{"InsecureTrustedRoot":{"ARK":"3000","ASK":"3000"}}"#;

    #[test]
    fn manifests_trusting_the_simulated_root_need_the_flag() {
        let secure = manifest(r#"[{"ProductName":"Milan"}]"#);
        let simulated = manifest(&format!("[{{}}, {SIMULATED}, {SIMULATED}]"));
        assert!(simulated_root_entries(&secure).is_empty());
        assert_eq!(
            simulated_root_entries(&simulated),
            [
                "ReferenceValues.snp[1].InsecureTrustedRoot",
                "ReferenceValues.snp[2].InsecureTrustedRoot"
            ]
        );

        let strict = CoordinatorOptions::new("127.0.0.1:1");
        strict
            .check_simulation(&[("secure.json".into(), &secure)])
            .unwrap();
        let refused = strict
            .check_simulation(&[
                ("secure.json".into(), &secure),
                ("sim.json".into(), &simulated),
            ])
            .unwrap_err();
        assert_eq!(refused.exit_code(), ExitCode::from(1));
        assert_eq!(
            refused.to_string(),
            "REFUSED: sim.json: ReferenceValues.snp[1].InsecureTrustedRoot, \
             ReferenceValues.snp[2].InsecureTrustedRoot trusts the INSECURE simulated SEV-SNP root: \
             evidence verified against it proves nothing about hardware (anyone can run the \
             simulated chip and have it report any measurement); pass --insecure-simulation \
             to accept it for testing"
        );
        let both = strict
            .check_simulation(&[
                ("current.json".into(), &simulated),
                ("new.json".into(), &simulated),
            ])
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("current.json: ReferenceValues.snp[1].InsecureTrustedRoot, ReferenceValues.snp[2].InsecureTrustedRoot and new.json: "),
            "{both}"
        );
        assert!(both.contains(" trust the INSECURE"), "{both}");

        let testing = strict.accepting_insecure_simulation();
        assert!(testing.insecure_simulation);
        testing
            .check_simulation(&[("sim.json".into(), &simulated)])
            .unwrap();
    }

    #[test]
    fn manifests_trusting_the_simulated_tdx_root_need_the_flag_too() {
        let json = r#"{"ReferenceValues":{"tdx":[{}, {"InsecureTrustedRoot":{"RootCA":"3000"}}]}}"#;
        let tdx = Manifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(
            simulated_root_entries(&tdx),
            ["ReferenceValues.tdx[1].InsecureTrustedRoot"]
        );
        let strict = CoordinatorOptions::new("127.0.0.1:1");
        let refused = strict
            .check_simulation(&[("tdx.json".into(), &tdx)])
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "REFUSED: tdx.json: ReferenceValues.tdx[1].InsecureTrustedRoot trusts the \
                 INSECURE simulated TDX root: "
            ),
            "{refused}"
        );
        let json = r#"{"ReferenceValues":{"snp":[{"InsecureTrustedRoot":{"ARK":"3000","ASK":"3000"}}],"tdx":[{"InsecureTrustedRoot":{"RootCA":"3000"}}]}}"#;
        let both = Manifest::from_json(json.as_bytes()).unwrap();
        let refused = strict
            .check_simulation(&[("both.json".into(), &both)])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("the INSECURE simulated SEV-SNP and TDX roots"),
            "{refused}"
        );
        strict
            .accepting_insecure_simulation()
            .check_simulation(&[("both.json".into(), &both)])
            .unwrap();
    }

    #[test]
    fn refusals_carry_the_advice_and_exit_1() {
        let reply = ErrorReply {
            code: ErrorCode::PermissionDenied,
            message: "no valid signature".into(),
        };
        let failure = refusal(&reply, true);
        let text = failure.to_string();
        assert!(text.contains("permission_denied"), "{text}");
        assert!(text.contains("--workload-owner-key"), "{text}");
        assert_eq!(failure.exit_code(), ExitCode::from(1));
        let recovery = refusal(
            &ErrorReply {
                code: ErrorCode::NeedsRecovery,
                message: String::new(),
            },
            false,
        )
        .to_string();
        assert!(recovery.contains("run `accord recover`"), "{recovery}");
        let conflict = refusal(
            &ErrorReply {
                code: ErrorCode::ManifestConflict,
                message: String::new(),
            },
            true,
        )
        .to_string();
        assert!(conflict.contains("someone else updated the manifest"));
        let internal = refusal(
            &ErrorReply {
                code: ErrorCode::Internal,
                message: "disk full".into(),
            },
            false,
        );
        assert_eq!(internal.exit_code(), ExitCode::from(2));
    }
}
