# accord's Kata agent policy. Written for accord; the kata-agent evaluates
# data.agent_policy.<RequestName> with the request as input and denies
# unless the result is true or {"allowed": true, ...}. `policy_data` (the
# pod's data) is appended by `accord generate`; data.pstate is the agent's
# policy state, changed by the JSON Patch `ops` of allowed requests.
package agent_policy

import rego.v1

# Every request of the kata-agent API, each decided explicitly.
# Lifecycle and monitoring of what the policy let in: allowed.
default StartContainerRequest := true
default WaitProcessRequest := true
default SignalProcessRequest := true
default StatsContainerRequest := true
default PauseContainerRequest := true
default ResumeContainerRequest := true
default DestroySandboxRequest := true
default GetOOMEventRequest := true
default GetMetricsRequest := true
default GuestDetailsRequest := true
default ListInterfacesRequest := true
default ListRoutesRequest := true
default GetIPTablesRequest := true
default OnlineCPUMemRequest := true
default MemHotplugByProbeRequest := true
default MemAgentMemcgConfigRequest := true
default MemAgentCompactConfigRequest := true
default RemoveStaleVirtiofsShareMountsRequest := true
default GetVolumeStatsRequest := true

# Decided by rules below.
default CreateContainerRequest := false
default RemoveContainerRequest := false
default UpdateContainerRequest := false
default ExecProcessRequest := false
default ReadStreamRequest := false
default WriteStreamRequest := false
default CloseStdinRequest := false
default TtyWinResizeRequest := false
default CreateSandboxRequest := false
default UpdateInterfaceRequest := false
default UpdateRoutesRequest := false
default AddARPNeighborsRequest := false
default CopyFileRequest := false

# Denied: they would let the host change the guest's code, entropy, time,
# firewall, policy or read its internals.
default SetPolicyRequest := false
default SetIPTablesRequest := false
default ReseedRandomDevRequest := false
default SetGuestDateTimeRequest := false
default AddSwapRequest := false
default AddSwapPathRequest := false
default ResizeVolumeRequest := false
default UpdateEphemeralMountsRequest := false
default GetDiagnosticDataRequest := false
default StartTracingRequest := false
default StopTracingRequest := false
default ListProcessesRequest := false
default PullImageRequest := false

# ---------------------------------------------------------------- helpers

get(o, k, d) := object.get(o, k, d) if is_object(o)

get(o, k, d) := d if not is_object(o)

# An absent or null list is empty (the agent's protocol types default them).
list(o, k) := v if {
	v := get(o, k, [])
	is_array(v)
}

list(o, k) := [] if get(o, k, []) == null

as_set(a) := {x | some x in a}

objget(o, k) := v if {
	v := get(o, k, {})
	is_object(v)
} else := {}

subset(a, b) if {
	every x in a {
		x in b
	}
}

same_set(a, b) if {
	as_set(a) == as_set(b)
	count(a) == count(as_set(a))
}

state_matches(key, value) if not data.pstate[key]

state_matches(key, value) if data.pstate[key] == value

bundle_prefix := "/run/containerd/io.containerd.runtime.v2.task/k8s.io/"

# The bundle id of a create request (the last part of its bundle path).
bundle_id(anns) := id if {
	path := anns["io.katacontainers.pkg.oci.bundle_path"]
	startswith(path, bundle_prefix)
	id := substring(path, count(bundle_prefix), -1)
	regex.match(`^[A-Za-z0-9_-]+$`, id)
}

# String checks instead of regexes on the hot paths: the kata-agent's
# regorus compiles the regex anew at every `regex.match`.

# Every character of s is one of chars (and s is not empty).
only(s, chars) if {
	s != ""
	trim(s, chars) == ""
}

lower_digits := "abcdefghijklmnopqrstuvwxyz0123456789"

alnum := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

shared_prefixes := [
	"/run/kata-containers/shared/containers/",
	"/run/kata-containers/shared/containers/watchable/",
	"/run/kata-containers/shared/containers/passthrough/",
	"/run/kata-containers/shared/containers/passthrough/watchable/",
]

# A file the runtime shares from the host for one container (its bundle
# id): ^/run/kata-containers/shared/containers(/passthrough)?/(watchable/)?
# BUNDLE-[a-z0-9]{16}-[A-Za-z0-9._-]+$
shared_source_ok(src, bundle) if {
	some p in shared_prefixes
	pre := concat("", [p, bundle, "-"])
	startswith(src, pre)
	rest := trim_prefix(src, pre)
	hex := substring(rest, 0, 16)
	only(hex, lower_digits)
	count(hex) == 16
	substring(rest, 16, 1) == "-"
	only(substring(rest, 17, -1), concat("", [alnum, "._-"]))
}

