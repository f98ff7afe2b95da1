//! Tolerant readers for the members of server documents (smart-configuration, token and
//! introspection responses, launch context).
//!
//! Each reader is a `Deserialize` type that accepts **any** JSON value and reports what it saw
//! instead of failing, so one wrongly typed optional member never discards a whole document:
//! the caller normalises or drops it and records a warning naming the member. They run on the
//! streaming `serde_json` deserializer (no intermediate `serde_json::Value`), and on a `&Value`
//! alike.
//!
//! The rules themselves are listed in `docs/non-conforming-servers.md`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The longest lifetime accepted from a server, in seconds (ten years of 365 days). Longer
/// `expires_in` values are clamped to it with a warning.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 60 * 60;

/// The body without one leading UTF-8 byte-order mark (RFC 8259 §8.1 lets a parser ignore
/// it), and whether there was one.
pub(crate) fn strip_bom(body: &[u8]) -> (&[u8], bool) {
    match body.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
        Some(rest) => (rest, true),
        None => (body, false),
    }
}

/// The warning text for a skipped byte-order mark.
pub(crate) const BOM_WARNING: &str =
    "the body starts with a UTF-8 byte-order mark; skipped (RFC 8259 §8.1)";

/// A JSON value as seen by a tolerant reader.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) enum Seen<T> {
    /// `null` (or, for a caller that keeps a default, the member was absent).
    #[default]
    Null,
    /// A value of the expected shape.
    Ok(T),
    /// A value of another JSON type: `"a number"`, `"an object"`, ….
    Wrong(&'static str),
}

fn consume_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn consume_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements every `visit_*` of a shape-tolerant visitor that `$ty` does not accept by
/// returning `Seen::Wrong(<json type>)` (arrays and objects are consumed first).
macro_rules! wrong_for {
    (bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Self::Value::wrong("a boolean"))
        }
    };
    (num) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Self::Value::wrong("a number"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Self::Value::wrong("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Self::Value::wrong("a number"))
        }
    };
    (str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Self::Value::wrong("a string"))
        }
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            consume_seq(seq)?;
            Ok(Self::Value::wrong("an array"))
        }
    };
    (map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            consume_map(map)?;
            Ok(Self::Value::wrong("an object"))
        }
    };
    (null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Self::Value::null())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Self::Value::null())
        }
    };
}

/// What a tolerant reader returns for `null` and for a value of the wrong type.
trait Tolerant {
    fn wrong(json_type: &'static str) -> Self;
    fn null() -> Self;
}

impl<T> Tolerant for Seen<T> {
    fn wrong(json_type: &'static str) -> Self {
        Self::Wrong(json_type)
    }
    fn null() -> Self {
        Self::Null
    }
}

/// A string member.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct LStr(pub(crate) Seen<String>);

impl Tolerant for LStr {
    fn wrong(t: &'static str) -> Self {
        Self(Seen::Wrong(t))
    }
    fn null() -> Self {
        Self(Seen::Null)
    }
}

impl<'de> Deserialize<'de> for LStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LStr, E> {
                Ok(LStr(Seen::Ok(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<LStr, E> {
                Ok(LStr(Seen::Ok(s)))
            }
            wrong_for!(bool);
            wrong_for!(num);
            wrong_for!(seq);
            wrong_for!(map);
            wrong_for!(null);
        }
        d.deserialize_any(V)
    }
}

/// A list-of-strings member, read leniently: a lone string is a one-element list, items that
/// are not strings are dropped (and counted).
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct LStrList {
    /// The strings; `Null` for `null`, `Wrong` for a number, boolean or object.
    pub(crate) list: Seen<Vec<String>>,
    /// The value was one string, not an array.
    pub(crate) lone: bool,
    /// How many array items were not strings (and were dropped).
    pub(crate) dropped: usize,
}

impl Tolerant for LStrList {
    fn wrong(t: &'static str) -> Self {
        Self {
            list: Seen::Wrong(t),
            ..Self::default()
        }
    }
    fn null() -> Self {
        Self::default()
    }
}

impl<'de> Deserialize<'de> for LStrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LStrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LStrList, E> {
                Ok(LStrList {
                    list: Seen::Ok(vec![s.to_owned()]),
                    lone: true,
                    dropped: 0,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LStrList, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(64));
                let mut dropped = 0;
                while let Some(LStr(item)) = seq.next_element::<LStr>()? {
                    match item {
                        Seen::Ok(s) => list.push(s),
                        _ => dropped += 1,
                    }
                }
                Ok(LStrList {
                    list: Seen::Ok(list),
                    lone: false,
                    dropped,
                })
            }
            wrong_for!(bool);
            wrong_for!(num);
            wrong_for!(map);
            wrong_for!(null);
        }
        d.deserialize_any(V)
    }
}

