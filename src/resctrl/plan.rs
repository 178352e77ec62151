//! What `linux.intelRdt` asks of resctrl, decided without touching it: the checks with runc's messages, the group
//! and monitoring group paths, and the text written to `schemata`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxIntelRdt;

use super::host::Host;
use crate::signal::go_quote;

/// runc's `validate.intelrdtCheck`, run when the container is created. `host` is None where resctrl is not mounted.
/// runc checks nothing else: `schemata` may be combined with `l3CacheSchema`/`memBwSchema` (all are written), and
/// `enableMonitoring` is accepted without monitoring support (making the group fails later).
pub fn validate(rdt: &LinuxIntelRdt, host: Option<&Host>) -> Result<()> {
    let Some(host) = host else {
        bail!("intelRdt is specified in config, but Intel RDT is not enabled");
    };
    let clos = clos_id(rdt);
    if clos == "." || clos == ".." || (clos.len() > 1 && clos.contains('/')) {
        bail!("invalid intelRdt.ClosID {}", go_quote(clos));
    }
    if !host.cat_enabled() && !l3_cache_schema(rdt).is_empty() {
        bail!("intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled");
    }
    if !host.mba_enabled() && !mem_bw_schema(rdt).is_empty() {
        bail!("intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled");
    }
    Ok(())
}

