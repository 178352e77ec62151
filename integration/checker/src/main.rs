//! `checker` runs inside conformance containers and reports what it observes there.
//!
//! It knows nothing about the OCI spec: `checker facts` prints raw observations as one JSON
//! object and the harness on the host compares them with the config it gave the runtime.
//! The other subcommands are small tools for tests that need one action or one fact.

mod escape;

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::process;
use std::time::Duration;

const USAGE: &str =
    "usage: checker facts [PROBE_PATH...] | exit CODE | sleep SECS | write PATH TEXT \
                     | cat PATH | ls DIR | stat PATH | notify MESSAGE | keyctl | hook DIR PHASE | cwd | fds \
                     | overwrite-exe TARGET FIFO RESULT | probe-proc TARGET FIFO RESULT \
                     | cgroup-escape TARGET FIFO RESULT NAME";

/// Capability names by bit number, as in <linux/capability.h>.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability sets in /proc/self/status, with the names the OCI spec gives them.
const CAP_SETS: [(&str, &str); 5] = [
    ("CapInh", "inheritable"),
    ("CapPrm", "permitted"),
    ("CapEff", "effective"),
    ("CapBnd", "bounding"),
    ("CapAmb", "ambient"),
];

/// sd_notify: one datagram with `message` to the socket named by `$NOTIFY_SOCKET`.
fn notify(message: &str) -> io::Result<()> {
    let path = std::env::var("NOTIFY_SOCKET")
        .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "NOTIFY_SOCKET is not set"))?;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.send_to(message.as_bytes(), path).map(drop)
}

/// How many bytes of a file a probe reads.
const PROBE_READ_LIMIT: u64 = 4096;

extern "C" {
    static environ: *const *const libc::c_char;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["facts", probe_paths @ ..] => print_json(&facts(probe_paths)),
        ["exit", code] => parse(code).and_then(|code: i32| process::exit(code)),
        ["sleep", secs] => {
            parse::<u64>(secs).map(|secs| std::thread::sleep(Duration::from_secs(secs)))
        }
        ["write", path, text] => fs::write(path, text),
        ["cat", path] => fs::read(path).and_then(|bytes| io::stdout().write_all(&bytes)),
        ["ls", dir] => list_dir(dir).map(|names| names.iter().for_each(|name| println!("{name}"))),
        ["stat", path] => stat(path).and_then(|facts| print_json(&facts)),
        ["notify", message] => notify(message),
        ["keyctl"] => keyctl(),
        ["hook", dir, phase] => hook(dir, phase),
        ["cwd"] => escape::cwd().and_then(|facts| print_json(&facts)),
        ["fds"] => escape::fds().and_then(|facts| print_json(&facts)),
        ["overwrite-exe", target, fifo, result] => escape::overwrite_exe(target, fifo, result),
        ["probe-proc", target, fifo, result] => escape::probe_proc(target, fifo, result),
        ["cgroup-escape", target, fifo, result, name] => {
            escape::cgroup_escape(target, fifo, result, name)
        }
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, USAGE)),
    };
    if let Err(err) = result {
        eprintln!("checker: {}: {err}", args.join(" "));
        process::exit(1);
    }
}

/// Run as a lifecycle hook: record what it was given and where it ran in `DIR/PHASE.json` (its stdin, pid, uid,
/// cwd, namespace links, `$HOOK_ENV`, the command name of the state's pid) and append `PHASE` to `DIR/order`.
fn hook(dir: &str, phase: &str) -> io::Result<()> {
    let mut stdin = String::new();
    io::stdin().read_to_string(&mut stdin)?;
    let namespaces: Map<String, Value> = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
        .iter()
        .map(|ns| {
            let link = fs::read_link(format!("/proc/self/ns/{ns}"))
                .map(|l| Value::String(l.to_string_lossy().into_owned()))
                .unwrap_or(Value::Null);
            ((*ns).to_owned(), link)
        })
        .collect();
    let record = json!({
        "stdin": stdin,
        "pid": process::id(),
        // SAFETY: getuid cannot fail and touches no memory.
        "uid": unsafe { libc::getuid() },
        "cwd": std::env::current_dir()?.to_string_lossy(),
        "namespaces": namespaces,
        "env": std::env::var("HOOK_ENV").ok(),
        "state_pid_comm": state_pid_comm(&stdin),
    });
    fs::write(format!("{dir}/{phase}.json"), record.to_string())?;
    let mut order = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(format!("{dir}/order"))?;
    writeln!(order, "{phase}")
}

/// The command name of the process a hook's state names (`pid`), as this hook's /proc shows it.
fn state_pid_comm(state: &str) -> Option<String> {
    let state: Value = serde_json::from_str(state).ok()?;
    let comm = fs::read_to_string(format!("/proc/{}/comm", state["pid"].as_i64()?)).ok()?;
    Some(comm.trim_end().to_owned())
}

