//! accord's own settings for generated policies: what the Kata runtime
//! legitimately adds to every container (the sandbox's pause process,
//! kernel file systems, default capabilities and sysctls, masked paths)
//! and which runtime-injected environment variables are allowed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ImageConfig;

/// Settings of the generator; [`Settings::default`] fits Kata with guest
/// pull (the rootfs pulled inside the VM) and block-encrypted emptyDirs.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// The pause (sandbox) container's process: `entrypoint`, `env`,
    /// `user` (`UID:GID`, used when the pod sets no `runAsUser`).
    #[serde(skip)]
    pub pause: ImageConfig,
    /// The capabilities a container has without `securityContext.capabilities`.
    pub default_caps: Vec<String>,
    /// What `capabilities.add: [ALL]` means.
    pub all_caps: Vec<String>,
    /// Sysctls the runtime sets on every container (besides the pod's own).
    pub base_sysctls: BTreeMap<String, String>,
    /// Paths a container must keep masked (a request may add more).
    pub masked_paths: Vec<String>,
    /// Paths a container must keep read-only.
    pub readonly_paths: Vec<String>,
    /// Mount options `/sys/fs/cgroup` may carry besides
    /// `nosuid,noexec,nodev,relatime,ro`.
    pub cgroup_mount_extras_allowed: Vec<String>,
    /// Environment variables the runtime injects (service links, hostname),
    /// as anchored regexes over `NAME=VALUE`.
    pub allow_env_regex: Vec<String>,
    /// `resources.limits` keys that request whole GPUs passed through as
    /// VFIO devices with CDI annotations.
    pub vfio_gpu_resource_keys: Vec<String>,
    /// Host directories a `hostPath` volume may share into the pod,
    /// read-only (as a ConfigMap is shared). Empty by default: the host
    /// controls a host path's contents, so only the INSECURE simulation's
    /// test deployment (`accord generate --insecure-simulation`: the
    /// simulated chip's state) allows one.
    #[serde(skip)]
    pub insecure_host_paths: Vec<String>,
}

const IPV4: &str = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}";
const PORT: &str = "[0-9]{1,5}";
const SVC: &str = "[A-Z][A-Z0-9_]{0,62}";

impl Default for Settings {
    fn default() -> Self {
        let default_caps = [
            "CAP_AUDIT_WRITE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ];
        let all_caps = [
            "CAP_AUDIT_CONTROL",
            "CAP_AUDIT_READ",
            "CAP_AUDIT_WRITE",
            "CAP_BLOCK_SUSPEND",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_KILL",
            "CAP_LEASE",
            "CAP_LINUX_IMMUTABLE",
            "CAP_MAC_ADMIN",
            "CAP_MAC_OVERRIDE",
            "CAP_MKNOD",
            "CAP_NET_ADMIN",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_RAW",
            "CAP_PERFMON",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYSLOG",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_CHROOT",
            "CAP_SYS_MODULE",
            "CAP_SYS_NICE",
            "CAP_SYS_PACCT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_WAKE_ALARM",
        ];
        let ip = IPV4;
        Settings {
            pause: ImageConfig {
                entrypoint: vec!["/pause".into()],
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                user: "65535:65535".into(),
                working_dir: "/".into(),
                ..ImageConfig::default()
            },
            default_caps: default_caps.iter().map(|s| s.to_string()).collect(),
            all_caps: all_caps.iter().map(|s| s.to_string()).collect(),
            base_sysctls: [
                ("net.ipv4.ip_unprivileged_port_start", "0"),
                ("net.ipv4.ping_group_range", "0 2147483647"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            masked_paths: [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/sys/firmware",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            readonly_paths: [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            cgroup_mount_extras_allowed: vec!["nsdelegate".into(), "memory_recursiveprot".into()],
            allow_env_regex: vec![
                "^HOSTNAME=[A-Za-z0-9_.-]+$".into(),
                format!("^{SVC}_PORT_{PORT}_(TCP|UDP|SCTP)=(tcp|udp|sctp)://{ip}:{PORT}$"),
                format!("^{SVC}_PORT_{PORT}_(TCP|UDP|SCTP)_PROTO=(tcp|udp|sctp)$"),
                format!("^{SVC}_PORT_{PORT}_(TCP|UDP|SCTP)_PORT={PORT}$"),
                format!("^{SVC}_PORT_{PORT}_(TCP|UDP|SCTP)_ADDR={ip}$"),
                format!("^{SVC}_SERVICE_HOST={ip}$"),
                format!("^{SVC}_SERVICE_PORT={PORT}$"),
                format!("^{SVC}_SERVICE_PORT_[A-Z0-9_]+={PORT}$"),
                format!("^{SVC}_PORT=(tcp|udp|sctp)://{ip}:{PORT}$"),
                "^TERM=xterm$".into(),
            ],
            vfio_gpu_resource_keys: vec!["nvidia.com/pgpu".into()],
            insecure_host_paths: Vec::new(),
        }
    }
}
