//! Container escapes: each test performs a real attack from a malicious image or container process against hull on the
//! real kernel (anchors.md §7) and checks that the host is untouched. Every test names, in its doc comment, how a
//! naive runtime (one without the defence) fails it. The attacks that need syscalls busybox cannot make run the
//! `checker` built from `integration/` (`checker overwrite-exe`, `probe-proc`, `cwd`, `fds`), copied into a private
//! rootfs per test; the shared rootfs is never written.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{base_config, pass_fds, run_with_timeout, Env, Run, HULL};
use serde_json::{json, Value};

/// Every capability the host's bounding set still has: a "privileged" container process. The names come from
/// `hull features`, which lists them in bit order.
fn all_caps(config: &mut Value) {
    let features = std::process::Command::new(HULL)
        .arg("features")
        .output()
        .unwrap();
    let features: Value = serde_json::from_slice(&features.stdout).expect("features JSON");
    let all: Vec<String> =
        serde_json::from_value(features["linux"]["capabilities"].clone()).unwrap();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .expect("CapBnd in /proc/self/status");
    let caps: Vec<&str> = all
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .map(|(_, name)| name.as_str())
        .collect();
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set] = json!(caps);
    }
}

/// A malicious image ships the dynamic loader and libraries hull needs (the original CVE-2019-5736 exploit relied
/// on the image's libseccomp): copy the host's, at the paths the loader looks at, so that hull can run inside the
/// container. They are found from hull's ELF headers (its `PT_INTERP` and `DT_NEEDED` entries) rather than with
/// `ldd`, which the v2 VM lacks. A static hull (as `make build` links it) needs none: it runs in any rootfs.
fn install_hull_libraries(rootfs: &Path) {
    let Some((interpreter, needed)) = elf_dependencies(&fs::read(HULL).expect("read hull")) else {
        return;
    };
    let mut files = vec![PathBuf::from(interpreter)];
    for name in needed {
        let found = [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib",
        ]
        .iter()
        .map(|dir| Path::new(dir).join(&name))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("hull needs {name}, which is in no library directory"));
        files.push(found);
    }
    for file in files {
        let dest = rootfs.join(file.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&file, &dest)
            .unwrap_or_else(|e| panic!("copy {} into the rootfs: {e}", file.display()));
    }
}

