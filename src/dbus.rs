//! A small synchronous D-Bus client, for the systemd cgroup driver: method calls to org.freedesktop.systemd1 on the
//! system bus or a user's bus, and waiting for the signals they lead to (JobRemoved). One blocking unix socket, no
//! threads: a call sends its message and reads until the reply to its serial arrives; signals read meanwhile are
//! queued for [`Connection::wait_signal`]. Messages are sent little-endian and read in either byte order; method calls
//! made to us are dropped unanswered, and unix fds are not supported.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};

/// The bus daemon's name (also its interface's) and object, for Hello and AddMatch.
const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// The system bus socket when `$DBUS_SYSTEM_BUS_ADDRESS` names none.
const DEFAULT_SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// How long authentication and each method call may take: sd-bus's and libdbus's default call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Message types.
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;
/// Header flag: the sender wants no reply.
const NO_REPLY_EXPECTED: u8 = 1;

/// Header field codes (the SENDER field, 7, is not needed here).
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SIGNATURE: u8 = 8;

/// The specification's limits: a whole message 128 MiB, an array 64 MiB, 64 nested containers (variants included).
const MAX_MESSAGE: usize = 128 << 20;
const MAX_ARRAY: usize = 64 << 20;
const MAX_DEPTH: usize = 64;

/// A longer line from the bus during authentication is not the reply we wait for.
const MAX_AUTH_LINE: usize = 16 * 1024;

/// The basic type codes this client handles (unix fds, `h`, are not supported).
const BASIC: &[u8] = b"ybnqiuxtdsog";

