//! Deserialisation that remembers where it failed.
//!
//! Operators fix configuration from the error text alone, so every error must name the key path
//! (`views.v1.driver_params.max_tree_items`). serde's own errors carry no path, hence this small
//! deserializer over `serde_json::Value` that prefixes keys while an error unwinds. It is also
//! where YAML scalars are mildly coerced the way the reference (pydantic, lax mode) accepts them:
//! integral floats for integers and numbers for strings.

use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Number, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `receivers.http-main.api_keys[0].key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn new() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Segment::Key(key.into()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl From<&str> for KeyPath {
    /// Splits on `.`; convenient for paths built from ids that contain no dot.
    fn from(s: &str) -> Self {
        KeyPath(
            s.split('.')
                .filter(|p| !p.is_empty())
                .map(|p| Segment::Key(p.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A schema error at a key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FieldError {
    /// Outermost first once the error has left the deserializer.
    rev: Vec<Segment>,
    pub message: String,
}

impl FieldError {
    pub fn new(message: impl Into<String>) -> Self {
        FieldError {
            rev: Vec::new(),
            message: message.into(),
        }
    }

    pub fn path(&self) -> KeyPath {
        KeyPath(self.rev.iter().rev().cloned().collect())
    }

    /// Adds an outer segment; callers wrap from the inside out.
    pub fn within(mut self, seg: Segment) -> Self {
        self.rev.push(seg);
        self
    }

    /// Adds several outer keys given outermost first (`["views", "v1"]`).
    pub fn within_keys(mut self, keys: &[&str]) -> Self {
        for k in keys.iter().rev() {
            self.rev.push(Segment::Key((*k).to_string()));
        }
        self
    }

    fn render(&self) -> String {
        let path = self.path();
        if path.is_empty() {
            self.message.clone()
        } else {
            format!("{path}: {}", self.message)
        }
    }
}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldError::new(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        FieldError::new("required key is missing").within(Segment::Key(field.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        FieldError::new(format!("expected {exp}, found {unexp}"))
    }
}

/// Deserialises `T` from a JSON value, reporting failures with their key path.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    T::deserialize(ValueDe(value))
}

/// Converts a YAML document into JSON so that one deserializer serves both and `driver_params`
/// can be kept verbatim. Non-string keys are stringified (YAML allows `1: x`); tags are dropped;
/// non-finite floats become strings so that they fail as "expected a number" with a path.
pub fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => yaml_number(&n),
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(yaml_key(k), yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn yaml_number(n: &serde_norway::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(u)
    } else if let Some(i) = n.as_i64() {
        Value::from(i)
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        Number::from_f64(f).map_or_else(|| Value::String(n.to_string()), Value::Number)
    }
}

/// Section ids and map keys as text; YAML allows numbers and booleans as keys.
pub fn yaml_key(k: serde_norway::Value) -> String {
    use serde_norway::Value as Y;
    match k {
        Y::String(s) => s,
        Y::Null => "null".to_string(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        Y::Tagged(t) => yaml_key(t.value),
        other => serde_json::to_string(&yaml_to_json(other)).unwrap_or_default(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

fn expected(what: &str, v: &Value) -> FieldError {
    FieldError::new(format!("expected {what}, found {}", describe(v)))
}

struct ValueDe<'a>(&'a Value);

impl ValueDe<'_> {
    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        if let Value::Number(n) = self.0 {
            if let Some(i) = n.as_i64() {
                return visitor.visit_i64(i);
            }
            if let Some(u) = n.as_u64() {
                return visitor.visit_u64(u);
            }
            if let Some(f) = n.as_f64() {
                // `5.0` is an integer to pydantic; keep accepting what the reference accepted.
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    return visitor.visit_i64(f as i64);
                }
            }
        }
        Err(expected("an integer", self.0))
    }
}

impl<'de> Deserializer<'de> for ValueDe<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(a) => visitor.visit_seq(SeqDe {
                iter: a.iter().enumerate(),
            }),
            Value::Object(m) => visitor.visit_map(MapDe {
                iter: m.iter(),
                pending: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            v => Err(expected("a boolean", v)),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.integer(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Number(n) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            v => Err(expected("a number", v)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::String(s) => visitor.visit_str(s),
            // An unquoted `key: 12345` is a number in YAML but plainly meant as text.
            Value::Number(n) => visitor.visit_string(n.to_string()),
            v => Err(expected("a string", v)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Array(_) => self.deserialize_any(visitor),
            v => Err(expected("a list", v)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            v => Err(expected("a mapping", v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            v => Err(expected("a string", v)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

struct SeqDe<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldError> {
        match self.iter.next() {
            None => Ok(None),
            Some((i, v)) => seed
                .deserialize(ValueDe(v))
                .map(Some)
                .map_err(|e| e.within(Segment::Index(i))),
        }
    }
}

struct MapDe<'a> {
    iter: serde_json::map::Iter<'a>,
    pending: Option<(&'a String, &'a Value)>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        match self.iter.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.pending = Some((k, v));
                let key: de::value::StrDeserializer<'_, FieldError> =
                    k.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| FieldError::new("value requested before its key"))?;
        seed.deserialize(ValueDe(v))
            .map_err(|e| e.within(Segment::Key(k.clone())))
    }
}

/// `deserialize_with` helper for counts that the reference declares `gt=0`.
pub fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom("must be greater than 0"));
    }
    Ok(n)
}

/// The range every duration in seconds must fall in: finite, `0..=MAX_SECS`.
fn seconds_in_range<E: de::Error>(v: f64, allow_zero: bool) -> Result<f64, E> {
    let max = crate::time::MAX_SECS;
    let low_ok = if allow_zero { v >= 0.0 } else { v > 0.0 };
    if v.is_finite() && low_ok && v <= max {
        return Ok(v);
    }
    let low = if allow_zero { "0" } else { "greater than 0" };
    Err(de::Error::custom(format!(
        "must be a number of seconds from {low} to {max} (2^32), got {v}"
    )))
}

/// `deserialize_with` for durations where 0 means "off" or "immediately".
pub fn duration_secs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    seconds_in_range(f64::deserialize(d)?, true)
}

/// `deserialize_with` for periods, where 0 would mean a busy loop.
pub fn interval_secs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    seconds_in_range(f64::deserialize(d)?, false)
}

/// [`duration_secs`] for optional keys.
pub fn opt_duration_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)?
        .map(|v| seconds_in_range(v, true))
        .transpose()
}

/// [`interval_secs`] for optional keys.
pub fn opt_interval_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)?
        .map(|v| seconds_in_range(v, false))
        .transpose()
}

/// Checks a value already read as seconds (for keys read from `driver_params` on demand).
pub fn check_interval_secs(v: f64) -> Result<f64, FieldError> {
    seconds_in_range(v, false)
}

/// `deserialize_with` for whole seconds that must be positive and bounded like durations.
pub fn positive_secs_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = positive_u64(d)?;
    if n > 1 << 32 {
        return Err(de::Error::custom(format!(
            "must be a number of seconds from 1 to 4294967296 (2^32), got {n}"
        )));
    }
    Ok(n)
}

/// `deserialize_with` for a finite factor in `0..=1e6` (backoff multipliers).
pub fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && (0.0..=1e6).contains(&v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format!(
            "must be a number from 0 to 1000000, got {v}"
        )))
    }
}

/// `deserialize_with` for a number of days, bounded like durations once converted.
pub fn duration_days<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    let max = (crate::time::MAX_SECS / 86_400.0).floor();
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format!(
            "must be a number of days from 0 to {max}, got {v}"
        )))
    }
}

/// `deserialize_with` for an optional thread count: each is an OS thread, so it is bounded.
pub fn opt_thread_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        None => Ok(None),
        Some(n) if (1..=1024).contains(&n) => Ok(usize::try_from(n).ok()),
        Some(n) => Err(de::Error::custom(format!(
            "must be a thread count from 1 to 1024, got {n}"
        ))),
    }
}