/// The interpreter and the needed libraries of a little-endian ELF64 executable; `None` when it is static (has no
/// interpreter).
fn elf_dependencies(elf: &[u8]) -> Option<(String, Vec<String>)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let c_str = |o: usize| {
        let end = elf[o..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8_lossy(&elf[o..o + end]).into_owned()
    };
    assert_eq!(&elf[..5], b"\x7fELF\x02", "hull is an ELF64 file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let headers: Vec<usize> = (0..phnum).map(|i| phoff + i * phentsize).collect();
    let of_type = |t: u32| {
        headers
            .iter()
            .copied()
            .filter(move |&h| u32::from_le_bytes(elf[h..h + 4].try_into().unwrap()) == t)
    };
    let interpreter = c_str(u64_at(of_type(3).next()? + 8));
    // Virtual addresses in the dynamic section become file offsets through the PT_LOAD segments.
    let to_offset = |vaddr: usize| {
        of_type(1)
            .find(|&h| (u64_at(h + 16)..u64_at(h + 16) + u64_at(h + 32)).contains(&vaddr))
            .map(|h| vaddr - u64_at(h + 16) + u64_at(h + 8))
            .expect("address in a PT_LOAD segment")
    };
    let dynamic = u64_at(of_type(2).next().expect("PT_DYNAMIC") + 8);
    let entries: Vec<(usize, usize)> = (0..)
        .map(|i| (u64_at(dynamic + 16 * i), u64_at(dynamic + 16 * i + 8)))
        .take_while(|&(tag, _)| tag != 0)
        .collect();
    let strtab = to_offset(entries.iter().find(|e| e.0 == 5).expect("DT_STRTAB").1);
    let needed = entries
        .iter()
        .filter(|e| e.0 == 1)
        .map(|&(_, name)| c_str(strtab + name))
        .collect();
    Some((interpreter, needed))
}

fn sh(script: &str) -> Value {
    base_config(&["/bin/sh", "-c", script])
}

/// The checker in the test rootfs (`make rootfs` copies the one built from this tree), if it has the attack
/// subcommands.
fn checker() -> Option<PathBuf> {
    let path = common::rootfs().join("checker");
    let works = Command::new(&path)
        .arg("fds")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    works.then_some(path)
}

/// Skip unless root and unless the checker with the attack subcommands is built.
macro_rules! attack_prelude {
    ($name:expr) => {{
        require_root!($name);
        match checker() {
            Some(path) => path,
            None => skip!(
                "{}: the test rootfs's checker is missing or lacks the attack subcommands: run `make rootfs`",
                $name
            ),
        }
    }};
}

/// A private writable rootfs for `env` with the current checker at `/checker`.
fn attack_rootfs(env: &Env, config: &mut Value, checker: &Path) -> PathBuf {
    let rootfs = env.private_rootfs(config);
    fs::copy(checker, rootfs.join("checker")).expect("copy checker into the private rootfs");
    rootfs
}

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Poll for a file the attacker writes when done; its parsed JSON.
fn wait_for_result(path: &Path, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            return serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!(
                    "attack result {} is not JSON ({e}): {text:?}",
                    path.display()
                )
            });
        }
        assert!(
            Instant::now() < deadline,
            "expected the attacker to report in {} within {within:?}; it did not",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `pid` runs the checker (the attacker is in place before the runtime is provoked).
fn wait_for_comm(pid: i64, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if now.trim() == comm {
            // Let it take its snapshot of /proc before anything new appears.
            std::thread::sleep(Duration::from_millis(200));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected process {pid} to run {comm}; it runs {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_error(value: &Value) -> bool {
    value.get("error").is_some()
}

/// `run -d` the attacker of `config` (the checker as the container's init), wait until it runs, and plant the fifo
/// at the rootfs's /etc/passwd that will hold hull's exec helper inside the container.
fn start_attacker(env: &Env, config: &Value, rootfs: &Path) {
    env.write_config(config);
    let r = env.hull(&[
        "run",
        "-d",
        "--bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(
        r.code,
        0,
        "expected `run -d` to start the container: {}",
        r.describe()
    );
    wait_for_comm(env.state()["pid"].as_i64().unwrap(), "checker");
    mkfifo(&rootfs.join("etc/passwd"));
}

/// A copy of hull in its own directory: the CVE-2019-5736 tests attack this copy, so a failing test cannot damage
/// the binary cargo built.
struct HullCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    original: Vec<u8>,
}

impl HullCopy {
    fn new() -> HullCopy {
        let dir = tempfile::Builder::new()
            .prefix("hull-victim-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("hull");
        fs::copy(HULL, &path).expect("copy hull");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let original = fs::read(&path).unwrap();
        HullCopy {
            _dir: dir,
            path,
            original,
        }
    }

    fn run(&self, env: &Env, args: &[&str]) -> Run {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root")
            .arg(env.root())
            .args(args)
            .current_dir(env.bundle())
            .stdin(Stdio::null());
        run_with_timeout(cmd, Duration::from_secs(60))
    }

    fn assert_unchanged(&self, result: &Value) {
        let now = fs::read(&self.path).expect("read the hull copy");
        assert!(
            now == self.original,
            "expected the host hull binary {} to be unchanged ({} bytes), but it is now {} bytes starting {:?}; \
             attacker saw {result}",
            self.path.display(),
            self.original.len(),
            now.len(),
            String::from_utf8_lossy(&now[..now.len().min(48)])
        );
    }
}

/// Note in the test output how hull defended (libtest shows it with --nocapture).
fn note(what: &str, run: &Run) {
    eprintln!("{what}: {}", run.describe());
}

/// The attacker's write must have been refused by the kernel: the run reached the write attempt and failed there.
fn assert_write_refused(result: &Value) {
    let attempt = &result["attempt"];
    assert!(
        result["grab"] == "ok",
        "the attack did not get as far as grabbing the runtime's executable, so it tested nothing: {result}"
    );
    let refused = is_error(&attempt["open_for_write"]) || is_error(&attempt["write"]);
    assert!(
        refused,
        "expected reopening hull's /proc/<pid>/exe for writing (or the write) to fail, but it succeeded: {result}"
    );
    assert!(
        attempt["open_for_write"]["error"] != "ETXTBSY",
        "expected a permanent refusal (EROFS or EPERM from a sealed view), got ETXTBSY for 10 s, i.e. the host \
         binary itself was reachable: {result}"
    );
}

fn start_detached(hull: &HullCopy, env: &Env, config: &Value) {
    env.write_config(config);
    let r = hull.run(
        env,
        &[
            "run",
            "-d",
            "--bundle",
            env.bundle().to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(
        r.code,
        0,
        "expected `run -d` to start the container: {}",
        r.describe()
    );
}

/// CVE-2019-5736 during `hull exec`: a privileged container process (CAP_SYS_PTRACE, so non-dumpability does not
/// stop it) waits for hull's exec helper to appear in the container's pid namespace, holds `/proc/<pid>/exe` as an
/// O_PATH fd (the helper is parked on a fifo the attacker planted at /etc/passwd), lets it go, and once hull has
/// exited reopens the executable through `/proc/self/fd/N` for writing and writes a payload over it.
///
/// A naive runtime executes its own host binary inside the container: `/proc/<pid>/exe` is that file, the reopen
/// succeeds as soon as no hull runs any more (ETXTBSY until then), and the host binary is overwritten. hull runs
/// every command that enters a container from a read-only overlay view (or a sealed memfd), so the reopen fails
/// with EROFS (or the write with EPERM) and the host binary keeps its bytes.
#[test]
fn cve_2019_5736_exec_helper_exe_cannot_be_overwritten() {
    let checker = attack_prelude!("cve_2019_5736_exec_helper_exe_cannot_be_overwritten");
    let hull = HullCopy::new();
    let env = Env::new("x5736a");
    let mut config = base_config(&[
        "/checker",
        "overwrite-exe",
        "new",
        "/etc/passwd",
        "/result.json",
    ]);
    all_caps(&mut config);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    start_detached(&hull, &env, &config);
    wait_for_comm(env.state()["pid"].as_i64().unwrap(), "checker");
    // The exec helper reads /etc/passwd inside the container: a fifo parks it there until the attacker is ready.
    mkfifo(&rootfs.join("etc/passwd"));
    let exec = hull.run(&env, &["exec", &env.id, "/bin/true"]);
    let result = wait_for_result(&rootfs.join("result.json"), Duration::from_secs(30));
    hull.assert_unchanged(&result);
    assert_write_refused(&result);
    assert_eq!(
        exec.code,
        0,
        "expected the exec itself to work: {}",
        exec.describe()
    );
}

/// CVE-2019-5736 through a `#!/proc/self/exe` script run by `hull exec`: the kernel runs the script's interpreter,
/// `/proc/self/exe` of hull's exec helper, i.e. hull itself, as a (dumpable) process inside the container. The
/// shebang makes that hull parse `--root /entry.sh --log /logfifo state x`, so it blocks opening the log fifo; the
/// attacker (the container's init, same capabilities as the victim) grabs its `/proc/<pid>/exe`, releases it and
/// then tries to write over the executable.
///
/// A naive runtime's helper executes the host binary, so the shebang runs the host binary and the attacker
/// overwrites it once it exits. hull's helper runs from a read-only view: the write is refused.
#[test]
fn cve_2019_5736_exec_of_self_exe_shebang_cannot_overwrite_hull() {
    let checker = attack_prelude!("cve_2019_5736_exec_of_self_exe_shebang_cannot_overwrite_hull");
    let hull = HullCopy::new();
    let env = Env::new("x5736b");
    let mut config = base_config(&[
        "/checker",
        "overwrite-exe",
        "new",
        "/logfifo",
        "/result.json",
    ]);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    write_executable(&rootfs.join("entry.sh"), "#!/proc/self/exe --root\n");
    install_hull_libraries(&rootfs);
    mkfifo(&rootfs.join("logfifo"));
    start_detached(&hull, &env, &config);
    wait_for_comm(env.state()["pid"].as_i64().unwrap(), "checker");
    let exec = hull.run(
        &env,
        &[
            "exec",
            &env.id,
            "/entry.sh",
            "--log",
            "/logfifo",
            "state",
            "x",
        ],
    );
    let result = wait_for_result(&rootfs.join("result.json"), Duration::from_secs(30));
    hull.assert_unchanged(&result);
    assert_write_refused(&result);
    assert_ne!(
        exec.code,
        0,
        "the shebang ran hull's `state x` inside the container, which fails: {}",
        exec.describe()
    );
}

/// CVE-2019-5736 through the image's entrypoint `#!/proc/self/exe`: the container init's execve runs hull (what
/// `/proc/self/exe` of the init was) as the container's process; it blocks on the log fifo. Without a pid
/// namespace the attacker, started with `hull exec -d`, outlives that process, grabs `/proc/<init>/exe`, releases
/// it and keeps trying to write over the executable once nothing runs it.
///
/// A naive runtime's init executes the host binary, which the attacker overwrites after the init exits. hull's
/// init runs from a read-only view, so the write is refused.
#[test]
fn cve_2019_5736_self_exe_entrypoint_cannot_overwrite_hull() {
    let checker = attack_prelude!("cve_2019_5736_self_exe_entrypoint_cannot_overwrite_hull");
    let hull = HullCopy::new();
    let env = Env::new("x5736c");
    let mut config = base_config(&["/entry.sh", "--log", "/logfifo", "state", "x"]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "pid");
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    write_executable(&rootfs.join("entry.sh"), "#!/proc/self/exe --root\n");
    install_hull_libraries(&rootfs);
    mkfifo(&rootfs.join("logfifo"));
    start_detached(&hull, &env, &config);
    let init = env.state()["pid"].as_i64().unwrap();
    let exec = hull.run(
        &env,
        &[
            "exec",
            "-d",
            &env.id,
            "/checker",
            "overwrite-exe",
            &init.to_string(),
            "/logfifo",
            "/result.json",
        ],
    );
    assert_eq!(
        exec.code,
        0,
        "expected the attacker to start: {}",
        exec.describe()
    );
    let result = wait_for_result(&rootfs.join("result.json"), Duration::from_secs(30));
    hull.assert_unchanged(&result);
    assert_write_refused(&result);
}

/// CVE-2016-9962: while hull's exec helper is inside the container's namespaces (parked on a fifo the attacker
/// planted at /etc/passwd), container root tries to open and readlink `/proc/<helper>/exe` and to read its
/// `environ` (which holds hull's host environment, here a secret) and `mem`. The container has every capability in
/// an identity-mapped user namespace, so the only thing that can stop it is the helper's non-dumpable flag: then
/// the kernel requires CAP_SYS_PTRACE in the helper's *host* user namespace.
///
/// A naive runtime leaves the helper dumpable: same uid, capabilities a subset of the attacker's, and all four
/// accesses succeed (the host environment leaks, the host binary is reachable). hull makes it non-dumpable.
#[test]
fn exec_helper_is_not_dumpable_inside_the_container() {
    let checker = attack_prelude!("exec_helper_is_not_dumpable_inside_the_container");
    let env = Env::new("dumpable");
    let mut config = base_config(&[
        "/checker",
        "probe-proc",
        "new",
        "/etc/passwd",
        "/result.json",
    ]);
    all_caps(&mut config);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let identity = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    config["linux"]["uidMappings"] = identity.clone();
    config["linux"]["gidMappings"] = identity;
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    start_attacker(&env, &config, &rootfs);
    let secret = "HULL_ESCAPE_SECRET=host-only-4f1c";
    let exec = env.hull_with(
        &["exec", &env.id, "/bin/true"],
        Duration::from_secs(60),
        |cmd| {
            cmd.env("HULL_ESCAPE_SECRET", "host-only-4f1c");
        },
    );
    let result = wait_for_result(&rootfs.join("result.json"), Duration::from_secs(30));
    assert!(
        !result.to_string().contains(secret),
        "expected hull's host environment to stay hidden, but the container read it: {result}"
    );
    for probe in ["exe_open", "exe_readlink", "environ", "mem"] {
        let denied = result[probe]["error"]
            .as_str()
            .is_some_and(|e| e == "EACCES" || e == "EPERM");
        assert!(
            denied,
            "expected {probe} of hull's exec helper (pid {} in the container, comm {}) to be denied with EACCES or \
             EPERM, got {}; full result {result}",
            result["pid"], result["comm"], result[probe]
        );
    }
    assert_eq!(
        exec.code,
        0,
        "expected the exec itself to work: {}",
        exec.describe()
    );
}

/// A host directory with a marker file, passed to hull as an inherited (leaked) fd 7.
struct LeakedHostDir {
    dir: tempfile::TempDir,
    file: fs::File,
}

const LEAKED_FD: i32 = 7;
const HOST_MARKER: &str = "HOST-ONLY-MARKER";

impl LeakedHostDir {
    fn new() -> LeakedHostDir {
        let dir = tempfile::Builder::new()
            .prefix("hull-host-cwd-")
            .tempdir()
            .unwrap();
        fs::write(dir.path().join(HOST_MARKER), "host").unwrap();
        let file = fs::File::open(dir.path()).unwrap();
        LeakedHostDir { dir, file }
    }

    fn hull(&self, env: &Env, args: &[&str]) -> Run {
        let fd = self.file.as_raw_fd();
        env.hull_with(args, Duration::from_secs(30), |cmd| {
            pass_fds(cmd, vec![(fd, LEAKED_FD)])
        })
    }
}

/// A process given `cwd` either failed to start with an error about its working directory, or runs inside the
/// container (walking `..` reaches its root, and it cannot see the host directory's marker).
fn assert_cwd_not_on_host(what: &str, run: &Run) {
    if run.code != 0 {
        let err = run.stderr.to_lowercase();
        assert!(
            err.contains("cwd") || err.contains("working directory"),
            "{what}: expected the failure to name the working directory, got {}",
            run.describe()
        );
        return;
    }
    let facts: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: expected `checker cwd` JSON ({e}), got {}",
            run.describe()
        )
    });
    assert!(
        facts["inside_root"] == true && !facts.to_string().contains(HOST_MARKER),
        "{what}: expected the process's cwd to be inside the container, but it is on the host: {facts}"
    );
}

fn fd_numbers(what: &str, run: &Run) -> Vec<String> {
    assert_eq!(
        run.code,
        0,
        "{what}: expected `checker fds` to run: {}",
        run.describe()
    );
    let fds: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: `checker fds` printed no JSON ({e}): {}",
            run.describe()
        )
    });
    let mut numbers: Vec<String> = fds.as_object().unwrap().keys().cloned().collect();
    numbers.sort();
    numbers
}

/// CVE-2024-21626 ("Leaky Vessels"): hull is started with a host directory leaked to it as fd 7 (runc leaked
/// /sys/fs/cgroup the same way; hull's own helpers hold cgroup directory fds too) and `process.cwd` is
/// `/proc/self/fd/N` for N = 3..=15, for `run` and for `exec --cwd`. Every attempt must fail with an error about the
/// working directory or land inside the container; and the container's init and an exec'd process must see only fds
/// 0, 1 and 2.
///
/// A naive runtime that passes inherited fds on, or chdirs without checking where it landed, gives the process a
/// host working directory (the marker file is visible and `..` walks up to the host's root) and fd 7 in the
/// container.
#[test]
fn cve_2024_21626_proc_self_fd_cwd_never_reaches_the_host() {
    let checker = attack_prelude!("cve_2024_21626_proc_self_fd_cwd_never_reaches_the_host");
    let leak = LeakedHostDir::new();
    for n in 3..=15 {
        let env = Env::new(&format!("cwd{n}"));
        let mut config = base_config(&["/checker", "cwd"]);
        attack_rootfs(&env, &mut config, &checker);
        config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        env.write_config(&config);
        let run = leak.hull(
            &env,
            &["run", "--bundle", env.bundle().to_str().unwrap(), &env.id],
        );
        assert_cwd_not_on_host(&format!("run with cwd /proc/self/fd/{n}"), &run);
    }

    let env = Env::new("cwdexec");
    let mut config = base_config(&["/checker", "fds"]);
    attack_rootfs(&env, &mut config, &checker);
    env.write_config(&config);
    let run = leak.hull(
        &env,
        &[
            "run",
            "--keep",
            "--bundle",
            env.bundle().to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(
        fd_numbers("container init", &run),
        ["0", "1", "2"],
        "expected the container's init to see only fds 0, 1, 2 (hull had a host directory at fd {LEAKED_FD}): {}",
        run.stdout
    );
    let _ = env.hull(&["delete", "--force", &env.id]);

    config["process"]["args"] = json!(["/bin/sleep", "60"]);
    env.write_config(&config);
    let r = env.hull(&[
        "run",
        "-d",
        "--bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let exec = leak.hull(&env, &["exec", &env.id, "/checker", "fds"]);
    assert_eq!(
        fd_numbers("exec'd process", &exec),
        ["0", "1", "2"],
        "expected an exec'd process to see only fds 0, 1, 2 (hull had a host directory at fd {LEAKED_FD}): {}",
        exec.stdout
    );
    for n in 3..=15 {
        let cwd = format!("/proc/self/fd/{n}");
        let exec = leak.hull(&env, &["exec", "--cwd", &cwd, &env.id, "/checker", "cwd"]);
        assert_cwd_not_on_host(&format!("exec --cwd {cwd}"), &exec);
    }
    assert!(
        fs::read_dir(leak.dir.path()).unwrap().count() == 1,
        "expected the leaked host directory to hold only its marker"
    );
}

/// Names in a host directory (for "untouched" checks).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn host_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn assert_host_untouched(what: &str, dir: &Path, expected: &[&str]) {
    assert_eq!(
        entries(dir),
        expected,
        "{what}: expected the host directory {} to be untouched",
        dir.display()
    );
    let mounts = common::host_mounts_mentioning(&dir.display().to_string());
    assert!(
        mounts.is_empty(),
        "{what}: expected no host mount at {}, found {mounts:?}",
        dir.display()
    );
}

/// CVE-2021-30465 / crun CVE-2019-18837 (symlinked mount destinations): the image has `/mnt/evil` → an absolute
/// host directory; the config mounts a tmpfs at `/mnt/evil/tmpfs-here` and binds a volume at
/// `/mnt/evil/bind-here`. Both mounts must land inside the container (at the symlink's target resolved in the
/// rootfs) and the host directory must stay empty.
///
/// A naive runtime joins rootfs + destination as a string and lets the kernel follow the symlink from the host's
/// root: it creates `tmpfs-here` and `bind-here` in the host directory (and mounts onto them), and the container
/// sees neither mount.
#[test]
fn symlinked_mount_destination_lands_inside_the_container() {
    let checker = attack_prelude!("symlinked_mount_destination_lands_inside_the_container");
    let env = Env::new("mntlink");
    let host = host_dir("hull-host-mnt-");
    let volume = env.dir.path().join("volume");
    fs::create_dir(&volume).unwrap();
    fs::write(volume.join("payload"), "from the volume\n").unwrap();
    let mut config = sh("stat -f -c %T /mnt/evil/tmpfs-here; cat /mnt/evil/bind-here/payload");
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    fs::create_dir_all(rootfs.join("mnt")).unwrap();
    symlink(host.path(), rootfs.join("mnt/evil")).unwrap();
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/mnt/evil/tmpfs-here", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/mnt/evil/bind-here", "type": "bind",
                       "source": volume, "options": ["rbind", "ro"]}));
    let run = env.run(&config);
    assert_host_untouched("symlinked mount destination", host.path(), &[]);
    assert_eq!(
        run.code,
        0,
        "expected the mounts to be made inside the container: {}",
        run.describe()
    );
    assert_eq!(
        run.stdout, "tmpfs\nfrom the volume\n",
        "expected the tmpfs and the volume at the symlink's target inside the container"
    );
    let inside = rootfs.join(host.path().strip_prefix("/").unwrap());
    assert!(
        inside.join("tmpfs-here").is_dir() && inside.join("bind-here").is_dir(),
        "expected the mount points to be created inside the rootfs at {}",
        inside.display()
    );
}

/// CVE-2019-19921 / CVE-2023-27561: the image's `/proc` is a symlink to an absolute host directory. hull must
/// refuse to mount procfs there with an error naming `/proc` as a symlink, and leave nothing behind: the host
/// directory stays empty, no host mount, no state, no process.
///
/// A naive runtime follows the symlink: it mounts procfs on the host directory (its later procfs writes, and LSM
/// labels, go wherever the image points them) and starts the container.
#[test]
fn symlinked_proc_in_the_image_is_refused() {
    let checker = attack_prelude!("symlinked_proc_in_the_image_is_refused");
    let env = Env::new("proclink");
    let host = host_dir("hull-host-proc-");
    let mut config = base_config(&["/bin/true"]);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    fs::remove_dir(rootfs.join("proc")).unwrap();
    symlink(host.path(), rootfs.join("proc")).unwrap();
    let run = env.run(&config);
    note("symlinked /proc", &run);
    assert_ne!(
        run.code,
        0,
        "expected a symlinked /proc to be refused: {}",
        run.describe()
    );
    assert!(
        run.stderr.contains(
            "filesystem \"proc\" must be mounted on ordinary directory: mount destination /proc is a symlink"
        ),
        "expected runc's words, then that /proc is a symlink, got {}",
        run.describe()
    );
    assert_host_untouched("symlinked /proc", host.path(), &[]);
    assert!(
        !env.root().join(&env.id).exists(),
        "expected no state directory left after the refused create"
    );
    assert!(
        common::processes_mentioning(&env.id).is_empty(),
        "expected no process left for {}",
        env.id
    );
    assert!(
        fs::symlink_metadata(rootfs.join("proc"))
            .unwrap()
            .file_type()
            .is_symlink()
            && !rootfs.join(host.path().strip_prefix("/").unwrap()).exists(),
        "expected the rootfs to be left as it was (nothing created along the symlink)"
    );
}

/// CVE-2019-16884: a volume bind-mounted at `/proc` (after the real procfs) holds fake procfs files. hull's
/// procfs writes (sysctl `net.core.somaxconn`, `oom_score_adj`, the user namespace's `setgroups`/`uid_map`/
/// `gid_map`) must not land in them: the container is refused, or it runs and the fake files keep their content.
///
/// A naive runtime writes the sysctl through the path `/proc/sys/...` inside the container, i.e. into the fake
/// file, so the "kernel setting" silently never applies (runc's AppArmor profile write was lost the same way).
#[test]
fn fake_proc_volume_receives_no_procfs_writes() {
    let checker = attack_prelude!("fake_proc_volume_receives_no_procfs_writes");
    let env = Env::new("fakeproc");
    let fake = host_dir("hull-host-fakeproc-");
    let files = [
        "sys/net/core/somaxconn",
        "self/oom_score_adj",
        "self/setgroups",
        "self/uid_map",
        "self/gid_map",
        "self/attr/exec",
        "1/oom_score_adj",
        "1/setgroups",
        "1/uid_map",
    ];
    for f in files {
        let path = fake.path().join(f);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "FAKE\n").unwrap();
    }
    // Owned by the container's root, so that nothing but hull's procfs check stops a write into them.
    let chown = Command::new("chown")
        .args(["-R", &format!("{0}:{0}", common::USERNS_HOST_ID)])
        .arg(fake.path())
        .status()
        .unwrap();
    assert!(chown.success(), "chown the fake procfs tree");
    let mut config = sh("cat /proc/sys/net/core/somaxconn");
    attack_rootfs(&env, &mut config, &checker);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc", "type": "bind", "source": fake.path(), "options": ["rbind"]}));
    config["linux"]["sysctl"] = json!({"net.core.somaxconn": "1234"});
    config["process"]["oomScoreAdj"] = json!(500);
    common::add_user_namespace(&mut config);
    let run = env.run(&config);
    note("fake /proc volume", &run);
    for f in files {
        let content = fs::read_to_string(fake.path().join(f)).unwrap();
        assert_eq!(
            content,
            "FAKE\n",
            "expected the fake procfs file {f} to keep its content; hull wrote into it (run: {})",
            run.describe()
        );
    }
    if run.code == 0 {
        assert_eq!(
            run.stdout, "1234\n",
            "the container ran, so the sysctl must have been applied to the real procfs"
        );
    } else {
        assert!(
            run.stderr.contains("/proc"),
            "expected the refusal to name the /proc path, got {}",
            run.describe()
        );
    }
}

