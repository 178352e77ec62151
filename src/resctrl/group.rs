//! The container's resctrl group on the host: made, written, joined and removed as runc's `intelrdt.Manager` does.
//! The paths and texts come from `plan`; this module only performs them.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

use super::host::Host;
use super::plan;
use super::stats::{self, Stats};
use crate::logger::error_chain_text;
use crate::signal::go_quote;

/// The resctrl groups of one container, kept in its state (runc's `intel_rdt_path`/`intel_rdt_mon_path`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The resctrl mount the group lives in (for `info/last_cmd_status`).
    root: PathBuf,
    /// The control group directory.
    path: PathBuf,
    /// The container's own monitoring group, with `enableMonitoring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monitoring_path: Option<PathBuf>,
    /// hull made `path` (it did not exist before `apply`).
    #[serde(default)]
    created: bool,
    /// `path` was named by `closID`: managed by someone else and never removed.
    #[serde(default)]
    shared: bool,
}

impl Group {
    /// The groups the config places the container in, not yet made: `<root>/<closID or id>` and, with
    /// `enableMonitoring`, its `mon_groups/<id>`.
    pub fn new(host: &Host, rdt: &LinuxIntelRdt, container_id: &str) -> Group {
        let path = plan::group_path(host.root(), rdt, container_id);
        Group {
            root: host.root().to_path_buf(),
            monitoring_path: plan::monitoring_path(&path, rdt, container_id),
            path,
            created: false,
            shared: plan::names_shared_group(rdt),
        }
    }

    /// Before the init exists: record that `apply` will make the control group (no closID names it and it does not
    /// exist yet), so that the record `create` saves first lets `delete` remove it after a `create` killed half-way.
    pub fn expect_made(&mut self) {
        self.created = !self.shared && !self.path.exists();
    }

    #[cfg(test)]
    /// The control group directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    /// The container's monitoring group, if it has one.
    pub fn monitoring_path(&self) -> Option<&Path> {
        self.monitoring_path.as_deref()
    }

    #[cfg(test)]
    /// Whether hull made the control group directory (an existing one is joined, not recreated).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Makes the groups and moves the init (`pid`) into them (runc's `Apply`): a closID group with nothing to write
    /// must already exist; the control group is made unless it exists; the pid joins it; the monitoring group is
    /// made unless it exists and the pid joins it too. On failure, call `destroy` (runc's failed-start cleanup):
    /// what was made is recorded even when a later step fails.
    pub fn apply(&mut self, rdt: &LinuxIntelRdt, pid: i32) -> Result<()> {
        self.make_groups(rdt, pid)
            .context("unable to apply Intel RDT configuration")
    }

    fn make_groups(&mut self, rdt: &LinuxIntelRdt, pid: i32) -> Result<()> {
        if plan::group_must_exist(rdt) {
            fs::metadata(&self.path)
                .with_context(|| format!("stat {}", self.path.display()))
                .context(
                    "clos dir not accessible (must be pre-created when schemata, l3CacheSchema and \
                     memBwSchema are empty)",
                )?;
        }
        self.created = self.make_dir(&self.path)?;
        // runc reports the status twice here: once where the pid is written, once again around that error.
        self.join(&self.path, pid)
            .map_err(|e| self.with_last_cmd_status(e))?;
        if let Some(monitoring) = &self.monitoring_path {
            self.make_dir(monitoring)?;
            self.join(monitoring, pid)
                .map_err(|e| self.with_last_cmd_status(e))?;
        }
        Ok(())
    }

    /// Writes the config's schemas to the control group's `schemata` (runc's `Set`; see `plan::schemata_text`).
    /// Nothing is written when the config has none. runc wraps this error in "error setting Intel RDT config for
    /// procHooks process" at create, and in nothing at `update`.
    pub fn set(&self, rdt: &LinuxIntelRdt) -> Result<()> {
        let Some(text) = plan::schemata_text(rdt) else {
            return Ok(());
        };
        write_file(&self.path.join("schemata"), &text).map_err(|e| {
            self.with_last_cmd_status(
                e.context(format!("intelrdt: unable to write {}", go_quote(&text))),
            )
        })
    }

