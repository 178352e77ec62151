//! `linux.seccomp` on the real kernel: every action seen through a real syscall, argument conditions, Docker's
//! default profile, the filter ordering (cwd check before the filter, with and without no_new_privs), exec getting
//! the container's filter, and `SCMP_ACT_NOTIFY` with a listener that answers the container's syscalls.

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::thread::JoinHandle;

use common::{base_config, Env};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

fn sh(script: &str) -> Value {
    base_config(&["sh", "-c", script])
}

fn docker_profile() -> Value {
    // Compiled in: the test binary also runs in the v2 VM, where the source tree is absent.
    serde_json::from_str(include_str!("fixtures/docker-default-seccomp.json")).unwrap()
}

/// Run `config` with `profile` and return stdout+stderr, asserting the exit code.
fn run_with(env: &Env, mut config: Value, profile: Value, want_code: i32) -> String {
    config["linux"]["seccomp"] = profile;
    let r = env.run(&config);
    assert_eq!(r.code, want_code, "exit code: {}", r.describe());
    format!("{}{}", r.stdout, r.stderr)
}

fn allow_except(syscalls: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
}

#[test]
fn errno_action_returns_the_configured_errno() {
    require_root!("errno_action_returns_the_configured_errno");
    let env = Env::new("sc-errno");
    let config = sh("mkdir /tmp/x; echo rc=$?; echo still-running");
    let out = run_with(
        &env,
        config,
        allow_except(json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}
        ])),
        0,
    );
    // The rootfs is read-only: without the filter mkdir fails with EROFS, not with the configured EDQUOT.
    assert!(
        out.contains("Disk quota exceeded"),
        "EDQUOT from the filter: {out:?}"
    );
    assert!(out.contains("rc=1\nstill-running"), "{out:?}");
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    require_root!("kill_and_trap_actions_end_the_process_with_sigsys");
    let env = Env::new("sc-kill");
    let config = sh(
        "(rmdir /tmp); echo rmdir=$?; (hostname x); echo hostname=$?; ls / >/dev/null; echo ls=$?",
    );
    let out = run_with(
        &env,
        config,
        allow_except(json!([
            {"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["sethostname"], "action": "SCMP_ACT_TRAP"}
        ])),
        0,
    );
    // 159 = 128 + SIGSYS.
    assert!(out.contains("rmdir=159\n"), "rmdir killed: {out:?}");
    assert!(
        out.contains("hostname=159\n"),
        "sethostname trapped: {out:?}"
    );
    assert!(out.contains("ls=0\n"), "{out:?}");
}

#[test]
fn argument_conditions_select_calls() {
    require_root!("argument_conditions_select_calls");
    let env = Env::new("sc-args");
    // Without the rule, `kill -USR1 $$` would end the shell.
    let config = sh("kill -USR1 $$; echo usr1=$?; kill -0 $$; echo zero=$?");
    let out = run_with(
        &env,
        config,
        allow_except(json!([
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ"}]}
        ])),
        0,
    );
    assert!(out.contains("usr1=1\n"), "kill(USR1) refused: {out:?}");
    assert!(out.contains("zero=0\n"), "kill(0) allowed: {out:?}");
}

#[test]
fn log_action_allows_the_call() {
    require_root!("log_action_allows_the_call");
    let env = Env::new("sc-log");
    let out = run_with(
        &env,
        sh("uname -s"),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
               "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_LOG"}]}),
        0,
    );
    assert_eq!(out, "Linux\n");
}

/// Docker's default profile (tests/fixtures, written from moby's definition) with CAP_SYS_ADMIN granted, so that
/// the denials are the profile's and not missing capabilities'; without no_new_privs, as Docker runs containers.
#[test]
fn docker_default_profile_denies_namespaces_mounts_and_keyrings() {
    require_root!("docker_default_profile_denies_namespaces_mounts_and_keyrings");
    let env = Env::new("sc-docker");
    let script = "unshare -m true; echo unshare=$?; mount -t tmpfs none /mnt; echo mount=$?; \
                  /checker keyctl >/dev/null; echo keyctl=$?; \
                  ls / >/dev/null && echo ls=ok; grep '^Seccomp:' /proc/self/status; id -u";
    let mut config = sh(script);
    config["process"]["noNewPrivileges"] = false.into();
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
    }
    let control = env.run(&config);
    assert!(
        control.stdout.contains("unshare=0\n") && control.stdout.contains("keyctl=0\n"),
        "without the profile, unshare and keyctl work: {}",
        control.describe()
    );
    let out = run_with(&env, config, docker_profile(), 0);
    for denied in ["unshare=1\n", "mount=1\n", "keyctl=1\n"] {
        assert!(out.contains(denied), "want {denied:?} in {out:?}");
    }
    assert!(out.contains("Operation not permitted"), "EPERM: {out:?}");
    assert!(
        out.contains("ls=ok\nSeccomp:\t2\n0\n"),
        "normal commands work, filter mode 2: {out:?}"
    );
}

