//! D-Bus values as hull builds and reads them, and their type signatures.

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
