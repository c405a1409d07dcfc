//! `accord-guest init`: PID 1 of the accord guest image (issue 7).
//!
//! The image is a kernel and an initramfs whose `/init` is this binary
//! (see `image/` and `cargo xtask image`). As PID 1 it:
//!
//! 1. mounts `/proc`, `/sys`, `/dev` (devtmpfs) and a tmpfs on `/run`;
//! 2. loads the kernel modules listed in `/modules/order` (one file name
//!    under `/modules` a line, in load order) with `finit_module`
//!    (`.ko.xz`/`.ko.zst` with `MODULE_INIT_COMPRESSED_FILE`), then mounts
//!    configfs on `/sys/kernel/config` when the kernel has it;
//! 3. brings up `lo` and `eth0` as 10.0.2.15/24 (QEMU user networking:
//!    the host is 10.0.2.2, which is on that subnet, so no route is
//!    needed);
//! 4. reads its settings from the kernel command line (`accord.KEY=VALUE`,
//!    see [`InitConfig`]);
//! 5. probes configfs-tsm once and prints the outcome as
//!    `accord-guest init: configfs-tsm: …` (outside a confidential VM:
//!    the kernel's error, ENXIO when no TSM provider is registered);
//! 6. runs the coordinator with its state under `/run/accord` (tmpfs),
//!    the simulated chip (if chosen; only the test image's agent, built
//!    with the `insecure-simulation` feature, has one) in
//!    `/run/accord/chip`, seeded from `/etc/accord/insecure-simulated-chip/`
//!    when the initramfs carries one (only test images do: `cargo xtask
//!    qemu-test` appends it);
//! 7. when the coordinator ends (SIGTERM; SIGINT, which is what
//!    Ctrl-Alt-Del sends PID 1 once `RB_DISABLE_CAD` is set; or an error)
//!    it syncs and powers the machine off (`reboot(RB_POWER_OFF)`).
//!
//! PID 1 must never panic (the kernel would panic with it): every failure
//! is logged on the console and ends in a power-off, and a panic hook
//! powers off too.
//!
//! The system calls go through `rustix`'s safe wrappers; the interface
//! ioctls, which no crate wraps safely, are typed in [`netdev`].

mod netdev;

use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::tee::{self, TeeOptions, TeeProvider};

/// The guest address on QEMU's user-mode network.
pub const GUEST_ADDR: [u8; 4] = [10, 0, 2, 15];
/// Its netmask (/24).
pub const GUEST_NETMASK: [u8; 4] = [255, 255, 255, 0];
/// Where the state lives (tmpfs).
pub const STATE_DIR: &str = "/run/accord";
/// A simulated chip shipped in the initramfs (test images only).
pub const SEED_CHIP_DIR: &str = "/etc/accord/insecure-simulated-chip";
/// The line before the simulated chip's reference values (one JSON line).
pub const REFERENCE_VALUES_BEGIN: &str = "accord-guest init: reference values begin";
/// The line after them.
pub const REFERENCE_VALUES_END: &str = "accord-guest init: reference values end";

/// The settings `accord-guest init` takes from the kernel command line.
///
/// | key | meaning | default |
/// |---|---|---|
/// | `accord.tee=NAME` | TEE provider (`configfs-tsm`, `sev-guest`, `tdx`, `insecure-simulated`, `insecure-simulated-tdx`) | detection |
/// | `accord.shim=HOST:PORT` | the host shim (the host is 10.0.2.2 under QEMU user networking) | none: filesystem store in `/run/accord/store` (lost at power-off) |
/// | `accord.user-api=ADDR` | user API | `0.0.0.0:1313` |
/// | `accord.mesh-api=ADDR` | mesh API | `0.0.0.0:7777` |
/// | `accord.host-data=HEX32` | HOST_DATA of the simulated chip (INSECURE) | zero |
/// | `accord.measurement=HEX48` | MEASUREMENT of the simulated chip (INSECURE) | zero |
///
/// Unknown `accord.*` keys are an error (a typo must not go unnoticed);
/// other kernel parameters are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitConfig {
    /// `accord.tee`.
    pub tee: Option<String>,
    /// `accord.shim`.
    pub shim: Option<String>,
    /// `accord.user-api`.
    pub user_api: String,
    /// `accord.mesh-api`.
    pub mesh_api: String,
    /// `accord.host-data`.
    pub host_data: Option<[u8; 32]>,
    /// `accord.measurement`.
    pub measurement: Option<[u8; 48]>,
}

