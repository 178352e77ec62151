//! `hull checkpoint` and `hull restore` with a real CRIU (4.1, built by `make criu` as tools/criu.sh builds it: Debian 12's 3.17 cannot
//! dump on this kernel). The container's stdio are pipes, as engines give them (CRIU cannot dump a descriptor of a
//! host file outside the container's mounts, such as the host's /dev/null; runc cannot either).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::console::ConsoleSocket;
use common::{base_config, Env};

/// A directory whose `criu` hull can use, as its `features` judge it: the wrapper tools/criu.sh makes (CRIU 4.1, which
/// Linux 6.13 and later need), else the first `criu` on PATH (Debian 12's 3.17 in the guest of `make test-host`).
fn criu_dir() -> Option<PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/criu");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).find(|dir| dir.join("criu").is_file());
    [Some(built), on_path]
        .into_iter()
        .flatten()
        .find(|dir| checkpoint_enabled(&dir.display().to_string()) == "true")
}

/// What `hull features` says of checkpointing with `path` as PATH.
fn checkpoint_enabled(path: &str) -> String {
    let out = common::hull_command()
        .arg("features")
        .env("PATH", path)
        .output()
        .unwrap();
    let features: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    features["annotations"]["org.opencontainers.runc.checkpoint.enabled"]
        .as_str()
        .unwrap()
        .to_owned()
}

macro_rules! require_criu {
    ($name:expr) => {{
        require_root!($name);
        match criu_dir() {
            Some(dir) => dir,
            None => skip!(
                "{}: no CRIU hull can use at build/criu/criu (make criu builds it from Debian trixie's criu 4.1) or on PATH",
                $name
            ),
        }
    }};
}