storage_dir := "/run/kata-containers/sandbox/storage/"

# ^/run/kata-containers/sandbox/storage/[A-Za-z0-9+/=]+$
storage_path_ok(p) if {
	startswith(p, storage_dir)
	only(trim_prefix(p, storage_dir), concat("", [alnum, "+/="]))
}

# ^[0-9]+/[0-9]+$
major_minor_ok(s) if {
	parts := split(s, "/")
	count(parts) == 2
	only(parts[0], "0123456789")
	only(parts[1], "0123456789")
}

# ------------------------------------------------------- CreateContainer

CreateContainerRequest := {"allowed": true, "ops": ops} if {
	oci := input.OCI
	anns := get(oci, "Annotations", {})
	bundle := bundle_id(anns)
	c := policy_container(anns)
	sandbox_name_ok(anns)
	namespaces_ok(oci)
	root_ok(c, oci, bundle)
	process_ok(c, get(oci, "Process", null))
	linux_ok(c, get(oci, "Linux", {}))
	get(oci, "Hooks", null) == null
	hostname_ok(get(oci, "Hostname", ""), anns)
	mounts_ok(c, anns, list(oci, "Mounts"), bundle)
	storages_ok(c, anns, list(input, "storages"), bundle)
	devices_ok(c, anns, list(input, "devices"))
	get(input, "sandbox_pidns", false) == false
	get(input, "string_user", null) == null
	cid := get(input, "container_id", "")
	container_id_ok(cid, bundle)
	ops := array.concat(array.concat(name_ops(anns), netns_ops(oci)), cid_ops(cid, container_key(anns)))
}

# The agent keys a container's rootfs by its id and binds Root.Path there:
# the id must be the bundle's, or one container could run in another's
# rootfs. (An empty id, as in sparse test requests, the agent refuses.)
container_id_ok(cid, bundle) if cid == bundle

container_id_ok(cid, bundle) if cid == ""

is_sandbox(anns) if {
	anns["io.kubernetes.cri.container-type"] == "sandbox"
	get(anns, "io.katacontainers.pkg.oci.container_type", "pod_sandbox") == "pod_sandbox"
}

is_app(anns) if {
	anns["io.kubernetes.cri.container-type"] == "container"
	get(anns, "io.katacontainers.pkg.oci.container_type", "pod_container") == "pod_container"
}

policy_container(anns) := policy_data.sandbox if is_sandbox(anns)

policy_container(anns) := policy_data.containers[anns["io.kubernetes.cri.container-name"]] if is_app(anns)

# The key a created container is recorded under ("" for the sandbox).
container_key(anns) := "" if is_sandbox(anns)

container_key(anns) := anns["io.kubernetes.cri.container-name"] if is_app(anns)

sandbox_name_ok(anns) if {
	name := anns["io.kubernetes.cri.sandbox-name"]
	regex.match(policy_data.sandbox_name_regex, name)
	state_matches("sandbox_name", name)
	namespace_ok(anns["io.kubernetes.cri.sandbox-namespace"])
}

namespace_ok(ns) if {
	policy_data.namespace == null
	regex.match(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, ns)
}

namespace_ok(ns) if policy_data.namespace == ns

name_ops(anns) := [] if data.pstate.sandbox_name
else := [{"op": "add", "path": "/pstate/sandbox_name", "value": anns["io.kubernetes.cri.sandbox-name"]}]

hostname_ok(h, anns) if h == ""

hostname_ok(h, anns) if h == anns["io.kubernetes.cri.sandbox-name"]

hostname_ok(h, anns) if h == policy_data.hostname

# Linux namespaces: new ones, except the pod's one network namespace.
namespaces_ok(oci) if {
	nss := list(get(oci, "Linux", {}), "Namespaces")
	every ns in nss {
		namespace_entry_ok(ns)
	}
	nets := [get(ns, "Path", "") | some ns in nss; ns.Type == "network"]
	network_ok(nets)
}

namespace_entry_ok(ns) if {
	ns.Type in {"ipc", "uts", "mount", "pid", "cgroup"}
	get(ns, "Path", "") == ""
}