impl Default for InitConfig {
    fn default() -> Self {
        Self {
            tee: None,
            shim: None,
            user_api: "0.0.0.0:1313".to_string(),
            mesh_api: "0.0.0.0:7777".to_string(),
            host_data: None,
            measurement: None,
        }
    }
}

impl InitConfig {
    /// Parses the `accord.*` parameters of a kernel command line.
    pub fn from_cmdline(cmdline: &str) -> Result<Self, String> {
        let mut config = Self::default();
        for word in cmdline.split_whitespace() {
            let Some(setting) = word.strip_prefix("accord.") else {
                continue;
            };
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("`{word}`: expected accord.KEY=VALUE"))?;
            if value.is_empty() {
                return Err(format!("`{word}`: empty value"));
            }
            match key {
                "tee" => {
                    if !tee::PROVIDER_NAMES.contains(&value) {
                        return Err(format!(
                            "accord.tee={value}: unknown provider (known: {})",
                            tee::PROVIDER_NAMES.join(", ")
                        ));
                    }
                    config.tee = Some(value.to_string());
                }
                "shim" => config.shim = Some(value.to_string()),
                "user-api" => config.user_api = value.to_string(),
                "mesh-api" => config.mesh_api = value.to_string(),
                "host-data" => {
                    config.host_data = Some(
                        accord_core::hex::decode_array(value)
                            .map_err(|e| format!("accord.host-data: {e}"))?,
                    );
                }
                "measurement" => {
                    config.measurement = Some(
                        accord_core::hex::decode_array(value)
                            .map_err(|e| format!("accord.measurement: {e}"))?,
                    );
                }
                other => return Err(format!("unknown kernel parameter accord.{other}")),
            }
        }
        let simulated = config.tee.as_deref().is_some_and(tee::is_simulated);
        if !simulated && (config.host_data.is_some() || config.measurement.is_some()) {
            return Err(
                "accord.host-data and accord.measurement apply only to accord.tee=insecure-simulated (or insecure-simulated-tdx)"
                    .to_string(),
            );
        }
        Ok(config)
    }
}

/// Seconds since boot, for the console lines.
fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// One console line (stderr is the console); write errors are ignored.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "[{:>8}] accord-guest init: {line}", uptime());
    let _ = err.flush();
}

/// Syncs and powers the machine off; exits if that is refused (not PID 1).
fn power_off() -> ! {
    rustix::fs::sync();
    // reboot(2) returns only on error.
    let err = match rustix::system::reboot(rustix::system::RebootCommand::PowerOff) {
        Ok(()) => "no error".to_string(),
        Err(errno) => std::io::Error::from(errno).to_string(),
    };
    say(&format!("power-off refused ({err}); exiting"));
    std::process::exit(1)
}

/// Runs as PID 1; never returns (powers off).
pub fn run() -> ! {
    std::panic::set_hook(Box::new(|info| {
        say(&format!("PANIC: {info}; powering off"));
        power_off();
    }));
    if std::process::id() != 1 {
        say("not PID 1: `accord-guest init` is the image's /init, nothing else");
        std::process::exit(2);
    }
    say("starting");
    // Ctrl-Alt-Del becomes SIGINT to PID 1 (the coordinator's graceful
    // stop) instead of an immediate reboot: how the host asks the VM to
    // shut down (`cargo xtask qemu-test` sends it through QEMU's monitor).
    if let Err(errno) = rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        say(&format!(
            "could not hand Ctrl-Alt-Del to init: {}",
            std::io::Error::from(errno)
        ));
    }
    match boot() {
        Ok(()) => say("the coordinator stopped; powering off"),
        Err(err) => say(&format!("error: {err:#}; powering off")),
    }
    power_off()
}

