//! The D-Bus wire format: messages and values encoded little-endian, read in either byte order, within the
//! specification's limits.

use anyhow::{bail, ensure, Context, Result};

use super::value::Value;

/// Message types.
pub(super) const METHOD_CALL: u8 = 1;
pub(super) const METHOD_RETURN: u8 = 2;
pub(super) const ERROR: u8 = 3;
pub(super) const SIGNAL: u8 = 4;
/// Header flag: the sender wants no reply.
pub(super) const NO_REPLY_EXPECTED: u8 = 1;

/// Header field codes (the SENDER field, 7, is not needed here).
pub(super) const PATH: u8 = 1;
pub(super) const INTERFACE: u8 = 2;
pub(super) const MEMBER: u8 = 3;
pub(super) const ERROR_NAME: u8 = 4;
pub(super) const REPLY_SERIAL: u8 = 5;
pub(super) const DESTINATION: u8 = 6;
pub(super) const SIGNATURE: u8 = 8;

/// The specification's limits: a whole message 128 MiB, an array 64 MiB, 64 nested containers (variants included).
const MAX_MESSAGE: usize = 128 << 20;
const MAX_ARRAY: usize = 64 << 20;
const MAX_DEPTH: usize = 64;

/// The basic type codes this client handles (unix fds, `h`, are not supported).
const BASIC: &[u8] = b"ybnqiuxtdsog";

/// A received message: the header fields used here, and the body left encoded until someone wants it (a signal
/// nobody waits for is never decoded).
pub(super) struct Message {
    pub(super) kind: u8,
    pub(super) reply_serial: Option<u32>,
    pub(super) interface: String,
    pub(super) member: String,
    pub(super) error_name: String,
    pub(super) signature: String,
    /// The whole message, as received.
    data: Vec<u8>,
    body_start: usize,
    big_endian: bool,
}

impl Message {
    /// Parse the header of `data`, one whole message (its length as [`message_len`] says).
    pub(super) fn parse(data: Vec<u8>) -> Result<Message> {
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
    pub(super) fn body(&self) -> Result<Vec<Value>> {
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
pub(super) fn message_len(buf: &[u8]) -> Result<Option<usize>> {
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
pub(super) fn encode_message(
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
pub(super) mod tests {
    use super::*;

    pub(in crate::dbus) fn s(text: &str) -> Value {
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

    pub(in crate::dbus) fn signal(interface: &str, member: &str, body: &[Value]) -> Vec<u8> {
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
}