/// hull with CRIU first on PATH.
fn hull(env: &Env, criu: &Path, args: &[&str]) -> common::Run {
    let path = format!(
        "{}:{}",
        criu.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.hull_with(args, Duration::from_secs(60), |cmd| {
        cmd.env("PATH", path);
    })
}

/// A container counting into /count in its own rootfs, started with `run -d` and pipes for its stdio (kept open by
/// the returned child's handles).
fn counting(env: &Env) -> (PathBuf, Child) {
    counting_with(env, |_, _| {})
}

/// `counting` with the config changed by `adjust` (given the config and the private rootfs) before it runs.
fn counting_with(
    env: &Env,
    adjust: impl FnOnce(&mut serde_json::Value, &Path),
) -> (PathBuf, Child) {
    let mut config = base_config(&[
        "sh",
        "-c",
        "i=0; while :; do echo $i > /count; i=$((i+1)); sleep 0.05; done",
    ]);
    let rootfs = env.private_rootfs(&mut config);
    // A bind mount, a tmpfs with something in it, the base config's masked and read-only paths, and, without a cgroup
    // namespace (as containerd's default spec has none), a cgroup mount made of binds of the container's cgroup: what
    // CRIU must find again (external mounts) or carry (tmpfs contents).
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "cgroup");
    let volume = env.dir.path().join("volume");
    fs::create_dir(&volume).unwrap();
    fs::write(volume.join("host-file"), "from the host\n").unwrap();
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.push(serde_json::json!({"destination": "/data", "type": "bind", "source": volume, "options": ["rbind"]}));
    mounts.push(serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
    config["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo kept > /scratch/note; i=0; while :; do echo $i > /count; i=$((i+1)); sleep 0.05; done"
    ]);
    adjust(&mut config, &rootfs);
    env.write_config(&config);
    let mut child = common::hull_command()
        .arg("--root")
        .arg(env.root())
        .args(["run", "-d", &env.id])
        .current_dir(env.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hull run -d");
    let status = child.wait().unwrap();
    assert!(status.success(), "run -d: {status}");
    let count = rootfs.join("count");
    wait_until(|| read_count(&count) >= 3, "the counter to reach 3");
    (count, child)
}

/// The last number written to `path` (the counter rewrites one line; the TCP server appends a line each).
fn read_count(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .rfind(|l| !l.trim().is_empty())?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The counter at `count` goes on from `stopped`: past it, and not restarted from 0.
fn assert_goes_on_from(count: &Path, stopped: u64, what: &str) {
    wait_until(|| read_count(count) > stopped + 2, what);
    let now = read_count(count);
    assert!(
        now < stopped + 100,
        "{what}: the counter went on from {stopped} (it restarted otherwise): now {now}"
    );
}

/// `delete --force` of the test's container, which must leave nothing.
fn delete_leaving_nothing(env: &Env) {
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    common::assert_leaves_nothing(env);
}

fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn checkpoint_dumps_the_container_and_ends_it_unless_left_running() {
    let criu = require_criu!("checkpoint_dumps_the_container_and_ends_it_unless_left_running");
    let env = Env::new("ckpt");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let images_arg = images.to_str().unwrap();

    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            images_arg,
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "checkpoint --leave-running: {}", r.describe());
    assert!(
        images.join("inventory.img").exists(),
        "an image was written"
    );
    let before = read_count(&count);
    wait_until(
        || read_count(&count) > before + 2,
        "the counter to go on after --leave-running",
    );
    let descriptors: Vec<String> =
        serde_json::from_slice(&fs::read(images.join("descriptors.json")).unwrap()).unwrap();
    assert_eq!(descriptors.len(), 3, "{descriptors:?}");
    assert!(
        descriptors.iter().all(|d| d.starts_with("pipe:[")),
        "the init's stdio, as restore will hand them over: {descriptors:?}"
    );

    fs::remove_dir_all(&images).unwrap();
    let r = hull(
        &env,
        &criu,
        &["checkpoint", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    assert!(images.join("pages-1.img").exists(), "the memory was dumped");
    let stopped = read_count(&count);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_count(&count), stopped, "the container no longer runs");
    let r = env.hull(&["state", &env.id]);
    assert!(
        r.code != 0 && r.stderr.contains("does not exist"),
        "a checkpointed container is destroyed, as runc destroys it: {}",
        r.describe()
    );
    common::assert_leaves_nothing(&env);
}

#[test]
fn checkpoint_refuses_what_it_cannot_do_by_name() {
    let criu = require_criu!("checkpoint_refuses_what_it_cannot_do_by_name");
    let env = Env::new("ckptbad");
    env.write_config(&base_config(&["sleep", "30"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let r = hull(&env, &criu, &["checkpoint", &env.id]);
    assert!(
        r.code != 0
            && r.stderr
                .contains("Container cannot be checkpointed in created state"),
        "{}",
        r.describe()
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());

    let (count, _stdio) = counting(&env);
    for (flags, message) in [
        (
            &["--manage-cgroups-mode", "bogus"][..],
            "invalid manage-cgroups-mode value",
        ),
        (
            &["--page-server", "nohost"],
            "Use --page-server ADDRESS:PORT to specify page server",
        ),
        (&["--empty-ns", "pid"], "namespace \"pid\" is not supported"),
        (&["--parent-path", "/abs"], "--parent-path must be relative"),
    ] {
        let args = [&["checkpoint"][..], flags, &[&env.id]].concat();
        let r = hull(&env, &criu, &args);
        assert!(
            r.code != 0 && r.stderr.contains(message),
            "{flags:?}: {}",
            r.describe()
        );
    }
    let before = read_count(&count);
    wait_until(
        || read_count(&count) > before,
        "the counter to go on after the refusals",
    );
    delete_leaving_nothing(&env);
}

/// The flags that tell CRIU what it may meet or how to treat it, each passed on as runc passes it: given together to a
/// real checkpoint and restore, CRIU takes them and the counter goes on; `--work-path` gets CRIU's logs; a restore
/// `--shell-job` without a terminal is refused by name.
#[test]
fn criu_takes_the_pass_through_flags() {
    let criu = require_criu!("criu_takes_the_pass_through_flags");
    let env = Env::new("ckptflags");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let work = env.dir.path().join("work");
    let (images_arg, work_arg) = (images.to_str().unwrap(), work.to_str().unwrap());
    let shared = [
        "--ext-unix-sk",
        "--file-locks",
        "--manage-cgroups-mode",
        "soft",
        "--empty-ns",
        "network",
        "--auto-dedup",
        "--work-path",
        work_arg,
        "--image-path",
        images_arg,
    ];
    let args = [
        &[
            "checkpoint",
            "--tcp-skip-in-flight",
            "--link-remap",
            "--shell-job",
        ][..],
        &shared,
        &[&env.id],
    ]
    .concat();
    let r = hull(&env, &criu, &args);
    assert_eq!(r.code, 0, "checkpoint {args:?}: {}", r.describe());
    assert!(
        work.join("dump.log").exists() && !images.join("dump.log").exists(),
        "CRIU logs into --work-path"
    );
    let stopped = read_count(&count);
    // A shell job is restored onto hull's own terminal: without one on its standard input, hull says so.
    let args = [&["--shell-job"][..], &shared, &[&env.id]].concat();
    let (r, _) = restore(&env, &criu, &args);
    assert!(
        r.code != 0
            && r.stderr
                .contains("restore --shell-job needs a terminal on standard input"),
        "{}",
        r.describe()
    );
    let args = [&["--no-subreaper"][..], &shared, &[&env.id]].concat();
    let (r, _restored_stdio) = restore(&env, &criu, &args);
    assert_eq!(r.code, 0, "restore {args:?}: {}", r.describe());
    assert!(
        work.join("restore.log").exists(),
        "CRIU logs into --work-path"
    );
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    delete_leaving_nothing(&env);
}

/// A network namespace joined by path (as engines and CNI make them) stays its owner's: the dump takes it as external
/// and the restored container joins the same namespace again.
#[test]
fn a_network_namespace_joined_by_path_is_joined_again() {
    let criu = require_criu!("a_network_namespace_joined_by_path_is_joined_again");
    let env = Env::new("rstnetns");
    let netns = NamedNetns::add(&format!("hull-{}", env.id));
    let inode = |path: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap());
    let (count, _stdio) = counting_with(&env, |config, _| {
        for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = netns.path.clone().into();
            }
        }
    });
    let images = env.dir.path().join("images");
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--image-path",
            images.to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    let stopped = read_count(&count);
    let (r, _restored_stdio) = restore(
        &env,
        &criu,
        &["--image-path", images.to_str().unwrap(), &env.id],
    );
    assert_eq!(r.code, 0, "restore: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    let state: serde_json::Value =
        serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    assert_eq!(
        inode(&format!("/proc/{}/ns/net", state["pid"])),
        inode(&netns.path),
        "the restored init is in the network namespace the config names"
    );
    delete_leaving_nothing(&env);
}

/// A named network namespace (`ip netns add`), deleted when dropped.
struct NamedNetns {
    name: String,
    path: String,
}

impl NamedNetns {
    fn add(name: &str) -> NamedNetns {
        let status = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        NamedNetns {
            name: name.to_owned(),
            path: format!("/run/netns/{name}"),
        }
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// `org.criu.config` names CRIU's configuration file for this container; what it sets wins over hull's request, as
/// with runc (its `log-file` here: CRIU logs there instead of `dump.log` and `restore.log`).
#[test]
fn the_criu_config_annotation_reaches_criu() {
    let criu = require_criu!("the_criu_config_annotation_reaches_criu");
    let env = Env::new("rstconf");
    let conf = env.dir.path().join("criu.conf");
    fs::write(&conf, "log-file=from-annotation.log\n").unwrap();
    let (count, _stdio) = counting_with(&env, |config, _| {
        config["annotations"] = serde_json::json!({"org.criu.config": conf});
    });
    let images = env.dir.path().join("images");
    let work = env.dir.path().join("work");
    let paths = [
        "--work-path",
        work.to_str().unwrap(),
        "--image-path",
        images.to_str().unwrap(),
    ];
    let r = hull(
        &env,
        &criu,
        &[&["checkpoint"][..], &paths, &[&env.id]].concat(),
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    assert!(
        work.join("from-annotation.log").exists() && !work.join("dump.log").exists(),
        "CRIU logged where the annotation's file says"
    );
    fs::remove_file(work.join("from-annotation.log")).unwrap();
    let stopped = read_count(&count);
    let (r, _restored_stdio) = restore(&env, &criu, &[&paths[..], &[&env.id]].concat());
    assert_eq!(r.code, 0, "restore: {}", r.describe());
    assert!(
        work.join("from-annotation.log").exists() && !work.join("restore.log").exists(),
        "the restore read the same file"
    );
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    delete_leaving_nothing(&env);
}

/// `--pre-dump` copies the memory while the container runs on; the final dump with `--parent-path` then writes only
/// what changed since, and the restore reads both. It needs the kernel's dirty-memory tracking (soft-dirty bits):
/// where the kernel has none (this development host's), CRIU's feature check says so by name and the rest is skipped.
#[test]
fn pre_dump_then_a_final_dump_with_parent_path() {
    let criu = require_criu!("pre_dump_then_a_final_dump_with_parent_path");
    let env = Env::new("predump");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let pre = images.join("pre");
    let last = images.join("final");
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--pre-dump",
            "--image-path",
            pre.to_str().unwrap(),
            &env.id,
        ],
    );
    if r.code != 0 {
        assert!(
            r.stderr.contains("criu is missing features: [MemTrack]"),
            "a refused pre-dump names the missing feature: {}",
            r.describe()
        );
        skip!(
            "pre_dump_then_a_final_dump_with_parent_path: this kernel does not track dirty memory, and hull says so"
        );
    }
    assert!(
        pre.join("pages-1.img").exists(),
        "the pre-dump copied the memory"
    );
    let before = read_count(&count);
    wait_until(
        || read_count(&count) > before + 2,
        "the counter to go on after the pre-dump",
    );

    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--parent-path",
            "../pre",
            "--image-path",
            last.to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "final dump with --parent-path: {}", r.describe());
    assert_eq!(
        fs::read_link(last.join("parent")).ok(),
        Some(PathBuf::from("../pre")),
        "CRIU links the final images to the pre-dump's"
    );
    let stopped = read_count(&count);
    let (r, _restored_stdio) = restore(
        &env,
        &criu,
        &["--image-path", last.to_str().unwrap(), &env.id],
    );
    assert_eq!(r.code, 0, "restore from the final dump: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    delete_leaving_nothing(&env);
}

/// A TCP port nothing listens on now (the kernel's pick for a socket bound to port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on TCP `port` (IPv4 or IPv6), as /proc/net/tcp{,6} show it.
fn listening(port: u16) -> bool {
    let wanted = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() > 3
                    && format!("{} ", fields[1]).ends_with(&wanted)
                    && fields[3] == "0A"
            })
    })
}