/// `update --l3-cache-schema/--mem-bw-schema` (runc's `update.go`): the container's new `intelRdt`, or None when it
/// has none and no schema is given. An empty flag is no flag. The caller stores the result and passes it to
/// `Group::set` on every update, flags or not, as runc's `Container.Set` rewrites `schemata` each time.
pub fn update(
    current: Option<&LinuxIntelRdt>,
    host: Option<&Host>,
    l3_cache_schema: Option<&str>,
    mem_bw_schema: Option<&str>,
) -> Result<Option<LinuxIntelRdt>> {
    let l3 = l3_cache_schema.filter(|s| !s.is_empty());
    let mb = mem_bw_schema.filter(|s| !s.is_empty());
    if l3.is_some() && !host.is_some_and(Host::cat_enabled) {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if mb.is_some() && !host.is_some_and(Host::mba_enabled) {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    let Some(current) = current else {
        if l3.is_some() || mb.is_some() {
            bail!("updating a non-existent Intel RDT configuration is not supported");
        }
        return Ok(None);
    };
    let mut updated = current.clone();
    if let Some(l3) = l3 {
        updated.set_l3_cache_schema(Some(l3.to_owned()));
    }
    if let Some(mb) = mb {
        updated.set_mem_bw_schema(Some(mb.to_owned()));
    }
    Ok(Some(updated))
}

/// The control group's directory (runc's `NewManager`): `<root>/<closID>`, or `<root>/<container id>` without a
/// closID. The name is joined inside the root as `securejoin` does, so closID "/" is the root group itself.
pub(super) fn group_path(root: &Path, rdt: &LinuxIntelRdt, container_id: &str) -> PathBuf {
    match clos_id(rdt) {
        "" => join_inside(root, container_id),
        clos => join_inside(root, clos),
    }
}

/// The container's own monitoring group inside its control group, with `enableMonitoring` (runc's `GetMonPath`).
pub(super) fn monitoring_path(
    group: &Path,
    rdt: &LinuxIntelRdt,
    container_id: &str,
) -> Option<PathBuf> {
    rdt.enable_monitoring()
        .unwrap_or(false)
        .then(|| group.join("mon_groups").join(container_id))
}

/// Whether the config names a group that someone else manages: runc never removes it.
pub(super) fn names_shared_group(rdt: &LinuxIntelRdt) -> bool {
    !clos_id(rdt).is_empty()
}

/// A named group with nothing to write must already exist (runc's `Apply`: the runtime-spec says such a group is
/// pre-configured; runc does not create it).
pub(super) fn group_must_exist(rdt: &LinuxIntelRdt) -> bool {
    names_shared_group(rdt) && schemata_text(rdt).is_none()
}

/// The `schemata` file's new text (runc's `Set`): `l3CacheSchema`, `memBwSchema`, then the `schemata` lines, each
/// non-empty one ending in a newline, in one write. None when there is nothing to write. A shared group's existing
/// schemata are overwritten, not compared (runc leaves that comparison as a TODO).
pub(super) fn schemata_text(rdt: &LinuxIntelRdt) -> Option<String> {
    let lines = [l3_cache_schema(rdt), mem_bw_schema(rdt)]
        .into_iter()
        .chain(rdt.schemata().iter().flatten().map(String::as_str))
        .filter(|line| !line.is_empty());
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    (!text.is_empty()).then_some(text)
}

fn clos_id(rdt: &LinuxIntelRdt) -> &str {
    rdt.clos_id().as_deref().unwrap_or("")
}

fn l3_cache_schema(rdt: &LinuxIntelRdt) -> &str {
    rdt.l3_cache_schema().as_deref().unwrap_or("")
}

fn mem_bw_schema(rdt: &LinuxIntelRdt) -> &str {
    rdt.mem_bw_schema().as_deref().unwrap_or("")
}

/// `name` resolved lexically under `root`, never above it (resctrl has no symlinks, so this is `securejoin`).
fn join_inside(root: &Path, name: &str) -> PathBuf {
    let mut inside: Vec<&str> = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                inside.pop();
            }
            component => inside.push(component),
        }
    }
    let mut path = root.to_path_buf();
    path.extend(inside);
    path
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::resctrl::fake::FakeResctrl;

    pub fn rdt(json: &str) -> LinuxIntelRdt {
        serde_json::from_str(json).unwrap()
    }

    fn validation(json: &str, host: Option<&Host>) -> String {
        validate(&rdt(json), host).map_or_else(|e| e.to_string(), |()| "ok".to_owned())
    }

    #[test]
    fn validate_requires_mounted_resctrl() {
        assert_eq!(
            validation("{}", None),
            "intelRdt is specified in config, but Intel RDT is not enabled"
        );
        assert_eq!(validation("{}", Some(&FakeResctrl::new().host())), "ok");
    }

    #[test]
    fn validate_refuses_dot_names_and_nested_clos_ids() {
        let host = FakeResctrl::new().host();
        for (clos, message) in [
            (".", r#"invalid intelRdt.ClosID ".""#),
            ("..", r#"invalid intelRdt.ClosID "..""#),
            ("foo/bar", r#"invalid intelRdt.ClosID "foo/bar""#),
            ("/x", r#"invalid intelRdt.ClosID "/x""#),
            ("a\nb/", r#"invalid intelRdt.ClosID "a\nb/""#),
            ("/", "ok"),
            ("clos-1", "ok"),
            ("...", "ok"),
        ] {
            let json = serde_json::json!({ "closID": clos }).to_string();
            assert_eq!(validation(&json, Some(&host)), message, "closID {clos:?}");
        }
    }

    #[test]
    fn validate_requires_cat_for_l3_and_mba_for_mb() {
        let bare = FakeResctrl::new().host();
        assert_eq!(
            validation(r#"{"l3CacheSchema":"L3:0=ff"}"#, Some(&bare)),
            "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled"
        );
        assert_eq!(
            validation(r#"{"memBwSchema":"MB:0=100"}"#, Some(&bare)),
            "intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled"
        );
        assert_eq!(
            validation(r#"{"l3CacheSchema":"","memBwSchema":""}"#, Some(&bare)),
            "ok"
        );
        let cat_only = FakeResctrl::new().with_cat().host();
        assert_eq!(
            validation(
                r#"{"l3CacheSchema":"L3:0=ff","memBwSchema":"MB:0=100"}"#,
                Some(&cat_only)
            ),
            "intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled"
        );
    }

    #[test]
    fn validate_accepts_schemata_with_l3_and_mb_and_monitoring_anywhere() {
        let full = FakeResctrl::new().with_cat().with_mba().host();
        let json = r#"{"closID":"clos-1","l3CacheSchema":"L3:0=ff","memBwSchema":"MB:0=100",
                       "schemata":["L2:0=f"],"enableMonitoring":true}"#;
        assert_eq!(validation(json, Some(&full)), "ok");
        let bare = FakeResctrl::new().host();
        assert_eq!(
            validation(
                r#"{"schemata":["L3:0=ff","MB:0=10"],"enableMonitoring":true}"#,
                Some(&bare)
            ),
            "ok"
        );
    }

    #[test]
    fn the_group_is_named_by_clos_id_or_container_id() {
        let root = Path::new("/sys/fs/resctrl");
        let path = |json: &str| group_path(root, &rdt(json), "ctr");
        assert_eq!(path("{}"), root.join("ctr"));
        assert_eq!(path(r#"{"closID":""}"#), root.join("ctr"));
        assert_eq!(path(r#"{"closID":"gold"}"#), root.join("gold"));
        assert_eq!(path(r#"{"closID":"/"}"#), root);
        assert_eq!(path(r#"{"closID":"../../etc"}"#), root.join("etc"));
    }

    #[test]
    fn the_monitoring_group_is_named_by_container_id_inside_the_group() {
        let group = Path::new("/sys/fs/resctrl/gold");
        let mon = |json: &str| monitoring_path(group, &rdt(json), "ctr");
        assert_eq!(mon("{}"), None);
        assert_eq!(mon(r#"{"enableMonitoring":false}"#), None);
        assert_eq!(
            mon(r#"{"enableMonitoring":true}"#),
            Some(group.join("mon_groups/ctr"))
        );
        assert_eq!(
            monitoring_path(
                Path::new("/r"),
                &rdt(r#"{"closID":"/","enableMonitoring":true}"#),
                "c"
            ),
            Some(PathBuf::from("/r/mon_groups/c"))
        );
    }

    #[test]
    fn a_named_group_without_schemas_must_exist() {
        assert!(group_must_exist(&rdt(r#"{"closID":"gold"}"#)));
        assert!(group_must_exist(&rdt(r#"{"closID":"gold","schemata":[]}"#)));
        assert!(group_must_exist(&rdt(
            r#"{"closID":"gold","l3CacheSchema":"","schemata":[""]}"#
        )));
        assert!(!group_must_exist(&rdt(
            r#"{"closID":"gold","l3CacheSchema":"L3:0=f"}"#
        )));
        assert!(!group_must_exist(&rdt(
            r#"{"closID":"gold","schemata":["L2:0=f"]}"#
        )));
        assert!(!group_must_exist(&rdt("{}")));
    }

    #[test]
    fn schemata_are_l3_then_mb_then_the_schemata_lines() {
        let text = |json: &str| schemata_text(&rdt(json));
        assert_eq!(text("{}"), None);
        assert_eq!(text(r#"{"l3CacheSchema":"","schemata":[]}"#), None);
        assert_eq!(
            text(r#"{"l3CacheSchema":"L3:0=f0;1=f"}"#).unwrap(),
            "L3:0=f0;1=f\n"
        );
        assert_eq!(
            text(r#"{"memBwSchema":"MB:0=70;1=20"}"#).unwrap(),
            "MB:0=70;1=20\n"
        );
        assert_eq!(
            text(r#"{"schemata":["L3CODE:0=ff;1=ff","L3DATA:0=f;1=f0"]}"#).unwrap(),
            "L3CODE:0=ff;1=ff\nL3DATA:0=f;1=f0\n"
        );
        assert_eq!(
            text(
                r#"{"schemata":["L2:0=ff00;1=ff","","L3:0=c0;1=3f"],
                    "memBwSchema":"MB:0=2000;1=4000","l3CacheSchema":"L3:0=80;1=7f"}"#
            )
            .unwrap(),
            "L3:0=80;1=7f\nMB:0=2000;1=4000\nL2:0=ff00;1=ff\nL3:0=c0;1=3f\n"
        );
    }

    #[test]
    fn update_checks_features_before_the_config() {
        let bare = FakeResctrl::new().host();
        let message = |current: Option<&LinuxIntelRdt>,
                       host: Option<&Host>,
                       l3: Option<&str>,
                       mb: Option<&str>| {
            update(current, host, l3, mb).unwrap_err().to_string()
        };
        assert_eq!(
            message(None, Some(&bare), Some("L3:0=f"), None),
            "Intel RDT/CAT: l3 cache schema is not enabled"
        );
        assert_eq!(
            message(None, None, None, Some("MB:0=10")),
            "Intel RDT/MBA: memory bandwidth schema is not enabled"
        );
        let full = FakeResctrl::new().with_cat().with_mba().host();
        assert_eq!(
            message(None, Some(&full), Some("L3:0=f"), Some("MB:0=10")),
            "updating a non-existent Intel RDT configuration is not supported"
        );
        assert_eq!(update(None, None, Some(""), Some("")).unwrap(), None);
    }

    #[test]
    fn update_replaces_only_the_given_schemas() {
        let full = FakeResctrl::new().with_cat().with_mba().host();
        let current = rdt(
            r#"{"closID":"c","l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=50","schemata":["L2:0=1"]}"#,
        );
        let updated = update(Some(&current), Some(&full), None, Some("MB:0=20"))
            .unwrap()
            .unwrap();
        assert_eq!(
            updated,
            rdt(
                r#"{"closID":"c","l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=20","schemata":["L2:0=1"]}"#
            )
        );
        assert_eq!(
            schemata_text(&updated).unwrap(),
            "L3:0=f\nMB:0=20\nL2:0=1\n"
        );
        assert_eq!(
            update(Some(&current), None, None, None).unwrap(),
            Some(current.clone())
        );
    }
}