/// The working directory is checked before the filters are loaded: a profile denying getcwd still starts, both
/// with no_new_privs (loaded last) and without it (loaded before the capabilities are dropped).
#[test]
fn a_profile_denying_getcwd_still_starts() {
    require_root!("a_profile_denying_getcwd_still_starts");
    let env = Env::new("sc-getcwd");
    for no_new_privs in [true, false] {
        let mut config = base_config(&["/bin/echo", "started"]);
        config["process"]["noNewPrivileges"] = no_new_privs.into();
        config["process"]["cwd"] = "/tmp".into();
        let out = run_with(
            &env,
            config,
            allow_except(json!([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}])),
            0,
        );
        assert_eq!(out, "started\n", "noNewPrivileges {no_new_privs}");
    }
}

/// A non-root user without no_new_privs: the filter needs CAP_SYS_ADMIN, which the switch to the user cleared from
/// the effective set; hull raises it back for the load, and the process still ends with only its configured caps.
#[test]
fn non_root_user_without_no_new_privs_gets_the_filter_and_its_own_caps() {
    require_root!("non_root_user_without_no_new_privs_gets_the_filter_and_its_own_caps");
    let env = Env::new("sc-user");
    let mut config =
        sh("grep -E '^(Seccomp|CapEff|CapPrm):' /proc/self/status; mkdir /tmp/x 2>&1; id -u");
    config["process"]["noNewPrivileges"] = false.into();
    config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    // A non-root process keeps capabilities across its execve only through the ambient set.
    let configured = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    config["process"]["capabilities"]["inheritable"] = configured.clone();
    config["process"]["capabilities"]["ambient"] = configured;
    let out = run_with(
        &env,
        config,
        allow_except(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]),
        ),
        0,
    );
    assert!(out.contains("Seccomp:\t2\n"), "{out:?}");
    // Exactly CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE (bits 29, 5, 10): not the CAP_SYS_ADMIN raised for
    // the load.
    assert!(out.contains("CapEff:\t0000000020000420\n"), "{out:?}");
    assert!(out.contains("Disk quota exceeded"), "{out:?}");
    assert!(out.ends_with("1000\n"), "{out:?}");
}

#[test]
fn exec_gets_the_containers_filter() {
    require_root!("exec_gets_the_containers_filter");
    let env = Env::new("sc-exec");
    let mut config = base_config(&["sleep", "30"]);
    config["linux"]["seccomp"] = allow_except(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}
    ]));
    env.write_config(&config);
    let bundle = env.bundle();
    let r = env.hull(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    // Later edits of config.json do not matter: exec uses the profile saved at create.
    config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    env.write_config(&config);
    let r = env.hull(&[
        "exec",
        &env.id,
        "sh",
        "-c",
        "mkdir /tmp/x; grep ^Seccomp: /proc/self/status",
    ]);
    let _ = env.hull(&["delete", "-f", &env.id]);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("Disk quota exceeded"), "{}", r.describe());
    assert!(out.contains("Seccomp:\t2\n"), "{}", r.describe());
}