/// A D-Bus value. A dict entry (`{kv}`, only ever an array's element) is a two-field `Struct` in an `Array` whose
/// element signature says `{kv}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    Double(f64),
    /// `s`
    Str(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `a<element>`: the element's signature (so that an empty array has a type), then the elements.
    Array(String, Vec<Value>),
    /// `(...)`
    Struct(Vec<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// The value's D-Bus type signature, e.g. `a(sv)`.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array(element, _) => format!("a{element}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    /// The text of a `Str`, `ObjectPath` or `Signature`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    /// A property list, `a(sv)`, as systemd's StartTransientUnit and SetUnitProperties take it.
    pub fn properties<S: Into<String>>(properties: impl IntoIterator<Item = (S, Value)>) -> Value {
        let entries = properties
            .into_iter()
            .map(|(name, value)| {
                Value::Struct(vec![
                    Value::Str(name.into()),
                    Value::Variant(Box::new(value)),
                ])
            })
            .collect();
        Value::Array("(sv)".into(), entries)
    }
}

/// An ERROR reply to a method call: `name` is the error's D-Bus name (e.g. `org.freedesktop.systemd1.UnitExists`),
/// `message` its first string argument, if any. Callers tell errors apart with `downcast_ref::<MethodError>()`.
#[derive(Debug)]
pub struct MethodError {
    /// The D-Bus error name.
    pub name: String,
    /// The human-readable text that came with it ("" when none did).
    pub message: String,
}

impl fmt::Display for MethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

impl std::error::Error for MethodError {}

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

/// A connection to a bus, authenticated and registered (it has a unique name).
pub struct Connection {
    stream: UnixStream,
    /// The socket's path, for error messages.
    bus: PathBuf,
    /// The serial of the last message sent.
    serial: u32,
    /// Bytes read but not yet taken as a whole message (or, during authentication, a whole line).
    buf: Vec<u8>,
    /// Signals that arrived while something else was awaited, oldest first.
    signals: VecDeque<Message>,
    /// The uid whose authentication the server has not answered yet (see [`Connection::start_authentication`]).
    authenticating_as: Option<u32>,
}

impl Connection {
    /// Connect to the bus listening at `path`, authenticate as `uid` (SASL EXTERNAL: the bus checks it against the
    /// socket's peer credentials) and register with Hello.
    pub fn connect(path: &Path, uid: u32) -> Result<Connection> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connect to D-Bus {}", path.display()))?;
        let mut conn = Connection::over(stream, path.to_owned());
        conn.start_authentication(uid)?;
        // Hello must come first; its reply, the unique name, is of no use to hull's callers (who address others,
        // never themselves), so it is not awaited: the bus handles a connection's messages in order, and the next
        // call's wait skips the reply.
        conn.send_call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", &[], 0)?;
        Ok(conn)
    }

    /// A connection over `stream`, before authentication.
    fn over(stream: UnixStream, bus: PathBuf) -> Connection {
        Connection {
            stream,
            bus,
            serial: 0,
            buf: Vec::new(),
            signals: VecDeque::new(),
            authenticating_as: None,
        }
    }

    /// The SASL exchange, pipelined as sd-bus does it: a NUL byte, `AUTH EXTERNAL <uid as decimal text,
    /// hex-encoded>` and `BEGIN` go in one write, and the messages that follow need not wait for the server's `OK
    /// <guid>`, which [`Connection::finish_authentication`] reads before the first message that comes back. A
    /// connection then costs no round trip of its own.
    fn start_authentication(&mut self, uid: u32) -> Result<()> {
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|digit| format!("{digit:02x}"))
            .collect();
        self.send(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())
            .with_context(|| {
                format!("authenticate to D-Bus {} as uid {uid}", self.bus.display())
            })?;
        self.authenticating_as = Some(uid);
        Ok(())
    }

    /// Read the server's answer to the authentication (see [`Connection::start_authentication`]), if it is still
    /// due: it must be `OK`.
    fn finish_authentication(&mut self, deadline: Option<Instant>) -> Result<()> {
        let Some(uid) = self.authenticating_as else {
            return Ok(());
        };
        let bus = self.bus.clone();
        let context = || format!("authenticate to D-Bus {} as uid {uid}", bus.display());
        let end = loop {
            if let Some(at) = self.buf.windows(2).position(|pair| pair == b"\r\n") {
                break at;
            }
            if self.buf.len() > MAX_AUTH_LINE {
                bail!(
                    "{}: the bus sent a line of more than {MAX_AUTH_LINE} bytes",
                    context()
                );
            }
            if !self.wait_readable(deadline)? {
                bail!(
                    "{}: timed out after {CALL_TIMEOUT:?} waiting for the reply to AUTH",
                    context()
                );
            }
            self.fill().with_context(context)?;
        };
        let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
        let line = String::from_utf8_lossy(&line);
        if !line.starts_with("OK ") {
            bail!("{}: the bus replied {line:?}", context());
        }
        self.authenticating_as = None;
        Ok(())
    }

    /// Send a method call with the header `flags`, without waiting for anything; its serial.
    fn send_call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
        flags: u8,
    ) -> Result<u32> {
        self.serial = self.serial.checked_add(1).unwrap_or(1);
        let serial = self.serial;
        let mut fields = vec![
            (PATH, Value::ObjectPath(path.into())),
            (DESTINATION, Value::Str(destination.into())),
            (INTERFACE, Value::Str(interface.into())),
            (MEMBER, Value::Str(member.into())),
        ];
        if !args.is_empty() {
            let signature = args.iter().map(Value::signature).collect();
            fields.push((SIGNATURE, Value::Signature(signature)));
        }
        let message = encode_message(METHOD_CALL, serial, flags, fields, args)?;
        self.send(&message).with_context(|| {
            format!("D-Bus call {interface}.{member} on {}", self.bus.display())
        })?;
        Ok(serial)
    }

    /// Call `interface.member` on the object `path` of `destination` with `args`, and wait (at most 25 seconds) for
    /// the reply: its arguments, or a [`MethodError`] for an ERROR reply.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>> {
        self.try_call(destination, path, interface, member, args)
            .with_context(|| format!("D-Bus call {interface}.{member} on {}", self.bus.display()))
    }

    fn try_call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>> {
        let serial = self.send_call(destination, path, interface, member, args, 0)?;
        let deadline = Instant::now().checked_add(CALL_TIMEOUT);
        loop {
            let Some(message) = self.next_message(deadline)? else {
                bail!("timed out after {CALL_TIMEOUT:?} waiting for the reply");
            };
            match message.kind {
                SIGNAL => self.signals.push_back(message),
                METHOD_RETURN if message.reply_serial == Some(serial) => return message.body(),
                ERROR if message.reply_serial == Some(serial) => {
                    let text = match message.body()?.first() {
                        Some(Value::Str(text)) => text.clone(),
                        _ => String::new(),
                    };
                    return Err(MethodError {
                        name: message.error_name,
                        message: text,
                    }
                    .into());
                }
                // A late reply to an earlier call that timed out, or a method call to us.
                _ => {}
            }
        }
    }

    /// org.freedesktop.DBus.AddMatch: have the bus send us the signals `rule` matches, e.g.
    /// `type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'`.
    pub fn add_match(&mut self, rule: &str) -> Result<()> {
        // No reply is asked for: the bus applies the rule before it routes this connection's next message, so a
        // signal caused by a later call is matched.
        self.send_call(
            BUS_NAME,
            BUS_PATH,
            BUS_NAME,
            "AddMatch",
            &[Value::Str(rule.into())],
            NO_REPLY_EXPECTED,
        )?;
        Ok(())
    }

    /// The arguments of the first signal `interface.member`, queued or arriving within `timeout`, that `accept`
    /// takes. Signals it does not take stay queued for later waits.
    pub fn wait_signal(
        &mut self,
        interface: &str,
        member: &str,
        mut accept: impl FnMut(&[Value]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let found = self
            .find_signal(interface, member, &mut accept, timeout)
            .with_context(|| {
                format!(
                    "wait for {interface}.{member} on D-Bus {}",
                    self.bus.display()
                )
            })?;
        match found {
            Some(args) => Ok(args),
            None => bail!(
                "timed out after {timeout:?} waiting for {interface}.{member} on D-Bus {}",
                self.bus.display()
            ),
        }
    }

    /// [`Connection::wait_signal`], with None for a timeout.
    fn find_signal(
        &mut self,
        interface: &str,
        member: &str,
        accept: &mut dyn FnMut(&[Value]) -> bool,
        timeout: Duration,
    ) -> Result<Option<Vec<Value>>> {
        let wanted = |message: &Message| message.interface == interface && message.member == member;
        for at in 0..self.signals.len() {
            if wanted(&self.signals[at]) {
                let args = self.signals[at].body()?;
                if accept(&args) {
                    self.signals.remove(at);
                    return Ok(Some(args));
                }
            }
        }
        let deadline = Instant::now().checked_add(timeout);
        while let Some(message) = self.next_message(deadline)? {
            if message.kind != SIGNAL {
                // A late reply to an earlier call that timed out, or a method call to us.
                continue;
            }
            if wanted(&message) {
                let args = message.body()?;
                if accept(&args) {
                    return Ok(Some(args));
                }
            }
            self.signals.push_back(message);
        }
        Ok(None)
    }

    fn send(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            match send(self.stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("write to D-Bus {}", self.bus.display()))
                }
            }
        }
        Ok(())
    }

    /// The next whole message, reading as needed until `deadline` (None: no limit); None when it passes first.
    fn next_message(&mut self, deadline: Option<Instant>) -> Result<Option<Message>> {
        self.finish_authentication(deadline)?;
        loop {
            if let Some(len) = message_len(&self.buf)? {
                if self.buf.len() >= len {
                    let rest = self.buf.split_off(len);
                    return Message::parse(std::mem::replace(&mut self.buf, rest)).map(Some);
                }
            }
            if !self.wait_readable(deadline)? {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Wait until the socket is readable (true) or `deadline` passes (false).
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            let timeout = match left {
                // Rounded up, so as not to wake just before the deadline.
                Some(left) => PollTimeout::try_from(left.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) if left.is_some_and(|left| left.is_zero()) => return Ok(false),
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => return Ok(true),
                Err(e) => {
                    return Err(e).with_context(|| format!("poll D-Bus {}", self.bus.display()))
                }
            }
        }
    }

    /// Append what the socket has to `buf`, without blocking; an error if the bus has closed the connection.
    fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 8192];
        match recv(self.stream.as_raw_fd(), &mut chunk, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => bail!("D-Bus {} closed the connection", self.bus.display()),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("read from D-Bus {}", self.bus.display()))
            }
        }
        Ok(())
    }
}

