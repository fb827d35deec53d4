//! Strict JSON for the control socket: an object with a key twice is an error (`serde_json`
//! alone keeps the last one, so `{"name":"a","name":"b"}` would silently mean `b`), and a
//! request or answer with a key its shape does not have is an error (serde ignores extra keys of
//! a unit variant such as `{"request":"status","force":true}`, even with
//! `deny_unknown_fields`).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};

/// Parses `text` into a [`Value`], refusing any object that repeats a key.
pub(super) fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// The first key of `input` (an object) that `parsed`, serialized again, does not have: a key
/// the shape ignored. Keys with a default that were left out are fine.
pub(super) fn unknown_key<T: Serialize>(input: &Value, parsed: &T) -> Option<String> {
    let known = serde_json::to_value(parsed).ok()?;
    let (Some(input), Some(known)) = (input.as_object(), known.as_object()) else {
        return None;
    };
    input.keys().find(|k| !known.contains_key(*k)).cloned()
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_an_error_at_any_depth() {
        assert!(parse(r#"{"a":1,"b":[{"c":null}]}"#).is_ok());
        let e = parse(r#"{"a":1,"a":2}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key `a`"), "{e}");
        let e = parse(r#"{"x":[{"b":1,"b":1}]}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key `b`"), "{e}");
    }
}
