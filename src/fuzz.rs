//! Property tests over config.json: whatever the bytes, turning them into hull's plan (parse, validate, namespace
//! plan, labels, seccomp filters, mount options, cgroup file writes for v1 and v2, environment) returns a result
//! and never panics. Two generators: arbitrary JSON documents, and a valid config with random values written at
//! random places, which reaches the deep fields. `PROPTEST_CASES` sets how many cases run (`make test` runs the
//! default below; `make fuzz` many more).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::cgroups::plan::Facts;
use crate::cgroups::{v1, v2};
use crate::{inroot, lsm, mountopts, namespaces, program, seccomp, spec};

/// Everything create computes from the config before touching the kernel. Errors are fine; panics are not.
fn plan(bytes: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<oci_spec::runtime::Spec>(bytes) else {
        return;
    };
    let _ = spec::validate(&spec);
    let _ = namespaces::plan(&spec);
    if let Some(process) = spec.process() {
        let _ = lsm::labels(process, lsm::Host::default());
        let _ = lsm::labels(
            process,
            lsm::Host {
                apparmor: true,
                selinux: true,
            },
        );
        let _ = program::environment(process.env().as_deref().unwrap_or(&[]), "/root");
    }
    let _ = lsm::mount_label(&spec, lsm::Host::default());
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let _ = inroot::clean(m.destination());
        let _ = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
    }
    if let Some(linux) = spec.linux() {
        if let Some(profile) = linux.seccomp() {
            let _ = seccomp::compile(profile);
        }
        if let Some(resources) = linux.resources() {
            for facts in [Facts::default(), facts_of_a_live_cgroup()] {
                let _ = v1::v1_writes(resources, &facts);
                let _ = v2::v2_writes(resources, &facts);
            }
        }
        if let Some(maps) = linux.uid_mappings() {
            let _ = namespaces::map_text(maps);
        }
        if let Some(offsets) = linux.time_offsets() {
            let _ = namespaces::time_offsets_text(offsets);
        }
    }
}

fn facts_of_a_live_cgroup() -> Facts {
    Facts {
        memory_limit: Some(1 << 30),
        memory_usage: Some(1 << 20),
        swap_accounting: true,
        blkio_weight: true,
        controllers: vec!["cpu".into(), "memory".into(), "io".into(), "pids".into()],
        ..Facts::default()
    }
}

/// A config using most of what hull reads, to mutate.
fn seed() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false, "user": {"uid": 0, "gid": 0, "additionalGids": [1], "umask": 18},
            "args": ["sh"], "env": ["PATH=/bin", "A=1"], "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                             "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true, "oomScoreAdj": 100, "apparmorProfile": "", "selinuxLabel": ""
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "h", "domainname": "d",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "rprivate"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "time"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 2}},
            "sysctl": {"kernel.domainname": "x"},
            "mountLabel": "",
            "resources": {
                "memory": {"limit": 1048576, "reservation": 1024, "swap": 2097152},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                "pids": {"limit": 10},
                "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3,
                             "access": "rw"}],
                "unified": {"memory.high": "max"}
            },
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/a.sock",
                "syscalls": [
                    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3,
                     "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                    {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
                ]
            },
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
        }
    })
}

/// Keys found in configs, so that random paths reach real fields.
const KEYS: &[&str] = &[
    "process",
    "linux",
    "mounts",
    "root",
    "hostname",
    "ociVersion",
    "user",
    "uid",
    "gid",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "ambient",
    "rlimits",
    "type",
    "hard",
    "soft",
    "noNewPrivileges",
    "oomScoreAdj",
    "namespaces",
    "path",
    "uidMappings",
    "containerID",
    "hostID",
    "size",
    "timeOffsets",
    "monotonic",
    "secs",
    "resources",
    "memory",
    "limit",
    "swap",
    "reservation",
    "cpu",
    "shares",
    "quota",
    "period",
    "cpus",
    "mems",
    "realtimeRuntime",
    "pids",
    "blockIO",
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "major",
    "minor",
    "rate",
    "hugepageLimits",
    "pageSize",
    "devices",
    "allow",
    "access",
    "unified",
    "rdma",
    "network",
    "classID",
    "seccomp",
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "index",
    "value",
    "valueTwo",
    "op",
    "destination",
    "source",
    "options",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "apparmorProfile",
    "selinuxLabel",
    "umask",
    "additionalGids",
    "consoleSize",
    "height",
    "width",
    "terminal",
    "rootfsPropagation",
    "cgroupsPath",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(6),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "/",
            "..",
            "/proc/self/fd/3",
            "CAP_KILL",
            "CAP_NOPE",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_KILL",
            "SCMP_CMP_MASKED_EQ",
            "RLIMIT_NOFILE",
            "max",
            "-1",
            "2MB",
            "1GB",
            "rro",
            "idmap",
            "mode=0",
            "size=1k",
            "bind",
            "tmpfs",
            "pid",
            "user",
            "cgroup",
            "time",
            "a=b",
            "=x",
            "noexist",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// One step of a path into a document: an existing member chosen by index (object key or array element), or a
/// named key (which may be new).
type Step = (usize, Option<&'static str>);

/// Write `value` at the end of `path` in `doc`; a step that cannot go further writes there.
fn set_at(doc: &mut Value, path: &[Step], value: Value) {
    let Some(((index, key), rest)) = path.split_first() else {
        *doc = value;
        return;
    };
    let next = match (doc, key) {
        (Value::Object(map), Some(key)) => map.entry(key.to_string()).or_insert(Value::Null),
        (Value::Object(map), None) if !map.is_empty() => {
            let key = map.keys().nth(index % map.len()).expect("in range").clone();
            map.get_mut(&key).expect("present")
        }
        (Value::Array(items), _) if !items.is_empty() => {
            let i = index % items.len();
            &mut items[i]
        }
        (doc, _) => {
            *doc = value;
            return;
        }
    };
    set_at(next, rest, value);
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..16,
        prop_oneof![3 => Just(None), 1 => prop::sample::select(KEYS).prop_map(Some)],
    )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_never_panics(doc in json_value()) {
        plan(doc.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        plan(&bytes);
    }

    #[test]
    fn mutated_configs_never_panic(
        edits in prop::collection::vec(
            (prop::collection::vec(step(), 1..7), prop_oneof![3 => leaf(), 1 => json_value()]),
            1..4,
        )
    ) {
        let mut doc = seed();
        for (path, value) in edits {
            set_at(&mut doc, &path, value);
        }
        plan(doc.to_string().as_bytes());
    }
}

#[test]
fn the_seed_is_a_valid_config() {
    let spec: oci_spec::runtime::Spec = serde_json::from_value(seed()).unwrap();
    spec::validate(&spec).unwrap();
    seccomp::compile(spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap()).unwrap();
}