/// A received message: the header fields used here, and the body left encoded until someone wants it (a signal
/// nobody waits for is never decoded).
struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    interface: String,
    member: String,
    error_name: String,
    signature: String,
    /// The whole message, as received.
    data: Vec<u8>,
    body_start: usize,
    big_endian: bool,
}

impl Message {
    /// Parse the header of `data`, one whole message (its length as [`message_len`] says).
    fn parse(data: Vec<u8>) -> Result<Message> {
        let big_endian = big_endian(data[0])?;
        let mut reader = Reader {
            data: &data,
            pos: 12,
            big_endian,
        };
        let Value::Array(_, fields) = reader.value(b"a(yv)", 0)? else {
            bail!("D-Bus header fields are not an array");
        };
        reader.align(8)?;
        let body_start = reader.pos;
        let mut message = Message {
            kind: data[1],
            reply_serial: None,
            interface: String::new(),
            member: String::new(),
            error_name: String::new(),
            signature: String::new(),
            data: Vec::new(),
            body_start,
            big_endian,
        };
        for field in fields {
            let Value::Struct(field) = field else {
                continue;
            };
            let [Value::Byte(code), Value::Variant(value)] = field.as_slice() else {
                continue;
            };
            match (*code, value.as_ref()) {
                (REPLY_SERIAL, Value::U32(serial)) => message.reply_serial = Some(*serial),
                (INTERFACE, Value::Str(s)) => message.interface = s.clone(),
                (MEMBER, Value::Str(s)) => message.member = s.clone(),
                (ERROR_NAME, Value::Str(s)) => message.error_name = s.clone(),
                (SIGNATURE, Value::Signature(s)) => message.signature = s.clone(),
                // Fields of no use here, and codes this client does not know.
                _ => {}
            }
        }
        message.data = data;
        Ok(message)
    }

    /// The body's values, as its SIGNATURE field says.
    fn body(&self) -> Result<Vec<Value>> {
        let mut reader = Reader {
            data: &self.data,
            pos: self.body_start,
            big_endian: self.big_endian,
        };
        let values = reader
            .values(self.signature.as_bytes(), 0)
            .with_context(|| format!("decode a D-Bus message body of type {:?}", self.signature))?;
        ensure!(
            reader.pos == self.data.len(),
            "a D-Bus message body of type {:?} has {} bytes left over",
            self.signature,
            self.data.len() - reader.pos
        );
        Ok(values)
    }
}

/// The byte order a message's first byte declares: 'l' little-endian, 'B' big-endian.
fn big_endian(flag: u8) -> Result<bool> {
    match flag {
        b'l' => Ok(false),
        b'B' => Ok(true),
        other => bail!("D-Bus message of unknown byte order {other:#04x}"),
    }
}

/// The length of the message `buf` starts with, once its fixed 16-byte start is there; an error for one this client
/// would not accept (too large, another protocol version).
fn message_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let mut reader = Reader {
        data: &buf[..16],
        pos: 4,
        big_endian: big_endian(buf[0])?,
    };
    ensure!(buf[3] == 1, "D-Bus message of protocol version {}", buf[3]);
    let body_len = u64::from(reader.u32()?);
    reader.u32()?;
    let fields_len = u64::from(reader.u32()?);
    let len = (16 + fields_len).next_multiple_of(8) + body_len;
    ensure!(
        len <= MAX_MESSAGE as u64,
        "D-Bus message of {len} bytes (the limit is {MAX_MESSAGE})"
    );
    Ok(Some(len as usize))
}

/// A whole message of `kind`, little-endian, with the header `flags` and `fields` and `body`.
fn encode_message(
    kind: u8,
    serial: u32,
    flags: u8,
    fields: Vec<(u8, Value)>,
    body: &[Value],
) -> Result<Vec<u8>> {
    let mut out = vec![b'l', kind, flags, 1, 0, 0, 0, 0];
    out.extend_from_slice(&serial.to_le_bytes());
    let fields = fields
        .into_iter()
        .map(|(code, value)| {
            Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(value))])
        })
        .collect();
    encode(&mut out, &Value::Array("(yv)".into(), fields))?;
    pad(&mut out, 8);
    let body_start = out.len();
    for value in body {
        encode(&mut out, value)?;
    }
    ensure!(
        out.len() <= MAX_MESSAGE,
        "D-Bus message of {} bytes (the limit is {MAX_MESSAGE})",
        out.len()
    );
    let body_len = (out.len() - body_start) as u32;
    out[4..8].copy_from_slice(&body_len.to_le_bytes());
    Ok(out)
}

/// Zero bytes up to the next multiple of `alignment` (offsets count from the message's start).
fn pad(out: &mut Vec<u8>, alignment: usize) {
    out.resize(out.len().next_multiple_of(alignment), 0);
}

