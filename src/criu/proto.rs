//! The part of CRIU's RPC protocol (`images/rpc.proto`, proto2) that hull speaks: requests are encoded from plain
//! structs, responses decoded into one. Hand-written rather than generated: the handful of messages and fields below
//! do not justify a protobuf runtime and code generator in a binary where every other command pays for its size.

use anyhow::{bail, Context, Result};

/// `criu_req_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

/// `criu_cg_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
    Default = 6,
}

/// `criu_opts`: the fields hull sets (field numbers in the comments are rpc.proto's).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Opts {
    /// 1 (required).
    pub images_dir_fd: i32,
    /// 2.
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    /// 6: restore: devices may be found by their numbers wherever they are.
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// 9.
    pub log_level: Option<i32>,
    /// 10: a name inside the work directory.
    pub log_file: Option<String>,
    /// 11: `address`, `port`.
    pub page_server: Option<(String, i32)>,
    /// 12: CRIU asks before and after its steps (`criu_notify`).
    pub notify_scripts: bool,
    /// 13.
    pub root: Option<String>,
    /// 14.
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    /// 17.
    pub work_dir_fd: Option<i32>,
    pub link_remap: bool,
    /// 23: `ext_mnt` key/val.
    pub ext_mnt: Vec<(String, String)>,
    /// 24.
    pub manage_cgroups: bool,
    /// 25: `cg_root` (controller, path).
    pub cg_root: Vec<(Option<String>, String)>,
    /// 26: restored tasks become the caller's children, not CRIU's.
    pub rst_sibling: bool,
    /// 27: `inherit_fd` key/fd.
    pub inherit_fd: Vec<(String, i32)>,
    /// 34.
    pub manage_cgroups_mode: Option<CgroupMode>,
    /// 37.
    pub external: Vec<String>,
    /// 39: `join_ns` (namespace name, its file).
    pub join_ns: Vec<(String, String)>,
    /// 38: clone flags of namespaces restored empty.
    pub empty_ns: Option<u32>,
    /// 44.
    pub freeze_cgroup: Option<String>,
    pub tcp_skip_in_flight: bool,
    pub lazy_pages: bool,
    /// 49.
    pub status_fd: Option<i32>,
    pub orphan_pts_master: bool,
    /// 51.
    pub config_file: Option<String>,
    /// 53.
    pub lsm_profile: Option<String>,
    /// 63.
    pub lsm_mount_context: Option<String>,
    /// 65: CRIU's first mount engine instead of mount-v2 (CRIU 3.17 and later).
    pub mntns_compat_mode: bool,
}

/// `criu_req`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: ReqType,
    pub opts: Option<Opts>,
    /// 3: the answer to a `criu_notify`.
    pub notify_success: bool,
    /// 5: `criu_features` asked about (mem_track, lazy_pages).
    pub features: Option<Features>,
}

/// `criu_features`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub mem_track: bool,
    pub lazy_pages: bool,
}

/// `criu_version`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: i32,
    pub minor: i32,
    pub sublevel: i32,
}

impl Version {
    /// As runc compares versions: major * 10000 + minor * 100 + sublevel.
    pub fn number(&self) -> i32 {
        self.major * 10_000 + self.minor * 100 + self.sublevel
    }
}

/// `criu_resp`, the fields hull reads.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Response {
    pub kind: u64,
    pub success: bool,
    /// `notify.script`, `notify.pid`.
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    pub version: Option<Version>,
}

/// Protobuf wire encoding, proto2 style: only the fields that are set.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    /// An int32 is sign-extended to 64 bits on the wire.
    fn int32(&mut self, field: u32, value: i32) {
        self.key(field, 0);
        self.varint(i64::from(value) as u64);
    }

    fn uint32(&mut self, field: u32, value: u32) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    /// A bool only when true.
    fn flag(&mut self, field: u32, value: bool) {
        if value {
            self.explicit(field, value);
        }
    }

    /// A bool, false too: runc sends every flag of its own explicitly, which overrides CRIU's default.conf (CRIU
    /// applies its global configuration before the RPC options).
    fn explicit(&mut self, field: u32, value: bool) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }
}

