//! Parsing protobuf messages from JSON the way the protobuf JSON mapping does by default.
//!
//! Each message is a JSON object (never an array, which serde's derived structs would also
//! take); a field may be spelled with its lowerCamelCase JSON name or its original snake_case
//! proto name, but only once; an unknown field is refused as soon as its name is read, before
//! its value is looked at, so whatever it holds (200,000 nested arrays) costs nothing; repeated
//! fields are bounded ([`Bounded`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// The longest field name an error message quotes; hostile names can be megabytes.
const MAX_QUOTED_NAME: usize = 80;

/// A name as error messages show it: quoted, escaped, truncated.
pub(crate) fn quote_name(name: &str) -> String {
    if name.chars().count() <= MAX_QUOTED_NAME {
        format!("{name:?}")
    } else {
        let head: String = name.chars().take(MAX_QUOTED_NAME).collect();
        format!("{head:?}... ({} bytes)", name.len())
    }
}

/// Marks the message of an unknown-field error; [`super::locate`] puts the location after it.
pub(crate) const ALLOWED_MARKER: &str = "; fields allowed there: ";

/// The error for a field the message does not define.
pub(crate) fn unknown_field<E: de::Error>(name: &str, allowed: &[&str]) -> E {
    E::custom(format!(
        "unknown field {}{ALLOWED_MARKER}{}",
        quote_name(name),
        allowed.join(", ")
    ))
}

/// The error for a field given twice (also once in each spelling).
pub(crate) fn duplicate_field<E: de::Error>(name: &str) -> E {
    E::custom(format!(
        "field {name:?} is given twice (its JSON and proto names count as the same field)"
    ))
}

/// A repeated field of at most `MAX` entries: parsing stops at the first one too many, so a
/// list of millions of tiny entries never reaches memory.
#[derive(Debug)]
pub(crate) struct Bounded<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> From<Bounded<T, MAX>> for Vec<T> {
    fn from(b: Bounded<T, MAX>) -> Self {
        b.0
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Bounded<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a JSON array of at most {MAX} entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if out.len() == MAX {
                        return Err(de::Error::custom(format!(
                            "this list has more than {MAX} entries, the most this verifier reads here"
                        )));
                    }
                    out.push(item);
                }
                Ok(Bounded(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A JSON object of string values with at most `MAX` members (an in-toto `DigestSet`).
#[derive(Debug, Default)]
pub(crate) struct BoundedMap<const MAX: usize>(pub std::collections::BTreeMap<String, String>);

impl<const MAX: usize> From<BoundedMap<MAX>> for std::collections::BTreeMap<String, String> {
    fn from(b: BoundedMap<MAX>) -> Self {
        b.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedMap<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: usize>;
        impl<'de, const MAX: usize> Visitor<'de> for V<MAX> {
            type Value = BoundedMap<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a JSON object of at most {MAX} string members")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = std::collections::BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.len() == MAX {
                        return Err(de::Error::custom(format!(
                            "this object has more than {MAX} members, the most this verifier reads here"
                        )));
                    }
                    if out.insert(k, v).is_some() {
                        return Err(de::Error::custom("a member is given twice"));
                    }
                }
                Ok(BoundedMap(out))
            }
        }
        d.deserialize_map(V::<MAX>)
    }
}

/// A protobuf `int64`/`uint64`: the JSON mapping writes it as a decimal string and parsers also
/// take a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int64(pub i64);

impl serde::Serialize for Int64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-bit integer, as a decimal string or a JSON number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int64, E> {
                Ok(Int64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int64, E> {
                i64::try_from(v)
                    .map(Int64)
                    .map_err(|_| E::custom(format!("{v} does not fit a 64-bit integer")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int64, E> {
                v.parse().map(Int64).map_err(|_| {
                    E::custom(format!("{} is not a decimal 64-bit integer", quote_name(v)))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a field value as `$ty`, or as `$via` converted into `$ty`.
macro_rules! proto_field_value {
    ($map:ident, $ty:ty) => {
        $map.next_value::<$ty>()?
    };
    ($map:ident, $ty:ty, $via:ty) => {
        <$ty>::from($map.next_value::<$via>()?)
    };
}

/// The value of a field after the object ended: `required` ones must have been given,
/// `optional` ones default (absent `Option`, empty list).
macro_rules! proto_field_finish {
    ($v:ident, $json:literal, required) => {
        $v.ok_or_else(|| <A::Error as serde::de::Error>::missing_field($json))?
    };
    ($v:ident, $json:literal, optional) => {
        $v.unwrap_or_default()
    };
}

/// What an unknown field does: `refuse` it (the protobuf JSON mapping's default), or `ignore`
/// it without reading it into memory (serde_json skips values without recursing).
macro_rules! proto_unknown {
    (refuse, $map:ident, $key:ident, $allowed:ident) => {
        return Err($crate::bundle::message::unknown_field($key, $allowed))
    };
    (ignore, $map:ident, $key:ident, $allowed:ident) => {{
        let _ = ($key, $allowed);
        $map.next_value::<serde::de::IgnoredAny>()?;
    }};
}

/// Defines a struct for a protobuf message with a strict `Deserialize` (see the module docs)
/// and a derived `Serialize` writing the JSON names. Each field reads
/// `required|optional name: Type = "jsonName" | "proto_name" [as ParseType]`. A leading
/// `unknown_fields: ignore;` ignores unknown fields instead of refusing them.
macro_rules! proto_message {
    (unknown_fields: $mode:ident; $($rest:tt)*) => {
        $crate::bundle::message::proto_message!(@impl $mode; $($rest)*);
    };
    (@impl $mode:ident;
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $req:ident $fvis:vis $field:ident : $ty:ty = $json:literal $(| $alt:literal)? $(as $via:ty)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $json)]
                $fvis $field: $ty,
            )*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        const ALLOWED: &[&str] = &[$($json),*];
                        $(let mut $field: Option<$ty> = None;)*
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $(
                                    $json $(| $alt)? => {
                                        if $field.is_some() {
                                            return Err($crate::bundle::message::duplicate_field($json));
                                        }
                                        $field = Some($crate::bundle::message::proto_field_value!(
                                            map, $ty $(, $via)?
                                        ));
                                    }
                                )*
                                other => {
                                    $crate::bundle::message::proto_unknown!($mode, map, other, ALLOWED)
                                }
                            }
                        }
                        Ok($name {
                            $($field: $crate::bundle::message::proto_field_finish!($field, $json, $req),)*
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
    ($($rest:tt)*) => {
        $crate::bundle::message::proto_message!(@impl refuse; $($rest)*);
    };
}

pub(crate) use {proto_field_finish, proto_field_value, proto_message, proto_unknown};
