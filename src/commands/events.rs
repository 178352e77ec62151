//! `events [--stats] [--interval DURATION] <id>` (runc `events.go`): the container's cgroup statistics as JSON
//! events, one per line. `--stats` prints one `{"type":"stats","id":..,"data":{..}}` and exits. Otherwise a stats
//! event follows every interval (the first after one interval, as with Go's ticker), and an `{"type":"oom","id":..}`
//! event for each OOM notification of the container's cgroup (see `cgroups::oom`), until no process is left in it
//! (runc's end on cgroup v2; on v1 runc goes on until the cgroup is deleted). One poll loop, checking every 100 ms.

use std::io::Write;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::cgroups::Stats;
use crate::cli::{check_args, Arity, EventsArgs};
use crate::container::Container;
use crate::goduration;
use crate::logger::{self, Level};
use crate::resctrl;
use crate::state::{Root, Status};

/// The longest wait between two checks for an OOM kill or the end of the container.
const POLL: Duration = Duration::from_millis(100);

/// One line of output (runc `types.Event`).
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

pub fn run(root: &Root, args: &EventsArgs) -> Result<i32> {
    let interval = goduration::parse(&args.interval).map_err(|_| {
        anyhow!(
            "invalid value {:?} for flag -interval: parse error",
            args.interval
        )
    })?;
    check_args("events", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let Some(interval) = u64::try_from(interval).ok().filter(|&ns| ns > 0) else {
        bail!("duration interval must be greater than 0");
    };
    if container.status() == Status::Stopped {
        bail!("container with id {} is not running", container.id());
    }
    let mut out = std::io::stdout().lock();
    if args.stats {
        let stats = stats(&container)?;
        emit(&mut out, "stats", container.id(), Some(&stats))?;
        return Ok(0);
    }
    watch(&container, Duration::from_nanos(interval), &mut out)?;
    Ok(0)
}

/// The container's cgroup statistics, and its resctrl group's (runc's `Container.Stats`).
fn stats(container: &Container) -> Result<Stats> {
    let mut stats = container
        .state
        .cgroup
        .stats()
        .context("unable to get container cgroup stats")?;
    if let Some(rdt) = &container.state.intel_rdt {
        let host = resctrl::host::Host::detect()
            .context("unable to get container Intel RDT stats: Intel RDT is not enabled")?;
        stats.intel_rdt = rdt.group.stats(&host)?;
    }
    Ok(stats)
}

/// The streaming mode. A failed stats read is logged and the loop goes on, as in runc.
fn watch(container: &Container, interval: Duration, out: &mut impl Write) -> Result<()> {
    let (cgroup, id) = (&container.state.cgroup, container.id());
    let mut oom = cgroup.watch_oom()?;
    let mut next_stats = Instant::now() + interval;
    loop {
        // Emptiness first: an OOM kill that ends the container is still reported.
        let ended = cgroup.pids()?.is_empty();
        for _ in 0..oom.poll()? {
            emit(out, "oom", id, None)?;
        }
        if ended {
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_stats {
            match stats(container) {
                Ok(stats) => emit(out, "stats", id, Some(&stats))?,
                Err(err) => logger::log(Level::Error, &logger::error_chain_text(&err)),
            }
            next_stats += interval;
            if next_stats <= now {
                next_stats = now + interval;
            }
        }
        sleep(POLL.min(next_stats.saturating_duration_since(Instant::now())));
    }
}

/// Writes one event as compact JSON and a newline (Go's `json.Encoder`), flushed at once for readers of a pipe.
fn emit(out: &mut impl Write, kind: &'static str, id: &str, data: Option<&Stats>) -> Result<()> {
    let mut line = serde_json::to_vec(&Event { kind, id, data }).context("encode event")?;
    line.push(b'\n');
    out.write_all(&line)
        .and_then(|()| out.flush())
        .context("write event")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_runc_json_lines() {
        let mut out = Vec::new();
        emit(&mut out, "oom", "c1", None).unwrap();
        emit(&mut out, "stats", "c1", Some(&Stats::default())).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"type":"oom","id":"c1"}"#);
        assert!(
            lines[1].starts_with(r#"{"type":"stats","id":"c1","data":{"cpu":{},"cpuset":"#),
            "{}",
            lines[1]
        );
        assert!(text.ends_with("\"network_interfaces\":null}}\n"));
    }
}
