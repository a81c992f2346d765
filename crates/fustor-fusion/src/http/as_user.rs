//! Filtering of the path lists a driver answers as one value (`blind-spots`) for keys bound
//! to a user (issue 14): the driver says which paths the user may see.

use fustor_core::view::{Identity, ViewQuery};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /blind-spots` (`query-api.md` §3.4), typed for filtering; unknown keys are kept.
#[derive(Debug, Serialize, Deserialize)]
struct BlindSpots {
    additions: Vec<Map<String, Value>>,
    deletions: Vec<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The blind spots of `all` that `who` may see, counts adjusted; an answer of another shape
/// (another driver's) is replaced by an empty one rather than shown whole.
pub fn blind_spots(d: &dyn ViewQuery, all: Value, who: &Identity) -> Value {
    let Ok(mut b) = serde_json::from_value::<BlindSpots>(all) else {
        return serde_json::json!({"additions_count": 0, "additions": [], "deletion_count": 0, "deletions": []});
    };
    let add_paths: Vec<String> = b
        .additions
        .iter()
        .map(|a| {
            a.get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let shown = d.visible_paths(&add_paths, who);
    b.additions = b
        .additions
        .into_iter()
        .zip(shown)
        .filter_map(|(a, ok)| ok.then_some(a))
        .collect();
    let shown = d.visible_paths(&b.deletions, who);
    b.deletions = std::mem::take(&mut b.deletions)
        .into_iter()
        .zip(shown)
        .filter_map(|(p, ok)| ok.then_some(p))
        .collect();
    b.rest
        .insert("additions_count".into(), b.additions.len().into());
    b.rest
        .insert("deletion_count".into(), b.deletions.len().into());
    serde_json::to_value(b).unwrap_or(Value::Null)
}
