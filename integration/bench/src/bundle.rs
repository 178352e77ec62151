//! The bench bundles: the template config (bundles/demo/config.json by default) with the process,
//! root, hostname and resources replaced, written to a directory of the bench's temp dir.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::Path;

/// The template with `root = {rootfs, readonly}`, `hostname = bench`, no terminal and no memory or
/// pids limit, at `ociVersion` 1.0.2, which every runtime compared takes (crun 1.8 refuses 1.2.0).
pub fn base_config(template: &Path, rootfs: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("read config template {}", template.display()))?;
    let mut config: Value = serde_json::from_str(&text)
        .with_context(|| format!("parse config template {}", template.display()))?;
    let rootfs = rootfs
        .to_str()
        .with_context(|| format!("rootfs path {} is not UTF-8", rootfs.display()))?;
    let top = config
        .as_object_mut()
        .with_context(|| format!("{} is not a JSON object", template.display()))?;
    object(top, "process")?.insert("terminal".into(), Value::Bool(false));
    top.insert("root".into(), json!({"path": rootfs, "readonly": true}));
    top.insert("hostname".into(), json!("bench"));
    top.insert("ociVersion".into(), json!("1.0.2"));
    let resources = object(object(top, "linux")?, "resources")?;
    resources.remove("memory");
    resources.remove("pids");
    Ok(config)
}

/// Writes `DIR/config.json`: `base` running `args`, with `memory` as `linux.resources.memory`.
pub fn write(dir: &Path, base: &Value, args: &[&str], memory: Option<Value>) -> Result<()> {
    let mut config = base.clone();
    let top = config
        .as_object_mut()
        .context("config is not a JSON object")?;
    object(top, "process")?.insert("args".into(), json!(args));
    if let Some(memory) = memory {
        object(object(top, "linux")?, "resources")?.insert("memory".into(), memory);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create bundle {}", dir.display()))?;
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).context("serialize config")?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}

/// `parent[key]` as an object, inserted empty when missing.
fn object<'a>(parent: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Map<String, Value>> {
    match parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(map) => Ok(map),
        other => bail!("config field {key:?} is not an object: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_config_replaces_root_and_drops_limits() {
        let dir = std::env::temp_dir().join(format!("bench-bundle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = dir.join("template.json");
        std::fs::write(
            &template,
            r#"{"process": {"terminal": true, "args": ["sh"]}, "root": {"path": "x"}, "hostname": "h",
                "linux": {"resources": {"memory": {"limit": 1}, "pids": {"limit": 2}, "devices": []}}}"#,
        )
        .unwrap();
        let base = base_config(&template, Path::new("/rootfs")).unwrap();
        assert_eq!(base["process"]["terminal"], json!(false));
        assert_eq!(base["root"], json!({"path": "/rootfs", "readonly": true}));
        assert_eq!(base["hostname"], json!("bench"));
        assert_eq!(base["linux"]["resources"], json!({"devices": []}));
        write(&dir, &base, &["/bin/true"], Some(json!({"limit": 65536}))).unwrap();
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(written["process"]["args"], json!(["/bin/true"]));
        assert_eq!(
            written["linux"]["resources"]["memory"],
            json!({"limit": 65536})
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