/// CVE-2025-31133, first half: a masked path in the image (`/etc/masked-link`) is a symlink to a host file that
/// is reachable in the container through a volume (`/vol/secret`). hull must neither mask (bind `/dev/null` over)
/// the host file nor modify it: the container is refused, or it runs and still reads the volume file.
///
/// A naive runtime bind-mounts `/dev/null` over the path string, the kernel follows the symlink, and the host
/// file is mounted over (the container reads an empty `/vol/secret`).
#[test]
fn masked_path_symlink_to_a_host_file_is_not_followed() {
    let checker = attack_prelude!("masked_path_symlink_to_a_host_file_is_not_followed");
    let env = Env::new("masklink");
    let host = host_dir("hull-host-masked-");
    fs::write(host.path().join("secret"), "host file\n").unwrap();
    let mut config = sh("cat /vol/secret");
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    symlink("/vol/secret", rootfs.join("etc/masked-link")).unwrap();
    config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/vol", "type": "bind", "source": host.path(), "options": ["rbind"]}),
    );
    config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masked-link"));
    let run = env.run(&config);
    note("symlinked masked path", &run);
    assert_eq!(
        fs::read_to_string(host.path().join("secret")).unwrap(),
        "host file\n",
        "expected the host file to be untouched"
    );
    if run.code == 0 {
        assert_eq!(
            run.stdout, "host file\n",
            "expected the host file not to be masked (bind-mounted over) in the container"
        );
    } else {
        assert!(
            run.stderr.contains("/etc/masked-link"),
            "expected the refusal to name the masked path, got {}",
            run.describe()
        );
    }
}

