//! scenarios.md §7: on-demand scan and jobs (S69–S72).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

/// S69: ready v1 with `/data`, sessions a (leader) and b; scan of `/data` requested.
async fn s69(fx: &Fx) -> (String, String, String) {
    let a = fx.ready_leader().await;
    let b = fx.open("b:v1").await;
    fx.rt(&a, vec![row("/data/f.txt", now() - 3600.0)]).await;
    let r = fx.q("tree?path=/data&on_demand_scan=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let job = r.body["job_id"].as_str().expect("job_id").to_string();
    assert_eq!(job.len(), 8, "{job}");
    assert!(job.chars().all(|c| c.is_ascii_hexdigit()), "{job}");
    assert_eq!(r.body["job_pending"], true);
    assert_eq!(r.body["path"], "/data");
    (a, b, job)
}

fn one_scan(hb: &Value, job: &str) {
    let cmds = hb["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 1, "{hb}");
    let c = &cmds[0];
    assert_eq!(c["type"], "scan");
    assert_eq!(c["path"], "/data");
    assert_eq!(c["recursive"], true);
    assert_eq!(c["job_id"], job);
    assert!(c["created_at"].as_f64().is_some(), "{c}");
}

async fn job(fx: &Fx, id: &str) -> Value {
    let r = fx.q(&format!("jobs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s69_broadcast_scan_command() {
    let fx = Fx::f0().await;
    let (a, b, id) = s69(&fx).await;
    one_scan(&fx.hb(&a, true).await, &id);
    one_scan(&fx.hb(&b, true).await, &id);
    assert_eq!(fx.hb(&a, true).await["commands"], json!([]));
    assert_eq!(fx.hb(&b, true).await["commands"], json!([]));
    let r = fx.q("jobs").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let jobs = r.body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{}", r.text);
    let j = &jobs[0];
    assert_eq!(j["job_id"], id.as_str());
    assert_eq!(j["view_id"], "v1");
    assert_eq!(j["path"], "/data");
    assert_eq!(j["status"], "RUNNING");
    assert_eq!(j["progress"]["total_pipes"], 2);
    assert_eq!(j["progress"]["completed_pipes"], 0);
    assert_eq!(j["completed_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s70_pending_job_on_missing_path() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    let r = fx.q("tree?path=/newdir&on_demand_scan=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["job_pending"], true);
    assert_eq!(r.body["job_id"].as_str().map(str::len), Some(8));
    assert!(r.body["message"].is_string(), "{}", r.text);
    // Without on_demand_scan it is a plain 404.
    assert_eq!(fx.q("tree?path=/newdir").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s71_job_completion() {
    let fx = Fx::f0().await;
    let (a, b, id) = s69(&fx).await;
    let done = json!({"events": [], "source_type": "job_complete",
                      "metadata": {"scan_path": "/data", "job_id": id}});
    fx.push(
        &a,
        "update",
        "on_demand_job",
        vec![row("/data/od.txt", now() - 3600.0)],
        false,
        None,
    )
    .await;
    let r = fx.ingest(&a, &done).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "ok", "phase": "job_complete"}));
    let j = job(&fx, &id).await;
    assert_eq!(j["status"], "RUNNING", "{j}");
    assert_eq!(j["progress"]["completed_pipes"], 1);
    assert_eq!(j["progress"]["percentage"].as_f64(), Some(50.0));
    let r = fx.ingest(&b, &done).await;
    assert_eq!(r.body["phase"], "job_complete");
    let j = job(&fx, &id).await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(j["progress"]["percentage"].as_f64(), Some(100.0));
    assert!(j["completed_at"].as_f64().is_some(), "{j}");
    let n = fx
        .node("/data/od.txt")
        .await
        .expect("on-demand row applied");
    assert!(agent_missing(&n), "{n}");
    assert!(
        fx.blind_additions()
            .await
            .contains(&"/data/od.txt".to_string())
    );
    let r = fx.q("jobs/deadbeef").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s72_scan_without_sessions() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.close(&a).await;
    let r = fx.q("tree?on_demand_scan=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["job_id"], Value::Null);
    assert_eq!(r.body["job_pending"], false);
    let r = fx.q("jobs").await;
    assert_eq!(r.body["jobs"], json!([]), "{}", r.text);
}

/// W§6.1 step 5: a job completes when every expected session that is still active completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s71_job_completes_when_remaining_sessions_done() {
    let fx = Fx::f0().await;
    let (a, b, id) = s69(&fx).await;
    fx.close(&b).await;
    assert_eq!(job(&fx, &id).await["status"], "RUNNING");
    let r = fx
        .ingest(
            &a,
            &json!({"events": [], "source_type": "job_complete",
                    "metadata": {"scan_path": "/data", "job_id": id}}),
        )
        .await;
    assert_eq!(r.body["phase"], "job_complete");
    assert_eq!(job(&fx, &id).await["status"], "COMPLETED");
}

/// W§4.3: completion aliases, and `on_demand_job` with metadata is a completion whose events
/// are not ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s71_job_complete_aliases() {
    let fx = Fx::f0().await;
    let (a, b, id) = s69(&fx).await;
    let r = fx
        .ingest(
            &a,
            &Fx::batch(
                "update",
                "on_demand_job",
                vec![row("/data/not-ingested.txt", now() - 3600.0)],
                false,
                Some(json!({"scan_path": "/data", "job_id": id})),
            ),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"status": "ok", "phase": "job_complete"}),
        "{}",
        r.text
    );
    let r = fx
        .ingest(
            &b,
            &json!({"events": [], "source_type": "scan_complete",
                    "metadata": {"scan_path": "/data"}}),
        )
        .await;
    assert_eq!(r.body["phase"], "job_complete", "{}", r.text);
    assert_eq!(job(&fx, &id).await["status"], "COMPLETED");
    fx.settle("v1").await;
    assert!(fx.node("/data/not-ingested.txt").await.is_none());
}
