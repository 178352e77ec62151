//! `hull checkpoint` with a real CRIU (4.1, built by `make criu` as tools/criu.sh builds it: Debian 12's 3.17 cannot
//! dump on this kernel). The container's stdio are pipes, as engines give them (CRIU cannot dump a descriptor of a
//! host file outside the container's mounts, such as the host's /dev/null; runc cannot either).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{base_config, Env};

/// The CRIU wrapper tools/criu.sh makes, when it runs here.
fn criu_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/criu");
    let works = Command::new(dir.join("criu"))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(dir)
}

macro_rules! require_criu {
    ($name:expr) => {{
        require_root!($name);
        match criu_dir() {
            Some(dir) => dir,
            None => skip!(
                "{}: no working CRIU at build/criu/criu (make criu builds it from Debian trixie's criu 4.1)",
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
    let mut config = base_config(&[
        "sh",
        "-c",
        "i=0; while :; do echo $i > /count; i=$((i+1)); sleep 0.05; done",
    ]);
    let rootfs = env.private_rootfs(&mut config);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
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

fn read_count(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
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
    // Pre-dump needs the kernel's dirty-memory tracking, which some kernels (this machine's) lack: then CRIU's
    // feature check says so by name; where it has it, a pre-dump leaves the container running.
    let images = env.dir.path().join("pre");
    let r = hull(
        &env,
        &criu,
        &[
            "checkpoint",
            "--pre-dump",
            "--image-path",
            images.to_str().unwrap(),
            &env.id,
        ],
    );
    if r.code != 0 {
        assert!(
            r.stderr.contains("CRIU is missing features: mem_track"),
            "{}",
            r.describe()
        );
    }
    let before = read_count(&count);
    wait_until(
        || read_count(&count) > before,
        "the counter to go on after a pre-dump or its refusal",
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    common::assert_leaves_nothing(&env);
}
