//! YAML parsing that tolerates duplicate mapping keys, like PyYAML (the last one wins).
//!
//! The reference loads files with `yaml.safe_load`, which silently keeps the last of two equal
//! keys; documents written for it (the forest design's example repeats `views:`) must load here
//! too. Each duplicate is reported so `check-config` can point at it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_norway::{Mapping, Value};

/// A YAML value plus the keys that appeared twice in one mapping.
pub struct Loose {
    pub value: Value,
    pub duplicates: Vec<String>,
}

struct LooseVisitor;

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
        Ok(plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
        Ok(plain(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
        Ok(plain(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
        Ok(plain(Value::Number(v.into())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(plain(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Loose, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(plain(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(plain(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        Loose::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        let mut out = Vec::new();
        let mut duplicates = Vec::new();
        while let Some(item) = seq.next_element::<Loose>()? {
            duplicates.extend(item.duplicates);
            out.push(item.value);
        }
        Ok(Loose {
            value: Value::Sequence(out),
            duplicates,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        let mut out = Mapping::new();
        let mut duplicates = Vec::new();
        while let Some(k) = map.next_key::<Loose>()? {
            let v: Loose = map.next_value()?;
            duplicates.extend(k.duplicates);
            duplicates.extend(v.duplicates);
            if out.contains_key(&k.value) {
                duplicates.push(key_text(&k.value));
            }
            out.insert(k.value, v.value);
        }
        Ok(Loose {
            value: Value::Mapping(out),
            duplicates,
        })
    }
}

fn plain(value: Value) -> Loose {
    Loose {
        value,
        duplicates: Vec::new(),
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_duplicate_wins_and_is_reported() {
        let l: Loose =
            serde_norway::from_str("views:\nviews:\n  a: {driver: fs}\nx: [1, {y: 2, y: 3}]\n")
                .unwrap();
        assert_eq!(l.duplicates, vec!["views".to_string(), "y".to_string()]);
        let v = l.value;
        assert!(v["views"]["a"]["driver"] == Value::String("fs".into()));
        assert_eq!(v["x"][1]["y"], Value::Number(3.into()));
    }
}
