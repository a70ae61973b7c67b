//! Proto3 JSON with map entries in key order, written straight to the
//! output: a serde serializer over serde_json's that passes everything
//! through except *sized* maps — how prost-reflect writes map fields and
//! `google.protobuf.Struct` (messages are unsized maps, and keep their field
//! order) — whose entries it collects, sorts and writes in one piece. Go's
//! protojson sorts map keys too; equal messages give equal bytes.

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};
use serde_json::value::RawValue;

/// Serializes `value` as compact JSON with sorted map entries.
///
/// ```
/// use std::collections::HashMap;
/// let mut m = HashMap::new();
/// for k in ["b", "c", "a"] { m.insert(k, 1); }
/// assert_eq!(protogate::transcode::json_sort::to_vec(&m).unwrap(), br#"{"a":1,"b":1,"c":1}"#);
/// ```
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    value.serialize(Sorted(&mut serde_json::Serializer::new(&mut out)))?;
    Ok(out)
}

/// The serializer: `Sorted(inner)`.
pub struct Sorted<S>(pub S);

/// A value serialized through [`Sorted`].
struct Through<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Through<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Sorted(s))
    }
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name(self $(, $arg: $ty)*) -> Result<S::Ok, S::Error> {
            self.0.$name($($arg),*)
        })*
    };
}

impl<S: Serializer> Serializer for Sorted<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Sorted<S::SerializeSeq>;
    type SerializeTuple = Sorted<S::SerializeTuple>;
    type SerializeTupleStruct = Sorted<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Sorted<S::SerializeTupleVariant>;
    type SerializeMap = MapOf<S>;
    type SerializeStruct = Sorted<S::SerializeStruct>;
    type SerializeStructVariant = Sorted<S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool); serialize_i8(v: i8); serialize_i16(v: i16); serialize_i32(v: i32);
        serialize_i64(v: i64); serialize_u8(v: u8); serialize_u16(v: u16); serialize_u32(v: u32);
        serialize_u64(v: u64); serialize_f32(v: f32); serialize_f64(v: f64); serialize_char(v: char);
        serialize_str(v: &str); serialize_bytes(v: &[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Through(v))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Through(v))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Through(v))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Sorted)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Sorted)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Sorted)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Sorted)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapOf<S>, S::Error> {
        match len {
            // A map field or a Struct: collect, sort, write at the end.
            Some(n) => Ok(MapOf::Sorting {
                outer: self.0,
                entries: Vec::with_capacity(n),
                key: None,
            }),
            // A message: its fields in their own order.
            None => self.0.serialize_map(None).map(MapOf::Passing),
        }
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Sorted)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Sorted)
    }
}

macro_rules! compound {
    ($trait:ident, $($method:ident),*) => {
        impl<S: $trait> $trait for Sorted<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            $(fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
                self.0.$method(&Through(v))
            })*
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl<S: SerializeStruct> SerializeStruct for Sorted<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Through(v))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Sorted<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Through(v))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

/// A map being written: passed through, or collected to be sorted.
pub enum MapOf<S: Serializer> {
    /// Unsized: a message's fields.
    Passing(S::SerializeMap),
    /// Sized: entries as JSON text, key first.
    Sorting {
        /// Where the sorted map goes at the end.
        outer: S,
        /// (key JSON, value JSON).
        entries: Vec<(String, Vec<u8>)>,
        /// The key of the entry whose value comes next.
        key: Option<String>,
    },
}

impl<S: Serializer> SerializeMap for MapOf<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), S::Error> {
        match self {
            MapOf::Passing(m) => m.serialize_key(&Through(k)),
            MapOf::Sorting { key, .. } => {
                *key = Some(serde_json::to_string(k).map_err(ser::Error::custom)?);
                Ok(())
            }
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
        match self {
            MapOf::Passing(m) => m.serialize_value(&Through(v)),
            MapOf::Sorting { entries, key, .. } => {
                let k = key
                    .take()
                    .ok_or_else(|| ser::Error::custom("a map value without its key"))?;
                entries.push((k, to_vec(v).map_err(ser::Error::custom)?));
                Ok(())
            }
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        match self {
            MapOf::Passing(m) => m.end(),
            MapOf::Sorting {
                outer, mut entries, ..
            } => {
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let mut text = String::with_capacity(
                    2 + entries
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 2)
                        .sum::<usize>(),
                );
                text.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(k);
                    text.push(':');
                    text.push_str(std::str::from_utf8(v).map_err(ser::Error::custom)?);
                }
                text.push('}');
                let raw = RawValue::from_string(text).map_err(ser::Error::custom)?;
                raw.serialize(outer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn sized_maps_are_sorted_and_nested_ones_too() {
        let mut inner = HashMap::new();
        for k in ["z", "y", "x"] {
            inner.insert(k.to_string(), vec![k.to_string()]);
        }
        let mut outer = HashMap::new();
        outer.insert("b", inner.clone());
        outer.insert("a", inner);
        assert_eq!(
            String::from_utf8(to_vec(&outer).unwrap()).unwrap(),
            r#"{"a":{"x":["x"],"y":["y"],"z":["z"]},"b":{"x":["x"],"y":["y"],"z":["z"]}}"#
        );
        let ordered: BTreeMap<&str, u8> = [("b", 1), ("a", 2)].into();
        assert_eq!(to_vec(&ordered).unwrap(), br#"{"a":2,"b":1}"#);
    }
}
