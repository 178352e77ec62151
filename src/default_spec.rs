//! The starter `config.json` written by `hull spec`, byte-for-byte what
//! current runc's `runc spec` writes.
//!
//! Source: runc `libcontainer/specconv/example.go` (`Example`, `ToRootless`)
//! and `spec.go` (`json.MarshalIndent(spec, "", "\t")`, written with
//! `os.WriteFile`, so there is no trailing newline). Key order follows the Go
//! structs of runtime-spec `specs-go/config.go`; Go's `omitempty` becomes
//! `skip_serializing_if`.

use serde::Serialize;

use crate::oci::OCI_VERSION;

/// `statfs(2)` magic of a cgroup v2 filesystem (`CGROUP2_SUPER_MAGIC`).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The `config.json` text `runc spec` (or `runc spec --rootless`) writes on
/// this host.
///
/// Like runc, a `cgroup` namespace is added only when `/sys/fs/cgroup` is a
/// cgroup v2 mount, and the rootless variant maps container root to the
/// caller's effective uid and gid.
pub fn default_spec(rootless: bool) -> String {
    // SAFETY: geteuid(2) and getegid(2) cannot fail and touch no memory.
    let owner = rootless.then(|| unsafe { (libc::geteuid(), libc::getegid()) });
    example_spec(cgroup2_unified(), owner)
}