/// CVE-2025-31133, second half: the image's `/dev/null` (no tmpfs `/dev` in the config, so the image's own `/dev`
/// is used) is a symlink to a host file visible through a volume. Masking `/proc/timer_list` with "/dev/null" must
/// not bind that file there: hull verifies `/dev/null` is the 1:3 character device and refuses otherwise.
///
/// A naive runtime mounts "/dev/null" by path, follows the symlink, and the masked procfs path shows (read-write)
/// whatever the attacker chose: the container reads the host file through `/proc/timer_list`.
#[test]
fn dev_null_symlink_is_not_used_for_masking() {
    let checker = attack_prelude!("dev_null_symlink_is_not_used_for_masking");
    let env = Env::new("nulllink");
    let host = host_dir("hull-host-null-");
    fs::write(host.path().join("secret"), "HOST-SECRET\n").unwrap();
    let mut config = sh("head -c 64 /proc/timer_list");
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    symlink("/vol/secret", rootfs.join("dev/null")).unwrap();
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
    mounts.push(
        json!({"destination": "/vol", "type": "bind", "source": host.path(), "options": ["rbind"]}),
    );
    let run = env.run(&config);
    note("symlinked /dev/null", &run);
    assert!(
        !run.stdout.contains("HOST-SECRET"),
        "expected /proc/timer_list to be masked, but it shows the host file: {}",
        run.describe()
    );
    assert_eq!(
        fs::read_to_string(host.path().join("secret")).unwrap(),
        "HOST-SECRET\n",
        "expected the host file to be untouched"
    );
    if run.code != 0 {
        assert!(
            run.stderr.contains("/dev/null"),
            "expected the refusal to name /dev/null, got {}",
            run.describe()
        );
    }
}