// ---- SCMP_ACT_NOTIFY --------------------------------------------------------------------------------------------

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOWR('!', 0, struct seccomp_notif)` and `_IOWR('!', 1, struct seccomp_notif_resp)`.
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// A seccomp agent: for each of `connections`, receive the state JSON and the listener fd, then answer every
/// notification with `-errno` until the listener's processes are gone. Returns the JSON states received.
fn agent(listener: UnixListener, connections: usize, errno: i32) -> JoinHandle<Vec<Value>> {
    std::thread::spawn(move || {
        let mut states = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 64 * 1024];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            )
            .expect("recvmsg");
            let mut fd = None;
            for cmsg in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    // SAFETY: received just now; ours alone.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
                }
            }
            let n = msg.bytes;
            states.push(serde_json::from_slice(&buf[..n]).expect("state JSON"));
            let fd = fd.expect("a listener fd with the state");
            servers.push(std::thread::spawn(move || loop {
                let mut notif = SeccompNotif::default();
                // SAFETY: the ioctl fills a zeroed seccomp_notif of the size encoded in the request.
                if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0
                {
                    return;
                }
                let resp = SeccompNotifResp {
                    id: notif.id,
                    val: 0,
                    error: -errno,
                    flags: 0,
                };
                // SAFETY: reads a valid seccomp_notif_resp.
                unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &resp) };
            }));
        }
        drop(servers);
        states
    })
}

#[test]
fn notify_sends_the_listener_to_the_agent_which_answers_for_the_kernel() {
    require_root!("notify_sends_the_listener_to_the_agent_which_answers_for_the_kernel");
    let env = Env::new("sc-notify");
    let socket = env.dir.path().join("agent.sock");
    let agent = agent(UnixListener::bind(&socket).unwrap(), 2, libc::EDQUOT);
    let mut config = base_config(&["sh", "-c", "mkdir /tmp/a 2>/dev/shm/init-err; sleep 30"]);
    config["annotations"] = json!({"org.example/agent": "yes"});
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "meta-1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    env.write_config(&config);
    let bundle = env.bundle();
    let r = env.hull(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let init_pid = env.state()["pid"].as_i64().unwrap();
    let wait_for_init =
        "for i in $(seq 100); do [ -s /dev/shm/init-err ] && break; sleep 0.1; done";
    let script = format!("{wait_for_init}; cat /dev/shm/init-err; mkdir /tmp/b; echo rc=$?");
    let exec = env.hull(&["exec", &env.id, "sh", "-c", &script]);
    let _ = env.hull(&["delete", "-f", &env.id]);
    let states = agent.join().expect("agent");

    // The init's mkdir (its error copied to stdout by `cat`) and the exec'd one, both answered by the agent.
    assert!(
        exec.stdout
            .contains("mkdir: can't create directory '/tmp/a': Disk quota exceeded"),
        "{}",
        exec.describe()
    );
    assert!(
        exec.stderr.contains("'/tmp/b': Disk quota exceeded") && exec.stdout.ends_with("rc=1\n"),
        "{}",
        exec.describe()
    );

    let create = &states[0];
    assert_eq!(create["fds"], json!(["seccompFd"]));
    assert_eq!(create["metadata"], "meta-1");
    assert_eq!(create["pid"], init_pid);
    assert_eq!(create["state"]["id"], env.id.as_str());
    assert_eq!(create["state"]["status"], "creating");
    assert_eq!(create["state"]["pid"], init_pid);
    assert_eq!(create["state"]["bundle"], bundle.to_str().unwrap());
    assert_eq!(create["state"]["annotations"]["org.example/agent"], "yes");
    let exec_state = &states[1];
    assert_eq!(exec_state["state"]["status"], "running");
    assert_eq!(exec_state["state"]["pid"], init_pid);
    assert_ne!(exec_state["pid"], init_pid, "the exec'd process's own pid");
}

/// runc (through libseccomp) filters every architecture a profile lists with that architecture's own syscall table.
/// `/i386-probe` (tests/fixtures/i386-probe.S, a static 32-bit program) calls i386's getpid (20) and says whether it
/// was denied:
/// - under Docker's default profile (x86_64, x86 and x32 listed) it runs;
/// - a profile denying getpid with x86 listed denies the i386 getpid, which is 20 there (39, x86_64's getpid, is
///   i386's mkdir);
/// - the same profile without x86 kills it (an architecture the profile does not list).
///
/// hull used to filter only x86_64 and kill every i386 syscall, so 32-bit programs died under every default profile.
#[test]
fn a_32_bit_program_is_filtered_with_the_i386_table() {
    require_root!("a_32_bit_program_is_filtered_with_the_i386_table");
    let env = Env::new("sc-i386");
    let probe = common::rootfs().join("i386-probe");
    assert!(
        probe.exists(),
        "{} is missing: `make rootfs` assembles it",
        probe.display()
    );
    let config = base_config(&["/i386-probe"]);
    let r = env.run(&config);
    if r.stderr.contains("Exec format error") {
        skip!("a_32_bit_program_is_filtered_with_the_i386_table: this kernel runs no 32-bit programs (no IA32 emulation)");
    }
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "getpid ok\n"),
        "the probe without a profile: {}",
        r.describe()
    );
    assert_eq!(
        run_with(&env, config.clone(), docker_profile(), 0),
        "getpid ok\n",
        "the i386 probe under Docker's default profile"
    );
    let deny_getpid = |archs: Value| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": archs,
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]
        })
    };
    assert_eq!(
        run_with(
            &env,
            config.clone(),
            deny_getpid(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])),
            0
        ),
        "getpid denied\n",
        "the i386 getpid under a profile denying getpid on x86"
    );
    assert_eq!(
        run_with(
            &env,
            config,
            deny_getpid(json!(["SCMP_ARCH_X86_64"])),
            128 + libc::SIGSYS
        ),
        "",
        "an i386 syscall under a profile that does not list x86 kills the program"
    );
}