/// `--page-server`: the memory goes to a CRIU page server (`criu page-server` on the loopback, as on a migration's
/// target), the rest to the image directory; with the pages brought beside the rest, the container is restored and
/// goes on from where the dump stopped it.
#[test]
fn checkpoint_sends_the_memory_to_a_page_server() {
    let criu = require_criu!("checkpoint_sends_the_memory_to_a_page_server");
    let env = Env::new("pagesrv");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let served = env.dir.path().join("served");
    fs::create_dir(&served).unwrap();
    let port = free_port();
    let mut server = Command::new(criu.join("criu"))
        .args(["page-server", "--images-dir"])
        .arg(&served)
        .args(["--address", "127.0.0.1", "--port", &port.to_string(), "-o"])
        .arg(env.dir.path().join("page-server.log"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start criu page-server");
    wait_until(|| listening(port), "criu page-server to listen");
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--page-server",
            &format!("127.0.0.1:{port}"),
            "--image-path",
            images.to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "checkpoint --page-server: {}", r.describe());
    assert!(
        server.wait().unwrap().success(),
        "the page server ends with the dump"
    );
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pages-") || n.starts_with("pagemap-"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&images),
        Vec::<String>::new(),
        "no memory or page map in the image directory"
    );
    let pages = names(&served);
    assert!(!pages.is_empty(), "the page server received the memory");
    for name in &pages {
        fs::copy(served.join(name), images.join(name)).unwrap();
    }
    let stopped = read_count(&count);
    let (r, _restored_stdio) = restore(
        &env,
        &criu,
        &["--image-path", images.to_str().unwrap(), &env.id],
    );
    assert_eq!(r.code, 0, "restore with the served pages: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    delete_leaving_nothing(&env);
}

/// A child in a process group of its own, killed with everything it started (a hull stuck in CRIU, the CRIU it
/// started) when dropped before it ended: a failing test must not leave a lazy dump holding its container.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command, what: &str) -> Group {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        Group(cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}")))
    }

    /// Its exit status, or None after `within` (it is then killed).
    fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }

    fn kill(&mut self) {
        if self.0.try_wait().unwrap().is_none() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.0.wait();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lazy migration, as runc's tests run it: `checkpoint --lazy-pages --page-server ADDRESS:PORT --status-fd FD` dumps
/// all but the memory, serves it from a page server and writes a NUL on the status fd once that is ready; `criu
/// lazy-pages` (the target's side) and `restore --lazy-pages` under a new id make the container again, its memory
/// fetched as it touches it (userfaultfd); the checkpoint ends once every page is sent, and the counter goes on.
#[test]
fn lazy_pages_move_the_memory_after_the_restore() {
    let criu = require_criu!("lazy_pages_move_the_memory_after_the_restore");
    let uffd = Command::new(criu.join("criu"))
        .args(["check", "--feature", "uffd-noncoop"])
        .output()
        .unwrap();
    if !uffd.status.success() {
        skip!(
            "lazy_pages_move_the_memory_after_the_restore: no non-cooperative userfaultfd here (criu check --feature \
             uffd-noncoop)"
        );
    }
    let env = Env::new("lazy");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let port = free_port();
    let path = format!(
        "{}:{}",
        criu.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut ready, ready_write) = std::io::pipe().unwrap();
    let ready_fd = std::os::fd::AsRawFd::as_raw_fd(&ready_write);
    let log = env.dir.path().join("checkpoint.err");
    let mut dump = common::hull_command();
    dump.env("PATH", &path)
        .arg("--root")
        .arg(env.root())
        .args([
            "checkpoint",
            "--lazy-pages",
            "--page-server",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--status-fd", "3", "--image-path"])
        .arg(&images)
        .arg(&env.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap());
    // SAFETY: between fork and exec only dup2, which is async-signal-safe, on descriptors this process owns.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut dump, move || {
            if libc::dup2(ready_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut dump = Group::spawn(&mut dump, "hull checkpoint --lazy-pages");
    drop(ready_write);
    let mut byte = Vec::new();
    std::io::Read::read_to_end(&mut ready, &mut byte).unwrap();
    assert_eq!(
        byte,
        [0],
        "one NUL on --status-fd once the lazy page server is ready: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        images.join("inventory.img").exists(),
        "the dump was written"
    );

    let mut lazy = Command::new(criu.join("criu"));
    lazy.args([
        "lazy-pages",
        "--page-server",
        "--address",
        "127.0.0.1",
        "--port",
    ])
    .arg(port.to_string())
    .arg("-D")
    .arg(&images)
    .arg("-o")
    .arg("lazy-pages.log")
    .stdin(Stdio::null());
    let mut lazy = Group::spawn(&mut lazy, "criu lazy-pages");
    let new_id = format!("{}-lazy", env.id);
    let stopped = read_count(&count);
    let mut restore = common::hull_command();
    restore
        .env("PATH", &path)
        .arg("--root")
        .arg(env.root())
        .args(["restore", "-d", "--lazy-pages", "--image-path"])
        .arg(&images)
        .arg("--work-path")
        .arg(&images)
        .arg(&new_id)
        .current_dir(env.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut restore = Group::spawn(&mut restore, "hull restore --lazy-pages");
    // A restore waits for pages as long as the lazy dump serves them: once the dump has failed, it is ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    while restore.0.try_wait().unwrap().is_none()
        && dump.0.try_wait().unwrap().is_none_or(|s| s.success())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let restored = restore.wait(Duration::from_secs(1));
    let dumped = dump.wait(Duration::from_secs(60));
    let served = lazy.wait(Duration::from_secs(10));
    let dump_err = fs::read_to_string(&log).unwrap_or_default();
    if dumped.is_none_or(|s| !s.success()) && dump_err.contains("page-pipe: splice") {
        let r = env.hull(&["delete", "--force", &new_id]);
        assert_eq!(r.code, 0, "delete of a killed restore: {}", r.describe());
        let rootfs = count.parent().unwrap();
        assert!(
            rootfs.join("bin/busybox").exists(),
            "deleting a killed restore leaves the rootfs as it was (CRIU's root, a bind of it, is detached first)"
        );
        // CRIU's own cgroup yard stays mounted in the image directory when CRIU is killed.
        let mut leftovers: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
            .filter(|point| point.starts_with(&images.display().to_string()))
            .collect();
        leftovers.sort_by(|a, b| b.cmp(a));
        for point in leftovers {
            let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        skip!(
            "lazy_pages_move_the_memory_after_the_restore: this CRIU cannot send the lazy pages on this kernel: {}",
            dump_err.lines().find(|l| l.contains("splice")).unwrap_or_default()
        );
    }
    assert!(
        restored.is_some_and(|s| s.success()),
        "restore --lazy-pages: {restored:?}"
    );
    assert!(
        dumped.is_some_and(|s| s.success()),
        "the lazy checkpoint ends once every page is sent: {dumped:?} {dump_err}"
    );
    assert!(served.is_some(), "criu lazy-pages ends with the migration");
    assert_goes_on_from(&count, stopped, "the lazily restored counter to go on");
    let r = env.hull(&["state", &env.id]);
    assert!(
        r.code != 0,
        "the lazily checkpointed container is gone: {}",
        r.describe()
    );
    let r = env.hull(&["delete", "--force", &new_id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    common::assert_leaves_nothing(&env);
}

/// `hull restore -d` with pipes for its stdio (the restored init gets them: `inherit_fd`), kept open by the child.
fn restore(env: &Env, criu: &Path, args: &[&str]) -> (common::Run, Child) {
    let path = format!(
        "{}:{}",
        criu.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = common::hull_command()
        .env("PATH", path)
        .arg("--root")
        .arg(env.root())
        .args([&["restore", "-d"][..], args].concat())
        .current_dir(env.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hull restore");
    let status = child.wait().unwrap();
    // stderr is read only on failure: the restored process holds the pipe's write end.
    let stderr = if status.success() {
        String::new()
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
        text
    };
    let run = common::Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    };
    (run, child)
}

/// Checkpoint, then restore: the counter goes on from where it stopped (not from 0), under the same id and under a
/// new one with `--pid-file`; the restored container is running, takes `exec`, and `delete` leaves nothing.
#[test]
fn restore_continues_the_container_where_checkpoint_stopped_it() {
    let criu = require_criu!("restore_continues_the_container_where_checkpoint_stopped_it");
    let env = Env::new("rst");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let images_arg = images.to_str().unwrap();
    let r = hull(
        &env,
        &criu,
        &["checkpoint", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    let stopped = read_count(&count);

    let (r, _restored_stdio) = restore(&env, &criu, &["--image-path", images_arg, &env.id]);
    assert_eq!(r.code, 0, "restore: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    let state: serde_json::Value =
        serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    let cgroup = fs::read_to_string(format!("/proc/{}/cgroup", state["pid"])).unwrap();
    assert!(
        cgroup.lines().all(|line| line.contains(&env.id)),
        "the restored init is in the container's cgroup (its systemd unit under the systemd driver): {cgroup}"
    );
    if common::systemd_driver() {
        assert_eq!(
            common::systemd_units_named(&env.id).len(),
            1,
            "one unit holds the restored container"
        );
    }
    let r = env.hull(&[
        "exec",
        &env.id,
        "sh",
        "-c",
        "cat /scratch/note /data/host-file; head -c1 /proc/kcore | wc -c",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "kept\nfrom the host\n0\n"),
        "exec into the restored container: the tmpfs kept its file, the bind its source, /proc/kcore stays masked: {}",
        r.describe()
    );

    // Once more, from a checkpoint of the restored container, under a new id with --pid-file.
    fs::remove_dir_all(&images).unwrap();
    let r = hull(
        &env,
        &criu,
        &["checkpoint", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "second checkpoint: {}", r.describe());
    common::assert_leaves_nothing(&env);
    let stopped = read_count(&count);
    let new_id = format!("{}-new", env.id);
    let pid_file = env.dir.path().join("restored.pid");
    let (r, _stdio_again) = restore(
        &env,
        &criu,
        &[
            "--image-path",
            images_arg,
            "--pid-file",
            pid_file.to_str().unwrap(),
            &new_id,
        ],
    );
    assert_eq!(r.code, 0, "restore under a new id: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the counter to go on under the new id");
    let state: serde_json::Value =
        serde_json::from_str(&env.hull(&["state", &new_id]).stdout).unwrap();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        state["pid"].to_string(),
        "the pid file names the restored init"
    );
    let r = env.hull(&["delete", "--force", &new_id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    assert!(!env.root().join(&new_id).exists());
    assert_eq!(
        common::cgroup_dirs_named(&new_id),
        Vec::<PathBuf>::new(),
        "no cgroup may remain"
    );
    assert_eq!(
        common::host_mounts_mentioning(&env.root().display().to_string()),
        Vec::<String>::new(),
        "no criu-root bind may remain"
    );
}

/// A TCP connection inside the container (busybox nc sending 0, 1, 2, ... to a listener on its loopback, which appends
/// each to /count): CRIU dumps an established connection only with `--tcp-established`, and with it on restore the
/// same connection goes on, no number lost or repeated. The network namespace is restored empty, as runc leaves it
/// (`--empty-ns` network is always set): a createRuntime hook brings its loopback up, as a CNI plugin would.
#[test]
fn an_established_tcp_connection_survives_with_tcp_established() {
    let criu = require_criu!("an_established_tcp_connection_survives_with_tcp_established");
    let env = Env::new("rsttcp");
    let (count, _stdio) = counting_with(&env, |config, _| {
        config["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "sleep 100000 | nc -l -p 9000 > /count & sleep 0.2; \
             i=0; while :; do echo $i; i=$((i+1)); sleep 0.05; done | nc 127.0.0.1 9000"
        ]);
        config["hooks"] = serde_json::json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); exec nsenter -t $pid -n ip link set lo up"]
        }]});
    });
    let images = env.dir.path().join("images");
    let images_arg = images.to_str().unwrap();

    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            images_arg,
            &env.id,
        ],
    );
    assert_ne!(
        r.code,
        0,
        "checkpoint of an established connection without --tcp-established: {}",
        r.describe()
    );
    assert!(
        r.stderr.contains("--tcp-established"),
        "CRIU's refusal is quoted: {}",
        r.describe()
    );
    fs::remove_dir_all(&images).unwrap();
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--tcp-established",
            "--image-path",
            images_arg,
            &env.id,
        ],
    );
    if r.stderr.contains("checkpoint-restore/criu#2718") {
        skip!(
            "an_established_tcp_connection_survives_with_tcp_established: this CRIU cannot dump sockets on this \
             kernel, and hull says so: {}",
            r.stderr.lines().last().unwrap_or_default()
        );
    }
    assert_eq!(r.code, 0, "checkpoint --tcp-established: {}", r.describe());
    let stopped = read_count(&count);

    let (r, _restored_stdio) = restore(
        &env,
        &criu,
        &["--tcp-established", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "restore --tcp-established: {}", r.describe());
    wait_until(
        || read_count(&count) > stopped + 5,
        "numbers to arrive again over the restored connection",
    );
    let received: Vec<String> = fs::read_to_string(&count)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..received.len()).map(|i| i.to_string()).collect();
    assert_eq!(
        received, expected,
        "every number once, in order, across the checkpoint at {stopped}"
    );
    delete_leaving_nothing(&env);
}

/// A restore that fails (no image there) names CRIU's log and leaves no state directory, cgroup or mount.
#[test]
fn a_failed_restore_leaves_nothing() {
    let criu = require_criu!("a_failed_restore_leaves_nothing");
    let env = Env::new("rstbad");
    env.write_config(&base_config(&["sleep", "30"]));
    let empty = env.dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(
        empty.join("descriptors.json"),
        "[\"/dev/null\",\"/dev/null\",\"/dev/null\"]",
    )
    .unwrap();
    let r = hull(
        &env,
        &criu,
        &[
            "restore",
            "-d",
            "--image-path",
            empty.to_str().unwrap(),
            &env.id,
        ],
    );
    assert!(
        r.code != 0
            && r.stderr.contains("criu failed: type Restore")
            && r.stderr.contains("restore.log"),
        "{}",
        r.describe()
    );
    common::assert_leaves_nothing(&env);
    assert_eq!(
        common::host_mounts_mentioning(&env.root().display().to_string()),
        Vec::<String>::new(),
        "no criu-root bind may remain"
    );
    let r = hull(
        &env,
        &criu,
        &[
            "restore",
            "-d",
            "--no-pivot",
            "--image-path",
            empty.to_str().unwrap(),
            &env.id,
        ],
    );
    assert!(
        r.code != 0
            && r.stderr
                .contains("--no-pivot cannot be honoured by restore"),
        "a flag CRIU cannot honour is refused by name: {}",
        r.describe()
    );
}

/// `features` says checkpointing is enabled only when a CRIU hull can use answers (runc always says so).
#[test]
fn features_say_checkpoint_only_with_a_usable_criu() {
    let criu = require_criu!("features_say_checkpoint_only_with_a_usable_criu");
    assert_eq!(checkpoint_enabled(&criu.display().to_string()), "true");
    assert_eq!(
        checkpoint_enabled("/nonexistent"),
        "false",
        "no CRIU on PATH"
    );
}

/// Lines read from a pty master until one `tick N` with N past `after` arrives; returns that N.
fn tick_after(master: &mut fs::File, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    loop {
        assert!(
            Instant::now() < deadline,
            "no tick past {after} on the terminal: {seen:?}"
        );
        let n = std::io::Read::read(master, &mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        let newest = seen
            .lines()
            .filter_map(|l| l.trim().strip_prefix("tick ")?.parse::<i64>().ok())
            .max();
        if let Some(tick) = newest.filter(|&t| t > after) {
            return tick;
        }
    }
}

/// A `terminal: true` container: checkpointed, then restored with `--console-socket`, which receives the new
/// terminal's master (CRIU's `orphan-pts-master`), and the program goes on writing to it.
#[test]
fn a_terminal_container_is_restored_with_a_console_socket() {
    let criu = require_criu!("a_terminal_container_is_restored_with_a_console_socket");
    let env = Env::new("rsttty");
    let mut config = base_config(&[
        "sh",
        "-c",
        "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    config["process"]["terminal"] = true.into();
    env.private_rootfs(&mut config);
    env.write_config(&config);
    let first = ConsoleSocket::bind(env.dir.path()).unwrap();
    let r = env.hull(&[
        "run",
        "-d",
        "--console-socket",
        first.path.to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let mut master = first.accept_master(Duration::from_secs(5)).unwrap();
    let before = tick_after(&mut master, 2);
    let images = env.dir.path().join("images");
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--image-path",
            images.to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    drop(master);

    let second_dir = env.dir.path().join("second");
    fs::create_dir(&second_dir).unwrap();
    let second = ConsoleSocket::bind(&second_dir).unwrap();
    let r = hull(
        &env,
        &criu,
        &[
            "restore",
            "-d",
            "--console-socket",
            second.path.to_str().unwrap(),
            "--image-path",
            images.to_str().unwrap(),
            &env.id,
        ],
    );
    assert_eq!(r.code, 0, "restore: {}", r.describe());
    let mut master = second.accept_master(Duration::from_secs(5)).unwrap();
    let after = tick_after(&mut master, before);
    assert!(
        after < before + 100,
        "the program went on from tick {before}: {after}"
    );
    delete_leaving_nothing(&env);
}

/// Beyond runc (runc#2009, crun#1207): a container with a user namespace of its own checkpoints and restores. The
/// devices bind-mounted from the host are external mounts, and the images are given to the container's root, which
/// CRIU's restored tasks read them as.
#[test]
fn a_user_namespaced_container_checkpoints_and_restores() {
    let criu = require_criu!("a_user_namespaced_container_checkpoints_and_restores");
    let env = Env::new("rstuserns");
    let (count, _stdio) = counting_with(&env, |config, rootfs| {
        common::add_user_namespace(config);
        let status = Command::new("chown")
            .args(["-R", &format!("{0}:{0}", common::USERNS_HOST_ID)])
            .arg(rootfs)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "chown the private rootfs to the container's root"
        );
    });
    let images = env.dir.path().join("images");
    let images_arg = images.to_str().unwrap();
    let r = hull(
        &env,
        &criu,
        &["checkpoint", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    let stopped = read_count(&count);
    // A restore refused because its id is taken leaves the images to their owner.
    let taken = env.root().join("taken");
    fs::create_dir_all(&taken).unwrap();
    let (r, _) = restore(&env, &criu, &["--image-path", images_arg, "taken"]);
    assert_ne!(r.code, 0, "restore into a taken id: {}", r.describe());
    fs::remove_dir(&taken).unwrap();
    let owner = fs::metadata(&images).unwrap().uid();
    assert_eq!(
        owner, 0,
        "the images of a refused restore still belong to root, not the container's root"
    );
    let (r, _restored_stdio) = restore(&env, &criu, &["--image-path", images_arg, &env.id]);
    assert_eq!(r.code, 0, "restore: {}", r.describe());
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    assert_eq!(
        fs::metadata(&images).unwrap().uid(),
        common::USERNS_HOST_ID,
        "the images of the restore belong to the container's root"
    );
    let state: serde_json::Value =
        serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", &common::USERNS_HOST_ID.to_string(), "65536"],
        "the restored init is in a user namespace with the config's mapping"
    );
    let r = env.hull(&["exec", &env.id, "id", "-u"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "0\n"), "{}", r.describe());
    delete_leaving_nothing(&env);
}

/// `restore` in the foreground, as `run`: hull waits for the restored init, exits with its status (128 + signal) and
/// deletes the container.
#[test]
fn a_foreground_restore_waits_for_the_container_and_deletes_it() {
    let criu = require_criu!("a_foreground_restore_waits_for_the_container_and_deletes_it");
    let env = Env::new("rstfg");
    let (count, _stdio) = counting(&env);
    let images = env.dir.path().join("images");
    let images_arg = images.to_str().unwrap();
    let r = hull(
        &env,
        &criu,
        &["checkpoint", "--image-path", images_arg, &env.id],
    );
    assert_eq!(r.code, 0, "checkpoint: {}", r.describe());
    let stopped = read_count(&count);
    let path = format!(
        "{}:{}",
        criu.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut foreground = common::hull_command()
        .env("PATH", path)
        .arg("--root")
        .arg(env.root())
        .args(["restore", "--image-path", images_arg, &env.id])
        .current_dir(env.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hull restore");
    assert_goes_on_from(&count, stopped, "the restored counter to go on");
    assert!(
        foreground.try_wait().unwrap().is_none(),
        "hull waits for the restored container"
    );
    let r = env.hull(&["kill", &env.id, "KILL"]);
    assert_eq!(r.code, 0, "kill: {}", r.describe());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = foreground.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hull restore did not end with its container"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(137), "the init's status, 128 + SIGKILL");
    common::assert_leaves_nothing(&env);
}
