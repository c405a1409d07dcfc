//! An emulation of the kernel side of configfs-tsm on an ordinary directory.
//!
//! A watcher thread notices each entry the client creates (`mkdir`) and
//! populates it the way the kernel does, with named pipes (FIFOs) as
//! attributes so that every read and write reaches the emulation at the
//! moment it happens:
//!
//! - `inblob`, `privlevel` (write-only): each write stores the value and
//!   increments `generation`;
//! - `generation`, `provider`, `outblob`, `auxblob`, `privlevel_floor`
//!   (read-only): each read is answered with the state at that moment;
//!   `outblob` is produced from the current `inblob` and `privlevel`.
//!
//! Pending writes are applied before any read is answered (a reader drains
//! the write pipes under the state lock), so a read that follows a write
//! sees it, as with the kernel. A "concurrent writer" can be injected: right
//! after the client's `inblob` write, another write lands on the same entry.
//! Differences from configfs: attributes appear a moment after `mkdir`
//! (the client waits for `inblob`), and `rmdir` of an entry fails because the
//! pipes are ordinary directory entries (the client ignores rmdir errors).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Produces an outblob from inblob and privlevel.
pub type OutblobFn = Arc<dyn Fn(&[u8], u32) -> Vec<u8> + Send + Sync>;

/// How the emulated kernel answers.
#[derive(Clone)]
pub struct Behaviour {
    /// The `provider` attribute; `None` leaves it out.
    pub provider: Option<&'static str>,
    /// Produces the outblob from inblob and privlevel.
    pub outblob: OutblobFn,
    /// The `auxblob` attribute, if any.
    pub auxblob: Option<Vec<u8>>,
    /// `privlevel_floor`, if any.
    pub privlevel_floor: Option<u32>,
    /// How many client `inblob` writes are followed by a foreign write.
    pub interfere: Arc<AtomicU32>,
    /// Whether the entry has `privlevel` (kernels since 6.10 hide it, and
    /// `privlevel_floor`, for TDX).
    pub privlevel: bool,
}

impl Behaviour {
    /// An SEV-SNP guest with the given certificate table.
    pub fn snp(auxblob: Option<Vec<u8>>) -> Self {
        Self {
            provider: Some("sev_guest"),
            outblob: Arc::new(snp_report),
            auxblob,
            privlevel_floor: Some(0),
            interfere: Arc::new(AtomicU32::new(0)),
            privlevel: true,
        }
    }

    /// A TDX guest (as kernels since 6.10 show it: no privlevel).
    pub fn tdx() -> Self {
        Self {
            provider: Some("tdx_guest"),
            outblob: Arc::new(|inblob, _| tdx_quote(inblob)),
            auxblob: None,
            privlevel_floor: None,
            interfere: Arc::new(AtomicU32::new(0)),
            privlevel: false,
        }
    }
}