/// CVE-2026-41579 / crun CVE-2026-47766: the image's `/dev` is a symlink to an absolute host directory and the
/// config mounts a tmpfs at `/dev`, so hull creates device nodes and the `/dev/fd`, `/dev/ptmx`... symlinks. None
/// of them may appear in the host directory (the container may be refused).
///
/// A naive runtime creates `/dev/null`, `/dev/zero`, `/dev/ptmx`... by path and the kernel follows the image's
/// symlink: device nodes and symlinks appear in (and a host `ptmx` could be deleted from) the host directory.
#[test]
fn symlinked_dev_gets_no_nodes_on_the_host() {
    let checker = attack_prelude!("symlinked_dev_gets_no_nodes_on_the_host");
    let env = Env::new("devlink");
    let host = host_dir("hull-host-dev-");
    fs::write(host.path().join("ptmx"), "host ptmx stand-in").unwrap();
    let mut config = base_config(&["/bin/true"]);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    fs::remove_dir(rootfs.join("dev")).unwrap();
    symlink(host.path(), rootfs.join("dev")).unwrap();
    let run = env.run(&config);
    note("symlinked /dev", &run);
    assert_host_untouched(
        &format!("symlinked /dev (run: {})", run.describe()),
        host.path(),
        &["ptmx"],
    );
    assert_eq!(
        fs::read_to_string(host.path().join("ptmx")).unwrap(),
        "host ptmx stand-in",
        "expected the host directory's ptmx to be untouched"
    );
}

