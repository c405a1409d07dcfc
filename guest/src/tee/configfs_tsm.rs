//! The Linux configfs-tsm report interface (`/sys/kernel/config/tsm/report`,
//! kernel ABI `Documentation/ABI/testing/configfs-tsm-report`), implemented
//! from the ABI description.
//!
//! One request:
//!
//! 1. `mkdir ROOT/NAME` with a fresh name: the kernel populates the entry
//!    with its attributes;
//! 2. read `provider` (`sev_guest`, `tdx_guest`, …) and `generation`;
//! 3. write `inblob` (the 64 bytes of report data, raw) and `privlevel`
//!    (decimal text; default: the entry's `privlevel_floor`, else 0) when
//!    the entry has that attribute (kernels since 6.10 hide it for TDX);
//! 4. read `outblob` (the SNP report / the TDX quote) and, when present,
//!    `auxblob` (the SNP certificate table);
//! 5. read `generation` again: the kernel increments it on every write to
//!    `inblob` or an option, so anything but "before + our 2 writes" means
//!    another writer touched the entry and the outblob may belong to it.
//!    The request is then retried in a new entry, [`MAX_ATTEMPTS`] times at
//!    most, before a [`TeeError::Conflict`];
//! 6. `rmdir` the entry (best effort, also on every error path).
//!
//! As a second line of defence the report data inside the outblob must equal
//! what was written; core's parsers read it (the SNP report, the TDX quote),
//! so a malformed outblob is refused here already.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord_core::evidence::snp::REPORT_LEN as SNP_REPORT_LEN;
use accord_core::evidence::{Evidence, SnpEvidence, TdxEvidence};

use super::{TeeError, TeeProvider, cert_table, sev_guest, tdx};

/// `provider` of the AMD SEV-SNP guest driver.
pub const PROVIDER_SEV_GUEST: &str = "sev_guest";
/// `provider` of the Intel TDX guest driver.
pub const PROVIDER_TDX_GUEST: &str = "tdx_guest";
/// How many entries a request tries before giving up on a concurrent writer.
pub const MAX_ATTEMPTS: u32 = 3;

/// configfs creates an entry's attributes together with the directory; a
/// tree that is not configfs (an emulation, an overlay) may show them a
/// moment later. The request waits this long for `inblob` to appear.
const ENTRY_READY_TIMEOUT: Duration = Duration::from_secs(2);

static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Evidence through configfs-tsm.
#[derive(Clone, Debug)]
pub struct ConfigfsTsm {
    root: PathBuf,
    name: &'static str,
    require_provider: Option<&'static str>,
    privlevel: Option<u32>,
}

impl ConfigfsTsm {
    /// Any provider the kernel offers (`--tee configfs-tsm`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            name: "configfs-tsm",
            require_provider: None,
            privlevel: None,
        }
    }

    /// Intel TDX only: the entry's provider must be `tdx_guest` (`--tee tdx`).
    pub fn tdx(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            name: "tdx",
            require_provider: Some(PROVIDER_TDX_GUEST),
            privlevel: None,
        }
    }

    /// Requests reports at this privilege level (SNP VMPL) instead of the
    /// entry's `privlevel_floor`.
    pub fn with_privlevel(mut self, privlevel: u32) -> Self {
        self.privlevel = Some(privlevel);
        self
    }

    /// The report root this provider uses.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a test entry and returns its `provider` (used by detection).
    pub fn probe(&self) -> Result<String, TeeError> {
        let entry = Entry::create(&self.root, self.name)?;
        entry.provider()
    }

    fn attempt(&self, report_data: &[u8; 64]) -> Result<Attempt, TeeError> {
        let entry = Entry::create(&self.root, self.name)?;
        let provider = entry.provider()?;
        if let Some(required) = self.require_provider
            && provider != required
        {
            return Err(TeeError::Unavailable {
                provider: self.name,
                reason: format!(
                    "{} reports provider `{provider}`, not `{required}`",
                    entry.path.display()
                ),
            });
        }
        // Kernels since 6.10 hide `privlevel` (and its floor) from providers
        // without privilege levels (TDX): then only inblob is written.
        let privlevel = if entry.path.join("privlevel").exists() {
            Some(match self.privlevel {
                Some(level) => level,
                None => match entry.read_optional("privlevel_floor")? {
                    Some(text) => entry.parse_decimal("privlevel_floor", &text)?,
                    None => 0,
                },
            })
        } else if let Some(level) = self.privlevel {
            return Err(TeeError::Protocol(format!(
                "{}: missing, so privilege level {level} cannot be requested",
                entry.path.join("privlevel").display()
            )));
        } else {
            None
        };
        let writes: u64 = if privlevel.is_some() { 2 } else { 1 };
        let before = entry.generation()?;
        entry.write("inblob", report_data)?;
        if let Some(level) = privlevel {
            entry.write("privlevel", level.to_string().as_bytes())?;
        }
        let outblob = entry.read("outblob")?;
        let auxblob = entry.read_optional("auxblob")?;
        let after = entry.generation()?;
        if after != before.wrapping_add(writes) {
            return Ok(Attempt::Conflict {
                path: entry.path.clone(),
                before,
                after,
                writes,
            });
        }
        let evidence = build_evidence(&entry.path, &provider, outblob, auxblob, report_data)?;
        Ok(Attempt::Done(evidence))
    }
}

enum Attempt {
    Done(Evidence),
    Conflict {
        path: PathBuf,
        before: u64,
        after: u64,
        writes: u64,
    },
}