impl LStrList {
    /// The strings (`None` for `null` or a wrong type), recording in `notes` what was
    /// normalised or dropped about `field`.
    pub(crate) fn into_parts(self, field: &str, notes: &mut Notes) -> Option<Vec<String>> {
        if self.lone {
            notes.push(
                field,
                NoteKind::Normalised,
                "is a single string, not an array; read as a one-element list",
            );
        }
        if self.dropped > 0 {
            notes.push(
                field,
                NoteKind::Dropped,
                format!("has {} item(s) that are not strings; dropped", self.dropped),
            );
        }
        match self.list {
            Seen::Ok(l) => Some(l),
            Seen::Null => None,
            Seen::Wrong(t) => {
                notes.wrong_type(field, t, "an array of strings");
                None
            }
        }
    }
}

/// A boolean member: JSON booleans, and the strings `"true"`/`"false"` (any case).
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct LBool {
    pub(crate) value: Seen<bool>,
    /// It was a string.
    pub(crate) string: bool,
}

impl Tolerant for LBool {
    fn wrong(t: &'static str) -> Self {
        Self {
            value: Seen::Wrong(t),
            string: false,
        }
    }
    fn null() -> Self {
        Self::default()
    }
}

impl<'de> Deserialize<'de> for LBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LBool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<LBool, E> {
                Ok(LBool {
                    value: Seen::Ok(b),
                    string: false,
                })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LBool, E> {
                let value = if s.eq_ignore_ascii_case("true") {
                    Seen::Ok(true)
                } else if s.eq_ignore_ascii_case("false") {
                    Seen::Ok(false)
                } else {
                    Seen::Wrong("a string other than \"true\"/\"false\"")
                };
                Ok(LBool {
                    value,
                    string: true,
                })
            }
            wrong_for!(num);
            wrong_for!(seq);
            wrong_for!(map);
            wrong_for!(null);
        }
        d.deserialize_any(V)
    }
}

/// A resource id member (`patient`, `encounter`): a string, or a number converted to its
/// decimal text.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct LId {
    pub(crate) value: Seen<String>,
    /// It was a JSON number.
    pub(crate) number: bool,
}

impl Tolerant for LId {
    fn wrong(t: &'static str) -> Self {
        Self {
            value: Seen::Wrong(t),
            number: false,
        }
    }
    fn null() -> Self {
        Self::default()
    }
}