/// crun CVE-2019-18837: a file bind-mount destination `/etc/resolv.conf` is, in the image, a symlink to an
/// absolute path (`/opt/hull-escape-<id>`). No file may be created on the host at that path; if the container runs,
/// the bind must be visible inside it.
///
/// A naive runtime creates the missing mount point with `open(rootfs + dest, O_CREAT)` or after following the
/// symlink from the host's root: it creates the file on the host.
#[test]
fn file_bind_destination_symlink_creates_nothing_on_the_host() {
    let checker = attack_prelude!("file_bind_destination_symlink_creates_nothing_on_the_host");
    let env = Env::new("resolv");
    let target = PathBuf::from(format!("/opt/hull-escape-{}", env.id));
    let _ = fs::remove_file(&target);
    let source = env.dir.path().join("resolv.conf");
    fs::write(&source, "nameserver 192.0.2.53\n").unwrap();
    let mut config = sh("cat /etc/resolv.conf");
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    let _ = fs::remove_file(rootfs.join("etc/resolv.conf"));
    symlink(&target, rootfs.join("etc/resolv.conf")).unwrap();
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/etc/resolv.conf", "type": "bind", "source": source, "options": ["bind", "ro"]}));
    let run = env.run(&config);
    note("symlinked file bind destination", &run);
    let created = target.exists() || fs::symlink_metadata(&target).is_ok();
    let _ = fs::remove_file(&target);
    assert!(
        !created,
        "expected nothing to be created on the host at {} (run: {})",
        target.display(),
        run.describe()
    );
    if run.code == 0 {
        assert_eq!(
            run.stdout, "nameserver 192.0.2.53\n",
            "expected the bind mount to land inside the container"
        );
    } else {
        assert!(
            run.stderr.contains("/etc/resolv.conf"),
            "expected the refusal to name /etc/resolv.conf, got {}",
            run.describe()
        );
    }
}

/// Field 22 of /proc/<pid>/stat: the process's start time in clock ticks since boot.
fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let after_name = &stat[stat.rfind(')').expect("comm in stat") + 2..];
    after_name
        .split(' ')
        .nth(19)
        .and_then(|t| t.parse().ok())
        .expect("starttime in /proc/<pid>/stat")
}

/// PID reuse: a stopped container's recorded init pid now names an unrelated host process (a `sleep` started by
/// the test, written into state.json's `init_pid`). `hull kill <id> KILL`, `hull kill --all`, `hull exec` and
/// `hull delete --force` must not signal it (nor enter its namespaces), because its start time is not the
/// recorded one.
///
/// A naive runtime trusts the pid on disk: `kill` sends SIGKILL to the host process (and `exec` would join the host's
/// namespaces through `/proc/<pid>/ns`).
#[test]
fn recycled_pid_is_never_signalled() {
    require_root!("recycled_pid_is_never_signalled");
    let env = Env::new("pidreuse");
    env.write_config(&base_config(&["/bin/true"]));
    let bundle = env.bundle();
    let r = env.hull(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    env.wait_for_status("stopped", Duration::from_secs(10));

    let state_file = env.root().join(&env.id).join("state.json");
    let mut state: Value = serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
    // Start times are in clock ticks (10 ms): a sleep started in the init's tick would be indistinguishable from it,
    // for hull as for runc, and is not the recycled pid this test is about. Start one in a later tick.
    let init_start = state["init_start_time"]
        .as_u64()
        .expect("init_start_time in state.json");
    let mut sleeper = loop {
        let sleeper = Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn host sleep");
        if start_time(sleeper.id()) != init_start {
            break sleeper;
        }
        let mut same_tick = sleeper;
        let _ = same_tick.kill();
        let _ = same_tick.wait();
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        state.get("init_pid").is_some(),
        "state.json records the init as init_pid: {state}"
    );
    state["init_pid"] = json!(sleeper.id());
    fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();

    let status = env.state()["status"].clone();
    let kill = env.hull(&["kill", &env.id, "KILL"]);
    let kill_all = env.hull(&["kill", "--all", &env.id, "KILL"]);
    let exec = env.hull(&["exec", &env.id, "/bin/true"]);
    let delete = env.hull(&["delete", "--force", &env.id]);
    std::thread::sleep(Duration::from_millis(100));
    let alive = sleeper.try_wait().expect("wait for sleep").is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        alive,
        "expected the host process {} to survive; kill: {}; kill --all: {}; exec: {}; delete: {}",
        sleeper.id(),
        kill.describe(),
        kill_all.describe(),
        exec.describe(),
        delete.describe()
    );
    assert_eq!(
        status, "stopped",
        "expected the container to be seen as stopped"
    );
    assert_ne!(
        kill.code,
        0,
        "expected kill of a stopped container to fail: {}",
        kill.describe()
    );
    assert_ne!(
        exec.code,
        0,
        "expected exec into a stopped container to fail: {}",
        exec.describe()
    );
    assert_eq!(
        delete.code,
        0,
        "expected delete --force to succeed: {}",
        delete.describe()
    );
}