namespace_entry_ok(ns) if ns.Type == "network"

network_ok(nets) if {
	count(nets) == 0
	not data.pstate.netns
}

network_ok(nets) if {
	count(nets) == 1
	nets[0] != ""
	state_matches("netns", nets[0])
}

netns_ops(oci) := [{"op": "add", "path": "/pstate/netns", "value": path}] if {
	not data.pstate.netns
	some ns in list(get(oci, "Linux", {}), "Namespaces")
	ns.Type == "network"
	path := get(ns, "Path", "")
} else := []

cid_ops(cid, key) := [{"op": "add", "path": concat("/", ["", "pstate", "containers", cid]), "value": key}] if data.pstate.containers
else := [{"op": "add", "path": "/pstate/containers", "value": {cid: key}}]

root_path(bundle) := concat("", ["/run/kata-containers/", bundle, "/rootfs"])

# The rootfs is the guest-local bundle directory (filled by guest pull),
# never a directory shared from the host.
root_ok(c, oci, bundle) if {
	root := get(oci, "Root", {})
	get(root, "Path", "") == root_path(bundle)
	get(root, "Readonly", false) == c.readonly_root
}

process_ok(c, p) if {
	is_object(p)
	args_ok(c.args, get(p, "Args", []))
	env_ok(c, list(p, "Env"))
	get(p, "Cwd", "") == c.cwd
	user_ok(c, get(p, "User", null))
	caps_ok(c, get(p, "Capabilities", null))
	get(p, "NoNewPrivileges", false) == c.no_new_privileges
	get(p, "Terminal", false) == c.tty
	get(p, "SelinuxLabel", "") == ""
	get(p, "ApparmorProfile", "") in {"", "cri-containerd.apparmor.d"}
}

# The arguments, one for one: a pinned string, or {"regex": R} (anchored)
# for one whose $(VAR) the kubelet fills with a value known only at run
# time (a generated pod name, the pod IP).
args_ok(want, args) if {
	is_array(args)
	count(args) == count(want)
	every i, w in want {
		arg_ok(w, args[i])
	}
}

arg_ok(w, a) if {
	is_string(w)
	a == w
}

arg_ok(w, a) if {
	is_object(w)
	is_string(a)
	regex.match(w.regex, a)
}

# Every variable is one the spec or image names (with its value) or one
# the runtime injects (service links, HOSTNAME).
env_ok(c, env) if {
	every e in env {
		env_allowed(c, e)
	}
}

# One chain, cheapest first: the agent's regorus compiles every regex it
# matches, so a variable pinned exactly, or a service link the string
# checks below recognise, must not reach the regexes.
env_allowed(c, e) if {
	e in c.env_exact
} else if {
	runtime_env_ok(e)
} else if {
	some r in c.env_regex
	regex.match(r, e)
} else if {
	some r in policy_data.settings.allow_env_regex
	regex.match(r, e)
}

# The runtime's variables, by string checks. Each branch accepts only
# entries that one of the default `allow_env_regex` patterns (settings.rs)
# matches, so it never allows more; what it does not recognise still goes
# to the patterns. None of those patterns' names or values contain "=".
runtime_env_ok(e) if {
	e == "TERM=xterm"
} else if {
	kv := split(e, "=")
	count(kv) == 2
	runtime_var_ok(kv[0], kv[1])
}

