//! The `regex` crate's API as oci-spec uses it, from `regex-lite` (see Cargo.toml for why).
pub use regex_lite::*;