/// Ask for the session keyring's id (busybox has no keyctl): fails under a seccomp profile that denies keyctl.
fn keyctl() -> io::Result<()> {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: KEYCTL_GET_KEYRING_ID takes two integers and touches no memory of ours.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0,
        )
    };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    println!("keyctl: session keyring {id}");
    Ok(())
}

fn parse<T: std::str::FromStr>(text: &str) -> io::Result<T> {
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a number: {text:?}"),
        )
    })
}

fn print_json(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)
}

/// Everything `checker facts` observes. A fact that cannot be read becomes `{"error": ERRNO}`.
fn facts(probe_paths: &[&str]) -> Value {
    let status = fs::read_to_string("/proc/self/status").map(|text| parse_status(&text));
    let status_field = |key: &str| match &status {
        Ok(fields) => fields
            .get(key)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT)),
        Err(err) => Err(io::Error::from_raw_os_error(
            err.raw_os_error().unwrap_or(libc::EIO),
        )),
    };
    // SAFETY: these calls only return values of the calling process.
    let (uid, gid, euid, egid, ppid, stdin_tty, stdout_tty) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
            libc::getppid(),
            libc::isatty(0) == 1,
            libc::isatty(1) == 1,
        )
    };
    let capabilities: Map<String, Value> = CAP_SETS
        .iter()
        .map(|(key, set)| {
            (
                set.to_string(),
                fallible(status_field(key).and_then(|mask| capability_names(&mask))),
            )
        })
        .collect();
    let probes: Map<String, Value> = probe_paths
        .iter()
        .map(|path| (path.to_string(), probe(path)))
        .collect();
    let (hostname, domainname) = match uts_names() {
        Ok((hostname, domainname)) => (json!(hostname), json!(domainname)),
        Err(err) => (error_value(&err), error_value(&err)),
    };
    let oom_score_adj =
        read_trimmed("/proc/self/oom_score_adj").and_then(|value| parse::<i32>(&value));
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map(|text| text.lines().map(str::to_string).collect::<Vec<_>>());
    json!({
        "pid": process::id(),
        "ppid": ppid,
        "uid": uid,
        "gid": gid,
        "euid": euid,
        "egid": egid,
        "groups": fallible(groups()),
        "capabilities": capabilities,
        "no_new_privs": fallible(status_field("NoNewPrivs").map(|value| value == "1")),
        "seccomp": fallible(status_field("Seccomp").and_then(|value| parse::<u32>(&value))),
        "umask": fallible(status_field("Umask")),
        "oom_score_adj": fallible(oom_score_adj),
        "cwd": fallible(std::env::current_dir().map(|dir| dir.to_string_lossy().into_owned())),
        "env": environment(),
        "rlimits": rlimits(),
        "hostname": hostname,
        "domainname": domainname,
        "namespaces": fallible(namespaces()),
        "cgroup": fallible(cgroup),
        "mounts": fallible(mounts()),
        "stdin_tty": stdin_tty,
        "stdout_tty": stdout_tty,
        "probes": probes,
    })
}

fn fallible<T: Into<Value>>(result: io::Result<T>) -> Value {
    result.map_or_else(|err| error_value(&err), Into::into)
}

fn error_value(err: &io::Error) -> Value {
    json!({ "error": errno_name(err) })
}

/// The symbolic name of an error's errno, which is what tests compare.
fn errno_name(err: &io::Error) -> String {
    let name = match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ENXIO) => "ENXIO",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EROFS) => "EROFS",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::ETXTBSY) => "ETXTBSY",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::ESRCH) => "ESRCH",
        Some(errno) => return format!("errno {errno}"),
        None => return err.to_string(),
    };
    name.to_string()
}

fn read_trimmed(path: &str) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

/// `Key:\tvalue` lines of /proc/self/status.
fn parse_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_string(), value.trim().to_string()))
        .collect()
}

fn capability_names(hex_mask: &str) -> io::Result<Vec<String>> {
    let mask = u64::from_str_radix(hex_mask, 16).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad capability mask {hex_mask:?}"),
        )
    })?;
    Ok((0..64)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            CAP_NAMES
                .get(bit)
                .map_or_else(|| format!("CAP_{bit}"), |name| name.to_string())
        })
        .collect())
}

fn groups() -> io::Result<Vec<libc::gid_t>> {
    // SAFETY: a null list with size 0 only asks for the count; the buffer then holds `count` gids.
    unsafe {
        let count = libc::getgroups(0, std::ptr::null_mut());
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut groups = vec![0; count as usize];
        if libc::getgroups(count, groups.as_mut_ptr()) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(groups)
    }
}

/// The environment exactly as execve delivered it: every entry, in order, even duplicates.
fn environment() -> Vec<String> {
    let mut entries = Vec::new();
    // SAFETY: `environ` is a null-terminated array of C strings that nothing in checker modifies.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            entries.push(CStr::from_ptr(*entry).to_string_lossy().into_owned());
            entry = entry.add(1);
        }
    }
    entries
}