impl Opts {
    fn write(&self, w: &mut Writer) {
        w.int32(1, self.images_dir_fd);
        if let Some(pid) = self.pid {
            w.int32(2, pid);
        }
        w.explicit(3, self.leave_running);
        w.explicit(4, self.ext_unix_sk);
        w.explicit(5, self.tcp_established);
        w.flag(6, self.evasive_devices);
        w.explicit(7, self.shell_job);
        w.explicit(8, self.file_locks);
        if let Some(level) = self.log_level {
            w.int32(9, level);
        }
        if let Some(file) = &self.log_file {
            w.string(10, file);
        }
        if let Some((address, port)) = &self.page_server {
            w.message(11, |ps| {
                ps.string(1, address);
                ps.int32(2, *port);
            });
        }
        w.explicit(12, self.notify_scripts);
        if let Some(root) = &self.root {
            w.string(13, root);
        }
        if let Some(parent) = &self.parent_img {
            w.string(14, parent);
        }
        w.flag(15, self.track_mem);
        w.explicit(16, self.auto_dedup);
        if let Some(fd) = self.work_dir_fd {
            w.int32(17, fd);
        }
        w.explicit(18, self.link_remap);
        for (key, val) in &self.ext_mnt {
            w.message(23, |m| {
                m.string(1, key);
                m.string(2, val);
            });
        }
        w.explicit(24, self.manage_cgroups);
        for (ctrl, path) in &self.cg_root {
            w.message(25, |m| {
                if let Some(ctrl) = ctrl {
                    m.string(1, ctrl);
                }
                m.string(2, path);
            });
        }
        w.flag(26, self.rst_sibling);
        for (key, fd) in &self.inherit_fd {
            w.message(27, |m| {
                m.string(1, key);
                m.int32(2, *fd);
            });
        }
        if let Some(mode) = self.manage_cgroups_mode {
            w.uint32(34, mode as u32);
        }
        for external in &self.external {
            w.string(37, external);
        }
        for (ns, file) in &self.join_ns {
            w.message(39, |m| {
                m.string(1, ns);
                m.string(2, file);
            });
        }
        if let Some(flags) = self.empty_ns {
            w.uint32(38, flags);
        }
        if let Some(cgroup) = &self.freeze_cgroup {
            w.string(44, cgroup);
        }
        w.explicit(46, self.tcp_skip_in_flight);
        w.explicit(48, self.lazy_pages);
        if let Some(fd) = self.status_fd {
            w.int32(49, fd);
        }
        w.explicit(50, self.orphan_pts_master);
        if let Some(file) = &self.config_file {
            w.string(51, file);
        }
        if let Some(profile) = &self.lsm_profile {
            w.string(53, profile);
        }
        if let Some(context) = &self.lsm_mount_context {
            w.string(63, context);
        }
        w.flag(65, self.mntns_compat_mode);
    }
}

impl Request {
    pub fn new(kind: ReqType, opts: Option<Opts>) -> Request {
        Request {
            kind,
            opts,
            notify_success: false,
            features: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.uint32(1, self.kind as u32);
        if let Some(opts) = &self.opts {
            w.message(2, |m| opts.write(m));
        }
        w.flag(3, self.notify_success);
        if let Some(features) = self.features {
            w.message(5, |m| {
                m.flag(1, features.mem_track);
                m.flag(2, features.lazy_pages);
            });
        }
        w.0
    }
}

/// One field of a message: its number and its value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- or 64-bit values, which no message hull reads carries.
    Fixed,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().context("truncated varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint longer than 10 bytes")
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.0.len() {
            bail!("field of {len} bytes runs past the message");
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(taken)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).context("field length")?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed
            }
            other => bail!("unsupported wire type {other}"),
        };
        Ok(Some((key >> 3, field)))
    }

    /// Every field, in order.
    fn fields(data: &'a [u8]) -> Result<Vec<(u64, Field<'a>)>> {
        let mut reader = Reader(data);
        let mut fields = Vec::new();
        while let Some(field) = reader.next()? {
            fields.push(field);
        }
        Ok(fields)
    }
}