upper_digits := "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# ^HOSTNAME=[A-Za-z0-9_.-]+$
runtime_var_ok(name, value) if {
	name == "HOSTNAME"
	only(value, concat("", [alnum, "_.-"]))
} else if {
	# ^SVC_SERVICE_HOST=IPV4$
	svc_ok(trim_suffix(name, "_SERVICE_HOST"))
	endswith(name, "_SERVICE_HOST")
	ipv4_ok(value)
} else if {
	# ^SVC_SERVICE_PORT=PORT$
	endswith(name, "_SERVICE_PORT")
	svc_ok(trim_suffix(name, "_SERVICE_PORT"))
	port_ok(value)
} else if {
	# ^SVC_SERVICE_PORT_[A-Z0-9_]+=PORT$
	parts := split(name, "_SERVICE_PORT_")
	count(parts) == 2
	svc_ok(parts[0])
	only(parts[1], concat("", [upper_digits, "_"]))
	port_ok(value)
} else if {
	# ^SVC_PORT=(tcp|udp|sctp)://IPV4:PORT$
	endswith(name, "_PORT")
	svc_ok(trim_suffix(name, "_PORT"))
	url_ok(value)
} else if {
	# ^SVC_PORT_PORT_(TCP|UDP|SCTP)=(tcp|udp|sctp)://IPV4:PORT$
	svc_port_proto_ok(name)
	url_ok(value)
} else if {
	# ^SVC_PORT_PORT_(TCP|UDP|SCTP)_PROTO=(tcp|udp|sctp)$
	endswith(name, "_PROTO")
	svc_port_proto_ok(trim_suffix(name, "_PROTO"))
	value in {"tcp", "udp", "sctp"}
} else if {
	# ^SVC_PORT_PORT_(TCP|UDP|SCTP)_PORT=PORT$
	endswith(name, "_PORT")
	svc_port_proto_ok(trim_suffix(name, "_PORT"))
	port_ok(value)
} else if {
	# ^SVC_PORT_PORT_(TCP|UDP|SCTP)_ADDR=IPV4$
	endswith(name, "_ADDR")
	svc_port_proto_ok(trim_suffix(name, "_ADDR"))
	ipv4_ok(value)
}

# [A-Z][A-Z0-9_]{0,62}
svc_ok(s) if {
	only(s, concat("", [upper_digits, "_"]))
	count(s) <= 63
	contains("ABCDEFGHIJKLMNOPQRSTUVWXYZ", substring(s, 0, 1))
}

# [0-9]{1,5}
port_ok(s) if {
	only(s, "0123456789")
	count(s) <= 5
}

# 0 to 255, without leading zeros, four times, separated by dots.
ipv4_ok(s) if {
	parts := split(s, ".")
	count(parts) == 4
	every x in parts {
		octet_ok(x)
	}
}

# 25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9], compared as strings (no
# builtin here can fail on a hostile value).
octet_ok(x) if {
	x == "0"
} else if {
	only(x, "0123456789")
	not startswith(x, "0")
	count(x) <= 2
} else if {
	only(x, "0123456789")
	not startswith(x, "0")
	count(x) == 3
	x <= "255"
}

# (tcp|udp|sctp)://IPV4:PORT
url_ok(v) if {
	parts := split(v, "://")
	count(parts) == 2
	parts[0] in {"tcp", "udp", "sctp"}
	hp := split(parts[1], ":")
	count(hp) == 2
	ipv4_ok(hp[0])
	port_ok(hp[1])
}

# SVC_PORT_PORT_(TCP|UDP|SCTP)
svc_port_proto_ok(s) if {
	some proto in ["TCP", "UDP", "SCTP"]
	endswith(s, concat("", ["_", proto]))
	parts := split(trim_suffix(s, concat("", ["_", proto])), "_")
	n := count(parts)
	n >= 3
	parts[n - 2] == "PORT"
	port_ok(parts[n - 1])
	svc_ok(concat("_", array.slice(parts, 0, n - 2)))
}

user_ok(c, u) if {
	is_object(u)
	get(u, "UID", 0) == c.uid
	get(u, "GID", 0) == c.gid
	same_set(list(u, "AdditionalGids"), c.additional_gids)
	get(u, "Username", "") == ""
}

# Each capability set within the container's (fewer is allowed).
caps_ok(c, caps) if {
	is_object(caps)
	every k in ["Bounding", "Effective", "Permitted", "Inheritable", "Ambient"] {
		subset(list(caps, k), c.caps)
	}
}

linux_ok(c, linux) if {
	every k, v in objget(linux, "Sysctl") {
		c.sysctls[k] == v
	}
	subset(policy_data.settings.masked_paths, list(linux, "MaskedPaths"))
	subset(policy_data.settings.readonly_paths, list(linux, "ReadonlyPaths"))
	count(list(linux, "Devices")) == 0
	count(list(linux, "UIDMappings")) == 0
	count(list(linux, "GIDMappings")) == 0
	get(linux, "RootfsPropagation", "") == ""
}

# ---------------------------------------------------------------- mounts

mounts_ok(c, anns, mounts, bundle) if {
	every m in mounts {
		mount_ok(c, anns, m, bundle)
	}
	dests := [m.destination | some m in mounts]
	count(dests) == count(as_set(dests))
}

