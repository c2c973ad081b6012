//! Decoding that lets fields added at the end of the session type take
//! their defaults.
//!
//! postcard writes a struct as its fields in order, with no names and no
//! count, so a value encoded before a field was added ends where the new
//! field would begin. [`decode`] first decodes strictly (every byte used,
//! exactly postcard); only when that fails does it decode again, ending
//! the top-level struct where the input ends, so that serde fills the
//! missing trailing fields from `#[serde(default)]` (or fails, for a
//! missing field without a default). Only the outermost struct is
//! treated so: a field added to a nested struct needs a schema version
//! and a migration. The values decoded here have been authenticated, so
//! the second attempt is not an attack surface, and it is only paid by
//! values that do not decode as they are.

use std::cell::Cell;
use std::rc::Rc;

use postcard::de_flavors::Flavor;
use serde::de::{self, DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};

/// Decodes `bytes` as a `T`: exactly as postcard does, or else with the
/// top-level struct's missing trailing fields taking their defaults. The
/// whole input must be used. (What the tests below read; the library
/// uses [`decode_checked`].)
#[cfg(test)]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    decode_checked(bytes).ok()
}

/// [`decode`], saying why bytes did not decode: postcard's error of the
/// strict attempt (the second one only ever removes an error, never
/// explains one), or the bytes left over after a whole value.
#[inline]
pub(crate) fn decode_checked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Undecodable> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Undecodable::LeftOver(rest.len())),
        Err(error) => decode_short(bytes).ok_or(Undecodable::Postcard(error)),
    }
}

/// Why bytes did not decode as a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Undecodable {
    /// postcard's error.
    Postcard(postcard::Error),
    /// A whole value decoded with this many bytes still unread.
    LeftOver(usize),
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use postcard::Error as E;
        match self {
            Undecodable::LeftOver(n) => write!(
                f,
                "{n} bytes left over after a whole value (written as another type, or by a \
                 Serialize that writes more than its Deserialize reads)"
            ),
            Undecodable::Postcard(error @ (E::WontImplement | E::NotYetImplemented)) => write!(
                f,
                "postcard: {error}: the type's Deserialize asks the format what comes next \
                 (deserialize_any: serde_json::Value, #[serde(tag = ...)], #[serde(untagged)], \
                 #[serde(flatten)]), which postcard, writing no names or types, cannot answer"
            ),
            Undecodable::Postcard(error @ E::SerdeDeCustom) => write!(
                f,
                "postcard: {error}: the type's Deserialize refused what it read (an unknown \
                 enum variant, a value out of range, or fields shifted by one left out when \
                 serializing, as #[serde(skip_serializing_if)] does)"
            ),
            Undecodable::Postcard(error) => write!(
                f,
                "postcard: {error}: the bytes do not line up with the type's fields (written \
                 as another type, or a field left out when serializing, as \
                 #[serde(skip_serializing_if)] does, shifting every later one)"
            ),
        }
    }
}

/// The second attempt: the outermost struct ends with the input.
fn decode_short<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let left = Rc::new(Cell::new(bytes.len()));
    let mut postcard = postcard::Deserializer::from_flavor(Tracked {
        rest: bytes,
        left: Rc::clone(&left),
    });
    let value = T::deserialize(Short {
        de: &mut postcard,
        left,
    })
    .ok()?;
    match postcard.finalize() {
        Ok([]) => Some(value),
        _ => None,
    }
}

/// postcard's slice input, telling how many bytes are left.
struct Tracked<'de> {
    rest: &'de [u8],
    left: Rc<Cell<usize>>,
}

impl<'de> Flavor<'de> for Tracked<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    fn pop(&mut self) -> postcard::Result<u8> {
        let (&byte, rest) = self
            .rest
            .split_first()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        self.left.set(rest.len());
        Ok(byte)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.rest.len())
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        let (head, rest) = self
            .rest
            .split_at_checked(ct)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        self.left.set(rest.len());
        Ok(head)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        Ok(self.rest)
    }
}

type Inner<'de> = postcard::Deserializer<'de, Tracked<'de>>;

/// postcard's deserializer, except that the outermost struct ends where
/// the input ends.
struct Short<'a, 'de> {
    de: &'a mut Inner<'de>,
    left: Rc<Cell<usize>>,
}

