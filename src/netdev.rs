//! `linux.netDevices`: host network interfaces moved into the container's network namespace, renamed as asked (runc
//! 1.5's `devChangeNetNamespace`). For each, from hull's network namespace: the link is set down, its permanent
//! global addresses are read, and one RTM_NEWLINK moves and renames it at once (no name clash in between); then, in
//! the container's namespace, the addresses are added back (the kernel drops them on the move) and the link is set
//! up. When the container's namespace goes, the kernel returns physical devices to the host and deletes virtual ones.
//!
//! A small rtnetlink client of its own: four message types do not justify a netlink crate's code in every hull.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::LinuxNetDevice;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTA_HDRLEN: usize = 4;
/// `IFA_FLAGS`: the full 32-bit address flags (the header holds only the low 8).
const IFA_FLAGS: u16 = 8;

/// runc's `devValidName` (after the kernel's `dev_valid_name`; runc lets a name of IFNAMSIZ bytes through).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', ':', ' '])
}

/// runc's checks of `linux.netDevices`.
pub fn validate(
    devices: &HashMap<String, LinuxNetDevice>,
    network_namespace: bool,
    rootless: bool,
) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    if !network_namespace {
        bail!("unable to move network devices without a NET namespace");
    }
    if rootless {
        bail!("network devices are not supported for rootless containers");
    }
    for (name, device) in sorted(devices) {
        for name in std::iter::once(name.as_str()).chain(device.name().as_deref()) {
            if !valid_name(name) {
                bail!("invalid network device name {name:?}");
            }
        }
    }
    Ok(())
}

fn sorted(devices: &HashMap<String, LinuxNetDevice>) -> Vec<(&String, &LinuxNetDevice)> {
    let mut sorted: Vec<_> = devices.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    sorted
}

/// Move every device into the network namespace of `init` (by name order; runc's map order is random). The first
/// failure stops, as in runc: the devices already moved go back to the host with the namespace.
pub fn move_all(devices: &HashMap<String, LinuxNetDevice>, init: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{init}/ns/net");
    let target: OwnedFd = File::open(&ns_path)
        .with_context(|| format!("open {ns_path}"))?
        .into();
    for (name, device) in sorted(devices) {
        let new_name = device.name().as_deref().unwrap_or(name);
        move_one(name, new_name, &target).with_context(|| {
            format!(
                "error creating network interfaces: move netDevice {name} to namespace {ns_path}"
            )
        })?;
    }
    Ok(())
}

fn move_one(name: &str, new_name: &str, target: &OwnedFd) -> Result<()> {
    let index = link_index(name)
        .with_context(|| format!("link not found for interface {name} on runtime namespace"))?;
    let host = Socket::open()?;
    host.request(&link_message(index, 0, libc::IFF_UP as u32, &[]))
        .context("fail to set link down")?;
    let addresses = host
        .permanent_global_addresses(index)
        .context("fail to get ip addresses")?;
    let mut attributes = attribute(libc::IFLA_IFNAME, &nul_terminated(new_name));
    attributes.extend(attribute(
        libc::IFLA_NET_NS_FD,
        &(target.as_raw_fd() as u32).to_ne_bytes(),
    ));
    host.request(&link_message(index, 0, 0, &attributes))
        .with_context(|| format!("fail to move network device {name}"))?;
    in_namespace(target, || {
        let index = link_index(new_name)
            .with_context(|| format!("link not found for interface {new_name} on namespace"))?;
        let container = Socket::open()?;
        for address in &addresses {
            container
                .request(&address.add_message(index))
                .with_context(|| format!("fail to set up address {}", address.text()))?;
        }
        container
            .request(&link_message(
                index,
                libc::IFF_UP as u32,
                libc::IFF_UP as u32,
                &[],
            ))
            .with_context(|| format!("fail to set up interface {new_name}"))
    })
}

/// Run `f` with this (single-threaded) process in the network namespace `target`, then return to its own.
fn in_namespace<T>(target: &OwnedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let own: OwnedFd = File::open("/proc/self/ns/net")
        .context("open /proc/self/ns/net")?
        .into();
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
        .context("join the container's network namespace")?;
    let result = f();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET).context("return to hull's network namespace")?;
    result
}