impl TeeProvider for ConfigfsTsm {
    fn name(&self) -> &'static str {
        self.name
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(report_data)? {
                Attempt::Done(evidence) => return Ok(evidence),
                Attempt::Conflict {
                    path,
                    before,
                    after,
                    writes,
                } => last = Some((path, before, after, writes)),
            }
        }
        let (path, before, after, writes) = last.unwrap_or_default();
        Err(TeeError::Conflict {
            path,
            attempts: MAX_ATTEMPTS,
            detail: format!(
                "generation went from {before} to {after}, expected {} after our {writes} writes",
                before.wrapping_add(writes)
            ),
        })
    }
}

fn build_evidence(
    entry: &Path,
    provider: &str,
    outblob: Vec<u8>,
    auxblob: Option<Vec<u8>>,
    report_data: &[u8; 64],
) -> Result<Evidence, TeeError> {
    let outblob_path = entry.join("outblob");
    let evidence = match provider {
        PROVIDER_SEV_GUEST => {
            if outblob.len() != SNP_REPORT_LEN {
                return Err(TeeError::Protocol(format!(
                    "{}: {} bytes, but an SEV-SNP report is {SNP_REPORT_LEN}",
                    outblob_path.display(),
                    outblob.len()
                )));
            }
            sev_guest::check_report_data(
                &outblob,
                report_data,
                &outblob_path.display().to_string(),
            )?;
            let certs = match &auxblob {
                Some(table) => {
                    cert_table::parse(table, &entry.join("auxblob").display().to_string())?
                }
                None => cert_table::SnpCertificates::default(),
            };
            let vcek = certs.leaf().cloned();
            Evidence::Snp(SnpEvidence {
                report: outblob,
                vcek,
                ask: certs.ask,
                ark: certs.ark,
                crl: None,
            })
        }
        PROVIDER_TDX_GUEST => {
            let found = tdx::quote_report_data(&outblob).map_err(|reason| {
                TeeError::Protocol(format!("{}: {reason}", outblob_path.display()))
            })?;
            if found != report_data {
                return Err(TeeError::Protocol(format!(
                    "{}: the report data inside is not the report data written (another writer?)",
                    outblob_path.display()
                )));
            }
            Evidence::Tdx(TdxEvidence {
                quote: outblob,
                collateral: None,
            })
        }
        other => {
            return Err(TeeError::Protocol(format!(
                "{}: provider `{other}` is not supported (known: {PROVIDER_SEV_GUEST}, {PROVIDER_TDX_GUEST})",
                entry.join("provider").display()
            )));
        }
    };
    Ok(evidence)
}

/// One report entry; removed when dropped.
struct Entry {
    path: PathBuf,
}

impl Entry {
    fn create(root: &Path, provider: &'static str) -> Result<Self, TeeError> {
        if !root.is_dir() {
            return Err(TeeError::Unavailable {
                provider,
                reason: format!("{} is not a directory", root.display()),
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "accord-{}-{}-{nanos:08x}",
            std::process::id(),
            ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = root.join(name);
        std::fs::create_dir(&path).map_err(|source| {
            // The kernel's tsm module refuses new report entries with ENXIO
            // while no provider (sev-guest, tdx-guest) is registered.
            if source.raw_os_error() == Some(libc::ENXIO) {
                TeeError::Unavailable {
                    provider,
                    reason: format!(
                        "no TSM provider: creating {} failed with ENXIO, so no sev-guest or tdx-guest driver is registered with the kernel (this is not a confidential VM, or its guest driver is not loaded)",
                        path.display()
                    ),
                }
            } else {
                TeeError::Io {
                    action: format!("creating configfs-tsm report entry {}", path.display()),
                    source,
                }
            }
        })?;
        let entry = Self { path };
        entry.wait_ready();
        Ok(entry)
    }

    fn wait_ready(&self) {
        let inblob = self.path.join("inblob");
        let start = Instant::now();
        while !inblob.exists() && start.elapsed() < ENTRY_READY_TIMEOUT {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn provider(&self) -> Result<String, TeeError> {
        match self.read_optional("provider")? {
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if text.is_empty() {
                    Err(TeeError::Protocol(format!(
                        "{}: empty",
                        self.path.join("provider").display()
                    )))
                } else {
                    Ok(text)
                }
            }
            None => Err(TeeError::Protocol(format!(
                "{}: missing (no TSM provider attribute in the report entry)",
                self.path.join("provider").display()
            ))),
        }
    }

    fn generation(&self) -> Result<u64, TeeError> {
        let text = self.read("generation")?;
        self.parse_decimal("generation", &text)
    }

    fn parse_decimal<T: std::str::FromStr>(&self, name: &str, text: &[u8]) -> Result<T, TeeError> {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| {
                TeeError::Protocol(format!(
                    "{}: `{}` is not a decimal number",
                    self.path.join(name).display(),
                    String::from_utf8_lossy(text).trim()
                ))
            })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, TeeError> {
        let path = self.path.join(name);
        std::fs::read(&path).map_err(|source| TeeError::Io {
            action: format!("reading {}", path.display()),
            source,
        })
    }

    fn read_optional(&self, name: &str) -> Result<Option<Vec<u8>>, TeeError> {
        let path = self.path.join(name);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TeeError::Io {
                action: format!("reading {}", path.display()),
                source,
            }),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TeeError> {
        let path = self.path.join(name);
        // configfs attributes take one write(2) each: write the whole value
        // at once, without truncation semantics.
        let result = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, bytes));
        result.map_err(|source| TeeError::Io {
            action: format!("writing {}", path.display()),
            source,
        })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Best effort: the kernel frees the entry on rmdir; nothing useful can
        // be done if it fails.
        let _ = std::fs::remove_dir(&self.path);
    }
}