/// The example spec for a host with (`cgroup_ns`) or without a unified
/// cgroup v2 hierarchy; `rootless_owner` is the caller's `(euid, egid)` for
/// the `--rootless` variant, `None` for the default one.
pub fn example_spec(cgroup_ns: bool, rootless_owner: Option<(u32, u32)>) -> String {
    let mut spec = Spec::example(cgroup_ns);
    if let Some((uid, gid)) = rootless_owner {
        spec.make_rootless(uid, gid);
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    spec.serialize(&mut ser)
        .expect("serializing the example spec cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Mirrors runc's `cgroups.IsCgroup2UnifiedMode`.
fn cgroup2_unified() -> bool {
    // SAFETY: `st` is a plain C struct that statfs(2) fills in, and the path
    // is a NUL-terminated literal.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) == 0
            // f_type's width and signedness vary by architecture.
            && st.f_type as u64 == CGROUP2_SUPER_MAGIC
    }
}

#[derive(Serialize)]
struct Spec {
    #[serde(rename = "ociVersion")]
    oci_version: &'static str,
    process: Process,
    root: Root,
    hostname: &'static str,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Serialize)]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<&'static str>,
    env: Vec<&'static str>,
    cwd: &'static str,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    #[serde(rename = "noNewPrivileges")]
    no_new_privileges: bool,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct Capabilities {
    bounding: Vec<&'static str>,
    effective: Vec<&'static str>,
    permitted: Vec<&'static str>,
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    kind: &'static str,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: &'static str,
    readonly: bool,
}

#[derive(Serialize)]
struct Mount {
    destination: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<&'static str>,
}

#[derive(Serialize)]
struct Linux {
    #[serde(rename = "uidMappings", skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMapping>,
    #[serde(rename = "gidMappings", skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
    #[serde(rename = "maskedPaths")]
    masked_paths: Vec<&'static str>,
    #[serde(rename = "readonlyPaths")]
    readonly_paths: Vec<&'static str>,
}

#[derive(Serialize)]
struct IdMapping {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: &'static str,
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    kind: &'static str,
}

const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn mount(
    destination: &'static str,
    kind: &'static str,
    source: &'static str,
    options: &[&'static str],
) -> Mount {
    Mount {
        destination,
        kind,
        source,
        options: options.to_vec(),
    }
}

impl Spec {
    /// runc's `specconv.Example()`.
    fn example(cgroup_ns: bool) -> Self {
        let mut namespaces: Vec<Namespace> = ["pid", "network", "ipc", "uts", "mount"]
            .into_iter()
            .map(|kind| Namespace { kind })
            .collect();
        if cgroup_ns {
            namespaces.push(Namespace { kind: "cgroup" });
        }
        Spec {
            oci_version: OCI_VERSION,
            process: Process {
                terminal: true,
                user: User { uid: 0, gid: 0 },
                args: vec!["sh"],
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm",
                ],
                cwd: "/",
                capabilities: Capabilities {
                    bounding: DEFAULT_CAPS.to_vec(),
                    effective: DEFAULT_CAPS.to_vec(),
                    permitted: DEFAULT_CAPS.to_vec(),
                },
                rlimits: vec![Rlimit {
                    kind: "RLIMIT_NOFILE",
                    hard: 1024,
                    soft: 1024,
                }],
                no_new_privileges: true,
            },
            root: Root {
                path: "rootfs",
                readonly: true,
            },
            hostname: "runc",
            mounts: vec![
                mount("/proc", "proc", "proc", &[]),
                mount(
                    "/dev",
                    "tmpfs",
                    "tmpfs",
                    &["nosuid", "strictatime", "mode=755", "size=65536k"],
                ),
                mount(
                    "/dev/pts",
                    "devpts",
                    "devpts",
                    &[
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620",
                        "gid=5",
                    ],
                ),
                mount(
                    "/dev/shm",
                    "tmpfs",
                    "shm",
                    &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                ),
                mount(
                    "/dev/mqueue",
                    "mqueue",
                    "mqueue",
                    &["nosuid", "noexec", "nodev"],
                ),
                mount(
                    "/sys",
                    "sysfs",
                    "sysfs",
                    &["nosuid", "noexec", "nodev", "ro"],
                ),
                mount(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    &["nosuid", "noexec", "nodev", "relatime", "ro"],
                ),
            ],
            linux: Linux {
                uid_mappings: Vec::new(),
                gid_mappings: Vec::new(),
                resources: Some(Resources {
                    devices: vec![DeviceRule {
                        allow: false,
                        access: "rwm",
                    }],
                }),
                namespaces,
                masked_paths: vec![
                    "/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/sys/firmware",
                    "/proc/scsi",
                    "/sys/devices/virtual/tpm",
                ],
                readonly_paths: vec![
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger",
                ],
            },
        }
    }

    /// runc's `specconv.ToRootless()`, with the caller's euid/egid.
    fn make_rootless(&mut self, uid: u32, gid: u32) {
        let linux = &mut self.linux;
        linux
            .namespaces
            .retain(|ns| ns.kind != "network" && ns.kind != "user");
        linux.namespaces.push(Namespace { kind: "user" });
        linux.uid_mappings = vec![IdMapping {
            container_id: 0,
            host_id: uid,
            size: 1,
        }];
        linux.gid_mappings = vec![IdMapping {
            container_id: 0,
            host_id: gid,
            size: 1,
        }];
        for m in &mut self.mounts {
            // example.go compares filepath.Clean(destination) with "/sys";
            // every destination here is already clean.
            if m.destination == "/sys" {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            } else {
                m.options
                    .retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
            }
        }
        linux.resources = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceType, Spec as OciSpec};

    /// `runc spec` on a cgroup v1 host, as current runc writes it.
    const GOLDEN_V1: &str = r#"{
	"ociVersion": "1.3.0",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi",
			"/sys/devices/virtual/tpm"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}"#;

    fn namespaces(spec: &OciSpec) -> Vec<LinuxNamespaceType> {
        let linux = spec.linux().as_ref().expect("linux section");
        let list = linux.namespaces().as_ref().expect("namespaces");
        list.iter().map(|ns| ns.typ()).collect()
    }

    #[test]
    fn matches_runc_byte_for_byte_on_cgroup_v1() {
        assert_eq!(example_spec(false, None), GOLDEN_V1);
    }

    #[test]
    fn has_no_trailing_newline_and_uses_tabs() {
        let text = default_spec(false);
        assert!(text.ends_with('}'));
        assert!(text.contains("\n\t\"ociVersion\": \"1.3.0\",\n"));
    }

    #[test]
    fn parses_as_oci_spec_with_runc_defaults() {
        let spec: OciSpec = serde_json::from_str(&example_spec(false, None)).unwrap();
        assert_eq!(spec.version(), OCI_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("runc"));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(process.args().as_ref().unwrap(), &["sh".to_string()]);
        assert_eq!(process.cwd().to_str(), Some("/"));
        assert_eq!(process.no_new_privileges(), Some(true));
        let caps = process.capabilities().as_ref().unwrap();
        assert!(caps.ambient().is_none());
        assert!(caps.inheritable().is_none());
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        use LinuxNamespaceType::*;
        assert_eq!(namespaces(&spec), [Pid, Network, Ipc, Uts, Mount]);
    }

    #[test]
    fn cgroup_v2_host_adds_cgroup_namespace_last() {
        let spec: OciSpec = serde_json::from_str(&example_spec(true, None)).unwrap();
        use LinuxNamespaceType::*;
        assert_eq!(namespaces(&spec), [Pid, Network, Ipc, Uts, Mount, Cgroup]);
    }

    #[test]
    fn rootless_maps_caller_and_drops_network_and_resources() {
        let text = example_spec(true, Some((1000, 100)));
        let spec: OciSpec = serde_json::from_str(&text).unwrap();
        use LinuxNamespaceType::*;
        assert_eq!(namespaces(&spec), [Pid, Ipc, Uts, Mount, Cgroup, User]);
        let linux = spec.linux().as_ref().unwrap();
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1000, 1)
        );
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!((gid.container_id(), gid.host_id(), gid.size()), (0, 100, 1));
        assert!(linux.resources().is_none());
        assert!(!text.contains("gid=5"));
        assert!(text.contains(
            "\t\"linux\": {\n\t\t\"uidMappings\": [\n\t\t\t{\n\t\t\t\t\"containerID\": 0,\n\t\t\t\t\"hostID\": 1000,"
        ));
    }

    #[test]
    fn rootless_replaces_sysfs_with_rbind() {
        let spec: OciSpec = serde_json::from_str(&example_spec(false, Some((0, 0)))).unwrap();
        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert_eq!(sys.source().as_ref().and_then(|s| s.to_str()), Some("/sys"));
        let opts = sys.options().as_ref().unwrap();
        assert_eq!(opts, &["rbind", "nosuid", "noexec", "nodev", "ro"]);
        // /proc still has no options at all after the uid=/gid= filter.
        assert!(mounts[0].options().is_none());
    }
}