fn link_index(name: &str) -> Result<i32> {
    let c_name = CString::new(name).context("interface name contains a NUL byte")?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own for the duration of the call.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(Errno::last().into()),
        index => Ok(index as i32),
    }
}

fn nul_terminated(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// One rtattr, padded to 4 bytes.
fn attribute(kind: u16, data: &[u8]) -> Vec<u8> {
    let len = RTA_HDRLEN + data.len();
    let mut out = Vec::with_capacity(align(len));
    out.extend((len as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(data);
    out.resize(align(len), 0);
    out
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// RTM_NEWLINK on `index`: `flags` within the `change` mask, then `attributes`.
fn link_message(index: i32, flags: u32, change: u32, attributes: &[u8]) -> Message {
    let mut body = Vec::with_capacity(IFINFOMSG_LEN + attributes.len());
    body.extend([libc::AF_UNSPEC as u8, 0]);
    body.extend(0u16.to_ne_bytes());
    body.extend(index.to_ne_bytes());
    body.extend(flags.to_ne_bytes());
    body.extend(change.to_ne_bytes());
    body.extend(attributes);
    Message {
        kind: libc::RTM_NEWLINK,
        flags: 0,
        body,
    }
}

struct Message {
    kind: u16,
    /// Beyond NLM_F_REQUEST and NLM_F_ACK.
    flags: u16,
    body: Vec<u8>,
}

/// A permanent address of global scope, as the kernel reported it.
#[derive(Debug, PartialEq)]
struct Address {
    family: u8,
    prefix_len: u8,
    local: Vec<u8>,
}

impl Address {
    /// RTM_NEWADDR for this address on `index`, as netlink's AddrAdd makes it for an address without a peer: local and
    /// address alike, and for IPv4 below /31 the broadcast address.
    fn add_message(&self, index: i32) -> Message {
        let mut body = vec![self.family, self.prefix_len, 0, libc::RT_SCOPE_UNIVERSE];
        body.extend((index as u32).to_ne_bytes());
        body.extend(attribute(libc::IFA_LOCAL, &self.local));
        body.extend(attribute(libc::IFA_ADDRESS, &self.local));
        if let Some(broadcast) = self.broadcast() {
            body.extend(attribute(libc::IFA_BROADCAST, &broadcast));
        }
        Message {
            kind: libc::RTM_NEWADDR,
            flags: (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            body,
        }
    }

    fn broadcast(&self) -> Option<[u8; 4]> {
        let ip: [u8; 4] = self.local.as_slice().try_into().ok()?;
        if self.family != libc::AF_INET as u8 || self.prefix_len >= 31 {
            return None;
        }
        let host_bits = u32::MAX
            .checked_shr(u32::from(self.prefix_len))
            .unwrap_or(0);
        Some((u32::from_be_bytes(ip) | host_bits).to_be_bytes())
    }

    fn text(&self) -> String {
        let ip = match self.local.len() {
            4 => std::net::IpAddr::from(
                <[u8; 4]>::try_from(self.local.as_slice()).unwrap_or_default(),
            ),
            _ => std::net::IpAddr::from(
                <[u8; 16]>::try_from(self.local.as_slice()).unwrap_or_default(),
            ),
        };
        format!("{ip}/{}", self.prefix_len)
    }
}

/// A NETLINK_ROUTE socket in the network namespace this process is in when it opens it.
struct Socket {
    fd: OwnedFd,
}

impl Socket {
    fn open() -> Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the returned descriptor is ours alone.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        let fd = Errno::result(fd).context("open a netlink socket")?;
        // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd })
    }

    fn send(&self, message: &Message, extra_flags: u16) -> Result<()> {
        let len = NLMSG_HDRLEN + message.body.len();
        let mut packet = Vec::with_capacity(len);
        packet.extend((len as u32).to_ne_bytes());
        packet.extend(message.kind.to_ne_bytes());
        packet.extend((libc::NLM_F_REQUEST as u16 | message.flags | extra_flags).to_ne_bytes());
        packet.extend(1u32.to_ne_bytes());
        packet.extend(0u32.to_ne_bytes());
        packet.extend(&message.body);
        // SAFETY: packet is a live buffer of packet.len() bytes; the kernel only reads it.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len(), 0) };
        Errno::result(sent).context("send a netlink request")?;
        Ok(())
    }

    /// Every netlink message of the next datagram, as (type, payload).
    fn receive(&self) -> Result<Vec<(u16, Vec<u8>)>> {
        let mut buffer = vec![0u8; 32 * 1024];
        let received = loop {
            // SAFETY: buffer is a live, writable buffer of buffer.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            match Errno::result(n) {
                Err(Errno::EINTR) => continue,
                result => break result.context("receive a netlink reply")? as usize,
            }
        };
        split_messages(&buffer[..received])
    }

    /// Send `message` asking for an acknowledgement; the kernel's error, if any, is the result.
    fn request(&self, message: &Message) -> Result<()> {
        self.send(message, libc::NLM_F_ACK as u16)?;
        for (kind, payload) in self.receive()? {
            if kind == libc::NLMSG_ERROR as u16 {
                return match error_code(&payload)? {
                    0 => Ok(()),
                    errno => Err(Errno::from_raw(-errno).into()),
                };
            }
        }
        bail!("the netlink reply carries no acknowledgement")
    }

    /// The permanent addresses of global scope on link `index` (runc moves only those: the others depend on the
    /// host's context).
    fn permanent_global_addresses(&self, index: i32) -> Result<Vec<Address>> {
        let dump = Message {
            kind: libc::RTM_GETADDR,
            flags: libc::NLM_F_DUMP as u16,
            body: vec![libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0],
        };
        self.send(&dump, 0)?;
        let mut addresses = Vec::new();
        loop {
            for (kind, payload) in self.receive()? {
                match kind {
                    k if k == libc::NLMSG_DONE as u16 => return Ok(addresses),
                    k if k == libc::NLMSG_ERROR as u16 => {
                        return Err(Errno::from_raw(-error_code(&payload)?).into())
                    }
                    k if k == libc::RTM_NEWADDR => {
                        addresses.extend(parse_address(&payload, index)?);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn error_code(payload: &[u8]) -> Result<i32> {
    let bytes = payload
        .get(..4)
        .context("a netlink error message is too short")?;
    Ok(i32::from_ne_bytes(bytes.try_into()?))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The netlink messages of one datagram.
fn split_messages(mut data: &[u8]) -> Result<Vec<(u16, Vec<u8>)>> {
    let mut messages = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0).context("netlink header")? as usize;
        let kind = u16_at(data, 4).context("netlink header")?;
        if len < NLMSG_HDRLEN || len > data.len() {
            bail!("malformed netlink message of {len} bytes");
        }
        messages.push((kind, data[NLMSG_HDRLEN..len].to_vec()));
        data = data.get(align(len)..).unwrap_or(&[]);
    }
    Ok(messages)
}

/// The attributes after a fixed header, as (type, data).
fn attributes(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u16_at(data, 0), u16_at(data, 2)) {
        let len = usize::from(len);
        if len < RTA_HDRLEN || len > data.len() {
            break;
        }
        out.push((kind, &data[RTA_HDRLEN..len]));
        data = data.get(align(len)..).unwrap_or(&[]);
    }
    out
}

/// An RTM_NEWADDR payload, kept when it is on link `index`, permanent and of global scope.
fn parse_address(payload: &[u8], index: i32) -> Result<Option<Address>> {
    let header = payload
        .get(..IFADDRMSG_LEN)
        .context("an address message is too short")?;
    let (family, prefix_len, short_flags, scope) = (header[0], header[1], header[2], header[3]);
    if u32_at(header, 4) != Some(index as u32) || scope != libc::RT_SCOPE_UNIVERSE {
        return Ok(None);
    }
    let attrs = attributes(&payload[IFADDRMSG_LEN..]);
    let flags = attrs
        .iter()
        .find(|(kind, _)| *kind == IFA_FLAGS)
        .and_then(|(_, data)| u32_at(data, 0))
        .unwrap_or(u32::from(short_flags));
    if flags & libc::IFA_F_PERMANENT == 0 {
        return Ok(None);
    }
    let find = |wanted: u16| {
        attrs
            .iter()
            .find(|(kind, _)| *kind == wanted)
            .map(|(_, d)| d.to_vec())
    };
    let Some(local) = find(libc::IFA_LOCAL).or_else(|| find(libc::IFA_ADDRESS)) else {
        return Ok(None);
    };
    Ok(Some(Address {
        family,
        prefix_len,
        local,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_runc_checks_them() {
        for good in ["eth0", "dummy-1", "a234567890123456"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a2345678901234567"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        let devices = |target: Option<&str>| -> HashMap<String, LinuxNetDevice> {
            let device: LinuxNetDevice =
                serde_json::from_value(serde_json::json!({ "name": target })).unwrap();
            HashMap::from([("dummy0".to_owned(), device)])
        };
        let err = |d, netns, rootless| validate(&d, netns, rootless).unwrap_err().to_string();
        assert_eq!(
            err(devices(None), false, false),
            "unable to move network devices without a NET namespace"
        );
        assert_eq!(
            err(devices(None), true, true),
            "network devices are not supported for rootless containers"
        );
        assert_eq!(
            err(devices(Some("a/b")), true, false),
            "invalid network device name \"a/b\""
        );
        validate(&devices(Some("ctr0")), true, false).unwrap();
        validate(&HashMap::new(), false, true).unwrap();
    }

    #[test]
    fn addresses_keep_only_permanent_global_ones_of_the_link() {
        let message = |index: u32, scope: u8, flags: u8, extended: Option<u32>| -> Vec<u8> {
            let mut payload = vec![libc::AF_INET as u8, 24, flags, scope];
            payload.extend(index.to_ne_bytes());
            payload.extend(attribute(libc::IFA_ADDRESS, &[10, 1, 2, 3]));
            payload.extend(attribute(libc::IFA_LOCAL, &[10, 1, 2, 3]));
            if let Some(extended) = extended {
                payload.extend(attribute(IFA_FLAGS, &extended.to_ne_bytes()));
            }
            payload
        };
        let permanent = libc::IFA_F_PERMANENT as u8;
        let kept = parse_address(&message(7, 0, permanent, None), 7)
            .unwrap()
            .unwrap();
        assert_eq!(kept.text(), "10.1.2.3/24");
        assert_eq!(kept.broadcast(), Some([10, 1, 2, 255]));
        assert_eq!(
            parse_address(&message(8, 0, permanent, None), 7).unwrap(),
            None
        );
        assert_eq!(
            parse_address(&message(7, libc::RT_SCOPE_LINK, permanent, None), 7).unwrap(),
            None
        );
        assert_eq!(parse_address(&message(7, 0, 0, None), 7).unwrap(), None);
        assert_eq!(
            parse_address(&message(7, 0, permanent, Some(0)), 7).unwrap(),
            None,
            "IFA_FLAGS, when present, is the whole of the flags"
        );
    }

    #[test]
    fn messages_and_attributes_round_trip() {
        let attrs = [attribute(1, b"abc"), attribute(2, &5u32.to_ne_bytes())].concat();
        assert_eq!(attrs.len(), 8 + 8);
        assert_eq!(
            attributes(&attrs),
            vec![(1, &b"abc"[..]), (2, &5u32.to_ne_bytes()[..])]
        );
        let mut datagram = Vec::new();
        for (kind, body) in [(3u16, vec![1u8, 2, 3]), (2u16, vec![0u8; 4])] {
            datagram.extend(((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
            datagram.extend(kind.to_ne_bytes());
            datagram.extend([0u8; 10]);
            datagram.extend(&body);
            datagram.resize(align(datagram.len()), 0);
        }
        assert_eq!(
            split_messages(&datagram).unwrap(),
            vec![(3, vec![1, 2, 3]), (2, vec![0; 4])]
        );
    }
}
