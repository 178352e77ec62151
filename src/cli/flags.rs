//! The flag engine: what a flag is, how a struct declares its flags (`declare_flags!`), and how command-line tokens
//! are read against such a table with the rules of Go's `flag` package as urfave/cli v1 drives it.

use std::path::PathBuf;

/// How a flag takes its value; it follows from the type of the field the flag fills (`FlagType::KIND`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `--flag`, or `--flag=` with one of Go's `strconv.ParseBool` spellings.
    Bool,
    /// `--flag value` or `--flag=value`; the last one given wins.
    Value,
    /// Like `Value`, but every occurrence is kept, in order.
    List,
}

/// One flag: its names, its help, and what it holds when not given.
#[derive(Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<&'static str>,
    pub help: &'static str,
    /// The text the field is read from when the flag is not given (Go's flag default).
    default: Option<&'static str>,
    /// `--flag=` reads as if the flag were not given (runc tests these flags against "").
    empty_is_unset: bool,
}

/// A flag named `long`, explained by `help`; the field's type says what kind of flag it is.
pub const fn flag(long: &'static str, help: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        help,
        default: None,
        empty_is_unset: false,
    }
}

impl Flag {
    /// A one-letter alias: `-b` for `--bundle`.
    pub const fn alias(self, short: &'static str) -> Flag {
        Flag {
            short: Some(short),
            ..self
        }
    }

    /// The value read when the flag is not given.
    pub const fn default(self, text: &'static str) -> Flag {
        Flag {
            default: Some(text),
            ..self
        }
    }

    /// An empty value reads as no value.
    pub const fn empty_is_unset(self) -> Flag {
        Flag {
            empty_is_unset: true,
            ..self
        }
    }
}