impl<'de> Deserialize<'de> for LId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn num(s: String) -> LId {
            LId {
                value: Seen::Ok(s),
                number: true,
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = LId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LId, E> {
                Ok(LId {
                    value: Seen::Ok(s.to_owned()),
                    number: false,
                })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<LId, E> {
                Ok(num(n.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<LId, E> {
                Ok(num(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<LId, E> {
                Ok(num(
                    serde_json::Number::from_f64(n).map_or_else(String::new, |n| n.to_string())
                ))
            }
            wrong_for!(bool);
            wrong_for!(seq);
            wrong_for!(map);
            wrong_for!(null);
        }
        d.deserialize_any(V)
    }
}

/// A number of seconds (`expires_in`, `exp`, `iat`, `nbf`): a non-negative JSON integer, or
/// leniently a non-negative fraction (floored) or a numeric string (floored).
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) enum LSecs {
    /// `null`.
    #[default]
    Null,
    /// A usable value.
    Ok {
        /// Whole seconds (floored; saturating at `u64::MAX`).
        secs: u64,
        /// It had a fractional part.
        fraction: bool,
        /// It was a string.
        string: bool,
    },
    /// Negative, not a number, or not finite; the text says which.
    Bad(&'static str),
}

impl Tolerant for LSecs {
    fn wrong(t: &'static str) -> Self {
        Self::Bad(t)
    }
    fn null() -> Self {
        Self::Null
    }
}

fn secs_from_f64(f: f64, string: bool) -> LSecs {
    if f.is_nan() || f.is_infinite() {
        return LSecs::Bad("not a finite number");
    }
    if f < 0.0 {
        return LSecs::Bad("negative");
    }
    let floor = f.floor();
    // `as` saturates at u64::MAX for values beyond it (and is exact below 2^53).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = floor as u64;
    LSecs::Ok {
        secs,
        fraction: floor != f,
        string,
    }
}

impl<'de> Deserialize<'de> for LSecs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LSecs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<LSecs, E> {
                Ok(LSecs::Ok {
                    secs: n,
                    fraction: false,
                    string: false,
                })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<LSecs, E> {
                Ok(match u64::try_from(n) {
                    Ok(n) => LSecs::Ok {
                        secs: n,
                        fraction: false,
                        string: false,
                    },
                    Err(_) => LSecs::Bad("negative"),
                })
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<LSecs, E> {
                Ok(secs_from_f64(f, false))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LSecs, E> {
                Ok(parse_secs_text(s))
            }
            wrong_for!(bool);
            wrong_for!(seq);
            wrong_for!(map);
            wrong_for!(null);
        }
        d.deserialize_any(V)
    }
}

/// A numeric string: decimal digits with an optional fraction and exponent, as a JSON number
/// would be written (a leading `+` is allowed). `inf`, `NaN`, hex and empty text are not.
fn parse_secs_text(s: &str) -> LSecs {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return LSecs::Ok {
            secs: n,
            fraction: false,
            string: true,
        };
    }
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let numeric = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match t.parse::<f64>() {
        Ok(f) if numeric => secs_from_f64(f, true),
        _ => LSecs::Bad("not a number"),
    }
}

/// A member name: a modelled one, or any other (kept for `extra`).
pub(crate) enum Key<T> {
    Known(T),
    Other(String),
}

/// Deserializes a member name through `lookup`, allocating only for unknown names.
pub(crate) struct KeySeed<T>(pub(crate) fn(&str) -> Option<T>);

impl<'de, T> de::DeserializeSeed<'de> for KeySeed<T> {
    type Value = Key<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<T>, D::Error> {
        struct V<T>(fn(&str) -> Option<T>);
        impl<T> Visitor<'_> for V<T> {
            type Value = Key<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<T>, E> {
                Ok((self.0)(s).map_or_else(|| Key::Other(s.to_owned()), Key::Known))
            }
        }
        d.deserialize_str(V(self.0))
    }
}

/// How a warning came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoteKind {
    /// A recoverable form was normalised (lone string → list, fraction floored, …).
    Normalised,
    /// A value of the wrong type (or an unusable item) was dropped.
    Dropped,
}

/// One warning: the member and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) field: String,
    pub(crate) kind: NoteKind,
    /// Continues the member name: "is a single string, …".
    pub(crate) message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.message)
    }
}

/// The warnings collected while reading one document.
#[derive(Clone, Debug, Default)]
pub(crate) struct Notes(pub(crate) Vec<Note>);

impl Notes {
    pub(crate) fn push(&mut self, field: &str, kind: NoteKind, message: impl Into<String>) {
        self.0.push(Note {
            field: field.to_owned(),
            kind,
            message: message.into(),
        });
    }

    /// "`field` is <json type>, not <expected>; ignored".
    pub(crate) fn wrong_type(&mut self, field: &str, seen: &str, expected: &str) {
        self.push(
            field,
            NoteKind::Dropped,
            format!("is {seen}, not {expected}; ignored"),
        );
    }

    /// A string member: `Some` for a string, `None` (with a warning for a wrong type).
    pub(crate) fn string(&mut self, field: &str, v: LStr) -> Option<String> {
        match v.0 {
            Seen::Ok(s) => Some(s),
            Seen::Null => None,
            Seen::Wrong(t) => {
                self.wrong_type(field, t, "a string");
                None
            }
        }
    }

    /// A number of seconds, clamped to [`MAX_LIFETIME_SECS`] when `clamp` is set.
    ///
    /// `Err(reason)` when negative, not finite or not a number.
    pub(crate) fn seconds(
        &mut self,
        field: &str,
        v: LSecs,
        clamp: bool,
    ) -> Result<Option<u64>, &'static str> {
        match v {
            LSecs::Null => Ok(None),
            LSecs::Bad(why) => Err(why),
            LSecs::Ok {
                secs,
                fraction,
                string,
            } => {
                if string {
                    self.push(
                        field,
                        NoteKind::Normalised,
                        "is a string; read as a number of seconds",
                    );
                }
                if fraction {
                    self.push(
                        field,
                        NoteKind::Normalised,
                        format!("has a fractional part; rounded down to {secs} s"),
                    );
                }
                if clamp && secs > MAX_LIFETIME_SECS {
                    self.push(
                        field,
                        NoteKind::Normalised,
                        format!("is more than ten years; clamped to {MAX_LIFETIME_SECS} s"),
                    );
                    return Ok(Some(MAX_LIFETIME_SECS));
                }
                Ok(Some(secs))
            }
        }
    }
}

#[cfg(test)]
mod tests;