fn rlimits() -> Value {
    let resources = [
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ];
    let limit = |value: libc::rlim_t| {
        if value == libc::RLIM_INFINITY {
            json!("unlimited")
        } else {
            json!(value)
        }
    };
    let limits: Map<String, Value> = resources
        .into_iter()
        .map(|(name, resource)| {
            let mut rlim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the struct it is given.
            let value = if unsafe { libc::getrlimit(resource, &mut rlim) } == 0 {
                json!({ "soft": limit(rlim.rlim_cur), "hard": limit(rlim.rlim_max) })
            } else {
                error_value(&io::Error::last_os_error())
            };
            (name.to_string(), value)
        })
        .collect();
    limits.into()
}

fn uts_names() -> io::Result<(String, String)> {
    // SAFETY: uname fills the zeroed struct with NUL-terminated strings.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return Err(io::Error::last_os_error());
        }
        let field = |chars: &[libc::c_char]| {
            CStr::from_ptr(chars.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        Ok((field(&uts.nodename), field(&uts.domainname)))
    }
}

/// `/proc/self/ns/<type>` link targets, such as `"net:[4026531833]"`, by namespace type.
fn namespaces() -> io::Result<Value> {
    let mut links = Map::new();
    for entry in fs::read_dir("/proc/self/ns")? {
        let entry = entry?;
        let target = fs::read_link(entry.path())?;
        links.insert(
            entry.file_name().to_string_lossy().into_owned(),
            json!(target.to_string_lossy()),
        );
    }
    Ok(links.into())
}

/// /proc/self/mountinfo, in mount order (later entries cover earlier ones at the same destination).
fn mounts() -> io::Result<Value> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    let bad_line = |line: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad mountinfo line {line:?}"),
        )
    };
    let mut mounts = Vec::new();
    for line in text.lines() {
        let (mount, filesystem) = line.split_once(" - ").ok_or_else(|| bad_line(line))?;
        let mount: Vec<&str> = mount.split(' ').collect();
        let filesystem: Vec<&str> = filesystem.split(' ').collect();
        if mount.len() < 6 || filesystem.len() < 3 {
            return Err(bad_line(line));
        }
        let list = |options: &str| options.split(',').map(unescape).collect::<Vec<_>>();
        mounts.push(json!({
            "destination": unescape(mount[4]),
            "root": unescape(mount[3]),
            "options": list(mount[5]),
            "propagation": &mount[6..],
            "fstype": filesystem[0],
            "source": unescape(filesystem[1]),
            "super_options": list(filesystem[2]),
        }));
    }
    Ok(mounts.into())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok());
        match octal.and_then(|digits| u8::from_str_radix(digits, 8).ok()) {
            Some(byte) if bytes[i] == b'\\' => {
                out.push(byte);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn list_dir(dir: &str) -> io::Result<Vec<String>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// lstat of `path`: type, permission bits, owner, and device numbers or link target.
fn stat(path: &str) -> io::Result<Value> {
    let meta = fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let kind_name = if kind.is_dir() {
        "dir"
    } else if kind.is_symlink() {
        "symlink"
    } else if kind.is_char_device() {
        "char"
    } else if kind.is_block_device() {
        "block"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else {
        "file"
    };
    let mut facts = json!({
        "type": kind_name,
        "mode": format!("{:04o}", meta.mode() & 0o7777),
        "uid": meta.uid(),
        "gid": meta.gid(),
    });
    if kind.is_char_device() || kind.is_block_device() {
        let rdev = meta.rdev();
        facts["rdev"] = json!(format!("{}:{}", libc::major(rdev), libc::minor(rdev)));
    }
    if kind.is_symlink() {
        facts["target"] = json!(fs::read_link(path)?.to_string_lossy());
    }
    Ok(facts)
}

/// What a process can do with `path`: `stat` facts plus what reading it gives (directory
/// entries or the first bytes) and whether access(2) grants writing (`"ok"` or an errno name).
fn probe(path: &str) -> Value {
    let mut facts = match stat(path) {
        Ok(facts) => facts,
        Err(err) => return error_value(&err),
    };
    let read = if fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        list_dir(path).map(|names| json!({ "entries": names }))
    } else {
        let mut content = Vec::new();
        // Non-blocking, so that a device such as /dev/ptmx answers EAGAIN instead of waiting.
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .and_then(|file| file.take(PROBE_READ_LIMIT).read_to_end(&mut content))
            .map(|_| json!({ "content": String::from_utf8_lossy(&content) }))
    };
    facts["read"] = read.unwrap_or_else(|err| error_value(&err));
    let c_path = CString::new(path).expect("command-line arguments contain no NUL");
    // SAFETY: access only reads the NUL-terminated path.
    facts["write_access"] = if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
        json!("ok")
    } else {
        json!(errno_name(&io::Error::last_os_error()))
    };
    facts
}
