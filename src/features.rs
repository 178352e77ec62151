//! `hull features`: the runtime-spec "features" document, shaped and
//! formatted like `runc features` (runc `features.go`: a `json.Encoder` with
//! a four-space indent, so the output ends with a newline), but listing only
//! what hull actually supports.
//!
//! Key order follows runtime-spec `specs-go/features/features.go`; Go encodes
//! maps with sorted keys, hence the `BTreeMap` for annotations.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::oci::OCI_VERSION;
use crate::{mountopts, sys};

/// Namespace types, sorted like runc's `specconv.KnownNamespaces()`.
const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability hull knows, in kernel number order (`CAP_CHOWN` = 0 ...), as runc lists them.
fn capabilities() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(ToString::to_string).collect()
}

/// The `hull features` output.
pub fn features_json() -> String {
    let features = Features {
        oci_version_min: "1.0.0",
        oci_version_max: OCI_VERSION,
        hooks: crate::hooks::Kind::ALL.iter().map(|k| k.name()).collect(),
        mount_options: mountopts::known_options(sys::has_mount_setattr()),
        linux: Linux {
            namespaces: NAMESPACES,
            capabilities: capabilities(),
            cgroup: Cgroup {
                v1: true,
                v2: true,
                systemd: true,
                systemd_user: true,
                // rdma.max (v2) and the rdma v1 controller are written (cgroups::v1, v2).
                rdma: true,
            },
            seccomp: Seccomp::supported(),
            // Implemented (applied where the host has the LSM, refused where it does not), as runc reports them.
            apparmor: Enabled { enabled: true },
            selinux: Enabled { enabled: true },
            intel_rdt: IntelRdt {
                enabled: true,
                schemata: true,
                monitoring: true,
            },
            memory_policy: MemoryPolicy {
                modes: &[
                    "MPOL_BIND",
                    "MPOL_DEFAULT",
                    "MPOL_INTERLEAVE",
                    "MPOL_LOCAL",
                    "MPOL_PREFERRED",
                    "MPOL_PREFERRED_MANY",
                    "MPOL_WEIGHTED_INTERLEAVE",
                ],
                flags: &[
                    "MPOL_F_NUMA_BALANCING",
                    "MPOL_F_RELATIVE_NODES",
                    "MPOL_F_STATIC_NODES",
                ],
            },
            mount_extensions: MountExtensions {
                idmap: Enabled {
                    enabled: sys::has_mount_setattr(),
                },
            },
            // linux.netDevices: moved and renamed over rtnetlink (netdev).
            net_devices: Enabled { enabled: true },
        },
        annotations: BTreeMap::from([
            ("io.github.hull.version", env!("CARGO_PKG_VERSION")),
            // runc's types/features says third-party runtimes MAY set this; runc always says true, hull only when a
            // CRIU it can use answers.
            (
                "org.opencontainers.runc.checkpoint.enabled",
                if crate::criu::usable() {
                    "true"
                } else {
                    "false"
                },
            ),
        ]),
        // The annotations hull interprets, as runc lists its own: the systemd driver makes them unit properties,
        // CRIU reads the configuration file `org.criu.config` names.
        potentially_unsafe_config_annotations: vec!["org.systemd.property.", "org.criu.config"],
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    features
        .serialize(&mut ser)
        .expect("serializing the features document cannot fail");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    oci_version_min: &'static str,
    oci_version_max: &'static str,
    hooks: Vec<&'static str>,
    mount_options: Vec<&'static str>,
    linux: Linux,
    annotations: BTreeMap<&'static str, &'static str>,
    potentially_unsafe_config_annotations: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    namespaces: &'static [&'static str],
    capabilities: Vec<String>,
    cgroup: Cgroup,
    seccomp: Seccomp,
    apparmor: Enabled,
    selinux: Enabled,
    intel_rdt: IntelRdt,
    memory_policy: MemoryPolicy,
    mount_extensions: MountExtensions,
    net_devices: Enabled,
}

/// `linux.intelRdt` (see `resctrl`): the group, `schemata` lines and monitoring groups, as runc 1.5 reports them.
#[derive(Serialize)]
struct IntelRdt {
    enabled: bool,
    schemata: bool,
    monitoring: bool,
}

/// The `linux.memoryPolicy` modes and flags hull sets (see `mempolicy`), sorted as runc sorts them.
#[derive(Serialize)]
struct MemoryPolicy {
    modes: &'static [&'static str],
    flags: &'static [&'static str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cgroup {
    v1: bool,
    v2: bool,
    systemd: bool,
    systemd_user: bool,
    rdma: bool,
}

/// What `linux.seccomp` accepts (see `seccomp`): every action and operator; the architectures whose syscalls hull
/// filters, sorted as runc sorts them (others are accepted in a profile, but their syscalls kill the process); the
/// flags hull knows, and those this kernel accepts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Seccomp {
    enabled: bool,
    actions: &'static [&'static str],
    operators: &'static [&'static str],
    archs: Vec<String>,
    known_flags: Vec<&'static str>,
    supported_flags: Vec<&'static str>,
}

const SECCOMP_FLAGS: [(&str, libc::c_ulong); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ),
];

