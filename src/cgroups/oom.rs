//! OOM notifications of a container's cgroup, polled without a thread. On cgroup v1 and hybrid hosts (as runc
//! there): an eventfd registered for `memory.oom_control` through `cgroup.event_control`, which the kernel signals
//! every time the cgroup runs out of memory, whether or not a process is killed. On cgroup v2: the `oom_kill`
//! counter of `memory.events` (runc watches the file with inotify and reports its changes).

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use super::stats::value_by_key;
use super::{write_file, Cgroup};
use crate::sys;

/// Where the OOM notifications of one container come from.
pub struct OomWatch {
    source: Source,
}

enum Source {
    /// The registered eventfd and the `cgroup.event_control` it was registered through.
    V1 { eventfd: OwnedFd, control: PathBuf },
    /// `memory.events` and the `oom_kill` count last seen in it.
    V2 { events: PathBuf, kills: u64 },
    /// No memory controller: nothing to report.
    Unavailable,
}

impl Cgroup {
    /// Starts watching for OOM events in the container's cgroup; only those after this call are reported.
    pub fn watch_oom(&self) -> Result<OomWatch> {
        let source = if self.is_unified() {
            let events = self.hierarchies[0].path.join("memory.events");
            match read_oom_kills(&events)? {
                Some(kills) => Source::V2 { events, kills },
                None => Source::Unavailable,
            }
        } else {
            match self.v1_hierarchy("memory") {
                Some(h) => register_v1(&h.path)?,
                None => Source::Unavailable,
            }
        };
        Ok(OomWatch { source })
    }
}

impl Cgroup {
    /// How many processes of the cgroup the OOM killer has killed so far (`oom_kill` in `memory.events` on cgroup
    /// v2, in `memory.oom_control` on v1); 0 without a memory controller.
    pub fn oom_kills(&self) -> Result<u64> {
        let file = if self.is_unified() {
            self.hierarchies[0].path.join("memory.events")
        } else {
            match self.v1_hierarchy("memory") {
                Some(h) => h.path.join("memory.oom_control"),
                None => return Ok(0),
            }
        };
        Ok(read_oom_kills(&file)?.unwrap_or_default())
    }
}

impl Cgroup {
    /// The memory limit and the peak usage of the cgroup, as the kernel shows them (v1 `memory.limit_in_bytes` and
    /// `memory.max_usage_in_bytes`, v2 `memory.max` and `memory.peak`); None where a file is missing.
    pub fn memory_limit_and_peak(&self) -> Option<(String, String)> {
        let (dir, limit, peak) = if self.is_unified() {
            (&self.hierarchies[0].path, "memory.max", "memory.peak")
        } else {
            let h = self.v1_hierarchy("memory")?;
            (
                &h.path,
                "memory.limit_in_bytes",
                "memory.max_usage_in_bytes",
            )
        };
        let read = |file: &str| {
            fs::read_to_string(dir.join(file))
                .ok()
                .map(|t| t.trim().to_owned())
        };
        Some((read(limit)?, read(peak)?))
    }
}

impl OomWatch {
    /// How many OOM events happened since the last call (or since the watch began).
    pub fn poll(&mut self) -> Result<u64> {
        match &mut self.source {
            Source::V1 { eventfd, control } => {
                let mut count = [0u8; 8];
                match nix::unistd::read(&*eventfd, &mut count) {
                    Ok(8) => {}
                    Ok(n) => bail!("read oom eventfd: short read of {n} bytes"),
                    Err(Errno::EAGAIN) => return Ok(0),
                    Err(err) => return Err(err).context("read oom eventfd"),
                }
                // The kernel signals the eventfd once more when the cgroup is removed; that is no OOM.
                if !control.exists() {
                    return Ok(0);
                }
                Ok(u64::from_ne_bytes(count))
            }
            Source::V2 { events, kills } => {
                let now = read_oom_kills(events)?.unwrap_or_default();
                let new = now.saturating_sub(*kills);
                *kills = now.max(*kills);
                Ok(new)
            }
            Source::Unavailable => Ok(0),
        }
    }
}

/// Registers an eventfd for the OOM notifications of the v1 memory cgroup `dir`; a missing cgroup has none.
fn register_v1(dir: &Path) -> Result<Source> {
    let oom_control = dir.join("memory.oom_control");
    let file = match File::open(&oom_control) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Source::Unavailable),
        Err(err) => return Err(err).with_context(|| format!("open {}", oom_control.display())),
    };
    let eventfd = sys::eventfd_nonblocking().context("eventfd for oom notifications")?;
    let control = dir.join("cgroup.event_control");
    write_file(
        &control,
        &format!("{} {}", eventfd.as_raw_fd(), file.as_raw_fd()),
    )?;
    Ok(Source::V1 { eventfd, control })
}

/// The `oom_kill` count of a cgroup v2 `memory.events` or v1 `memory.oom_control`; `None` when the file is missing.
fn read_oom_kills(path: &Path) -> Result<Option<u64>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("read {}", path.display())),
    };
    value_by_key(&text, "oom_kill")
        .map(Some)
        .with_context(|| format!("parse {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Hierarchy;

    fn cgroup(path: &Path, v2: bool, controllers: &[&str]) -> Cgroup {
        Cgroup {
            hierarchies: vec![Hierarchy {
                mountpoint: path.parent().unwrap().to_path_buf(),
                controllers: controllers.iter().map(|c| c.to_string()).collect(),
                v2,
                path: path.to_path_buf(),
            }],
            created: Vec::new(),
            systemd: None,
        }
    }

    #[test]
    fn v2_counts_new_oom_kills_only() {
        let tmp = tempfile::tempdir().unwrap();
        let events = tmp.path().join("memory.events");
        let write = |kills: u64| {
            fs::write(
                &events,
                format!("low 0\nhigh 0\nmax 9\noom 3\noom_kill {kills}\noom_group_kill 0\n"),
            )
            .unwrap()
        };
        write(2);
        let mut watch = cgroup(tmp.path(), true, &[]).watch_oom().unwrap();
        assert_eq!(watch.poll().unwrap(), 0);
        write(3);
        assert_eq!(watch.poll().unwrap(), 1);
        assert_eq!(watch.poll().unwrap(), 0);
        write(5);
        assert_eq!(watch.poll().unwrap(), 2);
        fs::remove_file(&events).unwrap();
        assert_eq!(watch.poll().unwrap(), 0);
        fs::write(&events, "oom_kill x\n").unwrap();
        assert_eq!(
            format!("{:#}", watch.poll().unwrap_err()),
            format!("parse {}: invalid number \"x\"", events.display())
        );
    }

    #[test]
    fn without_memory_controller_nothing_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        for cg in [
            cgroup(tmp.path(), true, &[]),
            cgroup(tmp.path(), false, &["memory"]),
            cgroup(tmp.path(), false, &["pids"]),
        ] {
            assert_eq!(cg.watch_oom().unwrap().poll().unwrap(), 0);
        }
    }
}
