//! A small synchronous D-Bus client, for the systemd cgroup driver: method calls to org.freedesktop.systemd1 on the
//! system bus or a user's bus, and waiting for the signals they lead to (JobRemoved). One blocking unix socket, no
//! threads: a call sends its message and reads until the reply to its serial arrives; signals read meanwhile are
//! queued for [`Connection::wait_signal`]. Messages are sent little-endian and read in either byte order; method calls
//! made to us are dropped unanswered, and unix fds are not supported.

mod connection;
mod value;
mod wire;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

pub use connection::{Connection, MethodError};
pub use value::Value;

/// The system bus socket when `$DBUS_SYSTEM_BUS_ADDRESS` names none.
const DEFAULT_SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// The system bus socket: the first `unix:path=` address in `$DBUS_SYSTEM_BUS_ADDRESS`, else
/// `/run/dbus/system_bus_socket`.
pub fn system_bus_path() -> PathBuf {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|addresses| unix_path(&addresses))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSTEM_BUS))
}

/// A user's bus socket, `$XDG_RUNTIME_DIR/bus`, given that user's runtime directory.
pub fn user_bus_path(xdg_runtime_dir: &Path) -> PathBuf {
    xdg_runtime_dir.join("bus")
}

/// The path of the first `unix:path=...` in a D-Bus address list (`unix:path=/x,guid=...;tcp:...`), with its `%xx`
/// escapes undone.
fn unix_path(addresses: &str) -> Option<PathBuf> {
    let value = addresses.split(';').find_map(|address| {
        address
            .strip_prefix("unix:")?
            .split(',')
            .find_map(|pair| pair.strip_prefix("path="))
    })?;
    let bytes = value.as_bytes();
    let mut path = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                path.push(byte);
                at += 3;
            }
            None => {
                path.push(bytes[at]);
                at += 1;
            }
        }
    }
    Some(PathBuf::from(OsString::from_vec(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_addresses() {
        assert_eq!(
            unix_path("unix:path=/run/dbus/system_bus_socket"),
            Some(PathBuf::from("/run/dbus/system_bus_socket"))
        );
        assert_eq!(
            unix_path("tcp:host=x,port=1;unix:guid=1,path=/tmp/a%20b%2,c"),
            Some(PathBuf::from("/tmp/a b%2"))
        );
        assert_eq!(unix_path("unix:abstract=/tmp/x"), None);
        assert_eq!(
            user_bus_path(Path::new("/run/user/1000")),
            PathBuf::from("/run/user/1000/bus")
        );
    }
}
