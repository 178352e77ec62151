//! What the host looks like, observed with the same `checker` that runs in the containers.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

pub struct Host {
    /// `checker facts` run directly on the host, in the harness's own namespaces.
    facts: Value,
    /// The runtime's `features` document, when it has that command (runc 1.1 does not).
    features: Option<Value>,
}

impl Host {
    pub fn observe(rootfs: &Path, runtime: &Path) -> Result<Host> {
        let checker = rootfs.join("checker");
        let output = Command::new(&checker)
            .arg("facts")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} on the host", checker.display()))?;
        if !output.status.success() {
            bail!(
                "{} facts failed on the host ({}): {}",
                checker.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let facts =
            serde_json::from_slice(&output.stdout).context("parsing the host's checker facts")?;
        let features = Command::new(runtime)
            .arg("features")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| serde_json::from_slice(&out.stdout).ok());
        Ok(Host { facts, features })
    }

    /// Whether the runtime's `features` says a feature is off (a JSON pointer such as
    /// `/linux/seccomp/enabled`); a runtime without `features` is assumed to have everything.
    pub fn runtime_lacks(&self, pointer: &str) -> bool {
        self.features
            .as_ref()
            .and_then(|f| f.pointer(pointer))
            .is_some_and(|v| v == &Value::Bool(false))
    }

    pub fn is_root(&self) -> bool {
        self.facts["euid"] == 0
    }

    pub fn hostname(&self) -> &Value {
        &self.facts["hostname"]
    }

    /// The host's `/proc/self/ns/<name>` link, such as `"net:[4026531833]"`, if the kernel has it.
    pub fn namespace(&self, name: &str) -> Option<&str> {
        self.facts["namespaces"][name].as_str()
    }

    /// The host's mounts, as `checker facts` reports them.
    pub fn mounts(&self) -> &[Value] {
        self.facts["mounts"].as_array().map_or(&[], Vec::as_slice)
    }
}