/// Forwards `deserialize_*` methods to postcard unchanged.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> postcard::Result<V::Value> {
                de::Deserializer::$method(&mut *self.de, $($arg,)* visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Short<'_, 'de> {
    type Error = postcard::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> postcard::Result<V::Value> {
        visitor.visit_seq(UntilTheEnd {
            de: self.de,
            left: self.left,
            fields: fields.len(),
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The outermost struct's fields: at most `fields`, and none once the
/// input is used up.
struct UntilTheEnd<'a, 'de> {
    de: &'a mut Inner<'de>,
    left: Rc<Cell<usize>>,
    fields: usize,
}

impl<'de> SeqAccess<'de> for UntilTheEnd<'_, 'de> {
    type Error = postcard::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> postcard::Result<Option<S::Value>> {
        if self.fields == 0 {
            return Ok(None);
        }
        if self.left.get() == 0 {
            // The input is used up: a field that needs no bytes (a
            // zero-sized one, `PhantomData`) still decodes; any other is
            // missing, for serde to default. Nothing was read either way.
            return match seed.deserialize(&mut *self.de) {
                Ok(value) => {
                    self.fields -= 1;
                    Ok(Some(value))
                }
                Err(_) => {
                    self.fields = 0;
                    Ok(None)
                }
            };
        }
        self.fields -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Nested {
        a: u8,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Before {
        user: String,
        count: u64,
        nested: Nested,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct After {
        user: String,
        count: u64,
        nested: Nested,
        #[serde(default)]
        theme: Option<String>,
        #[serde(default = "seven")]
        level: u32,
    }

    fn seven() -> u32 {
        7
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct AfterWithoutDefault {
        user: String,
        count: u64,
        nested: Nested,
        theme: Option<String>,
    }

    fn before() -> Vec<u8> {
        postcard::to_allocvec(&Before {
            user: "ann".into(),
            count: 3,
            nested: Nested { a: 9 },
        })
        .unwrap()
    }

    #[test]
    fn fields_added_at_the_end_take_their_defaults() {
        assert_eq!(
            decode::<After>(&before()),
            Some(After {
                user: "ann".into(),
                count: 3,
                nested: Nested { a: 9 },
                theme: None,
                level: 7,
            })
        );
    }

    #[test]
    fn a_field_added_without_a_default_does_not_decode() {
        assert_eq!(decode::<AfterWithoutDefault>(&before()), None);
    }

    #[test]
    fn values_of_the_current_type_decode_strictly() {
        let after = After {
            user: "bo".into(),
            count: 1,
            nested: Nested { a: 1 },
            theme: Some("dark".into()),
            level: 2,
        };
        let bytes = postcard::to_allocvec(&after).unwrap();
        assert_eq!(decode::<After>(&bytes), Some(after));
        // Extra bytes (a value of a newer type) are refused, never cut.
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<After>(&longer), None);
        assert_eq!(decode::<Before>(&bytes), None);
    }

    #[test]
    fn a_value_cut_inside_a_field_does_not_decode() {
        let bytes = before();
        for end in 0..bytes.len() {
            // Cut between fields, a prefix decodes only if every later
            // field has a default; inside a field, never.
            let decoded = decode::<After>(&bytes[..end]);
            assert!(decoded.is_none(), "{end} bytes: {decoded:?}");
        }
    }

    #[test]
    fn a_zero_sized_field_before_the_added_ones_still_decodes() {
        #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
        struct Marked {
            user: String,
            marker: std::marker::PhantomData<u8>,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
        struct MarkedWithTheme {
            user: String,
            marker: std::marker::PhantomData<u8>,
            #[serde(default)]
            theme: Option<String>,
        }
        let bytes = postcard::to_allocvec(&Marked {
            user: "ann".into(),
            marker: std::marker::PhantomData,
        })
        .unwrap();
        assert_eq!(
            decode::<MarkedWithTheme>(&bytes),
            Some(MarkedWithTheme {
                user: "ann".into(),
                ..MarkedWithTheme::default()
            })
        );
    }

    #[test]
    fn types_that_are_not_structs_are_decoded_strictly() {
        assert_eq!(decode::<u32>(&[0x2a]), Some(42));
        assert_eq!(decode::<u32>(&[]), None);
        assert_eq!(decode::<(u8, u8)>(&[1]), None);
        assert_eq!(decode::<Vec<u8>>(&[2, 1]), None);
    }
}
