//! A connection to a bus: SASL authentication, method calls and their replies, and the signals that arrive
//! meanwhile.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};

use super::value::Value;
use super::wire::{
    encode_message, message_len, Message, DESTINATION, ERROR, INTERFACE, MEMBER, METHOD_CALL,
    METHOD_RETURN, NO_REPLY_EXPECTED, PATH, SIGNAL, SIGNATURE,
};

/// The bus daemon's name (also its interface's) and object, for Hello and AddMatch.
const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// How long authentication and each method call may take: sd-bus's and libdbus's default call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// A longer line from the bus during authentication is not the reply we wait for.
const MAX_AUTH_LINE: usize = 16 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, Command, Stdio};

    use super::super::wire::tests::{s, signal};
    use super::super::wire::{ERROR_NAME, REPLY_SERIAL};

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