/// The fds of a live process as `fd -> link target`, read from the host.
fn fds_of(pid: i64) -> Vec<(String, String)> {
    let mut fds: Vec<(String, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("list /proc/{pid}/fd: {e}"))
        .flatten()
        .map(|entry| {
            let target = fs::read_link(entry.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            (entry.file_name().to_string_lossy().into_owned(), target)
        })
        .collect();
    fds.sort();
    fds
}

/// The attacker reached nothing: the canary lives and the result lists no path that opened.
fn assert_canary_unreached(what: &str, canary: &mut common::Canary, result: &Value) {
    assert!(
        result["reached"].as_array().is_some_and(|r| r.is_empty()),
        "{what}: expected no host cgroup to be reachable through the process's fds, cwd or root, but the attacker \
         opened {}: {result}",
        result["reached"]
    );
    assert!(
        canary.alive(),
        "{what}: expected the host process in cgroup {} to live; it was killed: {result}",
        canary.dir.display()
    );
}

/// The cgroup-fd escape against a created container: hull's parked init sits in the container's pid namespace as
/// pid 1 until `start`. A process exec'd into the created container with CAP_SYS_PTRACE (no user namespace, so the
/// init's non-dumpable flag does not stop it) opens `/proc/1/fd/N/../../<host cgroup>/cgroup.kill` and writes
/// it, for every fd the init holds. Also checked from the host: the parked init holds only stdio, the exec fifo and
/// the sync socket, and no fd the caller leaked to hull (a host directory at fd 7).
///
/// A naive runtime keeps the cgroup2 directory fd it cloned the init into (or any inherited directory): the attacker
/// walks `..` from it to the host's cgroup2 root and kills the canary, a host process in another cgroup.
#[test]
fn parked_init_holds_no_fd_into_the_host() {
    let checker = attack_prelude!("parked_init_holds_no_fd_into_the_host");
    let Some(mut canary) = common::Canary::new("canary") else {
        skip!("parked_init_holds_no_fd_into_the_host: no cgroup2 hierarchy to put a canary in");
    };
    let env = Env::new("parkedfds");
    let mut config = base_config(&["/bin/true"]);
    attack_rootfs(&env, &mut config, &checker);
    env.write_config(&config);
    let leak = LeakedHostDir::new();
    let bundle = env.bundle();
    let create = leak.hull(
        &env,
        &["create", "--bundle", bundle.to_str().unwrap(), &env.id],
    );
    assert_eq!(
        create.code,
        0,
        "expected create to work: {}",
        create.describe()
    );
    let init = env.state()["pid"].as_i64().unwrap();
    let fifo = env.root().join(&env.id).join("exec.fifo");
    for (fd, target) in fds_of(init) {
        let expected = ["0", "1", "2"].contains(&fd.as_str())
            || target == fifo.to_string_lossy()
            || target.starts_with("socket:[");
        assert!(
            expected,
            "expected the parked init to hold only fds 0-2, the exec fifo and the sync socket; it holds fd {fd} -> \
             {target} (all: {:?})",
            fds_of(init)
        );
    }
    let attack = env.hull(&[
        "exec",
        "--cap",
        "CAP_SYS_PTRACE",
        &env.id,
        "/checker",
        "cgroup-escape",
        "1",
        "-",
        "-",
        &canary.name,
    ]);
    assert_eq!(
        attack.code,
        0,
        "expected the attacker to run: {}",
        attack.describe()
    );
    let result: Value = serde_json::from_str(attack.stdout.trim())
        .unwrap_or_else(|e| panic!("attacker printed no JSON ({e}): {}", attack.describe()));
    assert!(
        result["fds"]
            .as_object()
            .is_some_and(|fds| fds.contains_key("0")),
        "the attacker could not list the parked init's fds, so it tested nothing: {result}"
    );
    assert_canary_unreached("created container", &mut canary, &result);
    // CVE-2024-21626's second line: a cwd through the parked init's fds finds nothing of the host either.
    for n in 3..=15 {
        let cwd = format!("/proc/1/fd/{n}");
        let exec = env.hull(&["exec", "--cwd", &cwd, &env.id, "/checker", "cwd"]);
        assert_cwd_not_on_host(&format!("exec --cwd {cwd} into a created container"), &exec);
    }
}

/// The same escape during `exec` into a running container: the container's init (every capability, no user
/// namespace) waits for hull's exec helper to appear in its pid namespace, where the helper is held reading a fifo
/// planted at /etc/passwd, and tries every fd the helper holds. hull is started with a host directory leaked to it
/// as fd 7, as an engine's stray fd would be.
///
/// A naive runtime's helper still holds the cgroup2 directory it was cloned into and the caller's fds while it is
/// inside the container: the canary dies on the first exec.
#[test]
fn exec_helper_holds_no_fd_into_the_host() {
    let checker = attack_prelude!("exec_helper_holds_no_fd_into_the_host");
    let Some(mut canary) = common::Canary::new("canary") else {
        skip!("exec_helper_holds_no_fd_into_the_host: no cgroup2 hierarchy to put a canary in");
    };
    let env = Env::new("execfds");
    let mut config = base_config(&[
        "/checker",
        "cgroup-escape",
        "new",
        "/etc/passwd",
        "/result.json",
        &canary.name,
    ]);
    all_caps(&mut config);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    start_attacker(&env, &config, &rootfs);
    let leak = LeakedHostDir::new();
    let exec = leak.hull(&env, &["exec", &env.id, "/bin/true"]);
    let result = wait_for_result(&rootfs.join("result.json"), Duration::from_secs(30));
    assert_canary_unreached("exec helper", &mut canary, &result);
    let held = result["fds"].as_object().cloned().unwrap_or_default();
    assert!(
        !held.is_empty(),
        "the attacker could not list the helper's fds, so it tested nothing: {result}"
    );
    for (fd, target) in &held {
        let target = target.as_str().unwrap_or_default();
        assert!(
            ["0", "1", "2"].contains(&fd.as_str()) || target.starts_with("socket:["),
            "expected the exec helper inside the container to hold only fds 0-2 and its sync socket; it holds fd {fd} \
             -> {target}: {result}"
        );
    }
    assert_eq!(
        exec.code,
        0,
        "expected the exec itself to work: {}",
        exec.describe()
    );
}

/// A createContainer hook: runs in the container's mount namespace just before `pivot_root`, where the rootfs
/// is still at its host path. It stands in for the racing process of the 2025 advisories, which swapped paths under
/// the runtime from a container sharing mounts with this one; here the swap is in place before the runtime looks.
fn swap_hook(config: &mut Value, script: &str) {
    config["hooks"] = json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
    });
}

/// `create` of `config` with a terminal sent to a console socket of the test's own.
fn create_with_console(env: &Env, config: &Value) -> Run {
    env.write_config(config);
    let socket = common::console::ConsoleSocket::bind(env.dir.path()).unwrap();
    env.hull(&[
        "create",
        "--console-socket",
        socket.path.to_str().unwrap(),
        "--bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
    ])
}

/// `create` failed, and its error names `what`.
fn assert_refused(r: &Run, what: &str, attack: &str) {
    assert_eq!(
        r.code,
        1,
        "expected create to refuse {attack}: {}",
        r.describe()
    );
    assert!(
        r.stderr.contains(what),
        "expected the error to name {what}: {}",
        r.describe()
    );
}

/// CVE-2025-52565, the ptmx half: `/dev/pts` is replaced by a tmpfs whose `ptmx` and `0`..`63` are symlinks to a
/// host file. hull must refuse the console (its ptmx is no devpts ptmx) and leave the host file alone.
///
/// A naive runtime opens `/dev/pts/ptmx` and `/dev/pts/N` by path, follows the symlinks, and bind-mounts the
/// host file over `/dev/console` (writable, before masked and read-only paths apply).
#[test]
fn cve_2025_52565_swapped_dev_pts_gets_no_console() {
    let checker = attack_prelude!("cve_2025_52565_swapped_dev_pts_gets_no_console");
    let env = Env::new("ptmxswap");
    let host = host_dir("hull-ptmx-");
    let marker = host.path().join("target");
    fs::write(&marker, "host file").unwrap();
    let mut config = base_config(&["/bin/true"]);
    config["process"]["terminal"] = json!(true);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    let pts = rootfs.join("dev/pts");
    swap_hook(
        &mut config,
        &format!(
            "mount -t tmpfs tmpfs {pts} && ln -s {m} {pts}/ptmx && i=0; while [ $i -lt 64 ]; do ln -s {m} {pts}/$i; \
             i=$((i+1)); done",
            pts = pts.display(),
            m = marker.display()
        ),
    );
    let r = create_with_console(&env, &config);
    assert_refused(&r, "ptmx", "a /dev/pts whose ptmx is a symlink");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "host file");
    common::assert_leaves_nothing(&env);
}

