//! scenarios.md §5: snapshot, audit, blind spots (S41–S58).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Leader `a:v1` that sent `rows` as its snapshot, then the snapshot end (view ready).
async fn snapshot_leader(fx: &Fx, rows: Vec<Value>) -> String {
    let a = fx.open("a:v1").await;
    if !rows.is_empty() {
        fx.snap(&a, rows).await;
    }
    fx.ready(&a).await;
    assert_eq!(fx.q("stats").await.status, 200);
    a
}

fn s(p: &str) -> String {
    p.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s41_snapshot_baseline_and_s42_hot_file_cools() {
    let fx = Fx::f0().await;
    let t = now();
    let a = snapshot_leader(
        &fx,
        vec![row("/s/old.txt", t - 3600.0), row("/s/hot.txt", t - 1.0)],
    )
    .await;
    let _hb = fx.keepalive(&a);
    let old = fx.node("/s/old.txt").await.unwrap();
    let hot = fx.node("/s/hot.txt").await.unwrap();
    assert!(!agent_missing(&old) && !agent_missing(&hot), "{old} {hot}");
    assert!(!is_suspect(&old), "{old}");
    assert!(is_suspect(&hot), "{hot}");
    let sus = fx.suspects().await;
    assert!(
        sus.contains(&s("/s/hot.txt")) && !sus.contains(&s("/s/old.txt")),
        "{sus:?}"
    );
    let bs = fx.blind().await;
    assert_eq!(bs["additions_count"], 0, "{bs}");
    assert_eq!(bs["deletion_count"], 0, "{bs}");
    assert_eq!(fx.stats().await["has_blind_spot"], false);

    // S42: HOT = 5 s; the file was 1 s old.
    let cooled = eventually!(6.0, !is_suspect(&fx.node("/s/hot.txt").await.unwrap()));
    assert!(cooled, "hot snapshot file still suspect after ≥5 s");
    assert!(!fx.suspects().await.contains(&s("/s/hot.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s43_audit_discovery_is_blind_addition() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.audit(
        &a,
        vec![with(
            row("/n.txt", t - 3600.0),
            json!({"parent_path": "/", "parent_mtime": t}),
        )],
    )
    .await;
    fx.audit_end(&a).await;
    let n = fx.node("/n.txt").await.expect("audit discovery applied");
    assert!(agent_missing(&n), "{n}");
    assert!(!is_suspect(&n), "{n}");
    let bs = fx.blind().await;
    assert_eq!(bs["additions_count"], 1, "{bs}");
    assert_eq!(bs["additions"][0]["path"], "/n.txt");
    assert_eq!(bs["additions"][0]["agent_missing"], true);
    let st = fx.stats().await;
    assert_eq!(st["has_blind_spot"], true);
    assert_eq!(st["audit_cycle_count"], 1);
    assert_eq!(st["is_auditing"], false);
    assert!(
        st["last_audit_finished_at"].as_f64().unwrap() >= t - 1.0,
        "{st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s44_audit_discovery_of_young_file_is_suspect() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.audit(&a, vec![row("/y.txt", now())]).await;
    assert!(is_suspect(&fx.node("/y.txt").await.unwrap()));
    assert!(fx.suspects().await.contains(&s("/y.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s45_audit_does_not_overwrite_newer_data() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.rt(&a, vec![row("/m.txt", t)]).await;
    fx.audit(&a, vec![row("/m.txt", t - 100.0)]).await;
    let n = fx.node("/m.txt").await.unwrap();
    assert!(approx(n["modified_time"].as_f64().unwrap(), t, 1e-3), "{n}");
    assert!(!agent_missing(&n));
    assert!(!fx.blind_additions().await.contains(&s("/m.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s46_blind_modification_detected() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.rt(&a, vec![row("/mod.txt", t - 100.0)]).await;
    fx.audit(&a, vec![row("/mod.txt", t - 50.0)]).await;
    let n = fx.node("/mod.txt").await.unwrap();
    assert!(
        approx(n["modified_time"].as_f64().unwrap(), t - 50.0, 1e-3),
        "{n}"
    );
    assert!(agent_missing(&n));
    assert!(fx.blind_additions().await.contains(&s("/mod.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s47_parent_mtime_guard() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(&fx, vec![dir_row("/p", 2000.0)]).await;
    let m = now() - 3600.0;
    fx.audit(
        &a,
        vec![with(
            row("/p/new.txt", m),
            json!({"parent_path": "/p", "parent_mtime": 1000.0}),
        )],
    )
    .await;
    assert!(
        fx.node("/p/new.txt").await.is_none(),
        "stale audit listing applied"
    );
    fx.audit(
        &a,
        vec![with(
            row("/p/new.txt", m),
            json!({"parent_path": "/p", "parent_mtime": 3000.0}),
        )],
    )
    .await;
    assert!(fx.node("/p/new.txt").await.is_some());
}

/// S48 given + when: snapshot `/d` (100), `/d/x.txt`, `/d/y.txt` (50); audit `/d` + `/d/x.txt`; end.
async fn s48(fx: &Fx) -> String {
    let a = snapshot_leader(
        fx,
        vec![
            dir_row("/d", 100.0),
            row("/d/x.txt", 50.0),
            row("/d/y.txt", 50.0),
        ],
    )
    .await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    fx.audit_end(&a).await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s48_missing_item_detection() {
    let fx = Fx::f0().await;
    s48(&fx).await;
    assert!(
        fx.node("/d/y.txt").await.is_none(),
        "missing item not deleted"
    );
    assert!(fx.node("/d/x.txt").await.is_some());
    assert_eq!(fx.blind_deletions().await, vec![s("/d/y.txt")]);
    assert_eq!(fx.blind().await["deletion_count"], 1);
    assert_eq!(fx.stats().await["has_blind_spot"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s49_silent_directory_protects_children() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(
        &fx,
        vec![
            dir_row("/d", 100.0),
            row("/d/x.txt", 50.0),
            row("/d/y.txt", 50.0),
        ],
    )
    .await;
    fx.audit(
        &a,
        vec![with(dir_row("/d", 100.0), json!({"audit_skipped": true}))],
    )
    .await;
    fx.audit_end(&a).await;
    assert!(fx.node("/d/x.txt").await.is_some());
    assert!(fx.node("/d/y.txt").await.is_some());
    assert_eq!(fx.node("/d").await.unwrap()["audit_skipped"], true);
    assert!(fx.blind_deletions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s50_unscanned_directory_untouched() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(
        &fx,
        vec![
            row("/other/k.txt", 50.0),
            dir_row("/d", 100.0),
            row("/d/x.txt", 50.0),
        ],
    )
    .await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    fx.audit_end(&a).await;
    assert!(fx.node("/other/k.txt").await.is_some());
    assert!(fx.node("/d/x.txt").await.is_some());
    assert!(fx.blind_deletions().await.is_empty());
}

async fn s51_52(fx: &Fx, step2: &str) -> String {
    let a = snapshot_leader(fx, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)]).await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    let copied = row("/d/copied.txt", now() - 10000.0);
    match step2 {
        "realtime" => fx.rt(&a, vec![copied]).await,
        _ => fx.snap(&a, vec![copied]).await,
    }
    assert!(fx.node("/d/copied.txt").await.is_some());
    fx.audit_end(&a).await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s51_stale_evidence_protection() {
    let fx = Fx::f0().await;
    s51_52(&fx, "realtime").await;
    assert!(
        fx.node("/d/copied.txt").await.is_some(),
        "M3 did not protect"
    );
    assert!(!fx.blind_deletions().await.contains(&s("/d/copied.txt")));
    assert!(fx.node("/d/x.txt").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s52_snapshot_nodes_not_protected() {
    let fx = Fx::f0().await;
    s51_52(&fx, "snapshot").await;
    assert!(fx.node("/d/copied.txt").await.is_none());
    assert!(fx.blind_deletions().await.contains(&s("/d/copied.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s53_tombstoned_path_never_blind_deletion() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(&fx, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)]).await;
    fx.rt(&a, vec![row("/d/gone.txt", now())]).await;
    fx.rt_del(&a, &["/d/gone.txt"]).await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    fx.audit_end(&a).await;
    assert!(!fx.blind_deletions().await.contains(&s("/d/gone.txt")));
    assert!(fx.node("/d/gone.txt").await.is_none());
    assert!(fx.node("/d/x.txt").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s54_audit_end_without_audit_is_noop() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.audit_end(&a).await;
    assert_eq!(fx.stats().await["audit_cycle_count"], 0);
    let r = fx.consistency("audit/end", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fx.stats().await["audit_cycle_count"], 0);
    fx.audit(&a, vec![row("/n.txt", now() - 3600.0)]).await;
    fx.audit_end(&a).await;
    assert_eq!(fx.stats().await["audit_cycle_count"], 1);
    fx.audit_end(&a).await;
    let r = fx.consistency("audit/end", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(fx.stats().await["audit_cycle_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s55_explicit_audit_start() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    let r = fx.consistency("audit/start", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"status": "audit_started", "drivers_handled": 1})
    );
    assert_eq!(fx.stats().await["is_auditing"], true);
    let r = fx.consistency("audit/end", None).await;
    assert_eq!(r.body["status"], "audit_ended", "{}", r.text);
    assert_eq!(r.body["drivers_handled"], 1);
    let st = fx.stats().await;
    assert_eq!(st["is_auditing"], false);
    assert_eq!(st["audit_cycle_count"], 1);

    // The same routes exist on the main app (agent key resolves to pipe id v1 = view id).
    let r = fx
        .send(
            Method::POST,
            &format!("{}/api/v1/pipe/consistency/audit/start", fx.main),
            Some("agent-key"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "audit_started", "{}", r.text);
    let r = fx
        .send(
            Method::POST,
            &format!("{}/api/v1/pipe/consistency/audit/end", fx.main),
            Some("agent-key"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "audit_ended", "{}", r.text);
    assert_eq!(fx.stats().await["audit_cycle_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s56_blind_deletion_cleared_on_resight() {
    let fx = Fx::f0().await;
    let a = s48(&fx).await;
    assert_eq!(fx.blind_deletions().await, vec![s("/d/y.txt")]);
    fx.audit(
        &a,
        vec![with(
            row("/d/y.txt", 50.0),
            json!({"parent_path": "/d", "parent_mtime": 100.0}),
        )],
    )
    .await;
    assert!(fx.blind_deletions().await.is_empty());
    let n = fx.node("/d/y.txt").await.expect("re-sighted file is back");
    assert!(agent_missing(&n));
    assert!(fx.blind_additions().await.contains(&s("/d/y.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s56_without_parent_mtime_dropped_but_deletion_cleared() {
    let fx = Fx::f0().await;
    let a = s48(&fx).await;
    fx.audit(
        &a,
        vec![with(row("/d/y.txt", 50.0), json!({"parent_path": "/d"}))],
    )
    .await;
    assert!(fx.blind_deletions().await.is_empty());
    assert!(
        fx.node("/d/y.txt").await.is_none(),
        "C3 should drop the row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s57_blind_spot_lists_persist_across_audits_reset_per_session() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(&fx, vec![dir_row("/d", 100.0), row("/d/gone.txt", 50.0)]).await;
    let m = now() - 3600.0;
    fx.audit(&a, vec![row("/A.txt", m), row("/C.txt", m)]).await;
    fx.audit_end(&a).await;
    let mut add = fx.blind_additions().await;
    add.sort();
    assert_eq!(add, vec![s("/A.txt"), s("/C.txt")]);
    fx.rt_del(&a, &["/A.txt"]).await;
    fx.audit(&a, vec![row("/B.txt", m), dir_row("/d", 100.0)])
        .await;
    fx.audit_end(&a).await;
    let mut add = fx.blind_additions().await;
    add.sort();
    assert_eq!(add, vec![s("/B.txt"), s("/C.txt")]);
    assert_eq!(fx.blind_deletions().await, vec![s("/d/gone.txt")]);
    let _n = fx.open("n:v1").await;
    let bs = fx.blind().await;
    assert_eq!(bs["additions_count"], 0, "{bs}");
    assert_eq!(bs["deletion_count"], 0, "{bs}");
    assert_eq!(fx.stats().await["has_blind_spot"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s58_snapshot_clears_blind_addition() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.audit(&a, vec![row("/q.txt", t - 3600.0)]).await;
    fx.audit_end(&a).await;
    assert!(fx.blind_additions().await.contains(&s("/q.txt")));
    fx.snap(&a, vec![row("/q.txt", t - 3000.0)]).await;
    assert!(!fx.blind_additions().await.contains(&s("/q.txt")));
    assert!(!agent_missing(&fx.node("/q.txt").await.unwrap()));
}

/// W§4.3: an audit end batch is accepted from any session (follower included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s54_audit_end_from_follower_accepted() {
    let fx = Fx::f0().await;
    let a = s48_given_only(&fx).await;
    let b = fx.open("b:v1").await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    fx.audit_end(&b).await;
    assert_eq!(fx.stats().await["audit_cycle_count"], 1);
    assert!(fx.node("/d/y.txt").await.is_none());
}

async fn s48_given_only(fx: &Fx) -> String {
    snapshot_leader(
        fx,
        vec![
            dir_row("/d", 100.0),
            row("/d/x.txt", 50.0),
            row("/d/y.txt", 50.0),
        ],
    )
    .await
}

/// V1: a new session abandons an in-flight audit (its end is then a no-op).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s57_new_session_abandons_inflight_audit() {
    let fx = Fx::f0().await;
    let a = s48_given_only(&fx).await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    assert_eq!(fx.stats().await["is_auditing"], true);
    let _b = fx.open("b:v1").await;
    assert_eq!(fx.stats().await["is_auditing"], false);
    fx.audit_end(&a).await;
    assert_eq!(fx.stats().await["audit_cycle_count"], 0);
    assert!(
        fx.node("/d/y.txt").await.is_some(),
        "abandoned audit deleted a file"
    );
}

/// A1: an explicit start within 5 s of the implicit one keeps what the audit has already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s55_late_explicit_audit_start_keeps_seen() {
    let fx = Fx::f0().await;
    let a = s48_given_only(&fx).await;
    fx.audit(&a, vec![dir_row("/d", 100.0), row("/d/x.txt", 50.0)])
        .await;
    let r = fx.consistency("audit/start", None).await;
    assert_eq!(r.body["status"], "audit_started");
    let r = fx.consistency("audit/end", None).await;
    assert_eq!(r.body["status"], "audit_ended");
    assert!(
        fx.node("/d/y.txt").await.is_none(),
        "late start cleared audit_seen"
    );
    assert_eq!(fx.blind_deletions().await, vec![s("/d/y.txt")]);
}

/// §6.4: compensation deletes (snapshot/audit delete rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s48_compensation_delete() {
    let fx = Fx::f0().await;
    let a = snapshot_leader(
        &fx,
        vec![
            row("/cd.txt", 500.0),
            row("/keep.txt", 500.0),
            row("/sd.txt", 500.0),
        ],
    )
    .await;
    fx.push(&a, "delete", "audit", vec![del_row("/cd.txt")], false, None)
        .await;
    assert!(fx.node("/cd.txt").await.is_none());
    assert!(fx.blind_deletions().await.contains(&s("/cd.txt")));
    // Existing node newer than the delete's mtime ⇒ ignored.
    fx.push(
        &a,
        "delete",
        "audit",
        vec![json!({"path": "/keep.txt", "modified_time": 100.0})],
        false,
        None,
    )
    .await;
    assert!(fx.node("/keep.txt").await.is_some());
    fx.push(
        &a,
        "delete",
        "snapshot",
        vec![del_row("/sd.txt")],
        false,
        None,
    )
    .await;
    assert!(fx.node("/sd.txt").await.is_none());
    // Tombstoned path ⇒ ignored (never a blind deletion).
    fx.rt(&a, vec![row("/t.txt", now())]).await;
    fx.rt_del(&a, &["/t.txt"]).await;
    fx.push(&a, "delete", "audit", vec![del_row("/t.txt")], false, None)
        .await;
    assert!(!fx.blind_deletions().await.contains(&s("/t.txt")));
}

/// W§12 item 8 (re-implementation): consistency routes act on the views of the key's pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s55_consistency_routes_use_key_pipe_views() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    let b = fx.open_key("agent-key-2", "b:v2").await;
    fx.ready(&b).await;
    let r = fx
        .send(
            Method::POST,
            &format!("{}/api/v1/pipe/consistency/audit/start", fx.recv),
            Some("agent-key-2"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "audit_started", "{}", r.text);
    assert_eq!(fx.qv("v2", "qk2", "stats").await.body["is_auditing"], true);
    assert_eq!(fx.stats().await["is_auditing"], false);
}

/// query-api §3.4: blind-spot additions list files only (directory additions are not counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s43_blind_spot_additions_list_files_only() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 3600.0;
    fx.audit(&a, vec![dir_row("/nd", m), row("/nd/f.txt", m)])
        .await;
    fx.audit_end(&a).await;
    let bs = fx.blind().await;
    assert_eq!(bs["additions_count"], 1, "{bs}");
    assert_eq!(bs["additions"][0]["path"], "/nd/f.txt");
    assert!(agent_missing(&fx.node("/nd").await.unwrap()));
}