impl Seccomp {
    fn supported() -> Self {
        let mut archs: Vec<String> = crate::seccomp::filtered_archs()
            .into_iter()
            .map(|arch| {
                serde_json::to_value(arch)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .expect("an architecture serializes as a string")
            })
            .collect();
        archs.sort();
        Seccomp {
            enabled: true,
            actions: &[
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_TRAP",
            ],
            operators: &[
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_LE",
                "SCMP_CMP_LT",
                "SCMP_CMP_MASKED_EQ",
                "SCMP_CMP_NE",
            ],
            archs,
            known_flags: SECCOMP_FLAGS.iter().map(|(name, _)| *name).collect(),
            supported_flags: SECCOMP_FLAGS
                .iter()
                .filter(|(_, bits)| sys::seccomp_knows_filter_flags(*bits))
                .map(|(name, _)| *name)
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct MountExtensions {
    idmap: Enabled,
}

/// The `{"enabled": ...}` objects (seccomp, apparmor, selinux, ...).
#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed() -> Value {
        serde_json::from_str(&features_json()).unwrap()
    }

    /// Positions of `keys` (as `"key":`) in `text` must be increasing.
    fn assert_in_order(text: &str, keys: &[&str]) {
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("missing key {k}"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn formatted_like_go_encoder_with_four_spaces() {
        let text = features_json();
        assert!(text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"));
        assert!(text.ends_with("\n}\n"));
        assert!(text.contains("\n    \"hooks\": [\n        \"prestart\",\n"));
        assert!(text.contains("\n        \"namespaces\": [\n            \"cgroup\",\n"));
        assert!(!text.contains('\t'));
    }

    #[test]
    fn keys_follow_runtime_spec_struct_order() {
        let text = features_json();
        assert_in_order(
            &text,
            &[
                "ociVersionMin",
                "ociVersionMax",
                "hooks",
                "mountOptions",
                "linux",
                "namespaces",
                "capabilities",
                "cgroup",
                "v1",
                "v2",
                "systemd",
                "systemdUser",
                "rdma",
                "seccomp",
                "apparmor",
                "selinux",
                "intelRdt",
                "mountExtensions",
                "idmap",
                "netDevices",
                "annotations",
                "io.github.hull.version",
                "org.opencontainers.runc.checkpoint.enabled",
            ],
        );
    }

    #[test]
    fn reports_what_hull_supports() {
        let v = parsed();
        assert_eq!(v["ociVersionMax"], OCI_VERSION);
        assert_eq!(
            v["hooks"],
            serde_json::json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
        let linux = &v["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 8);
        let caps = linux["capabilities"].as_array().unwrap();
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], "CAP_CHOWN");
        assert_eq!(caps[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(linux["cgroup"]["v1"], true);
        assert_eq!(linux["cgroup"]["systemd"], true);
        assert_eq!(linux["cgroup"]["systemdUser"], true);
        assert_eq!(linux["apparmor"]["enabled"], true);
        assert_eq!(linux["selinux"]["enabled"], true);
        assert_eq!(
            linux["intelRdt"],
            serde_json::json!({"enabled": true, "schemata": true, "monitoring": true})
        );
        assert_eq!(linux["netDevices"]["enabled"], true);
        let seccomp = &linux["seccomp"];
        assert_eq!(seccomp["enabled"], true);
        assert_eq!(seccomp["actions"].as_array().unwrap().len(), 9);
        assert_eq!(seccomp["operators"].as_array().unwrap().len(), 7);
        assert_eq!(
            seccomp["archs"],
            serde_json::json!(["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"])
        );
        assert_eq!(seccomp["knownFlags"].as_array().unwrap().len(), 4);
        // Every kernel hull runs on (5.x+) takes TSYNC, LOG and SPEC_ALLOW.
        for flag in [
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        ] {
            assert!(
                seccomp["supportedFlags"]
                    .as_array()
                    .unwrap()
                    .contains(&flag.into()),
                "{flag}"
            );
        }
        assert_eq!(
            linux["mountExtensions"]["idmap"]["enabled"],
            sys::has_mount_setattr()
        );
        assert_eq!(
            v["potentiallyUnsafeConfigAnnotations"],
            serde_json::json!(["org.systemd.property.", "org.criu.config"])
        );
    }

    #[test]
    fn parses_as_oci_spec_features() {
        let f: oci_spec::runtime::Features = serde_json::from_str(&features_json()).unwrap();
        assert_eq!(f.oci_version_min(), "1.0.0");
        assert_eq!(
            f.mount_options().as_ref().unwrap().len(),
            mountopts::known_options(sys::has_mount_setattr()).len()
        );
    }

    #[test]
    fn mount_options_are_what_the_parser_takes() {
        for recursive in [false, true] {
            let options = mountopts::known_options(recursive);
            assert!(options.windows(2).all(|w| w[0] < w[1]), "{options:?}");
            for option in &options {
                let parsed = mountopts::parse(&[option.to_string()]);
                assert!(parsed.data.is_empty(), "{option} is filesystem data");
            }
            for present in [
                "rbind",
                "rprivate",
                "runbindable",
                "defaults",
                "nosymfollow",
                "tmpcopyup",
            ] {
                assert!(options.contains(&present), "{present}");
            }
            assert!(!options.contains(&"acl"));
            assert_eq!(options.contains(&"rro"), recursive);
            assert_eq!(options.contains(&"ridmap"), recursive);
        }
    }
}