fn int32(value: u64) -> i32 {
    value as i64 as i32
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Response {
    pub fn decode(data: &[u8]) -> Result<Response> {
        let mut resp = Response::default();
        for (number, field) in Reader::fields(data).context("decode criu_resp")? {
            match (number, field) {
                (1, Field::Varint(v)) => resp.kind = v,
                (2, Field::Varint(v)) => resp.success = v != 0,
                (5, Field::Bytes(b)) => {
                    let (mut script, mut pid) = (String::new(), 0);
                    for (n, f) in Reader::fields(b)? {
                        match (n, f) {
                            (1, Field::Bytes(s)) => script = text(s),
                            (2, Field::Varint(v)) => pid = int32(v),
                            _ => {}
                        }
                    }
                    resp.notify = Some((script, pid));
                }
                (7, Field::Varint(v)) => resp.cr_errno = Some(int32(v)),
                (8, Field::Bytes(b)) => {
                    let mut features = Features::default();
                    for (n, f) in Reader::fields(b)? {
                        match (n, f) {
                            (1, Field::Varint(v)) => features.mem_track = v != 0,
                            (2, Field::Varint(v)) => features.lazy_pages = v != 0,
                            _ => {}
                        }
                    }
                    resp.features = Some(features);
                }
                (9, Field::Bytes(b)) => resp.cr_errmsg = Some(text(b)),
                (10, Field::Bytes(b)) => {
                    let mut version = Version::default();
                    for (n, f) in Reader::fields(b)? {
                        match (n, f) {
                            (1, Field::Varint(v)) => version.major = int32(v),
                            (2, Field::Varint(v)) => version.minor = int32(v),
                            (4, Field::Varint(v)) => version.sublevel = int32(v),
                            _ => {}
                        }
                    }
                    resp.version = Some(version);
                }
                _ => {}
            }
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_encodes_as_protobuf_does() {
        // protoc --encode=criu_req rpc.proto <<< 'type: DUMP opts { images_dir_fd: 5 leave_running: true
        //   log_file: "dump.log" external: "mnt[/x]:k" }'
        let req = Request::new(
            ReqType::Dump,
            Some(Opts {
                images_dir_fd: 5,
                leave_running: true,
                log_file: Some("dump.log".into()),
                external: vec!["mnt[/x]:k".into()],
                ..Opts::default()
            }),
        );
        let mut want = vec![
            0x12, 0, 0x08, 0x05, 0x18, 0x01, 0x20, 0, 0x28, 0, 0x38, 0, 0x40, 0, 0x52, 8,
        ];
        want.extend(b"dump.log");
        want.extend([0x60, 0, 0x80, 0x01, 0, 0x90, 0x01, 0, 0xc0, 0x01, 0]);
        want.extend([0xaa, 0x02, 9]);
        want.extend(b"mnt[/x]:k");
        want.extend([0xf0, 0x02, 0, 0x80, 0x03, 0, 0x90, 0x03, 0]);
        want[1] = (want.len() - 2) as u8;
        assert_eq!(req.encode()[..2], [0x08, 0x01]);
        assert_eq!(
            req.encode()[2..],
            want,
            "explicit falses for runc's flags, as runc sends them"
        );
    }

    #[test]
    fn the_first_mount_engine_is_asked_for_with_field_65() {
        let mut w = Writer::default();
        Opts {
            mntns_compat_mode: true,
            ..Opts::default()
        }
        .write(&mut w);
        assert!(
            w.0.ends_with(&[0x88, 0x04, 0x01]),
            "mntns_compat_mode = 65, varint key 520: {:x?}",
            w.0
        );
    }

    #[test]
    fn lsm_options_go_in_fields_53_and_63() {
        let mut w = Writer::default();
        Opts {
            lsm_profile: Some("apparmor:p".into()),
            lsm_mount_context: Some("c".into()),
            ..Opts::default()
        }
        .write(&mut w);
        let mut profile = vec![0xaa, 0x03, 10];
        profile.extend(b"apparmor:p");
        let context = [0xfa, 0x03, 1, b'c'];
        let at = |needle: &[u8]| w.0.windows(needle.len()).position(|win| win == needle);
        assert!(
            at(&profile).is_some() && at(&context).is_some(),
            "lsm_profile = 53 and lsm_mount_context = 63, length-delimited: {:x?}",
            w.0
        );
    }

    #[test]
    fn negative_int32_is_ten_bytes() {
        let mut w = Writer::default();
        w.int32(1, -1);
        assert_eq!(
            w.0,
            [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(int32(Reader(&w.0[1..]).varint().unwrap()), -1);
    }

    #[test]
    fn responses_decode_with_their_nested_messages() {
        let mut w = Writer::default();
        w.uint32(1, ReqType::Notify as u32);
        w.flag(2, true);
        w.message(5, |n| {
            n.string(1, "post-dump");
            n.int32(2, 42);
        });
        w.int32(7, 13);
        w.string(9, "bad things");
        w.message(10, |v| {
            v.int32(1, 4);
            v.int32(2, 1);
            v.int32(4, 1);
        });
        w.message(8, |f| f.flag(1, true));
        let resp = Response::decode(&w.0).unwrap();
        assert_eq!(resp.kind, ReqType::Notify as u64);
        assert!(resp.success);
        assert_eq!(resp.notify, Some(("post-dump".to_owned(), 42)));
        assert_eq!(resp.cr_errno, Some(13));
        assert_eq!(resp.cr_errmsg.as_deref(), Some("bad things"));
        assert_eq!(resp.version.map(|v| v.number()), Some(40101));
        assert_eq!(
            resp.features.map(|f| (f.mem_track, f.lazy_pages)),
            Some((true, false))
        );
        assert!(
            Response::decode(&[0x0a, 5, 1]).is_err(),
            "a field past the end"
        );
    }
}