/// Append `value`, little-endian, to `out`, a message being built.
fn encode(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    match value {
        Value::Byte(b) => out.push(*b),
        Value::Bool(b) => encode_fixed(out, &u32::from(*b).to_le_bytes()),
        Value::I16(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::U16(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::I32(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::U32(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::I64(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::U64(n) => encode_fixed(out, &n.to_le_bytes()),
        Value::Double(d) => encode_fixed(out, &d.to_bits().to_le_bytes()),
        Value::Str(s) => encode_string(out, s)?,
        Value::ObjectPath(path) => {
            check_object_path(path)?;
            encode_string(out, path)?;
        }
        Value::Signature(signature) => {
            check_signature(signature)?;
            encode_signature(out, signature)?;
        }
        Value::Array(element, items) => {
            let signature = value.signature();
            ensure!(
                type_len(signature.as_bytes(), 0).ok() == Some(signature.len()),
                "invalid D-Bus array element type {element:?}"
            );
            pad(out, 4);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            pad(out, alignment(element.as_bytes()[0]));
            let start = out.len();
            for item in items {
                let signature = item.signature();
                ensure!(
                    element_matches(element, &signature),
                    "a D-Bus array of {element} cannot hold a {signature}"
                );
                encode(out, item)?;
            }
            let len = out.len() - start;
            ensure!(
                len <= MAX_ARRAY,
                "D-Bus array of {len} bytes (the limit is {MAX_ARRAY})"
            );
            out[len_at..len_at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        Value::Struct(fields) => {
            ensure!(!fields.is_empty(), "a D-Bus struct cannot be empty");
            pad(out, 8);
            for field in fields {
                encode(out, field)?;
            }
        }
        Value::Variant(inner) => {
            encode_signature(out, &inner.signature())?;
            encode(out, inner)?;
        }
    }
    Ok(())
}

/// A number, aligned to its own size.
fn encode_fixed(out: &mut Vec<u8>, bytes: &[u8]) {
    pad(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn encode_string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    ensure!(!s.contains('\0'), "a D-Bus string cannot hold NUL: {s:?}");
    encode_fixed(out, &(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn encode_signature(out: &mut Vec<u8>, signature: &str) -> Result<()> {
    let len = u8::try_from(signature.len())
        .ok()
        .with_context(|| format!("D-Bus signature longer than 255 bytes: {signature}"))?;
    out.push(len);
    out.extend_from_slice(signature.as_bytes());
    out.push(0);
    Ok(())
}

/// Whether an array of `element` may hold a value of type `signature`: the same type, or for a dict entry `{kv}` a
/// struct `(kv)`.
fn element_matches(element: &str, signature: &str) -> bool {
    match element.strip_prefix('{').and_then(|e| e.strip_suffix('}')) {
        Some(entry) => {
            signature
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                == Some(entry)
        }
        None => element == signature,
    }
}

/// `/`, or `/`-separated non-empty elements of `[A-Za-z0-9_]`.
fn check_object_path(path: &str) -> Result<()> {
    let valid = path == "/"
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|element| {
                !element.is_empty()
                    && element
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        });
    ensure!(valid, "invalid D-Bus object path {path:?}");
    Ok(())
}

/// A sequence of complete types this client handles.
fn check_signature(signature: &str) -> Result<()> {
    let bytes = signature.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        at += type_len(&bytes[at..], 0)
            .with_context(|| format!("invalid D-Bus signature {signature:?}"))?;
    }
    Ok(())
}

/// The length of the single complete type `signature` starts with, nested at `depth`.
fn type_len(signature: &[u8], depth: usize) -> Result<usize> {
    ensure!(depth <= MAX_DEPTH, "types nest more than {MAX_DEPTH} deep");
    match signature.first() {
        None => bail!("a type is incomplete"),
        Some(b'a') if signature.get(1) == Some(&b'{') => {
            ensure!(
                signature.get(2).is_some_and(|key| BASIC.contains(key)),
                "a dict entry's key must be of a basic type"
            );
            let value = type_len(&signature[3..], depth + 1)?;
            ensure!(
                signature.get(3 + value) == Some(&b'}'),
                "a dict entry must hold two types"
            );
            Ok(4 + value)
        }
        Some(b'a') => Ok(1 + type_len(&signature[1..], depth + 1)?),
        Some(b'(') => {
            let mut at = 1;
            while signature.get(at) != Some(&b')') {
                at += type_len(&signature[at..], depth + 1)?;
            }
            ensure!(at > 1, "a struct cannot be empty");
            Ok(at + 1)
        }
        Some(code) if BASIC.contains(code) || *code == b'v' => Ok(1),
        Some(b'h') => bail!("unix fds are not supported"),
        Some(code) => bail!("unknown type code {:?}", char::from(*code)),
    }
}

/// The alignment of the type whose code is `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Decodes values from a received message; offsets (and so alignment) count from the message's start.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .context("D-Bus message ends inside a value")?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn align(&mut self, alignment: usize) -> Result<()> {
        self.take(self.pos.next_multiple_of(alignment) - self.pos)?;
        Ok(())
    }

    /// An `N`-byte number, aligned to `N`, as little-endian bytes.
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        if self.big_endian {
            bytes.reverse();
        }
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    /// `len` bytes of text and the NUL after them.
    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        ensure!(self.take(1)? == [0], "D-Bus string not terminated by NUL");
        ensure!(!bytes.contains(&0), "D-Bus string holds a NUL");
        String::from_utf8(bytes.to_vec()).context("D-Bus string is not UTF-8")
    }

    fn signature(&mut self) -> Result<String> {
        let len = self.take(1)?[0];
        let signature = self.text(usize::from(len))?;
        check_signature(&signature)?;
        Ok(signature)
    }

    /// The values of the complete types that make up `signature`.
    fn values(&mut self, signature: &[u8], depth: usize) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        let mut at = 0;
        while at < signature.len() {
            let len = type_len(&signature[at..], depth)?;
            values.push(self.value(&signature[at..at + len], depth)?);
            at += len;
        }
        Ok(values)
    }

    /// A value of `signature`, a single complete type (as [`type_len`] found it).
    fn value(&mut self, signature: &[u8], depth: usize) -> Result<Value> {
        ensure!(
            depth <= MAX_DEPTH,
            "D-Bus values nest more than {MAX_DEPTH} deep"
        );
        let value = match signature[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => bail!("D-Bus boolean of value {n}"),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::Double(f64::from_bits(u64::from_le_bytes(self.fixed()?))),
            b's' => {
                let len = self.u32()? as usize;
                Value::Str(self.text(len)?)
            }
            b'o' => {
                let len = self.u32()? as usize;
                let path = self.text(len)?;
                check_object_path(&path)?;
                Value::ObjectPath(path)
            }
            b'g' => Value::Signature(self.signature()?),
            b'v' => {
                let signature = self.signature()?;
                ensure!(
                    type_len(signature.as_bytes(), depth + 1)? == signature.len(),
                    "D-Bus variant of more than one type: {signature:?}"
                );
                Value::Variant(Box::new(self.value(signature.as_bytes(), depth + 1)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                ensure!(
                    len <= MAX_ARRAY,
                    "D-Bus array of {len} bytes (the limit is {MAX_ARRAY})"
                );
                let element = &signature[1..];
                self.align(alignment(element[0]))?;
                let end = self.pos + len;
                ensure!(end <= self.data.len(), "D-Bus message ends inside an array");
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(element, depth + 1)?);
                }
                ensure!(
                    self.pos == end,
                    "D-Bus array element crosses the array's end"
                );
                Value::Array(String::from_utf8_lossy(element).into_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let fields = &signature[1..signature.len() - 1];
                Value::Struct(self.values(fields, depth + 1)?)
            }
            code => bail!("unsupported D-Bus type code {:?}", char::from(code)),
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, Command, Stdio};

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn v(value: Value) -> Value {
        Value::Variant(Box::new(value))
    }

    /// `body` sent as a signal and decoded back.
    fn round_trip(body: &[Value]) -> Vec<Value> {
        let bytes = signal("org.example.I", "M", body);
        assert_eq!(message_len(&bytes).unwrap(), Some(bytes.len()));
        let message = Message::parse(bytes).unwrap();
        assert_eq!(message.kind, SIGNAL);
        message.body().unwrap()
    }

    fn signal(interface: &str, member: &str, body: &[Value]) -> Vec<u8> {
        let mut fields = vec![
            (PATH, Value::ObjectPath("/org/example".into())),
            (INTERFACE, s(interface)),
            (MEMBER, s(member)),
        ];
        if !body.is_empty() {
            let signature = body.iter().map(Value::signature).collect();
            fields.push((SIGNATURE, Value::Signature(signature)));
        }
        encode_message(SIGNAL, 99, 0, fields, body).unwrap()
    }

    fn reply(kind: u8, reply_serial: u32, error_name: Option<&str>, body: &[Value]) -> Vec<u8> {
        let mut fields = vec![(REPLY_SERIAL, Value::U32(reply_serial))];
        if let Some(name) = error_name {
            fields.push((ERROR_NAME, s(name)));
        }
        if !body.is_empty() {
            let signature = body.iter().map(Value::signature).collect();
            fields.push((SIGNATURE, Value::Signature(signature)));
        }
        encode_message(kind, 7, 0, fields, body).unwrap()
    }

    fn encoded(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, value).unwrap();
        out
    }

    #[test]
    fn every_kind_of_value_round_trips() {
        let body = vec![
            Value::Byte(0xfe),
            Value::Bool(true),
            Value::Bool(false),
            Value::I16(-2),
            Value::U16(65535),
            Value::I32(-70000),
            Value::U32(u32::MAX),
            Value::Byte(1),
            Value::I64(i64::MIN),
            Value::U64(u64::MAX),
            Value::Double(-1.5),
            s("héllo"),
            s(""),
            Value::ObjectPath("/org/freedesktop/systemd1/job/42".into()),
            Value::ObjectPath("/".into()),
            Value::Signature("a{sv}(uoss)".into()),
            Value::Signature("".into()),
            Value::Array("t".into(), vec![Value::U64(1), Value::U64(2)]),
            Value::Array("(sv)".into(), vec![]),
            Value::Struct(vec![Value::Byte(3), Value::U64(4)]),
            v(Value::U32(5)),
        ];
        assert_eq!(round_trip(&body), body);
    }

    #[test]
    fn nested_values_round_trip() {
        let nested = Value::properties([
            ("Description", s("hull container")),
            ("PIDs", Value::Array("u".into(), vec![Value::U32(1234)])),
            ("Delegate", Value::Bool(true)),
            ("MemoryMax", Value::U64(1 << 30)),
            (
                "DeviceAllow",
                Value::Array(
                    "(ss)".into(),
                    vec![Value::Struct(vec![s("/dev/null"), s("rwm")])],
                ),
            ),
            (
                "Deep",
                v(v(Value::Array(
                    "ay".into(),
                    vec![Value::Array("y".into(), vec![Value::Byte(9)])],
                ))),
            ),
        ]);
        let dict = Value::Array(
            "{sv}".into(),
            vec![
                Value::Struct(vec![s("a"), v(Value::I32(1))]),
                Value::Struct(vec![s("b"), v(Value::Array("{sv}".into(), vec![]))]),
            ],
        );
        let aux = Value::Array("(sa(sv))".into(), vec![]);
        let body = vec![
            s("x.scope"),
            s("replace"),
            nested,
            aux,
            dict,
            Value::Byte(7),
        ];
        assert_eq!(body[2].signature(), "a(sv)");
        assert_eq!(body[3].signature(), "a(sa(sv))");
        assert_eq!(body[4].signature(), "a{sv}");
        assert_eq!(round_trip(&body), body);
    }

    #[test]
    fn alignment_and_lengths_are_as_the_specification_says() {
        // A u64 array: length 8, padding to 8, the element.
        assert_eq!(
            encoded(&Value::Array("t".into(), vec![Value::U64(5)])),
            [8, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        );
        // An empty array of structs still pads to the element's alignment.
        assert_eq!(encoded(&Value::Array("(sv)".into(), vec![])), [0; 8]);
        assert_eq!(encoded(&Value::Array("y".into(), vec![])), [0; 4]);
        assert_eq!(
            encoded(&Value::Struct(vec![Value::Byte(1), Value::U16(2), s("ab")])),
            [1, 0, 2, 0, 2, 0, 0, 0, b'a', b'b', 0]
        );
        assert_eq!(
            encoded(&v(Value::Signature("as".into()))),
            [1, b'g', 0, 2, b'a', b's', 0]
        );
        assert_eq!(encoded(&Value::Bool(true)), [1, 0, 0, 0]);
    }

    /// org.freedesktop.DBus.Hello with serial 1, byte for byte as libdbus 1.14 sends it (strace of dbus-send).
    const HELLO: &[u8] = b"l\x01\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x6e\x00\x00\x00\
        \x01\x01o\x00\x15\x00\x00\x00/org/freedesktop/DBus\x00\x00\x00\
        \x06\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x02\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x03\x01s\x00\x05\x00\x00\x00Hello\x00\x00\x00";

    /// What dbus-daemon 1.14 sent back to it in one read: the reply (`:1.0`) and the NameAcquired signal.
    const HELLO_REPLY_AND_NAME_ACQUIRED: &[u8] =
        b"l\x02\x01\x01\x09\x00\x00\x00\x01\x00\x00\x00\x3d\x00\x00\x00\
        \x06\x01s\x00\x04\x00\x00\x00:1.0\x00\x00\x00\x00\
        \x05\x01u\x00\x01\x00\x00\x00\
        \x08\x01g\x00\x01s\x00\x00\
        \x07\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x04\x00\x00\x00:1.0\x00\
        l\x04\x01\x01\x09\x00\x00\x00\x02\x00\x00\x00\x8d\x00\x00\x00\
        \x01\x01o\x00\x15\x00\x00\x00/org/freedesktop/DBus\x00\x00\x00\
        \x02\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x03\x01s\x00\x0c\x00\x00\x00NameAcquired\x00\x00\x00\x00\
        \x06\x01s\x00\x04\x00\x00\x00:1.0\x00\x00\x00\x00\
        \x08\x01g\x00\x01s\x00\x00\
        \x07\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x04\x00\x00\x00:1.0\x00";

    fn pair() -> (Connection, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (Connection::over(ours, PathBuf::from("/test/bus")), theirs)
    }

    /// Everything the peer has received so far.
    fn received(peer: &mut UnixStream) -> Vec<u8> {
        peer.set_nonblocking(true).unwrap();
        let mut bytes = Vec::new();
        let _ = peer.read_to_end(&mut bytes);
        peer.set_nonblocking(false).unwrap();
        bytes
    }

    #[test]
    fn hello_is_sent_as_libdbus_sends_it_and_its_reply_skipped() {
        assert_eq!(HELLO_REPLY_AND_NAME_ACQUIRED.len(), 258);
        let (mut conn, mut peer) = pair();
        conn.send_call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", &[], 0)
            .unwrap();
        assert_eq!(received(&mut peer), HELLO);
        // Nobody waits for Hello's reply: a later wait passes over it, and the signal that came with it is found.
        peer.write_all(HELLO_REPLY_AND_NAME_ACQUIRED).unwrap();
        let args = conn
            .wait_signal(BUS_NAME, "NameAcquired", |_| true, Duration::ZERO)
            .unwrap();
        assert_eq!(args, [s(":1.0")]);
    }

    #[test]
    fn authentication_sends_the_uid_in_hex_and_names_a_refusal() {
        let (mut conn, mut peer) = pair();
        conn.start_authentication(1000).unwrap();
        assert_eq!(
            received(&mut peer),
            b"\0AUTH EXTERNAL 31303030\r\nBEGIN\r\n"
        );
        // The answer is read before the first message, which may come in the same read.
        peer.write_all(b"OK 472982bd148723acff9c01336b163bf2\r\n")
            .unwrap();
        peer.write_all(HELLO_REPLY_AND_NAME_ACQUIRED).unwrap();
        let args = conn
            .wait_signal(BUS_NAME, "NameAcquired", |_| true, Duration::ZERO)
            .unwrap();
        assert_eq!(args, [s(":1.0")]);

        let (mut conn, mut peer) = pair();
        conn.start_authentication(0).unwrap();
        peer.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        let err = conn
            .wait_signal(BUS_NAME, "NameAcquired", |_| true, Duration::ZERO)
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "wait for org.freedesktop.DBus.NameAcquired on D-Bus /test/bus: authenticate to D-Bus /test/bus as uid 0: \
             the bus replied \"REJECTED EXTERNAL\""
        );
    }

    /// A big-endian writer, independent of the encoder under test.
    struct Be(Vec<u8>);

    impl Be {
        fn pad(&mut self, alignment: usize) {
            while self.0.len() % alignment != 0 {
                self.0.push(0);
            }
        }
        fn byte(&mut self, b: u8) {
            self.0.push(b);
        }
        fn u32(&mut self, n: u32) {
            self.pad(4);
            self.0.extend_from_slice(&n.to_be_bytes());
        }
        fn u64(&mut self, n: u64) {
            self.pad(8);
            self.0.extend_from_slice(&n.to_be_bytes());
        }
        fn str(&mut self, text: &str) {
            self.u32(text.len() as u32);
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(0);
        }
        fn sig(&mut self, text: &str) {
            self.0.push(text.len() as u8);
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(0);
        }
        /// A placeholder for an array's length, then the padding to its elements' `alignment`: where the length
        /// goes and where the elements start.
        fn array_start(&mut self, alignment: usize) -> (usize, usize) {
            self.u32(0);
            let len_at = self.0.len() - 4;
            self.pad(alignment);
            (len_at, self.0.len())
        }
        fn array_end(&mut self, (len_at, start): (usize, usize)) {
            let len = (self.0.len() - start) as u32;
            self.0[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
        fn field(&mut self, code: u8, signature: &str, text: &str) {
            self.pad(8);
            self.byte(code);
            self.sig(signature);
            match signature {
                "g" => self.sig(text),
                _ => self.str(text),
            }
        }
    }

    /// A big-endian signal with `signature` and the body `write_body` writes.
    fn big_endian_signal(
        member: &str,
        signature: &str,
        write_body: impl FnOnce(&mut Be),
    ) -> Vec<u8> {
        let mut fields = Be(Vec::new());
        fields.field(PATH, "o", "/org/freedesktop/systemd1");
        fields.field(INTERFACE, "s", "org.freedesktop.systemd1.Manager");
        fields.field(MEMBER, "s", member);
        fields.field(SIGNATURE, "g", signature);
        let mut body = Be(Vec::new());
        write_body(&mut body);
        let mut message = Be(vec![b'B', SIGNAL, 0, 1]);
        message.u32(body.0.len() as u32);
        message.u32(3);
        message.u32(fields.0.len() as u32);
        message.0.extend_from_slice(&fields.0);
        message.pad(8);
        message.0.extend_from_slice(&body.0);
        message.0
    }

    #[test]
    fn big_endian_messages_decode() {
        let job_removed = big_endian_signal("JobRemoved", "uoss", |body| {
            body.u32(7);
            body.str("/org/freedesktop/systemd1/job/7");
            body.str("hull-x.scope");
            body.str("done");
        });
        let message = Message::parse(job_removed.clone()).unwrap();
        assert_eq!(message_len(&job_removed).unwrap(), Some(job_removed.len()));
        assert_eq!(message.interface, "org.freedesktop.systemd1.Manager");
        assert_eq!(message.member, "JobRemoved");
        assert_eq!(
            message.body().unwrap(),
            [
                Value::U32(7),
                Value::ObjectPath("/org/freedesktop/systemd1/job/7".into()),
                s("hull-x.scope"),
                s("done"),
            ]
        );

        // sa{sv}: a dict whose values are variants of a string, a u64 and an array of structs of variants.
        let nested = big_endian_signal("Changed", "sa{sv}", |body| {
            body.str("org.freedesktop.systemd1.Unit");
            let dict = body.array_start(8);
            body.pad(8);
            body.str("ActiveState");
            body.sig("s");
            body.str("active");
            body.pad(8);
            body.str("TasksMax");
            body.sig("t");
            body.u64(512);
            body.pad(8);
            body.str("Props");
            body.sig("a(sv)");
            let props = body.array_start(8);
            body.pad(8);
            body.str("x");
            body.sig("u");
            body.u32(9);
            body.array_end(props);
            body.array_end(dict);
        });
        let message = Message::parse(nested).unwrap();
        assert_eq!(
            message.body().unwrap(),
            [
                s("org.freedesktop.systemd1.Unit"),
                Value::Array(
                    "{sv}".into(),
                    vec![
                        Value::Struct(vec![s("ActiveState"), v(s("active"))]),
                        Value::Struct(vec![s("TasksMax"), v(Value::U64(512))]),
                        Value::Struct(vec![
                            s("Props"),
                            v(Value::properties([("x", Value::U32(9))])),
                        ]),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn invalid_values_are_refused_when_encoding() {
        let mut out = Vec::new();
        for (value, error) in [
            (
                Value::Array("s".into(), vec![Value::U32(1)]),
                "cannot hold a u",
            ),
            (Value::Array("ss".into(), vec![]), "element type"),
            (Value::Array("{vs}".into(), vec![]), "element type"),
            (Value::ObjectPath("/a//b".into()), "object path"),
            (Value::ObjectPath("a".into()), "object path"),
            (Value::ObjectPath("/a-b".into()), "object path"),
            (s("a\0b"), "NUL"),
            (Value::Struct(vec![]), "empty"),
            (Value::Signature("(".into()), "invalid D-Bus signature"),
            (Value::Signature("ah".into()), "invalid D-Bus signature"),
            (
                v(Value::Array(format!("({})", "y".repeat(300)), vec![])),
                "longer than 255",
            ),
        ] {
            let err = encode(&mut out, &value).unwrap_err();
            assert!(format!("{err:#}").contains(error), "{value:?}: {err:#}");
        }
        // A dict entry's value given as the struct it is encoded as.
        encode(
            &mut out,
            &Value::Array(
                "{sv}".into(),
                vec![Value::Struct(vec![s("k"), v(Value::Byte(1))])],
            ),
        )
        .unwrap();
    }

    #[test]
    fn absurd_or_malformed_messages_are_errors() {
        // A body of 4 GiB is refused from the first 16 bytes.
        let mut huge = signal("org.example.I", "M", &[]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = message_len(&huge).unwrap_err();
        assert!(err.to_string().contains("the limit is 134217728"), "{err}");
        let mut bad = huge.clone();
        bad[0] = b'x';
        assert!(message_len(&bad)
            .unwrap_err()
            .to_string()
            .contains("byte order"));

        // An array claiming 2 GiB inside a small message.
        let mut array = signal(
            "org.example.I",
            "M",
            &[Value::Array("y".into(), vec![Value::Byte(1)])],
        );
        let at = array.len() - 5;
        array[at..at + 4].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        let err = Message::parse(array).unwrap().body().unwrap_err();
        assert!(
            format!("{err:#}").contains("the limit is 67108864"),
            "{err:#}"
        );

        // A string running past the end.
        let mut string = signal("org.example.I", "M", &[s("abc")]);
        let at = string.len() - 8;
        string[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        let err = Message::parse(string).unwrap().body().unwrap_err();
        assert!(format!("{err:#}").contains("ends inside"), "{err:#}");

        // Variants nested past the limit are an error, not a stack overflow.
        let mut deep = Value::Byte(1);
        for _ in 0..100 {
            deep = v(deep);
        }
        let err = Message::parse(signal("org.example.I", "M", &[deep]))
            .unwrap()
            .body()
            .unwrap_err();
        assert!(format!("{err:#}").contains("nest more than 64"), "{err:#}");
    }

    #[test]
    fn replies_and_signals_arrive_split_and_combined() {
        let (mut conn, mut peer) = pair();
        let early = signal("org.example.I", "Early", &[Value::U32(1)]);
        let job = signal("org.example.I", "JobRemoved", &[Value::U32(2), s("done")]);
        let other_job = signal("org.example.I", "JobRemoved", &[Value::U32(3), s("failed")]);
        let late = signal("org.example.I", "Late", &[s("late")]);
        // Two signals, a stale reply, the reply to serial 1 and a third signal in one write, half of a fourth.
        let mut bytes = [
            early,
            other_job,
            reply(METHOD_RETURN, 77, None, &[]),
            reply(
                METHOD_RETURN,
                1,
                None,
                &[Value::ObjectPath("/job/1".into())],
            ),
            job,
        ]
        .concat();
        bytes.extend_from_slice(&late[..late.len() / 2]);
        peer.write_all(&bytes).unwrap();
        let args = conn
            .call(
                "org.example",
                "/org/example",
                "org.example.I",
                "Do",
                &[s("x")],
            )
            .unwrap();
        assert_eq!(args, [Value::ObjectPath("/job/1".into())]);

        // The job we want is found among the queued signals; the other one stays queued.
        let args = conn
            .wait_signal(
                "org.example.I",
                "JobRemoved",
                |args| args.first() == Some(&Value::U32(2)),
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(args, [Value::U32(2), s("done")]);
        let args = conn
            .wait_signal("org.example.I", "JobRemoved", |_| true, Duration::ZERO)
            .unwrap();
        assert_eq!(args, [Value::U32(3), s("failed")]);

        // Half a message is no message yet, and arriving a byte at a time does not matter.
        let err = conn
            .wait_signal("org.example.I", "Late", |_| true, Duration::from_millis(20))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 20ms waiting for org.example.I.Late on D-Bus /test/bus"
        );
        for byte in &late[late.len() / 2..late.len() - 1] {
            peer.write_all(&[*byte]).unwrap();
            let err = conn
                .wait_signal("org.example.I", "Late", |_| true, Duration::ZERO)
                .unwrap_err();
            assert!(
                err.to_string().starts_with("timed out after 0ns"),
                "{err:#}"
            );
        }
        peer.write_all(&late[late.len() - 1..]).unwrap();
        let args = conn
            .wait_signal("org.example.I", "Late", |_| true, Duration::ZERO)
            .unwrap();
        assert_eq!(args, [s("late")]);
        assert_eq!(
            conn.wait_signal("org.example.I", "Early", |_| true, Duration::ZERO)
                .unwrap(),
            [Value::U32(1)]
        );

        // The call went out as serial 1 with its signature.
        let sent = received(&mut peer);
        assert_eq!(message_len(&sent).unwrap(), Some(sent.len()));
        assert_eq!(sent[8..12], 1u32.to_le_bytes());
        let sent = Message::parse(sent).unwrap();
        assert_eq!(
            (sent.kind, sent.member.as_str(), sent.signature.as_str()),
            (METHOD_CALL, "Do", "s")
        );
        assert_eq!(sent.body().unwrap(), [s("x")]);
    }

    #[test]
    fn an_error_reply_carries_its_name_and_text() {
        let (mut conn, mut peer) = pair();
        let text = "Unit x.scope already exists.";
        peer.write_all(&reply(
            ERROR,
            1,
            Some("org.freedesktop.systemd1.UnitExists"),
            &[s(text)],
        ))
        .unwrap();
        let err = conn
            .call(
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "StartTransientUnit",
                &[],
            )
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "D-Bus call org.freedesktop.systemd1.Manager.StartTransientUnit on /test/bus: \
             org.freedesktop.systemd1.UnitExists: Unit x.scope already exists."
        );
        let error = err.downcast_ref::<MethodError>().unwrap();
        assert_eq!(error.name, "org.freedesktop.systemd1.UnitExists");
        assert_eq!(error.message, text);
    }

    #[test]
    fn a_closed_bus_or_an_absurd_message_fails_the_wait() {
        let (mut conn, mut peer) = pair();
        let mut huge = signal("org.example.I", "M", &[]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        peer.write_all(&huge[..16]).unwrap();
        let err = conn
            .wait_signal("org.example.I", "M", |_| true, Duration::from_secs(5))
            .unwrap_err();
        assert!(format!("{err:#}").contains("the limit is"), "{err:#}");

        let (mut conn, peer) = pair();
        drop(peer);
        let err = conn
            .wait_signal("org.example.I", "M", |_| true, Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "wait for org.example.I.M on D-Bus /test/bus: D-Bus /test/bus closed the connection"
        );
    }

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

    /// A private dbus-daemon, killed when dropped.
    struct Daemon(Child);

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A connection's unique name, from the NameAcquired signal the bus sent it after Hello (and it queued).
    fn unique_name(conn: &mut Connection) -> String {
        let args = conn
            .wait_signal(BUS_NAME, "NameAcquired", |_| true, Duration::from_secs(5))
            .unwrap();
        let [Value::Str(name)] = &args[..] else {
            panic!("{args:?}")
        };
        name.clone()
    }

    #[test]
    fn a_real_bus() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("bus");
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", bus.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut daemon = match child {
            Ok(child) => Daemon(child),
            Err(e) => {
                eprintln!("SKIP a_real_bus: cannot run dbus-daemon: {e}");
                return;
            }
        };
        // It prints its address once it listens.
        let mut address = String::new();
        BufReader::new(daemon.0.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        assert!(address.starts_with("unix:path="), "{address:?}");

        let uid = nix::unistd::geteuid().as_raw();
        let mut conn = Connection::connect(&bus, uid).unwrap();
        let ours = unique_name(&mut conn);
        assert!(ours.starts_with(":1."), "{ours}");
        let id = conn
            .call(BUS_NAME, BUS_PATH, BUS_NAME, "GetId", &[])
            .unwrap();
        assert!(
            matches!(&id[..], [Value::Str(id)] if id.len() == 32),
            "{id:?}"
        );
        let names = conn
            .call(BUS_NAME, BUS_PATH, BUS_NAME, "ListNames", &[])
            .unwrap();
        let [Value::Array(element, names)] = &names[..] else {
            panic!("{names:?}")
        };
        assert_eq!(element, "s");
        assert!(
            names.contains(&s(BUS_NAME)) && names.contains(&s(&ours)),
            "{names:?}"
        );

        let err = conn
            .call(
                BUS_NAME,
                BUS_PATH,
                BUS_NAME,
                "GetNameOwner",
                &[s("org.example.Nobody")],
            )
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<MethodError>().unwrap().name,
            "org.freedesktop.DBus.Error.NameHasNoOwner"
        );
        // A refusal shows at the first call: the authentication is not waited for on its own.
        let mut refused = Connection::connect(&bus, uid + 1).unwrap();
        let err = refused
            .call(BUS_NAME, BUS_PATH, BUS_NAME, "GetId", &[])
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("the bus replied \"REJECTED"),
            "{err:#}"
        );

        conn.add_match("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'").unwrap();
        let mut second = Connection::connect(&bus, uid).unwrap();
        let name = unique_name(&mut second);
        // The signal for the second connection arrives while this call waits for its reply, and is queued.
        conn.call(BUS_NAME, BUS_PATH, BUS_NAME, "GetId", &[])
            .unwrap();
        assert!(conn.signals.iter().any(|m| m.member == "NameOwnerChanged"));
        let args = conn
            .wait_signal(
                BUS_NAME,
                "NameOwnerChanged",
                |args| args.first() == Some(&s(&name)),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(args, [s(&name), s(""), s(&name)]);
        // One that arrives during the wait.
        drop(second);
        let args = conn
            .wait_signal(
                BUS_NAME,
                "NameOwnerChanged",
                |args| args.first() == Some(&s(&name)),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(args, [s(&name), s(&name), s("")]);
        let err = conn
            .wait_signal(
                BUS_NAME,
                "NameOwnerChanged",
                |_| false,
                Duration::from_millis(50),
            )
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "timed out after 50ms waiting for org.freedesktop.DBus.NameOwnerChanged"
            ),
            "{err}"
        );

        // The bus going away ends a wait.
        drop(daemon);
        let err = conn
            .wait_signal(
                BUS_NAME,
                "NameOwnerChanged",
                |_| false,
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("closed the connection"),
            "{err:#}"
        );
    }
}
