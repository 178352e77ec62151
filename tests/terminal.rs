//! Terminals and handed-over fds: `process.terminal` with `--console-socket` (create and exec: one pty master over
//! SCM_RIGHTS, consoleSize, /dev/console, ownership), foreground `run` and `exec` relaying hull's own terminal (a
//! real pseudo-terminal opened by the test), runc's argument errors, and `--pidfd-socket` (seed experiment A26).

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::console::ConsoleSocket;
use common::{base_config, Env};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::tcgetattr;
use serde_json::{json, Value};

/// Everything the pty master yields until the process side is gone (EIO) or `timeout` passes.
fn read_until_closed(master: &mut File, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the pty did not close within {timeout:?}; read so far: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms = left.as_millis().min(1000) as u16;
        if poll(&mut fds, PollTimeout::from(ms)).unwrap() == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn with_terminal(args: &[&str]) -> Value {
    let mut config = base_config(args);
    config["process"]["terminal"] = true.into();
    config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    config
}

#[test]
fn a26_console_socket_gets_the_master() {
    require_root!("a26_console_socket_gets_the_master");
    let env = Env::new("a26tty");
    let mut config = with_terminal(&["sh"]);
    config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.write_config(&config);
    let socket = ConsoleSocket::bind(env.dir.path()).unwrap();
    let r = env.hull(&[
        "create",
        "--console-socket",
        socket.path.to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let mut master = socket
        .accept_master(Duration::from_secs(5))
        .expect("the pty master, sent before create returned");
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    master
        .write_all(
            b"tty; [ -t 0 ] && echo is-a-tty; stty size; ls -ln /dev/console /dev/pts/0; exit\n",
        )
        .unwrap();
    let out = read_until_closed(&mut master, Duration::from_secs(10));
    assert!(out.contains("/dev/pts/0\r\n"), "tty inside: {out:?}");
    assert!(out.contains("is-a-tty"), "[ -t 0 ]: {out:?}");
    assert!(out.contains("33 101"), "consoleSize applied: {out:?}");
    let console = out
        .lines()
        .find(|l| l.ends_with("/dev/console\r") || l.ends_with("/dev/console"))
        .unwrap_or_else(|| panic!("no /dev/console line in {out:?}"));
    assert!(
        console.starts_with('c') && console.contains("136,"),
        "/dev/console is the pty peer: {console:?}"
    );
    let peer = out
        .lines()
        .find(|l| l.starts_with('c') && l.trim_end().ends_with("/dev/pts/0"))
        .unwrap_or_else(|| panic!("no /dev/pts/0 line in {out:?}"));
    assert_eq!(
        peer.split_whitespace().nth(2),
        Some("1000"),
        "the pty belongs to the process user: {peer:?}"
    );
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

#[test]
fn exec_with_a_console_socket() {
    require_root!("exec_with_a_console_socket");
    let env = Env::new("exectty");
    env.write_config(&base_config(&["sleep", "600"]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    let socket = ConsoleSocket::bind(env.dir.path()).unwrap();
    let r = env.hull(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        socket.path.to_str().unwrap(),
        &env.id,
        "sh",
        "-c",
        "tty; [ -t 1 ] && echo is-a-tty",
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let mut master = socket.accept_master(Duration::from_secs(5)).unwrap();
    let out = read_until_closed(&mut master, Duration::from_secs(10));
    assert!(
        out.starts_with("/dev/pts/") && out.contains("is-a-tty"),
        "{out:?}"
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

/// runc's `checkTerminal` messages.
#[test]
fn impossible_terminal_combinations() {
    require_root!("impossible_terminal_combinations");
    let env = Env::new("ttyargs");
    env.write_config(&base_config(&["sleep", "600"]));
    let socket = env.dir.path().join("nobody.sock");
    let r = env.hull(&[
        "create",
        "--console-socket",
        socket.to_str().unwrap(),
        &env.id,
    ]);
    assert!(
        r.code == 1
            && r.stderr
                .contains("cannot use console socket if runc will not detach or allocate tty"),
        "{}",
        r.describe()
    );
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    let r = env.hull(&["exec", "-d", "-t", &env.id, "true"]);
    assert!(
        r.code == 255
            && r.stderr.contains(
                "exec failed: cannot allocate tty if runc will detach without setting console socket"
            ),
        "{}",
        r.describe()
    );
    let r = env.hull(&[
        "exec",
        "--console-socket",
        socket.to_str().unwrap(),
        &env.id,
        "true",
    ]);
    assert!(
        r.code == 255
            && r.stderr
                .contains("cannot use console socket if runc will not detach or allocate tty"),
        "{}",
        r.describe()
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

/// Run hull on the slave of a pty the test opened (40x120), as a person at a terminal would; returns hull's exit
/// code and what the test's master read. `input` is typed once hull runs.
fn on_a_terminal(env: &Env, args: &[&str], input: &[u8]) -> (i32, String) {
    let pty = openpty(
        Some(&Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut child = common::hull_command()
        .arg("--root")
        .arg(env.root())
        .args(args)
        .current_dir(env.bundle())
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave))
        .spawn()
        .unwrap();
    let mut master = File::from(pty.master);
    master.write_all(input).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let status = loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(50u16)).unwrap() > 0 {
            if let Ok(n) = master.read(&mut buf) {
                out.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hull {args:?} did not finish; output so far {:?}",
            String::from_utf8_lossy(&out)
        );
    };
    // Whatever is still buffered.
    while poll(
        &mut [PollFd::new(master.as_fd(), PollFlags::POLLIN)],
        PollTimeout::from(100u16),
    )
    .unwrap_or(0)
        > 0
    {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let after = tcgetattr(&pty.slave).unwrap();
    assert_eq!(
        (before.local_flags, before.input_flags, before.output_flags),
        (after.local_flags, after.input_flags, after.output_flags),
        "hull restores its terminal's mode"
    );
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn foreground_run_relays_its_terminal() {
    require_root!("foreground_run_relays_its_terminal");
    let env = Env::new("fgtty");
    let mut config = with_terminal(&[
        "sh",
        "-c",
        "stty size; read line; echo \"got $line\"; exit 3",
    ]);
    config["process"]
        .as_object_mut()
        .unwrap()
        .remove("consoleSize");
    env.write_config(&config);
    let (code, out) = on_a_terminal(&env, &["run", &env.id], b"hello\n");
    assert_eq!(code, 3, "the process's exit code: {out:?}");
    assert!(
        out.contains("40 120"),
        "the window size of hull's terminal: {out:?}"
    );
    assert!(out.contains("got hello"), "stdin is relayed: {out:?}");
}

#[test]
fn foreground_exec_relays_its_terminal() {
    require_root!("foreground_exec_relays_its_terminal");
    let env = Env::new("fgexec");
    env.write_config(&base_config(&["sleep", "600"]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    let (code, out) = on_a_terminal(
        &env,
        &["exec", "-t", &env.id, "sh", "-c", "tty; stty size; exit 4"],
        b"",
    );
    assert_eq!(code, 4, "{out:?}");
    assert!(
        out.contains("/dev/pts/") && out.contains("40 120"),
        "{out:?}"
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

/// `--pidfd-socket` gets a pidfd of the init (create) and of the exec'd process, in the console socket's framing.
#[test]
fn pidfd_socket_gets_the_process() {
    require_root!("pidfd_socket_gets_the_process");
    let env = Env::new("pidfd");
    env.write_config(&base_config(&["sleep", "600"]));
    let socket = ConsoleSocket::bind(env.dir.path()).unwrap();
    let path = socket.path.to_str().unwrap().to_owned();
    let pid_of = |fd: &File| {
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .map(|p| p.trim().parse::<i64>().unwrap())
            .unwrap_or_else(|| panic!("not a pidfd: {info}"))
    };
    let r = env.hull(&["create", "--pidfd-socket", &path, &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let pidfd = socket.accept_master(Duration::from_secs(5)).unwrap();
    assert_eq!(pid_of(&pidfd), env.state()["pid"].as_i64().unwrap());
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());

    let pid_file = env.dir.path().join("exec.pid");
    let r = env.hull(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--pidfd-socket",
        &path,
        &env.id,
        "sleep",
        "600",
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let pidfd = socket.accept_master(Duration::from_secs(5)).unwrap();
    let exec_pid: i64 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pid_of(&pidfd), exec_pid);
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}
