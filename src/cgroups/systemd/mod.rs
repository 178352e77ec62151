//! The systemd cgroup driver (runc's `--systemd-cgroup`, opencontainers/cgroups `systemd/`): `linux.cgroupsPath` as
//! `slice:prefix:name`, the transient unit that gives, where systemd puts it in the cgroup2 tree, and the unit's
//! life through systemd's D-Bus API: `StartTransientUnit` with the container's init as its process and
//! `Delegate=yes`, `StopUnit` at delete, each waited for through its job's `JobRemoved` signal. The limits are
//! written to the unit's cgroup files by hull, as runc's manager writes what it has no property for.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::dbus::{self, Connection, MethodError, Value};

mod properties;
pub use properties::{annotation_properties, resource_properties, systemd_quota, Property};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a unit job may take (runc waits 30 s).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Settle the driver from the global `--systemd-cgroup` flag, once, before any command runs.
pub fn init(enabled: bool) {
    let _ = ENABLED.set(enabled);
}

/// Whether `create` makes the container's cgroup through systemd.
pub fn enabled() -> bool {
    ENABLED.get().copied().unwrap_or(false)
}

/// The systemd instance that owns a container's unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bus {
    /// PID 1, on the system bus.
    System,
    /// A user's `systemd --user`, on `$XDG_RUNTIME_DIR/bus`, as that user (`uid` on the host).
    User { uid: u32, runtime_dir: PathBuf },
}

/// A container's systemd unit: its name and who owns it. Stored in state.json with the cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub name: UnitName,
    pub bus: Bus,
}

impl Bus {
    /// The system bus for root; for a rootless hull (also uid 0 in a user namespace, as rootless podman runs it)
    /// the user's bus at `$XDG_RUNTIME_DIR/bus`, authenticating as the host uid the namespace maps uid 0 to.
    pub fn for_this_process(rootless: bool) -> Result<Bus> {
        if !rootless {
            return Ok(Bus::System);
        }
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .context("the systemd cgroup driver of a rootless container needs XDG_RUNTIME_DIR (the user's bus)")?;
        let euid = nix::unistd::geteuid().as_raw();
        let uid_map =
            std::fs::read_to_string("/proc/self/uid_map").context("read /proc/self/uid_map")?;
        Ok(Bus::User {
            uid: host_uid(&uid_map, euid).unwrap_or(euid),
            runtime_dir,
        })
    }

    fn connect(&self) -> Result<Connection> {
        match self {
            Bus::System => Connection::connect(&dbus::system_bus_path(), 0),
            Bus::User { uid, runtime_dir } => {
                Connection::connect(&dbus::user_bus_path(runtime_dir), *uid)
            }
        }
    }
}

/// The host uid that `uid` of this process's user namespace maps to (`/proc/self/uid_map` text).
fn host_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let mut fields = line.split_whitespace().map(|f| f.parse::<u32>().ok());
        let (inside, outside, count) = (fields.next()??, fields.next()??, fields.next()??);
        (uid >= inside && uid - inside < count).then(|| outside + (uid - inside))
    })
}

/// A connection to the unit's systemd manager.
pub struct Manager {
    conn: Connection,
}

impl Manager {
    pub fn connect(bus: &Bus) -> Result<Manager> {
        Ok(Manager {
            conn: bus.connect()?,
        })
    }

    /// Ask the bus for systemd's JobRemoved signals, before a call that makes a job (see [`Manager::wait_job`]).
    fn watch_jobs(&mut self) -> Result<()> {
        self.conn.add_match(&format!(
            "type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}',member='JobRemoved'"
        ))
    }

    /// The manager's own cgroup (`/` for PID 1, `.../user@UID.service` for a user instance): units' cgroups are
    /// below it.
    pub fn control_group(&mut self) -> Result<String> {
        let reply = self.conn.call(
            SYSTEMD,
            MANAGER_PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[
                Value::Str(MANAGER.into()),
                Value::Str("ControlGroup".into()),
            ],
        )?;
        match reply.first() {
            Some(Value::Variant(value)) => value
                .as_str()
                .map(str::to_owned)
                .context("systemd's ControlGroup is not a string"),
            other => bail!("systemd's ControlGroup: unexpected reply {other:?}"),
        }
    }

