//! The `regex` crate's API as oci-spec uses it, from `regex-lite` (see Cargo.toml for why).
pub use regex_lite::*;

/// Only the shim has this: hull's src/main.rs names it, so a build with the real `regex` crate in its place fails.
pub const HULL_REGEX_LITE_SHIM: () = ();
