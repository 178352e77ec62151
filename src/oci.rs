//! What hull writes in the runtime spec's own terms: the version of the spec it implements, and the container
//! `State` that hooks read on stdin and a seccomp agent gets with its listener.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// The OCI runtime-spec version hull targets: runc 1.4 vendors runtime-spec v1.3.0, so `runc spec` writes this as
/// `ociVersion`, and `state`, the hooks' state and `features` report it.
pub const OCI_VERSION: &str = "1.3.0";

/// The runtime-spec `State` as Go encodes it: what hooks read on stdin and a seccomp agent gets with the listener.
#[derive(Clone, Copy, Serialize)]
pub struct SpecState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

fn is_zero(pid: &i32) -> bool {
    *pid == 0
}