/// A structurally valid SNP report (core's parser accepts it; unsigned:
/// the emulation is not a chip): 1184 bytes, version 3, policy bit 17 set,
/// signature algorithm 1, VMPL at 0x30, REPORT_DATA at 0x50.
pub fn snp_report(inblob: &[u8], privlevel: u32) -> Vec<u8> {
    let mut report = vec![0u8; 1184];
    report[0..4].copy_from_slice(&3u32.to_le_bytes());
    report[0x08..0x10].copy_from_slice(&(1u64 << 17).to_le_bytes());
    report[0x30..0x34].copy_from_slice(&privlevel.to_le_bytes());
    report[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
    let n = inblob.len().min(64);
    report[0x50..0x50 + n].copy_from_slice(&inblob[..n]);
    report
}

/// core's synthetic TDX v4 quote (its parser accepts it; garbage
/// signatures) with `inblob` as REPORTDATA (at 568).
pub fn tdx_quote(inblob: &[u8]) -> Vec<u8> {
    let mut report_data = [0u8; 64];
    let n = inblob.len().min(64);
    report_data[..n].copy_from_slice(&inblob[..n]);
    accord_core::internal::synthetic_tdx_quote(4, 2, Some(&report_data), &[])
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "accord-guest-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Default)]
struct EntryState {
    generation: u64,
    inblob: Vec<u8>,
    privlevel: u32,
}

/// The running emulation; stops watching for new entries when dropped.
pub struct Emulator {
    /// The report root to hand to the client.
    pub root: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Threads still waiting on pipes of this tree stay blocked until the
        // test process exits; the tree itself can go.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Emulator {
    /// Starts an emulated kernel on a fresh directory.
    pub fn start(behaviour: Behaviour) -> Self {
        let root = temp_dir("tsm");
        let stop = Arc::new(AtomicBool::new(false));
        let (watch_root, watch_stop) = (root.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::HashSet::new();
            while !watch_stop.load(Ordering::Relaxed) {
                if let Ok(dir) = std::fs::read_dir(&watch_root) {
                    for entry in dir.flatten() {
                        let path = entry.path();
                        if path.is_dir() && seen.insert(path.clone()) {
                            populate(&path, &behaviour);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self { root, stop }
    }
}

fn mkfifo(paths: &[PathBuf]) {
    let status = Command::new("mkfifo").args(paths).status().unwrap();
    assert!(status.success(), "mkfifo failed");
}

/// Applies a write to `name` (under the state lock).
fn apply(state: &mut EntryState, name: &str, bytes: &[u8], behaviour: &Behaviour) {
    state.generation += 1;
    match name {
        "inblob" => {
            state.inblob = bytes.to_vec();
            if behaviour
                .interfere
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                // Another process writes its own inblob into the same entry.
                state.inblob = vec![0xee; 64];
                state.generation += 1;
            }
        }
        _ => {
            state.privlevel = std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(u32::MAX);
        }
    }
}

/// Applies whatever the client wrote into the write pipes and nobody has
/// consumed yet (the caller holds the state lock).
fn drain(dir: &Path, state: &mut EntryState, behaviour: &Behaviour) {
    for name in writable(behaviour) {
        let Ok(mut pipe) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.join(name))
        else {
            continue;
        };
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 256];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        if !bytes.is_empty() {
            apply(state, name, &bytes, behaviour);
        }
    }
}

fn writable(behaviour: &Behaviour) -> &'static [&'static str] {
    if behaviour.privlevel {
        &["inblob", "privlevel"]
    } else {
        &["inblob"]
    }
}

fn populate(dir: &Path, behaviour: &Behaviour) {
    let state = Arc::new(Mutex::new(EntryState::default()));
    let mut readable: Vec<&'static str> = vec!["generation", "outblob"];
    if behaviour.provider.is_some() {
        readable.push("provider");
    }
    if behaviour.auxblob.is_some() {
        readable.push("auxblob");
    }
    if behaviour.privlevel_floor.is_some() {
        readable.push("privlevel_floor");
    }
    // inblob last: the client waits for it before it starts.
    let mut all: Vec<PathBuf> = readable.iter().map(|n| dir.join(n)).collect();
    if behaviour.privlevel {
        all.push(dir.join("privlevel"));
    }
    all.push(dir.join("inblob"));
    mkfifo(&all);

    for &name in writable(behaviour) {
        let (dir, state, behaviour) = (dir.to_path_buf(), state.clone(), behaviour.clone());
        std::thread::spawn(move || {
            loop {
                // Blocks until the client opens the attribute for writing.
                let Ok(mut pipe) = std::fs::File::open(dir.join(name)) else {
                    return;
                };
                let mut state = state.lock().unwrap();
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                // Empty: a reader drained this write already.
                if !bytes.is_empty() {
                    apply(&mut state, name, &bytes, &behaviour);
                }
            }
        });
    }
    for name in readable {
        let (dir, state, behaviour) = (dir.to_path_buf(), state.clone(), behaviour.clone());
        std::thread::spawn(move || {
            let path = dir.join(name);
            loop {
                // Blocks until the client opens the attribute for reading.
                let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&path) else {
                    return;
                };
                // A fresh pipe for the next reader, so that it can never
                // see a second copy of this answer.
                let next = dir.join(format!(".{name}.next"));
                mkfifo(std::slice::from_ref(&next));
                let _ = std::fs::rename(&next, &path);
                let answer = {
                    let mut state = state.lock().unwrap();
                    drain(&dir, &mut state, &behaviour);
                    match name {
                        "generation" => format!("{}\n", state.generation).into_bytes(),
                        "provider" => {
                            format!("{}\n", behaviour.provider.unwrap_or("")).into_bytes()
                        }
                        "outblob" => (behaviour.outblob)(&state.inblob, state.privlevel),
                        "auxblob" => behaviour.auxblob.clone().unwrap_or_default(),
                        _ => format!("{}\n", behaviour.privlevel_floor.unwrap_or(0)).into_bytes(),
                    }
                };
                let _ = pipe.write_all(&answer);
            }
        });
    }
}