    /// Make `unit` with `pid` in it (a scope; a slice gets no process) and wait until systemd has: its job must end
    /// `done`. A failed unit of the same name left from before is reset and the start tried once more, as runc does.
    pub fn start(
        &mut self,
        unit: &UnitName,
        pid: u32,
        description: &str,
        extra: Vec<Property>,
    ) -> Result<()> {
        let mut properties: Vec<(&str, Value)> =
            vec![("Description", Value::Str(description.into()))];
        if unit.is_slice() {
            properties.push(("Wants", Value::Str(unit.slice.clone())));
        } else {
            properties.push(("Slice", Value::Str(unit.slice.clone())));
            properties.push(("Delegate", Value::Bool(true)));
            properties.push(("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])));
            // A scope that fails (its process gone before systemd started it: a create killed while asking for it)
            // is collected by systemd rather than left loaded until someone resets it.
            properties.push(("CollectMode", Value::Str("inactive-or-failed".into())));
        }
        for accounting in [
            "MemoryAccounting",
            "CPUAccounting",
            "IOAccounting",
            "TasksAccounting",
        ] {
            properties.push((accounting, Value::Bool(true)));
        }
        properties.push(("DefaultDependencies", Value::Bool(false)));
        properties.extend(
            extra
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone())),
        );
        let args = [
            Value::Str(unit.unit.clone()),
            Value::Str("replace".into()),
            Value::properties(properties),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ];
        self.watch_jobs()?;
        let job = match self.manager_call("StartTransientUnit", &args) {
            Err(err) if is_error(&err, "org.freedesktop.systemd1.UnitExists") => {
                let _ = self.manager_call("ResetFailedUnit", &[Value::Str(unit.unit.clone())]);
                self.manager_call("StartTransientUnit", &args)
            }
            other => other,
        }
        .with_context(|| format!("unable to start unit {:?}", unit.unit))?;
        let result = self.wait_job(&job)?;
        if result != "done" {
            let _ = self.manager_call("ResetFailedUnit", &[Value::Str(unit.unit.clone())]);
            bail!(
                "error creating systemd unit `{}`: got `{result}`",
                unit.unit
            );
        }
        Ok(())
    }

    /// Stop `unit` and wait until it is gone; a unit that does not exist is gone already. A failed unit is reset so
    /// that systemd forgets it.
    pub fn stop(&mut self, unit: &UnitName) -> Result<()> {
        self.watch_jobs()?;
        let name = Value::Str(unit.unit.clone());
        match self.manager_call("StopUnit", &[name, Value::Str("replace".into())]) {
            Ok(job) => {
                let result = self.wait_job(&job)?;
                if result != "done" {
                    crate::logger::log(
                        crate::logger::Level::Warning,
                        &format!(
                            "error removing unit `{}`: got `{result}`. Continuing...",
                            unit.unit
                        ),
                    );
                }
            }
            Err(err) if is_error(&err, "org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(err) => return Err(err.context(format!("unable to stop unit {:?}", unit.unit))),
        }
        self.forget(unit);
        Ok(())
    }

    /// Have systemd forget `unit` once it is inactive: a failed unit stays loaded until reset. A unit that does not
    /// exist is forgotten already.
    pub fn forget(&mut self, unit: &UnitName) {
        let _ = self.manager_call("ResetFailedUnit", &[Value::Str(unit.unit.clone())]);
    }

    /// Change the unit's properties for good (`update`), before hull writes the cgroup files.
    pub fn set_properties(&mut self, unit: &UnitName, properties: Vec<Property>) -> Result<()> {
        if properties.is_empty() {
            return Ok(());
        }
        let args = [
            Value::Str(unit.unit.clone()),
            Value::Bool(true),
            Value::properties(properties),
        ];
        self.conn
            .call(SYSTEMD, MANAGER_PATH, MANAGER, "SetUnitProperties", &args)
            .with_context(|| format!("unable to set the properties of unit {:?}", unit.unit))?;
        Ok(())
    }

    /// A Manager method whose reply is a job (an object path); the path.
    fn manager_call(&mut self, member: &str, args: &[Value]) -> Result<String> {
        let reply = self
            .conn
            .call(SYSTEMD, MANAGER_PATH, MANAGER, member, args)?;
        Ok(reply
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// The result of job `path` (`done`, `failed`, `canceled`, ...) from its `JobRemoved` signal (`uoss`: id, job,
    /// unit, result).
    fn wait_job(&mut self, path: &str) -> Result<String> {
        let removed = self.conn.wait_signal(
            MANAGER,
            "JobRemoved",
            |args| args.get(1).and_then(Value::as_str) == Some(path),
            JOB_TIMEOUT,
        )?;
        Ok(removed
            .get(3)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }
}

/// Whether `err` is the D-Bus error `name`.
fn is_error(err: &anyhow::Error, name: &str) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<MethodError>()
            .is_some_and(|e| e.name == name)
    })
}

/// The transient unit systemd makes for a container, and the slice it goes in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitName {
    /// `<prefix>-<name>.scope`, or `<name>` when the name is a slice (runc makes a slice then, not a scope).
    pub unit: String,
    /// The parent slice: `Slice=` of a scope, `Wants=` of a slice.
    pub slice: String,
}

