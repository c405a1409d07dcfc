//! What `accord set`, `accord verify`, `accord get-manifests` and
//! `accord recover` share: their coordinator connection options
//! ([`CoordinatorOptions`]), attesting the coordinator against a
//! manifest's coordinator policy, connecting with retries (and progress on
//! stderr), the exit-status convention and advice for the coordinator's
//! error codes.
//!
//! Exit status: 0 success; 1 refused (attestation or verification
//! failed, the coordinator refused the request); 2 usage, I/O or network
//! errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use accord_core::manifest::Manifest;
use accord_core::protocol::{ErrorCode, ErrorReply, UserRequest, UserResponse};
use accord_guest::atls::{AtlsError, Clock, PeerPolicy};
use accord_guest::client::UserClient;
use anyhow::Context;
use clap::Args;

use crate::input;
use crate::workspace::Workspace;

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
}

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
        }
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

    /// Reads the manifest ([`Self::manifest_path`]) and connects to the
    /// coordinator, attesting it against that manifest's coordinator
    /// policy ([`connect`]). Returns the manifest's exact bytes, the
    /// parsed manifest and the client.
    pub async fn connect_attested(&self) -> Result<(Vec<u8>, Manifest, UserClient), Failure> {
        let path = self.manifest_path()?;
        let (bytes, manifest) = read_manifest(&path)?;
        let policy = coordinator_policy(&manifest);
        let client = connect(&self.coordinator, &policy, self.timeout()).await?;
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
/// evidence is refused is a [`Failure::Refused`] at once.
pub async fn connect(
    addr: &str,
    policy: &PeerPolicy,
    timeout: Duration,
) -> Result<UserClient, Failure> {
    let start = Instant::now();
    let mut last_note: Option<Instant> = None;
    loop {
        // One attempt may not outlast the deadline by much (TCP connect
        // alone waits up to 10 s).
        let remaining = timeout.saturating_sub(start.elapsed());
        let attempt = tokio::time::timeout(
            remaining.max(MIN_ATTEMPT),
            UserClient::connect(addr, policy.clone()),
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
pub async fn call(client: &mut UserClient, request: UserRequest) -> Result<UserResponse, Failure> {
    Ok(client
        .call(request)
        .await
        .context("talking to the coordinator")?)
}

/// The protocol name of an error code (as in `DESIGN.md` §4).
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

/// The name of a reply, for "unexpected reply" errors.
pub fn reply_name(response: &UserResponse) -> &'static str {
    match response {
        UserResponse::ManifestSet { .. } => "ManifestSet",
        UserResponse::Manifests { .. } => "Manifests",
        UserResponse::Recovery { .. } => "Recovery",
        UserResponse::RecoveryState { .. } => "RecoveryState",
        UserResponse::Error(_) => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