kernel_mounts := [
	{"destination": "/proc", "type_": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
	{"destination": "/dev", "type_": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
	{"destination": "/dev/pts", "type_": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
	{"destination": "/dev/mqueue", "type_": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
	{"destination": "/sys", "type_": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
	{"destination": "/dev/shm", "type_": "bind", "source": "/run/kata-containers/sandbox/shm", "options": ["rbind"]},
]

mount_fields(m) := {"destination": get(m, "destination", ""), "type_": get(m, "type_", ""), "source": get(m, "source", ""), "options": list(m, "options")}

# One chain (regorus evaluates every body of a multi-body function), the
# kernel file systems first, each branch keyed by the destination.
mount_ok(c, anns, m, bundle) if {
	mount_fields(m) in kernel_mounts
} else if {
	# The cgroup file system, read-only, with the allowed extra options.
	is_app(anns)
	m.destination == "/sys/fs/cgroup"
	get(m, "type_", "") == "cgroup"
	get(m, "source", "") == "cgroup"
	base := {"nosuid", "noexec", "nodev", "relatime", "ro"}
	opts := as_set(list(m, "options"))
	subset(base, opts)
	subset(opts, base | as_set(policy_data.settings.cgroup_mount_extras_allowed))
} else if {
	# The sandbox's resolv.conf.
	is_sandbox(anns)
	m.destination == "/etc/resolv.conf"
	get(m, "type_", "") == "bind"
	shared_source_ok(get(m, "source", ""), bundle)
	list(m, "options") == ["rbind", "ro", "nosuid", "nodev", "noexec"]
} else if {
	# Files the runtime writes for every container.
	is_app(anns)
	m.destination in {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/termination-log"}
	shared_bind_ok(m, bundle, {"rw", "ro"})
} else if {
	is_app(anns)
	m.destination == "/var/run/secrets/kubernetes.io/serviceaccount"
	shared_bind_ok(m, bundle, {"ro"})
} else if {
	# The pod spec's volume mounts, looked up by destination.
	is_app(anns)
	some want in c.mounts
	want.destination == m.destination
	volume_mount_ok(want, m, bundle)
}

shared_bind_ok(m, bundle, modes) if {
	get(m, "type_", "") == "bind"
	shared_source_ok(get(m, "source", ""), bundle)
	opts := list(m, "options")
	count(opts) == 3
	opts[0] == "rbind"
	opts[1] == "rprivate"
	opts[2] in modes
}

rw(want) := "ro" if want.readonly
else := "rw"

propagation(want) := {"rprivate", "rshared"} if want.bidirectional
else := {"rprivate"}

volume_mount_ok(want, m, bundle) if {
	want.kind == "emptydir"
	get(m, "type_", "") == "bind"
	storage_path_ok(get(m, "source", ""))
	emptydir_options_ok(want, list(m, "options"))
}

volume_mount_ok(want, m, bundle) if {
	want.kind == "memory"
	get(m, "type_", "") == "bind"
	get(m, "source", "") == concat("", ["/run/kata-containers/sandbox/ephemeral/", want.volume])
	emptydir_options_ok(want, list(m, "options"))
}

volume_mount_ok(want, m, bundle) if {
	want.kind in {"shared", "image"}
	shared_bind_ok(m, bundle, {rw(want)})
}

emptydir_options_ok(want, opts) if {
	count(opts) == 3
	opts[0] == "rbind"
	opts[1] in propagation(want)
	opts[2] == rw(want)
}

# -------------------------------------------------------------- storages

storages_ok(c, anns, storages, bundle) if {
	every s in storages {
		storage_ok(c, anns, s, bundle)
	}
	count([s | some s in storages; s.driver == "image_guest_pull"]) <= 1
	count([s | some s in storages; s.driver == "blk"]) <= object.get(c, "emptydirs", 0)
}

# One chain (regorus evaluates every body of a multi-body function).
storage_ok(c, anns, s, bundle) if {
	# The app's image, pulled in the guest by the pinned digest.
	is_app(anns)
	s.driver == "image_guest_pull"
	endswith(s.source, concat("", ["@", c.image_digest]))
	not contains(s.source, "/../")
	pull_metadata_ok(anns, list(s, "driver_options"))
	s.mount_point == root_path(bundle)
	get(s, "fstype", "") == "overlay"
	count(list(s, "options")) == 0
	get(s, "fs_group", null) == null
} else if {
	# The sandbox's pause image, built into the guest.
	is_sandbox(anns)
	s.driver == "image_guest_pull"
	s.source == "pause"
	s.mount_point == root_path(bundle)
	get(s, "fstype", "") == "overlay"
	count(list(s, "options")) == 0
	get(s, "fs_group", null) == null
} else if {
	# An emptyDir: block storage encrypted with an ephemeral key.
	is_app(anns)
	s.driver == "blk"
	major_minor_ok(s.source)
	storage_path_ok(s.mount_point)
	list(s, "driver_options") == ["encryption_key=ephemeral", "create_filesystem"]
	get(s, "fstype", "") == "ext4"
	count(list(s, "options")) == 0
	fs_group_ok(get(s, "fs_group", null))
} else if {
	# A memory emptyDir (tmpfs in the guest).
	is_app(anns)
	s.driver == "ephemeral"
	s.source == "tmpfs"
	get(s, "fstype", "") == "tmpfs"
	some want in c.mounts
	want.kind == "memory"
	s.mount_point == concat("", ["/run/kata-containers/sandbox/ephemeral/", want.volume])
	every o in list(s, "options") {
		regex.match(`^size=[0-9]+[kmgKMG]?$`, o)
	}
}

# The agent reads the container type from the pull's metadata (a sandbox
# gets the guest's built-in pause bundle): it must agree with the request.
pull_metadata_ok(anns, options) if {
	every o in options {
		startswith(o, "image_guest_pull=")
		meta := json.unmarshal(substring(o, count("image_guest_pull="), -1)).metadata
		every k in ["io.kubernetes.cri.container-type", "io.katacontainers.pkg.oci.container_type"] {
			object.get(meta, k, anns[k]) == anns[k]
		}
	}
}

fs_group_ok(g) if g == null

fs_group_ok(g) if {
	policy_data.fs_group != null
	g.group_id == policy_data.fs_group
}

# ------------------------------------------------------------- devices

# No devices, except GPUs passed through as VFIO devices that pair one to
# one with CDI annotations (hot-plug), or only the annotations (cold-plug).
devices_ok(c, anns, devices) if {
	count(devices) == 0
	cdi := cdi_numbers(anns)
	count(cdi) == object.get(c, "vfio_gpus", 0)
	cdi_annotations_ok(anns)
}

devices_ok(c, anns, devices) if {
	n := object.get(c, "vfio_gpus", 0)
	n > 0
	count(devices) == n
	dev_numbers := {num |
		some d in devices
		get(d, "type_", "") == "vfio-pci-gk"
		startswith(d.container_path, "/dev/vfio/devices/vfio")
		num := substring(d.container_path, count("/dev/vfio/devices/vfio"), -1)
		regex.match(`^[0-9]+$`, num)
	}
	count(dev_numbers) == n
	cdi_numbers(anns) == dev_numbers
	cdi_annotations_ok(anns)
}

cdi_numbers(anns) := {substring(k, count("cdi.k8s.io/vfio"), -1) |
	some k, _ in anns
	startswith(k, "cdi.k8s.io/vfio")
	regex.match(`^cdi\.k8s\.io/vfio[0-9]+$`, k)
}

cdi_annotations_ok(anns) if {
	every k, v in anns {
		cdi_annotation_ok(k, v)
	}
}

# One chain: most annotations are not CDI ones and never reach the regexes.
cdi_annotation_ok(k, v) if {
	not startswith(k, "cdi.k8s.io/")
} else if {
	regex.match(`^cdi\.k8s\.io/vfio[0-9]+$`, k)
	regex.match(`^nvidia\.com/gpu=[0-9]+$`, v)
}

# ------------------------------------------------- containers and exec

RemoveContainerRequest := {"allowed": true, "ops": ops} if {
	cid := get(input, "container_id", "")
	ops := remove_ops(cid)
}

remove_ops(cid) := [{"op": "remove", "path": concat("/", ["", "pstate", "containers", cid])}] if {
	regex.match(`^[A-Za-z0-9_.-]*$`, cid)
	_ := data.pstate.containers[cid]
} else := []

# Resource updates (cgroup limits), but no device access.
UpdateContainerRequest if {
	count(list(get(input, "resources", {}), "Devices")) == 0
}

ExecProcessRequest if {
	key := data.pstate.containers[input.container_id]
	c := policy_data.containers[key]
	p := input.process
	exec_command_ok(c, p)
	env_ok(c, list(p, "Env"))
	get(p, "Cwd", "") == c.cwd
	user_ok(c, get(p, "User", null))
	exec_caps_ok(c, get(p, "Capabilities", null))
	get(p, "NoNewPrivileges", false) == c.no_new_privileges
	get(p, "SelinuxLabel", "") == ""
	get(p, "ApparmorProfile", "") in {"", "cri-containerd.apparmor.d"}
	get(input, "string_user", null) == null
}

# Probe and hook commands, without a terminal.
exec_command_ok(c, p) if {
	get(p, "Args", []) in c.exec
	get(p, "Terminal", false) == false
}

# The debugging commands of accord.dev/allow-exec, with or without one.
exec_command_ok(c, p) if get(p, "Args", []) in c.debug_exec

# An exec inherits the container's capabilities, or names exactly them.
exec_caps_ok(c, caps) if caps == null

exec_caps_ok(c, caps) if {
	is_object(caps)
	every k in ["Bounding", "Effective", "Permitted"] {
		as_set(list(caps, k)) == as_set(c.caps)
	}
	count(list(caps, "Inheritable")) == 0
	count(list(caps, "Ambient")) == 0
}

# Logs: allowed unless the pod denies them.
ReadStreamRequest if not policy_data.deny_logs

# Stdin and terminals only for debugging (accord.dev/allow-exec).
WriteStreamRequest if policy_data.debug_exec

CloseStdinRequest if policy_data.debug_exec

TtyWinResizeRequest if policy_data.debug_exec

# --------------------------------------------------------------- sandbox

CreateSandboxRequest if {
	get(input, "sandbox_pidns", false) == false
	count(list(input, "kernel_modules")) == 0
	get(input, "guest_hook_path", "") == ""
	every s in list(input, "storages") {
		sandbox_storage_ok(s)
	}
}

# The sandbox's /dev/shm.
sandbox_storage_ok(s) if {
	s.driver == "ephemeral"
	s.source == "shm"
	get(s, "fstype", "") == "tmpfs"
	s.mount_point == "/run/kata-containers/sandbox/shm"
	every o in list(s, "options") {
		regex.match(`^(noexec|nosuid|nodev|mode=1777|size=[0-9]+)$`, o)
	}
}

# Files the runtime copies into the shared directory before a container
# starts (hosts, resolv.conf, ConfigMap and Secret files): only below a
# container's own shared entries, no "..", no setuid/setgid files, no
# symlink as the entry itself or pointing out of it.
CopyFileRequest if {
	path := input.path
	regex.match(`^/run/kata-containers/shared/containers/(passthrough/)?(watchable/)?[A-Za-z0-9_]+-[a-z0-9]{16}-[^/]+(/[^/]+)*$`, path)
	every part in split(path, "/") {
		not part in {".", ".."}
	}
	bits.and(get(input, "file_mode", 0), 3072) == 0
	copy_type_ok(input.file_type, path)
}

copy_type_ok(t, path) if t in {"Regular", "Directory"}

copy_type_ok(t, path) if {
	t == "Symlink"
	regex.match(`^/run/kata-containers/shared/containers/(passthrough/)?(watchable/)?[A-Za-z0-9_]+-[a-z0-9]{16}-[^/]+/.+$`, path)
	target := input.symlink_target
	is_string(target)
	target != ""
	not startswith(target, "/")
	every part in split(target, "/") {
		part != ".."
	}
}

loopback(a) if regex.match(`^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$`, a)

loopback(a) if regex.match(`^[0:]*:0{0,3}1$`, a)

loopback(a) if regex.match(`^(?i)[0:]*:ffff:127\.`, a)

UpdateInterfaceRequest if {
	i := input.interface
	get(i, "name", "") != "lo"
	get(i, "device", "") != "lo"
	get(i, "raw_flags", 0) in {0, 128}
	get(i, "hwAddr", "") != "00:00:00:00:00:00"
	every a in list(i, "IPAddresses") {
		not loopback(get(a, "address", ""))
	}
}

UpdateRoutesRequest if {
	every r in list(get(input, "routes", {}), "Routes") {
		get(r, "device", "") != "lo"
		not loopback(get(r, "source", ""))
		not loopback(get(r, "dest", ""))
	}
}

AddARPNeighborsRequest if {
	every n in list(get(input, "neighbors", {}), "ARPNeighbors") {
		get(n, "device", "") != "lo"
		not loopback(get(get(n, "toIPAddress", {}), "address", ""))
		get(n, "state", 0) in {2, 128}
		get(n, "flags", 0) in {0, 8, 128, 136}
	}
}