    /// Moves an exec'd process into the control group (runc's `setnsProcess.start`), when the directory still
    /// exists. Only the control group: runc does not put exec'd processes in the monitoring group.
    pub fn add(&self, pid: i32) -> Result<()> {
        if fs::metadata(&self.path).is_err() {
            return Ok(());
        }
        self.join(&self.path, pid)
            .with_context(|| format!("error adding pid {pid} to Intel RDT"))
    }

    /// Removes what the container owns (runc's `Destroy`): the control group when hull made it and no closID named
    /// it (the kernel drops its monitoring groups with it), else only the container's monitoring group. A directory
    /// already gone is fine.
    pub fn destroy(&self) -> Result<()> {
        let owned = if self.created && !self.shared {
            Some(self.path.as_path())
        } else {
            self.monitoring_path.as_deref()
        };
        let Some(dir) = owned else {
            return Ok(());
        };
        match fs::remove_dir(dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e)
                .with_context(|| format!("remove {}", dir.display()))
                .context("unable to remove container's IntelRDT group"),
            _ => Ok(()),
        }
    }

    /// The `intel_rdt` part of `events --stats` (runc's `GetStats`; see `stats::read`).
    pub fn stats(&self, host: &Host) -> Result<Stats> {
        let monitoring = self.monitoring_path.as_deref().unwrap_or(&self.path);
        stats::read(host, &self.path, monitoring).context("unable to get container Intel RDT stats")
    }

    /// Makes a group directory; false when it already existed.
    fn make_dir(&self, dir: &Path) -> Result<bool> {
        match DirBuilder::new().mode(0o755).create(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => {
                Err(self
                    .with_last_cmd_status(anyhow!(e).context(format!("mkdir {}", dir.display()))))
            }
        }
    }

    /// Writes `pid` to a group's `tasks` (runc's `WriteIntelRdtTasks`).
    fn join(&self, dir: &Path, pid: i32) -> Result<()> {
        write_file(&dir.join("tasks"), &pid.to_string()).map_err(|e| {
            self.with_last_cmd_status(e.context(format!("intelrdt: unable to add pid {pid}")))
        })
    }

    /// runc's `newLastCmdError`: the kernel's explanation of the last failed resctrl write, from
    /// `info/last_cmd_status`, appended to the error when it can be read.
    fn with_last_cmd_status(&self, err: anyhow::Error) -> anyhow::Error {
        match read_trimmed(&self.root.join("info/last_cmd_status")) {
            Ok(status) => anyhow!("{}, last_cmd_status: {status}", error_chain_text(&err)),
            Err(_) => err,
        }
    }
}

