//! A view driver that holds nothing: proof that a driver plugs in through the registry alone,
//! with no change to the HTTP layer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fustor_core::config::{FieldError, ViewConfig};
use fustor_core::view::{
    ApplyReport, BuiltView, QueryResult, QueryRoute, StatsQuery, SuspectUpdate, ViewContext,
    ViewDriver, ViewQuery,
};
use fustor_core::{Event, FsRow, Now};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tower_service::Service;

use crate::http::{Metrics, main_app};
use crate::limits::Limits;
use crate::state::{Fusion, Generation};

pub(crate) struct NullView {
    id: String,
    /// Held by a test to make this view's pipe consumer hang in `session_closed` (a backed-up
    /// pipe).
    gate: Option<&'static Mutex<()>>,
}

pub(crate) fn build(id: &str, _cfg: &ViewConfig) -> Result<BuiltView, FieldError> {
    Ok(BuiltView {
        driver: Arc::new(NullView {
            id: id.into(),
            gate: None,
        }),
        max_tree_items: None,
    })
}

/// Whoever holds this lock stalls the consumers of every `null-gated` view.
pub(crate) static SESSION_CLOSE_GATE: Mutex<()> = Mutex::new(());

/// A `null` view whose `session_closed` waits for [`SESSION_CLOSE_GATE`].
pub(crate) fn build_gated(id: &str, _cfg: &ViewConfig) -> Result<BuiltView, FieldError> {
    Ok(BuiltView {
        driver: Arc::new(NullView {
            id: id.into(),
            gate: Some(&SESSION_CLOSE_GATE),
        }),
        max_tree_items: None,
    })
}

impl ViewQuery for NullView {
    fn supports(&self, route: QueryRoute) -> bool {
        route == QueryRoute::Stats
    }

    fn readiness_gated(&self) -> bool {
        false
    }

    fn stats(&self, _q: &StatsQuery<'_>) -> QueryResult<Value> {
        Ok(json!({"view_id": self.id, "item_count": 0}))
    }
}

impl ViewDriver for NullView {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver_name(&self) -> &'static str {
        "null"
    }
    fn election_key(&self, _pipe_id: &str) -> String {
        self.id.clone()
    }
    fn apply(&self, events: &[Event<FsRow>], _ctx: &ViewContext<'_>, _now: Now) -> ApplyReport {
        ApplyReport {
            events: events.len() as u64,
            ..ApplyReport::default()
        }
    }
    fn session_started(&self, _ctx: &ViewContext<'_>) {}
    fn session_closed(&self, _ctx: &ViewContext<'_>, _last: bool) {
        if let Some(gate) = self.gate {
            drop(gate.lock());
        }
    }
    fn audit_start(&self, _now: Now) {}
    fn audit_end(&self, _now: Now) -> bool {
        false
    }
    fn reset(&self) {}
    fn expire_suspects(&self, _now: Now) {}
    fn suspect_paths(&self) -> Vec<String> {
        Vec::new()
    }
    fn update_suspects(&self, _updates: &[SuspectUpdate], _now: Now) -> usize {
        0
    }
    fn node_count(&self) -> usize {
        0
    }
}

async fn get(app: &mut axum::Router, uri: &str) -> (StatusCode, Value) {
    let req = Request::get(uri)
        .header("x-api-key", "query-key")
        .body(Body::empty())
        .unwrap();
    let res = app.call(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_registered_null_driver_is_queried_over_the_http_router() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("null.yaml"),
        r#"
receivers: {r: {api_keys: [{key: agent-key, pipe_id: p}]}}
views: {n: {driver: "null", api_keys: [query-key]}}
pipes: {p: {receiver: r, views: [n]}}
"#,
    )
    .unwrap();
    let loaded = fustor_core::config::load_fusion_dir(dir.path());
    let mut registry = super::view_registry();
    registry.register("null", build);
    // Validation takes its driver names from the registry: no list in fustor-core to extend.
    let unknown = |names: &[&str]| {
        fustor_core::config::validate_fusion_with(&loaded, names)
            .iter()
            .any(|d| d.to_string().contains("unknown view driver"))
    };
    assert!(unknown(&super::view_driver_names()));
    let registered: Vec<&str> = registry.names().collect();
    assert!(!unknown(&registered));
    let limits = Limits::default();
    let (generation, errors) =
        Generation::build_with(loaded.config, &["p".to_string()], &limits, &registry, None);
    assert!(errors.is_empty(), "{errors:?}");
    let fusion = Fusion::new(generation, limits, 0);
    let mut app = main_app(fusion, Arc::new(Metrics::default()), 0, false);

    let (status, body) = get(&mut app, "/api/v1/views/n/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"view_id": "n", "item_count": 0}));
    // A route the driver does not answer is the same 404 as for an unknown route.
    let (status, _) = get(&mut app, "/api/v1/views/n/blind-spots").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&mut app, "/api/v1/views/n/diff").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