fn boot() -> anyhow::Result<()> {
    use anyhow::Context;

    for dir in ["/proc", "/sys", "/dev", "/run", "/tmp"] {
        let _ = std::fs::create_dir_all(dir);
    }
    mount("proc", "/proc", "proc", "")?;
    mount("sysfs", "/sys", "sysfs", "")?;
    mount("devtmpfs", "/dev", "devtmpfs", "")?;
    mount("tmpfs", "/run", "tmpfs", "mode=0755")?;
    mount("tmpfs", "/tmp", "tmpfs", "mode=1777")?;

    load_modules(Path::new("/modules"));
    if Path::new("/sys/kernel/config").is_dir() {
        if let Err(err) = mount("configfs", "/sys/kernel/config", "configfs", "") {
            say(&format!("{err:#}"));
        }
    } else {
        say("no configfs in this kernel");
    }

    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let config = InitConfig::from_cmdline(&cmdline).map_err(anyhow::Error::msg)?;

    network()?;
    probe_configfs_tsm();

    let state = PathBuf::from(STATE_DIR);
    std::fs::create_dir_all(&state).with_context(|| format!("creating {STATE_DIR}"))?;
    // Without the `insecure-simulation` feature (the production image)
    // `tee::open` refuses `accord.tee=insecure-simulated`.
    let options = match config.tee.as_deref() {
        #[cfg(feature = "insecure-simulation")]
        Some(name) if tee::is_simulated(name) => simulated_chip(&config, &state)?,
        _ => TeeOptions::default(),
    };
    let provider: Arc<dyn TeeProvider> = match config.tee.as_deref() {
        Some(name) => tee::open(name, &options)?,
        None => tee::detect(&options)?,
    }
    .into();
    say(&format!("TEE provider {}", provider.name()));
    let store = match &config.shim {
        Some(addr) => crate::coordinator::StoreLocation::Shim(addr.clone()),
        None => crate::coordinator::StoreLocation::Dir(state.clone()),
    };
    say(&format!(
        "starting the coordinator (user API {}, mesh API {}, store {})",
        config.user_api,
        config.mesh_api,
        config.shim.as_deref().unwrap_or(STATE_DIR)
    ));
    // The coordinator logs through `tracing`; ACCORD_LOG_LEVEL and
    // ACCORD_LOG_FORMAT reach PID 1 as environment variables when they are
    // on the kernel command line. A bad value falls back to the defaults
    // (PID 1 has nobody to refuse to).
    if let Err(err) = accord_log::init(accord_log::LevelFilter::INFO) {
        say(&format!("{err}; logging at info, as text"));
        accord_log::install(accord_log::Config::default_for(
            accord_log::LevelFilter::INFO,
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::coordinator::run(
        provider,
        store,
        &config.user_api,
        &config.mesh_api,
    ))?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

fn cstring(text: &str) -> anyhow::Result<CString> {
    CString::new(text).map_err(|_| anyhow::anyhow!("NUL in `{text}`"))
}

/// mount(2); "already mounted" (EBUSY) counts as success.
fn mount(source: &str, target: &str, fstype: &str, data: &str) -> anyhow::Result<()> {
    use rustix::mount::MountFlags;
    let data = cstring(data)?;
    let mut flags = MountFlags::NOSUID;
    if fstype != "devtmpfs" {
        flags |= MountFlags::NODEV;
    }
    match rustix::mount::mount(source, target, fstype, flags, data.as_c_str()) {
        Ok(()) | Err(rustix::io::Errno::BUSY) => Ok(()),
        Err(errno) => {
            let err = std::io::Error::from(errno);
            anyhow::bail!("mounting {fstype} on {target}: {err}")
        }
    }
}

/// `finit_module` flag: the file is compressed, the kernel decompresses it.
const MODULE_INIT_COMPRESSED_FILE: std::ffi::c_int = 4;

/// Loads the modules listed in `dir/order`, logging each outcome.
fn load_modules(dir: &Path) {
    let order = match std::fs::read_to_string(dir.join("order")) {
        Ok(text) => text,
        Err(err) => {
            say(&format!(
                "no module list ({}: {err})",
                dir.join("order").display()
            ));
            return;
        }
    };
    let mut loaded = Vec::new();
    for name in order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let path = dir.join(name);
        match load_module(&path) {
            Ok(()) => loaded.push(name.to_string()),
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => loaded.push(name.to_string()),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {
                say(&format!("module {name}: no such device here ({err})"));
            }
            Err(err) => say(&format!("module {name}: {err}")),
        }
    }
    say(&format!("modules loaded: {}", loaded.join(" ")));
}

fn load_module(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let name = path.to_string_lossy();
    let flags = if name.ends_with(".xz") || name.ends_with(".zst") || name.ends_with(".gz") {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    rustix::system::finit_module(&file, c"", flags)?;
    Ok(())
}

/// Brings up `lo`, and `eth0` as 10.0.2.15/24 (waiting up to 10 s for the
/// virtio-net device to show up).
fn network() -> anyhow::Result<()> {
    use anyhow::Context;
    let socket = netdev::NetSocket::new().context("opening a socket for the interface ioctls")?;
    socket.up("lo").context("bringing up lo")?;
    let mut waited = Duration::ZERO;
    while !Path::new("/sys/class/net/eth0").exists() {
        if waited >= Duration::from_secs(10) {
            anyhow::bail!("no eth0 after 10 s (is virtio_net in /modules/order?)");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    socket
        .set_addr("eth0", GUEST_ADDR)
        .context("setting eth0's address")?;
    socket
        .set_netmask("eth0", GUEST_NETMASK)
        .context("setting eth0's netmask")?;
    socket.up("eth0").context("bringing up eth0")?;
    say("eth0 up: 10.0.2.15/24");
    Ok(())
}

/// Probes configfs-tsm once and prints the outcome.
fn probe_configfs_tsm() {
    let options = TeeOptions::default();
    let root = &options.configfs_root;
    let line = if root.is_dir() {
        match tee::configfs_tsm::ConfigfsTsm::new(root).probe() {
            Ok(provider) => format!("provider {provider}"),
            Err(err) => err.to_string(),
        }
    } else {
        format!("unavailable: {} is not a directory", root.display())
    };
    say(&format!("configfs-tsm: {line}"));
}

/// Sets up the INSECURE simulated chip (test images only): its state in
/// `STATE/chip`, seeded from the initramfs, HOST_DATA and MEASUREMENT from
/// the command line; prints its reference values. Returns the options
/// that open it. With `accord.tee=insecure-simulated-tdx` the same for the
/// simulated TDX, in `STATE/tdx` (not seeded: made at boot).
#[cfg(feature = "insecure-simulation")]
fn simulated_chip(config: &InitConfig, state: &Path) -> anyhow::Result<TeeOptions> {
    let mut options = TeeOptions {
        simulated_state: state.join("chip"),
        ..TeeOptions::default()
    };
    if let Some(host_data) = config.host_data {
        options.simulated.host_data = host_data;
    }
    if let Some(measurement) = config.measurement {
        options.simulated.measurement = measurement;
    }
    say("INSECURE SIMULATION: the simulated chip proves nothing about real hardware");
    if config.tee.as_deref() == Some(tee::INSECURE_SIMULATED_TDX) {
        // The simulated TDX has no seed: its P-256 keys are made at boot.
        options.simulated_state = state.join("tdx");
        print_tdx_reference_values(&options)?;
        return Ok(options);
    }
    seed_chip(Path::new(SEED_CHIP_DIR), &options.simulated_state)?;
    print_reference_values(&options)?;
    Ok(options)
}

/// Copies a simulated chip shipped in the initramfs into the state.
#[cfg(feature = "insecure-simulation")]
fn seed_chip(from: &Path, to: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    say(&format!(
        "INSECURE: using the simulated chip shipped in {}",
        from.display()
    ));
    Ok(())
}

/// Prints the simulated chip's reference values (one JSON line between
/// markers), HOST_DATA left out as `accord-guest reference-values` does.
#[cfg(feature = "insecure-simulation")]
fn print_reference_values(options: &TeeOptions) -> anyhow::Result<()> {
    let chip = tee::simulated::SimulatedSnp::open(&options.simulated_state, &options.simulated)?;
    let mut snp = chip.reference_values();
    snp.host_data = None;
    print_between_markers(&accord_core::evidence::ReferenceValues {
        snp: vec![snp],
        tdx: Vec::new(),
    })
}

/// [`print_reference_values`] for the simulated TDX: its `tdx` entry.
#[cfg(feature = "insecure-simulation")]
fn print_tdx_reference_values(options: &TeeOptions) -> anyhow::Result<()> {
    let platform =
        tee::simulated_tdx::SimulatedTdx::open(&options.simulated_state, &options.simulated)?;
    let mut tdx = platform.reference_values();
    tdx.policy_hash = None;
    print_between_markers(&accord_core::evidence::ReferenceValues {
        snp: Vec::new(),
        tdx: vec![tdx],
    })
}

/// Prints `reference` as one JSON line between the markers on stderr.
#[cfg(feature = "insecure-simulation")]
fn print_between_markers(reference: &accord_core::evidence::ReferenceValues) -> anyhow::Result<()> {
    let json = serde_json::to_string(reference)?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{REFERENCE_VALUES_BEGIN}\n{json}\n{REFERENCE_VALUES_END}"
    );
    let _ = err.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_parsed() {
        let config = InitConfig::from_cmdline(
            "console=ttyS0 quiet accord.tee=insecure-simulated accord.shim=10.0.2.2:9103 \
             accord.host-data=0101010101010101010101010101010101010101010101010101010101010101",
        )
        .unwrap();
        assert_eq!(config.tee.as_deref(), Some("insecure-simulated"));
        assert_eq!(config.shim.as_deref(), Some("10.0.2.2:9103"));
        assert_eq!(config.user_api, "0.0.0.0:1313");
        assert_eq!(config.host_data, Some([1; 32]));
        assert_eq!(
            InitConfig::from_cmdline("console=ttyS0").unwrap(),
            InitConfig::default()
        );
        // The simulated TDX reads the same settings.
        let tdx = InitConfig::from_cmdline(
            "accord.tee=insecure-simulated-tdx \
             accord.host-data=0202020202020202020202020202020202020202020202020202020202020202",
        )
        .unwrap();
        assert_eq!(tdx.tee.as_deref(), Some("insecure-simulated-tdx"));
        assert_eq!(tdx.host_data, Some([2; 32]));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            InitConfig::from_cmdline("accord.sihm=x")
                .unwrap_err()
                .contains("accord.sihm")
        );
        assert!(InitConfig::from_cmdline("accord.tee=nope").is_err());
        assert!(InitConfig::from_cmdline("accord.shim").is_err());
        assert!(InitConfig::from_cmdline("accord.tee=sev-guest accord.host-data=00").is_err());
        assert!(
            InitConfig::from_cmdline("accord.tee=insecure-simulated accord.host-data=00").is_err()
        );
    }
}
