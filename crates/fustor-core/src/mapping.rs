//! The `fields_mapping` projection (`agent-runtime.md` §12).
//!
//! Lets a site send only the keys it wants Fusion to see (for example no sizes). The semantics
//! follow the reference agent, including its Python-flavoured type conversions, so the same
//! mapping yields the same rows on either agent.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use crate::event::Event;
use crate::row::FsRow;

/// One rule: `{to: "a.b", source: ["field:type"], hardcoded_value: X, required: false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub to: String,
    #[serde(default)]
    pub source: Vec<String>,
    /// `Some(Value::Null)` means the key was given as null, which differs from absent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub hardcoded_value: Option<Value>,
    #[serde(default)]
    pub required: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Projects one row. An empty mapping is the identity.
pub fn project_row(row: &Map<String, Value>, rules: &[FieldMapping]) -> Map<String, Value> {
    if rules.is_empty() {
        return row.clone();
    }
    let mut out = Map::new();
    for rule in rules {
        let value = match &rule.hardcoded_value {
            Some(v) => v.clone(),
            None => rule
                .source
                .first()
                .map(|s| lookup(row, s))
                .unwrap_or(Value::Null),
        };
        if value.is_null() {
            continue;
        }
        insert_dotted(&mut out, &rule.to, value);
    }
    out
}

fn lookup(row: &Map<String, Value>, spec: &str) -> Value {
    let (field, ty) = match spec.split_once(':') {
        Some((f, t)) => (f, Some(t)),
        None => (spec, None),
    };
    match row.get(field) {
        None | Some(Value::Null) => Value::Null,
        Some(v) => match ty {
            Some(t) => convert(v, t).unwrap_or_else(|| v.clone()),
            None => v.clone(),
        },
    }
}

/// Python-style `str()/int()/float()/bool()` conversions; `None` keeps the raw value.
fn convert(v: &Value, ty: &str) -> Option<Value> {
    match ty.to_ascii_lowercase().as_str() {
        "string" | "str" => Some(Value::String(py_str(v))),
        "integer" | "int" => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(v.clone()),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Value::from(f.trunc() as i64)),
            Value::Bool(b) => Some(Value::from(*b as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        "number" | "float" => match v {
            Value::Number(n) => n.as_f64().and_then(Number::from_f64).map(Value::Number),
            Value::Bool(b) => Number::from_f64(if *b { 1.0 } else { 0.0 }).map(Value::Number),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
            _ => None,
        },
        "boolean" | "bool" => Some(Value::Bool(match v {
            Value::String(s) => {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "true" | "1" | "yes" | "on"
                )
            }
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Null => false,
        })),
        _ => None,
    }
}

fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{f:.1}")
            } else {
                format!("{f}")
            }
        }
        other => other.to_string(),
    }
}

fn insert_dotted(out: &mut Map<String, Value>, to: &str, value: Value) {
    let mut segments = to.split('.').peekable();
    let mut cur = out;
    while let Some(seg) = segments.next() {
        if segments.peek().is_none() {
            cur.insert(seg.to_string(), value);
            return;
        }
        let slot = cur
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(m) => cur = m,
            // An intermediate segment holds a non-object: the rule is skipped.
            _ => return,
        }
    }
}

/// Applies a mapping to a whole event; `fields` becomes the keys of the first mapped row.
pub fn project_event(event: &Event<FsRow>, rules: &[FieldMapping]) -> Event<Value> {
    let rows: Vec<Map<String, Value>> = event
        .rows
        .iter()
        .map(|r| match serde_json::to_value(r) {
            Ok(Value::Object(m)) => project_row(&m, rules),
            _ => Map::new(),
        })
        .collect();
    let fields = match rows.first() {
        Some(first) if !rules.is_empty() => first.keys().cloned().collect(),
        _ => event.fields.clone(),
    };
    Event {
        event_id: event.event_id.clone(),
        timestamp: event.timestamp,
        event_type: event.event_type,
        fields,
        rows: rows.into_iter().map(Value::Object).collect(),
        index: event.index,
        event_schema: event.event_schema.clone(),
        table: event.table.clone(),
        message_source: event.message_source,
        metadata: event.metadata.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Vec<FieldMapping> {
        serde_json::from_value(v).unwrap()
    }

    fn row() -> Map<String, Value> {
        json!({"path": "/a.txt", "size": 5, "modified_time": 10.0, "flag": "Yes", "n": "12"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn empty_mapping_is_identity() {
        assert_eq!(project_row(&row(), &[]), row());
    }

    #[test]
    fn projection_keeps_only_targets() {
        let r = rules(json!([{"to": "path", "source": ["path:string"]},
                              {"to": "modified_time", "source": ["modified_time:number"]}]));
        assert_eq!(
            Value::Object(project_row(&row(), &r)),
            json!({"path": "/a.txt", "modified_time": 10.0})
        );
    }

    #[test]
    fn conversions_follow_python() {
        let r = rules(json!([
            {"to": "s", "source": ["size:str"]},
            {"to": "f", "source": ["modified_time:string"]},
            {"to": "b", "source": ["flag:bool"]},
            {"to": "i", "source": ["n:int"]},
            {"to": "bad", "source": ["path:int"]},
            {"to": "missing", "source": ["nope:int"]},
            {"to": "h", "hardcoded_value": 7},
            {"to": "hn", "hardcoded_value": null, "source": ["size"]}
        ]));
        let out = Value::Object(project_row(&row(), &r));
        assert_eq!(
            out,
            json!({"s": "5", "f": "10.0", "b": true, "i": 12, "bad": "/a.txt", "h": 7})
        );
    }

    #[test]
    fn dotted_targets_nest_and_skip_conflicts() {
        let r = rules(json!([
            {"to": "meta.size", "source": ["size"]},
            {"to": "p", "source": ["path"]},
            {"to": "p.x", "source": ["size"]}
        ]));
        assert_eq!(
            Value::Object(project_row(&row(), &r)),
            json!({"meta": {"size": 5}, "p": "/a.txt"})
        );
    }

    #[test]
    fn event_fields_become_first_row_keys() {
        let ev = Event::fs(
            crate::EventType::Update,
            crate::MessageSource::Realtime,
            vec![FsRow::upsert("/a", 1.0, 5, false)],
        );
        let r = rules(json!([{"to": "path", "source": ["path"]}]));
        let out = project_event(&ev, &r);
        assert_eq!(out.fields, vec!["path".to_string()]);
        assert_eq!(out.rows[0], json!({"path": "/a"}));
    }
}