/// One row of a flag table: a flag with its kind, or another struct's flags in their order.
pub enum Entry {
    Flag(Flag, Kind),
    Group(&'static [Entry]),
}

/// Every flag of `table`, groups opened, in the order the help lists them.
pub fn flatten(table: &'static [Entry]) -> Vec<(&'static Flag, Kind)> {
    let mut flags = Vec::new();
    for entry in table {
        match entry {
            Entry::Flag(flag, kind) => flags.push((flag, *kind)),
            Entry::Group(group) => flags.extend(flatten(group)),
        }
    }
    flags
}

/// A struct of flags, declared with `declare_flags!`: its table, and how it is made from what was given (a value of
/// the wrong type is noted in `given`, see `Given::error`).
pub trait Flags: Sized {
    const TABLE: &'static [Entry];
    fn read(given: &mut Given) -> Self;
}

impl<T: Flags> Flags for Box<T> {
    const TABLE: &'static [Entry] = T::TABLE;
    fn read(given: &mut Given) -> Self {
        Box::new(T::read(given))
    }
}

/// A type a flag can fill: its kind of flag, and its value from what was given.
pub trait FlagType: Sized {
    const KIND: Kind;
    fn read(given: &mut Given, flag: &Flag) -> Self;
}

impl FlagType for bool {
    const KIND: Kind = Kind::Bool;
    fn read(given: &mut Given, flag: &Flag) -> Self {
        given.last(flag.long) == Some("true")
    }
}

impl FlagType for String {
    const KIND: Kind = Kind::Value;
    fn read(given: &mut Given, flag: &Flag) -> Self {
        given.text(flag).unwrap_or_default().to_owned()
    }
}

impl FlagType for Option<String> {
    const KIND: Kind = Kind::Value;
    fn read(given: &mut Given, flag: &Flag) -> Self {
        given.text(flag).map(str::to_owned)
    }
}

impl FlagType for Option<PathBuf> {
    const KIND: Kind = Kind::Value;
    fn read(given: &mut Given, flag: &Flag) -> Self {
        given.text(flag).map(PathBuf::from)
    }
}

impl FlagType for Vec<String> {
    const KIND: Kind = Kind::List;
    fn read(given: &mut Given, flag: &Flag) -> Self {
        given.all(flag.long)
    }
}

/// Go's `int` and `uint` flags: zero unless given or defaulted; text that is no such number is noted as `invalid
/// value "x" for flag -preserve-fds: parse error`.
macro_rules! number_flag {
    ($($number:ty),*) => {$(
        impl FlagType for $number {
            const KIND: Kind = Kind::Value;
            fn read(given: &mut Given, flag: &Flag) -> Self {
                let Some(text) = given.text(flag) else {
                    return 0;
                };
                match text.parse() {
                    Ok(number) => number,
                    Err(_) => {
                        let message = format!("invalid value {text:?} for flag -{}: parse error", flag.long);
                        given.error.get_or_insert(message);
                        0
                    }
                }
            }
        }
    )*};
}

number_flag!(i32, u32);

/// Declares a struct of typed flags and implements `Flags` for it, so that one declaration gives the parser's
/// table, the help and the fields the commands read. Each field is one of:
/// - `pub name: Type = flag("long-name", "help")` (with `.alias("x")`, `.default("text")`, `.empty_is_unset()`, or
///   a shared `Flag` constant): a flag whose kind follows from `Type` (`FlagType`);
/// - `#[flatten] pub name: Other`: the flags of another such struct, at this place in the help;
/// - `#[positionals] pub name: Vec<String>`: the positional arguments.
macro_rules! declare_flags {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        declare_flags!(@field given [$(#[$meta])* $name] [] [] [] $($fields)*);
    };
    (@field $given:ident $head:tt [$($field:tt)*] [$($table:tt)*] [$($read:tt)*]
        #[flatten] $(#[doc = $doc:literal])* pub $name:ident: $ty:ty, $($rest:tt)*) => {
        declare_flags!(@field $given $head
            [$($field)* $(#[doc = $doc])* pub $name: $ty,]
            [$($table)* $crate::cli::flags::Entry::Group(<$ty as $crate::cli::flags::Flags>::TABLE),]
            [$($read)* $name: <$ty as $crate::cli::flags::Flags>::read($given),]
            $($rest)*);
    };
    (@field $given:ident $head:tt [$($field:tt)*] $table:tt [$($read:tt)*]
        #[positionals] $(#[doc = $doc:literal])* pub $name:ident: Vec<String>, $($rest:tt)*) => {
        declare_flags!(@field $given $head
            [$($field)* $(#[doc = $doc])* pub $name: Vec<String>,]
            $table
            [$($read)* $name: std::mem::take(&mut $given.positionals),]
            $($rest)*);
    };
    (@field $given:ident $head:tt [$($field:tt)*] [$($table:tt)*] [$($read:tt)*]
        $(#[doc = $doc:literal])* pub $name:ident: $ty:ty = $flag:expr, $($rest:tt)*) => {
        declare_flags!(@field $given $head
            [$($field)* $(#[doc = $doc])* pub $name: $ty,]
            [$($table)* $crate::cli::flags::Entry::Flag($flag, <$ty as $crate::cli::flags::FlagType>::KIND),]
            [$($read)* $name: <$ty as $crate::cli::flags::FlagType>::read($given, &const { $flag }),]
            $($rest)*);
    };
    (@field $given:ident [$(#[$meta:meta])* $name:ident] [$($field:tt)*] [$($table:tt)*] [$($read:tt)*]) => {
        $(#[$meta])*
        pub struct $name {
            $($field)*
        }

        impl $crate::cli::flags::Flags for $name {
            const TABLE: &'static [$crate::cli::flags::Entry] = &[$($table)*];
            fn read($given: &mut $crate::cli::flags::Given) -> Self {
                Self { $($read)* }
            }
        }
    };
}

pub(super) use declare_flags;

/// The flags given to one command (or the global flags) and its positional arguments.
#[derive(Default)]
pub struct Given {
    /// (long name, value); bool flags store "true" or "false".
    values: Vec<(&'static str, String)>,
    pub positionals: Vec<String>,
    /// The first value of the wrong type that reading a struct met: Go's message for it.
    pub error: Option<String>,
}

impl Given {
    fn last(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(name, _)| *name == long)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, long: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(name, _)| *name == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The text `flag`'s field is read from: the last value given, else the flag's default.
    fn text(&self, flag: &Flag) -> Option<&str> {
        self.last(flag.long)
            .filter(|text| !(flag.empty_is_unset && text.is_empty()))
            .or(flag.default)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What one flag-parsing pass stopped at.
pub enum Stop {
    /// Every token was read.
    End,
    /// `-h`/`--help` was given.
    Help,
}

/// Reads `tokens` against `flags` into `given`. With `first_positional_ends_flags`, the first positional and
/// everything after it are positionals (Go's `flag`; for the global flags, that positional is the command). Without,
/// flags may follow positionals (urfave/cli's reordering). `--` always ends the flags.
pub fn read_flags<'a>(
    tokens: &mut impl Iterator<Item = &'a String>,
    flags: &[(&'static Flag, Kind)],
    first_positional_ends_flags: bool,
    given: &mut Given,
) -> Result<Stop, String> {
    while let Some(token) = tokens.next() {
        if token == "--" {
            given.positionals.extend(tokens.cloned());
            break;
        }
        let Some(spelled) = token.strip_prefix('-').filter(|f| !f.is_empty()) else {
            given.positionals.push(token.clone());
            if first_positional_ends_flags {
                given.positionals.extend(tokens.cloned());
                break;
            }
            continue;
        };
        let spelled = spelled.strip_prefix('-').unwrap_or(spelled);
        let (name, inline) = match spelled.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (spelled, None),
        };
        let found = flags
            .iter()
            .find(|(f, _)| f.long == name || f.short == Some(name));
        let Some(&(flag, kind)) = found else {
            if name == "help" || name == "h" {
                return Ok(Stop::Help);
            }
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let value = match kind {
            Kind::Bool => match inline {
                None => "true",
                Some(v) => match parse_bool(v) {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => {
                        return Err(format!(
                            "invalid boolean value {v:?} for -{name}: parse error"
                        ))
                    }
                },
            }
            .to_owned(),
            Kind::Value | Kind::List => match inline {
                Some(v) => v.to_owned(),
                None => tokens
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
            },
        };
        given.values.push((flag.long, value));
    }
    Ok(Stop::End)
}