/// Go's `os.WriteFile(path, text, 0o600)`, with its "open"/"write" error texts.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// A resctrl file's contents without surrounding whitespace.
pub(super) fn read_trimmed(path: &Path) -> Result<String> {
    let mut text = String::new();
    File::open(path)
        .with_context(|| format!("open {}", path.display()))?
        .read_to_string(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        text = trimmed.to_owned();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resctrl::fake::FakeResctrl;
    use crate::resctrl::plan::tests::rdt;

    const ID: &str = "abcd-1234";

    fn applied(fake: &FakeResctrl, json: &str) -> Result<Group> {
        let config = rdt(json);
        let mut group = Group::new(&fake.host(), &config, ID);
        group.apply(&config, 1234)?;
        group.set(&config)?;
        Ok(group)
    }

    fn chain(err: &anyhow::Error) -> String {
        error_chain_text(err)
    }

    #[test]
    fn the_container_group_is_made_joined_and_written() {
        let fake = FakeResctrl::new().with_cat().with_mba();
        let group = applied(
            &fake,
            r#"{"l3CacheSchema":"L3:0=f0;1=f","memBwSchema":"MB:0=70;1=20"}"#,
        )
        .unwrap();
        assert_eq!(group.path(), fake.root().join(ID));
        assert!(group.created());
        assert_eq!(group.monitoring_path(), None);
        assert_eq!(fake.read(&format!("{ID}/tasks")), "1234");
        assert_eq!(
            fake.read(&format!("{ID}/schemata")),
            "L3:0=f0;1=f\nMB:0=70;1=20\n"
        );
    }

    #[test]
    fn the_record_saved_before_the_init_expects_only_a_new_unnamed_group_to_be_made() {
        let fake = FakeResctrl::new();
        let expected = |json: &str| {
            let mut group = Group::new(&fake.host(), &rdt(json), ID);
            group.expect_made();
            group.created()
        };
        assert!(expected("{}"));
        assert!(!expected(r#"{"closID":"shared"}"#));
        fs::create_dir(fake.root().join(ID)).unwrap();
        assert!(!expected("{}"), "an existing group is joined, not made");
    }

    #[test]
    fn a_group_without_schemas_gets_no_schemata_write() {
        let fake = FakeResctrl::new();
        let group = applied(&fake, "{}").unwrap();
        assert!(group.created());
        assert!(!fake.exists(&format!("{ID}/schemata")));
    }

    #[test]
    fn a_missing_clos_without_schemas_is_an_error_and_not_made() {
        let fake = FakeResctrl::new();
        let err = applied(&fake, r#"{"closID":"non-existing-clos"}"#).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "unable to apply Intel RDT configuration: clos dir not accessible (must be pre-created when \
                 schemata, l3CacheSchema and memBwSchema are empty): stat {}: No such file or directory",
                fake.root().join("non-existing-clos").display()
            )
        );
        assert!(!fake.exists("non-existing-clos"));
    }

    #[test]
    fn a_clos_with_schemas_is_made_but_never_removed() {
        let fake = FakeResctrl::new().with_cat();
        let group = applied(
            &fake,
            r#"{"closID":"clos-to-be-created","l3CacheSchema":"L3:0=f"}"#,
        )
        .unwrap();
        assert!(group.created());
        assert_eq!(fake.read("clos-to-be-created/tasks"), "1234");
        fake.clear_group("clos-to-be-created");
        group.destroy().unwrap();
        assert!(fake.exists("clos-to-be-created"));
    }

    #[test]
    fn an_existing_clos_is_joined_and_its_schemata_overwritten() {
        let fake = FakeResctrl::new().with_cat();
        fake.write("gold/schemata", "L3:0=ff;1=ff\n");
        fake.write("gold/tasks", "77\n");
        let group = applied(&fake, r#"{"closID":"gold","schemata":["L3:0=3;1=3"]}"#).unwrap();
        assert!(!group.created());
        assert_eq!(fake.read("gold/tasks"), "1234");
        assert_eq!(fake.read("gold/schemata"), "L3:0=3;1=3\n");
        group.destroy().unwrap();
        assert!(fake.exists("gold/schemata"));
    }

    #[test]
    fn an_existing_clos_without_schemas_is_joined_untouched() {
        let fake = FakeResctrl::new();
        fake.write("gold/schemata", "L3:0=ff\n");
        let group = applied(&fake, r#"{"closID":"gold"}"#).unwrap();
        assert!(!group.created());
        assert_eq!(fake.read("gold/schemata"), "L3:0=ff\n");
        assert_eq!(fake.read("gold/tasks"), "1234");
    }

    #[test]
    fn the_root_clos_is_joined_and_kept() {
        let fake = FakeResctrl::new();
        let group = applied(&fake, r#"{"closID":"/","enableMonitoring":true}"#).unwrap();
        assert_eq!(group.path(), fake.root());
        assert!(!group.created());
        assert_eq!(fake.read("tasks"), "1234");
        assert_eq!(fake.read(&format!("mon_groups/{ID}/tasks")), "1234");
        fake.clear_group(&format!("mon_groups/{ID}"));
        group.destroy().unwrap();
        assert!(fake.exists("schemata"));
        assert!(!fake.exists(&format!("mon_groups/{ID}")));
    }

    #[test]
    fn monitoring_makes_and_joins_a_group_per_container() {
        let fake = FakeResctrl::new();
        fs::create_dir_all(fake.root().join(ID).join("mon_groups")).unwrap();
        let group = applied(&fake, r#"{"enableMonitoring":true}"#).unwrap();
        let mon = fake.root().join(ID).join("mon_groups").join(ID);
        assert_eq!(group.monitoring_path(), Some(mon.as_path()));
        assert!(!group.created());
        assert_eq!(fake.read(&format!("{ID}/tasks")), "1234");
        assert_eq!(fake.read(&format!("{ID}/mon_groups/{ID}/tasks")), "1234");
    }

    #[test]
    fn a_failed_monitoring_group_reports_the_last_command_status_and_keeps_what_was_made() {
        let fake = FakeResctrl::new();
        fake.write("info/last_cmd_status", "Unknown or unsupported resource\n");
        let config = rdt(r#"{"enableMonitoring":true}"#);
        let mut group = Group::new(&fake.host(), &config, ID);
        let err = group.apply(&config, 1234).unwrap_err();
        let mon = fake.root().join(ID).join("mon_groups").join(ID);
        assert_eq!(
            chain(&err),
            format!(
                "unable to apply Intel RDT configuration: mkdir {}: No such file or directory, \
                 last_cmd_status: Unknown or unsupported resource",
                mon.display()
            )
        );
        assert!(group.created(), "what was made is recorded for the cleanup");
        fake.clear_group(ID);
        group.destroy().unwrap();
        assert!(!fake.exists(ID));
    }

    #[test]
    fn a_failed_tasks_write_reports_the_status_twice_as_runc_does() {
        let fake = FakeResctrl::new();
        fake.write("info/last_cmd_status", "Invalid pid");
        fs::create_dir_all(fake.root().join(ID).join("tasks")).unwrap();
        let config = rdt("{}");
        let mut group = Group::new(&fake.host(), &config, ID);
        let err = group.apply(&config, 42).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "unable to apply Intel RDT configuration: intelrdt: unable to add pid 42: open {}: Is a \
                 directory, last_cmd_status: Invalid pid, last_cmd_status: Invalid pid",
                fake.root().join(ID).join("tasks").display()
            )
        );
    }

    #[test]
    fn a_failed_schemata_write_quotes_the_text() {
        let fake = FakeResctrl::new().with_cat();
        fs::create_dir_all(fake.root().join("gold/schemata")).unwrap();
        let err = applied(&fake, r#"{"closID":"gold","l3CacheSchema":"L3:0=f"}"#).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "intelrdt: unable to write \"L3:0=f\\n\": open {}: Is a directory, last_cmd_status: ok",
                fake.root().join("gold/schemata").display()
            )
        );
    }

    #[test]
    fn without_last_cmd_status_the_error_is_plain() {
        let fake = FakeResctrl::new();
        fs::remove_file(fake.root().join("info/last_cmd_status")).unwrap();
        fs::create_dir_all(fake.root().join("gold/schemata")).unwrap();
        let config = rdt(r#"{"closID":"gold","schemata":["L2:0=1"]}"#);
        let err = Group::new(&fake.host(), &config, ID)
            .set(&config)
            .unwrap_err();
        assert!(chain(&err).ends_with(": Is a directory"), "{}", chain(&err));
    }

    #[test]
    fn update_rewrites_the_schemata_with_new_schemas() {
        let fake = FakeResctrl::new().with_cat().with_mba();
        let config = rdt(r#"{"l3CacheSchema":"L3:0=f","schemata":["L2:0=1"]}"#);
        let group = applied(&fake, &serde_json::to_string(&config).unwrap()).unwrap();
        let host = fake.host();
        let updated = plan::update(Some(&config), Some(&host), Some("L3:0=3"), Some("MB:0=30"))
            .unwrap()
            .unwrap();
        group.set(&updated).unwrap();
        assert_eq!(
            fake.read(&format!("{ID}/schemata")),
            "L3:0=3\nMB:0=30\nL2:0=1\n"
        );
    }

    #[test]
    fn exec_joins_only_the_control_group() {
        let fake = FakeResctrl::new();
        fs::create_dir_all(fake.root().join(ID).join("mon_groups")).unwrap();
        let group = applied(&fake, r#"{"enableMonitoring":true}"#).unwrap();
        group.add(99).unwrap();
        assert_eq!(fake.read(&format!("{ID}/tasks")), "99");
        assert_eq!(fake.read(&format!("{ID}/mon_groups/{ID}/tasks")), "1234");
    }

    #[test]
    fn exec_into_a_vanished_group_is_skipped_and_a_failed_join_is_wrapped() {
        let fake = FakeResctrl::new();
        let group = applied(&fake, "{}").unwrap();
        fs::remove_file(fake.root().join(ID).join("tasks")).unwrap();
        fs::create_dir(fake.root().join(ID).join("tasks")).unwrap();
        let err = group.add(7).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "error adding pid 7 to Intel RDT: intelrdt: unable to add pid 7: open {}: Is a directory, \
                 last_cmd_status: ok",
                fake.root().join(ID).join("tasks").display()
            )
        );
        fs::remove_dir(fake.root().join(ID).join("tasks")).unwrap();
        fs::remove_dir(fake.root().join(ID)).unwrap();
        group.add(7).unwrap();
        assert!(!fake.exists(ID));
    }

    #[test]
    fn destroy_removes_the_group_hull_made() {
        let fake = FakeResctrl::new();
        let group = applied(&fake, "{}").unwrap();
        fake.clear_group(ID);
        group.destroy().unwrap();
        assert!(!fake.exists(ID));
        group.destroy().unwrap();
    }

    #[test]
    fn destroy_keeps_a_preexisting_container_group_but_removes_its_monitoring_group() {
        let fake = FakeResctrl::new();
        fs::create_dir_all(fake.root().join(ID).join("mon_groups")).unwrap();
        let group = applied(&fake, r#"{"enableMonitoring":true}"#).unwrap();
        fake.clear_group(&format!("{ID}/mon_groups/{ID}"));
        group.destroy().unwrap();
        assert!(fake.exists(&format!("{ID}/mon_groups")));
        assert!(!fake.exists(&format!("{ID}/mon_groups/{ID}")));
    }

    #[test]
    fn destroy_removes_the_monitoring_group_of_a_shared_clos() {
        let fake = FakeResctrl::new();
        fs::create_dir_all(fake.root().join("pre-existing-clos/mon_groups")).unwrap();
        let group = applied(
            &fake,
            r#"{"closID":"pre-existing-clos","enableMonitoring":true}"#,
        )
        .unwrap();
        fake.clear_group(&format!("pre-existing-clos/mon_groups/{ID}"));
        group.destroy().unwrap();
        assert!(fake.exists("pre-existing-clos/mon_groups"));
        assert!(!fake.exists(&format!("pre-existing-clos/mon_groups/{ID}")));
    }

    #[test]
    fn destroy_failure_names_the_directory() {
        let fake = FakeResctrl::new();
        let group = applied(&fake, "{}").unwrap();
        let err = group.destroy().unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "unable to remove container's IntelRDT group: remove {}: Directory not empty",
                fake.root().join(ID).display()
            )
        );
    }

    #[test]
    fn the_group_round_trips_through_state_json() {
        let fake = FakeResctrl::new();
        fs::create_dir_all(fake.root().join("gold/mon_groups")).unwrap();
        let group = applied(&fake, r#"{"closID":"gold","enableMonitoring":true}"#).unwrap();
        let json = serde_json::to_string(&group).unwrap();
        assert_eq!(serde_json::from_str::<Group>(&json).unwrap(), group);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["created"], false);
        assert_eq!(value["shared"], true);
        assert_eq!(
            value["monitoring_path"],
            fake.root()
                .join("gold/mon_groups")
                .join(ID)
                .to_str()
                .unwrap()
        );
    }
}