/// CVE-2025-52565, the console half: `/dev/console` is a symlink to the container's `/etc/passwd` when hull
/// mounts the pty there. hull must not follow it: the create fails naming `/dev/console`, and `/etc/passwd` keeps
/// its content.
///
/// A naive runtime creates `/dev/console` with O_CREAT|O_TRUNC through the symlink (emptying the target) and
/// bind-mounts the pty over the target.
#[test]
fn cve_2025_52565_console_symlink_is_not_followed() {
    let checker = attack_prelude!("cve_2025_52565_console_symlink_is_not_followed");
    let env = Env::new("consoleswap");
    let mut config = base_config(&["/bin/true"]);
    config["process"]["terminal"] = json!(true);
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    swap_hook(
        &mut config,
        &format!(
            "ln -sf /etc/passwd {}",
            rootfs.join("dev/console").display()
        ),
    );
    let r = create_with_console(&env, &config);
    assert_refused(&r, "/dev/console", "a /dev/console symlink");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
        passwd,
        "expected the container's /etc/passwd to keep its content"
    );
    common::assert_leaves_nothing(&env);
}

/// CVE-2025-52881: the sysctl file hull writes is replaced by another procfs file, `/proc/sys/kernel/hostname`
/// bind-mounted over `/proc/sys/kernel/domainname`, and the config sets `kernel.domainname`. Being procfs, the
/// decoy passes a filesystem-type check. hull must refuse to write across the mount: the create fails, or the
/// container runs with hostname `hull` (the decoy untouched).
///
/// A naive runtime opens `/proc/sys/kernel/domainname` by path and writes the value into the hostname instead.
#[test]
fn cve_2025_52881_redirected_sysctl_write_is_refused() {
    let checker = attack_prelude!("cve_2025_52881_redirected_sysctl_write_is_refused");
    let env = Env::new("sysctlswap");
    let mut config = base_config(&["/bin/hostname"]);
    config["linux"]["sysctl"] = json!({"kernel.domainname": "pwn"});
    let rootfs = attack_rootfs(&env, &mut config, &checker);
    swap_hook(
        &mut config,
        &format!(
            "mount --bind /proc/sys/kernel/hostname {}",
            rootfs.join("proc/sys/kernel/domainname").display()
        ),
    );
    let r = env.run(&config);
    assert!(
        (r.code == 1 && r.stderr.contains("domainname"))
            || (r.code == 0 && r.stdout.trim() == "hull"),
        "expected the redirected sysctl write to be refused (or to leave the hostname `hull`): {}",
        r.describe()
    );
    common::assert_leaves_nothing(&env);
}

/// A `linux.devices` entry makes a node; it grants no access. With `linux.resources.devices` denying everything and
/// the host's `/dev/kmsg` (c 1:11) in `linux.devices`, a container holding CAP_SYSLOG cannot read the host's kernel
/// log; allowing `c 1:11 r` in the rules is what lets it (runc: the rules alone decide access).
///
/// A naive runtime (hull before issue 20) adds an `rwm` allow rule for every configured device: the container reads
/// the host's kernel log through the node it was given.
#[test]
fn a_configured_device_node_grants_no_access_beyond_the_device_rules() {
    require_root!("a_configured_device_node_grants_no_access_beyond_the_device_rules");
    let env = Env::new("kmsg");
    let read_kmsg = |rules: Value| -> String {
        let mut config = sh(
            "ls -l /dev/kmsg | cut -c1; \
             dd if=/dev/kmsg of=/dev/null bs=8192 count=1 2>/dev/shm/err && echo read || grep -o 'not permitted' /dev/shm/err",
        );
        config["linux"]["devices"] =
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
        config["linux"]["resources"]["devices"] = rules;
        config["process"]["capabilities"]["bounding"] = json!(["CAP_SYSLOG"]);
        config["process"]["capabilities"]["effective"] = json!(["CAP_SYSLOG"]);
        config["process"]["capabilities"]["permitted"] = json!(["CAP_SYSLOG"]);
        let r = env.run(&config);
        assert_eq!(r.code, 0, "run: {}", r.describe());
        r.stdout
    };
    assert_eq!(
        read_kmsg(json!([{"allow": false, "access": "rwm"}])),
        "c\nnot permitted\n",
        "expected the node to exist and reading it to be refused by the device rules"
    );
    assert_eq!(
        read_kmsg(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
        ])),
        "c\nread\n",
        "expected an explicit rule for c 1:11 to let the container read /dev/kmsg"
    );
}

/// runc's `no_pivot.bats`: with `--no-pivot` the old root stays in the container's mount namespace, below the
/// chroot. A process that makes a user namespace (with CAP_SETFCAP, so it may map root) must not be able to mount a
/// fresh procfs there: the kernel allows that only where a procfs is already fully visible in the mount namespace,
/// and the container's own `/proc` is masked. The same attack is tried with `pivot_root` as the control.
///
/// A naive runtime leaves the host's `/proc` and `/sys` mounted under the moved root: the kernel finds them fully
/// visible and the nested user namespace mounts an unmasked procfs.
#[test]
fn no_pivot_leaves_no_host_procfs_for_a_nested_user_namespace() {
    require_root!("no_pivot_leaves_no_host_procfs_for_a_nested_user_namespace");
    let env = Env::new("nopivot");
    let mut config = base_config(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc 2>&1 && echo mounted; mount -t sysfs none /sys 2>&1 && echo sysfs mounted; true",
    ]);
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    env.write_config(&config);
    for args in [&["run", "--no-pivot"][..], &["run"][..]] {
        let id = format!("{}-{}", env.id, args.len());
        let r = env.hull(&[args, &[id.as_str()]].concat());
        assert_eq!(r.code, 0, "hull {args:?}: {}", r.describe());
        assert!(
            !r.stdout.contains("mounted"),
            "hull {args:?}: expected the nested user namespace's procfs and sysfs mounts to be refused, saw {}",
            r.describe()
        );
        assert_eq!(
            r.stdout.matches("permission denied").count(),
            2,
            "hull {args:?}: expected both mounts to fail with EPERM (so the user namespace was made): {}",
            r.describe()
        );
    }
}