impl UnitName {
    /// runc's reading of `linux.cgroupsPath` for the systemd driver: empty means `<default slice>:runc:<id>`; else
    /// exactly three `:`-separated fields, `slice:prefix:name`, where an empty slice is the default one
    /// (`system.slice`, or `user.slice` for a rootless container) and hull's prefix stands where runc's
    /// `runc` would.
    pub fn parse(cgroups_path: Option<&str>, id: &str, rootless: bool) -> Result<UnitName> {
        let default_slice = if rootless {
            "user.slice"
        } else {
            "system.slice"
        };
        let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
            None => (default_slice, "hull", id),
            Some(path) => match path.split(':').collect::<Vec<_>>().as_slice() {
                [slice, prefix, name] => (*slice, *prefix, *name),
                _ => bail!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {path:?} instead"
                ),
            },
        };
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        expand_slice(slice)?;
        let unit = if name.ends_with(".slice") {
            expand_slice(name)?;
            name.to_owned()
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(UnitName {
            unit,
            slice: slice.to_owned(),
        })
    }

    /// Whether the unit is a slice (the container's processes then go directly into it).
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }

    /// The unit's cgroup relative to the manager's own cgroup (`/` for the system manager; the user manager's
    /// `user@UID.service` cgroup for a user instance): `/a.slice/a-b.slice/<unit>`.
    pub fn relative_cgroup(&self) -> Result<String> {
        if self.is_slice() {
            return expand_slice(&self.unit);
        }
        let parent = expand_slice(&self.slice)?;
        Ok(format!("{}/{}", parent.trim_end_matches('/'), self.unit))
    }
}

/// A slice's cgroup path: systemd nests slices by their dashes, so `a-b-c.slice` is
/// `/a.slice/a-b.slice/a-b-c.slice` and `-.slice` is the root. Names that systemd refuses (no `.slice` suffix, a
/// `/`, an empty component) are errors.
pub fn expand_slice(slice: &str) -> Result<String> {
    let invalid = || anyhow::anyhow!("invalid slice name: {slice}");
    let stem = slice.strip_suffix(".slice").ok_or_else(invalid)?;
    if stem.is_empty() || slice.contains('/') {
        return Err(invalid());
    }
    if stem == "-" {
        return Ok("/".to_owned());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err(invalid());
        }
        path.push_str(&format!("/{prefix}{component}.slice"));
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_uid_is_the_host_uid_of_the_namespace() {
        assert_eq!(
            host_uid(
                "         0       1000          1\n         1     100000      65536\n",
                0
            ),
            Some(1000)
        );
        assert_eq!(
            host_uid(
                "         0       1000          1\n         1     100000      65536\n",
                5
            ),
            Some(100004)
        );
        assert_eq!(host_uid("         0          0 4294967295\n", 0), Some(0));
        assert_eq!(host_uid("         0       1000          1\n", 7), None);
    }

    #[test]
    fn slices_expand_by_their_dashes() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("kubepods-burstable-pod1.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            ".slice",
            "a",
            "a/b.slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
        ] {
            assert_eq!(
                expand_slice(bad).unwrap_err().to_string(),
                format!("invalid slice name: {bad}")
            );
        }
    }

    #[test]
    fn cgroups_path_gives_the_engines_units() {
        let unit = |path: Option<&str>, rootless| UnitName::parse(path, "c1", rootless).unwrap();
        let podman = unit(Some("machine.slice:libpod:abc"), false);
        assert_eq!(podman.unit, "libpod-abc.scope");
        assert_eq!(podman.slice, "machine.slice");
        assert_eq!(
            podman.relative_cgroup().unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        let docker = unit(Some("system.slice:docker:abc"), false);
        assert_eq!(
            docker.relative_cgroup().unwrap(),
            "/system.slice/docker-abc.scope"
        );
        let kubelet = unit(
            Some("kubepods-burstable-pod1.slice:cri-containerd:abc"),
            false,
        );
        assert_eq!(
            kubelet.relative_cgroup().unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
        );
        let rootless_podman = unit(Some("user.slice:libpod:abc"), true);
        assert_eq!(
            rootless_podman.relative_cgroup().unwrap(),
            "/user.slice/libpod-abc.scope"
        );
    }

    #[test]
    fn defaults_and_slices_as_runc_has_them() {
        let unit = |path: Option<&str>, rootless| UnitName::parse(path, "c1", rootless).unwrap();
        assert_eq!(
            unit(None, false),
            UnitName {
                unit: "hull-c1.scope".into(),
                slice: "system.slice".into()
            }
        );
        assert_eq!(unit(Some(""), true).slice, "user.slice");
        assert_eq!(unit(Some(":p:n"), false).slice, "system.slice");
        let slice = unit(Some("system.slice:ignored:my-app.slice"), false);
        assert!(slice.is_slice());
        assert_eq!(slice.unit, "my-app.slice");
        assert_eq!(slice.relative_cgroup().unwrap(), "/my.slice/my-app.slice");
        assert_eq!(
            UnitName::parse(Some("/hull/c1"), "c1", false)
                .unwrap_err()
                .to_string(),
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"/hull/c1\" instead"
        );
        assert_eq!(
            UnitName::parse(Some("bad:p:n"), "c1", false)
                .unwrap_err()
                .to_string(),
            "invalid slice name: bad"
        );
    }
}
