//! Suspects (6.5 sentinel feedback, rule S expiry), the logical clock K1–K4 and scenarios S33,
//! S42, S60–S68.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_view_fs::fs::SuspectUpdate;

// ---------------------------------------------------------------------------------------------
// 6.5 sentinel feedback

/// 6.5 (S61): stable and cold ⇒ cleared at once.
#[test]
fn s61_six_five_stable_and_cold_clears() {
    let v = view_f0();
    let t = t0();
    calibrate(&v, t, 0.0, 5);
    rt(&v, t, vec![partial("/old.bin", T0 - 3600.0, 1)]);
    assert!(is_suspect(&v, "/old.bin"));
    assert_eq!(feedback(&v, t, "/old.bin", T0 - 3600.0, Some(1)), 1);
    assert!(!is_suspect(&v, "/old.bin"));
    assert!(suspects(&v).is_empty());
}

/// 6.5 (S62): stable but hot ⇒ no change; rule S clears it at expiry.
#[test]
fn s62_six_five_stable_and_hot_waits_for_ttl() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/h.txt", T0)]);
    assert_eq!(suspect_until(&v, "/h.txt"), Some(MONO0 + 5.0));
    feedback(&v, t.plus(1.0), "/h.txt", T0, None);
    assert!(is_suspect(&v, "/h.txt"));
    assert_eq!(
        suspect_until(&v, "/h.txt"),
        Some(MONO0 + 5.0),
        "not renewed either"
    );
    assert!(v.expire_suspects(t.plus(4.9)));
    assert!(is_suspect(&v, "/h.txt"));
    assert!(v.expire_suspects(t.plus(5.5)));
    assert!(!is_suspect(&v, "/h.txt"));
}

/// 6.5 (S63): mismatch ⇒ mtime taken over, suspect renewed for HOT; non-suspects untouched.
#[test]
fn s63_six_five_mismatch_renews() {
    let v = view_f0();
    let t = t0();
    snap(
        &v,
        t,
        vec![file("/w.txt", T0), file("/cold.txt", T0 - 3600.0)],
    );
    let t2 = t.plus(2.0);
    assert_eq!(feedback(&v, t2, "/w.txt", T0 + 5.0, None), 1);
    assert_eq!(mtime(&v, "/w.txt"), T0 + 5.0);
    assert!(is_suspect(&v, "/w.txt"));
    assert_eq!(suspect_until(&v, "/w.txt"), Some(MONO0 + 2.0 + 5.0));
    assert_eq!(feedback(&v, t2, "/cold.txt", T0 + 5.0, Some(99)), 0);
    assert_eq!(
        mtime(&v, "/cold.txt"),
        T0 - 3600.0,
        "non-suspect never touched"
    );
    assert_eq!(size(&v, "/cold.txt"), 1);
    assert!(!is_suspect(&v, "/cold.txt"));
    assert_eq!(feedback(&v, t2, "/absent", T0, None), 0);
    assert!(!exists(&v, "/absent"));
}

/// 6.5: a size mismatch is "not stable" even with the same mtime; the size is taken over.
#[test]
fn six_five_size_mismatch_is_unstable() {
    let v = view_f0();
    let t = t0();
    calibrate(&v, t, 0.0, 5);
    rt(&v, t, vec![partial("/s", T0 - 3600.0, 10)]);
    feedback(&v, t.plus(1.0), "/s", T0 - 3600.0, Some(20));
    assert!(is_suspect(&v, "/s"));
    assert_eq!(size(&v, "/s"), 20);
    assert_eq!(suspect_until(&v, "/s"), Some(MONO0 + 1.0 + 5.0));
    feedback(&v, t.plus(2.0), "/s", T0 - 3600.0, None);
    assert!(
        !is_suspect(&v, "/s"),
        "size null counts as matching; cold ⇒ cleared"
    );
}

/// 6.5 step 2: an mtime equal to `node.mtime − skew` is the same file seen through the skew.
#[test]
fn six_five_skewed_mtime_is_stable() {
    let v = view_f0();
    let t = t0();
    calibrate(&v, t, 100.0, 5);
    rt(&v, t, vec![partial("/k", T0 - 3600.0, 1)]);
    assert_eq!(v.read().stats(T0).clock_skew_seconds, 100.0);
    feedback(&v, t, "/k", T0 - 3600.0 - 100.0, Some(1));
    assert!(!is_suspect(&v, "/k"), "skewed match, cold ⇒ cleared");
    assert_eq!(mtime(&v, "/k"), T0 - 3600.0, "node mtime kept");
}

/// 6.5: vanished files report mtime 0.0 ⇒ unstable; the node stays with mtime 0.
#[test]
fn six_five_vanished_file_renews() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/v", T0)]);
    feedback(&v, t.plus(1.0), "/v", 0.0, None);
    assert!(exists(&v, "/v"));
    assert_eq!(mtime(&v, "/v"), 0.0);
    assert!(is_suspect(&v, "/v"));
    assert_eq!(suspect_until(&v, "/v"), Some(MONO0 + 1.0 + 5.0));
}

/// 6.5 step 1: feedback never samples the clock.
#[test]
fn six_five_feedback_does_not_sample() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/f", T0)]);
    feedback(&v, t, "/f", T0 - 9999.0, None);
    assert_eq!(watermark(&v, t), T0);
}

/// S64: several updates; only suspects are updated (count of suspects touched).
#[test]
fn s64_suspect_list_put() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/w.txt", T0), file("/c.txt", T0 - 3600.0)]);
    let n = v.update_suspects(
        &[
            SuspectUpdate {
                path: "/w.txt".into(),
                mtime: T0 + 1.0,
                size: None,
            },
            SuspectUpdate {
                path: "/c.txt".into(),
                mtime: T0 + 1.0,
                size: None,
            },
        ],
        t,
    );
    assert_eq!(n, 1);
    assert_eq!(mtime(&v, "/w.txt"), T0 + 1.0);
    assert_eq!(mtime(&v, "/c.txt"), T0 - 3600.0);
}

// ---------------------------------------------------------------------------------------------
// Rule S

/// S (S33): a partial write alone expires after HOT when its mtime is stable.
#[test]
fn s33_partial_write_alone_expires() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![partial("/big.bin", T0, 100)]);
    assert!(v.expire_suspects(t.plus(4.9)));
    assert!(is_suspect(&v, "/big.bin"));
    assert!(
        !v.expire_suspects(t.plus(5.0)),
        "throttled: 0.1 s since the last run"
    );
    assert!(is_suspect(&v, "/big.bin"));
    let v = view_f0();
    rt(&v, t, vec![partial("/big.bin", T0, 100)]);
    assert!(v.expire_suspects(t.plus(5.0)), "expiry <= mono");
    assert!(!is_suspect(&v, "/big.bin"));
    assert!(suspects(&v).is_empty());
    assert_eq!(stats(&v, t).suspect_file_count, 0);
}

/// S: an entry whose node mtime moved since it was recorded is renewed with the new mtime.
#[test]
fn s_suspect_expiry_renews_active() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/f", T0 - 1.0)]); // age 1 ⇒ until MONO0 + 4, recorded T0−1
    assert_eq!(suspect_until(&v, "/f"), Some(MONO0 + 4.0));
    audit(&v, t.plus(1.0), vec![file("/f", T0)]); // changed, hot, already suspect
    assert_eq!(suspect_until(&v, "/f"), Some(MONO0 + 4.0));
    assert!(v.expire_suspects(t.plus(4.0)));
    assert!(is_suspect(&v, "/f"), "active: renewed");
    assert_eq!(suspect_until(&v, "/f"), Some(MONO0 + 4.0 + 5.0));
    assert!(v.expire_suspects(t.plus(8.4)));
    assert!(is_suspect(&v, "/f"));
    assert!(v.expire_suspects(t.plus(9.0)));
    assert!(!is_suspect(&v, "/f"), "stable now");
}

/// S: stability is judged by mtime only — a suspect whose file is still young by logical age
/// is cleared at expiry when its mtime did not move.
#[test]
fn s_stability_by_mtime_only() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![partial("/young", T0 + 1000.0, 1)]); // age −1000: hot by age
    assert!(v.expire_suspects(t.plus(5.0)));
    assert!(!is_suspect(&v, "/young"));
    assert!(suspects(&v).is_empty());
}

/// S: the task runs at most every 0.5 s of monotonic time.
#[test]
fn s_suspect_expiry_throttled() {
    let v = view_f0();
    let t = t0();
    rt(&v, t.plus(0.2), vec![partial("/p", T0, 1)]); // until MONO0 + 5.2
    assert!(v.expire_suspects(t.plus(5.0)));
    assert!(is_suspect(&v, "/p"));
    assert!(!v.expire_suspects(t.plus(5.3)), "throttled");
    assert!(is_suspect(&v, "/p"), "a throttled call expires nothing");
    assert!(v.expire_suspects(t.plus(5.5)));
    assert!(!is_suspect(&v, "/p"));
}

/// S: entries superseded by a renewal are skipped; removed nodes drop their entries.
#[test]
fn s_superseded_and_orphan_entries_are_skipped() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![partial("/r", T0, 1), partial("/g", T0, 1)]);
    rt(&v, t.plus(3.0), vec![partial("/r", T0, 2)]); // until MONO0 + 8
    rt_del(&v, t.plus(3.0), &["/g"]);
    assert!(v.expire_suspects(t.plus(6.0)));
    assert!(
        is_suspect(&v, "/r"),
        "old heap entry must not clear the renewed suspect"
    );
    assert_eq!(suspects(&v), strs(&["/r"]));
    assert!(v.expire_suspects(t.plus(8.0)));
    assert!(suspects(&v).is_empty());
    // A node re-created at a removed suspect's path is not affected by old entries.
    rt(&v, t.plus(8.0), vec![file("/g", T0 + 10.0)]);
    assert!(exists(&v, "/g"));
    assert!(v.expire_suspects(t.plus(20.0)));
    assert!(!is_suspect(&v, "/g"));
    check(&v);
}

/// S42: a hot snapshot file cools after HOT.
#[test]
fn s42_snapshot_hot_file_cools() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![file("/s/hot.txt", T0 - 1.0)]);
    assert!(is_suspect(&v, "/s/hot.txt"));
    v.expire_suspects(t.plus(5.0));
    assert!(!is_suspect(&v, "/s/hot.txt"));
}

/// S60: the sentinel task lists the suspect paths.
#[test]
fn s60_sentinel_task_paths() {
    let v = view_f0();
    let t = t0();
    assert!(v.read().suspect_paths().is_empty());
    snap(
        &v,
        t,
        vec![file("/a", T0), file("/b", T0), file("/c", T0 - 3600.0)],
    );
    assert_eq!(v.read().suspect_paths(), strs(&["/a", "/b"]));
}

// ---------------------------------------------------------------------------------------------
// K1–K4

/// K1: `d = trunc(epoch − mtime)` toward zero.
#[test]
fn k1_sample_truncates_toward_zero() {
    let v = view();
    rt(&v, t0(), vec![file("/f", T0 + 1.7)]); // −1.7 ⇒ −1
    assert_eq!(watermark(&v, t0()), T0 + 1.0);
    let v = view();
    rt(&v, t0(), vec![file("/f", T0 - 99.9)]); // 99.9 ⇒ 99
    assert_eq!(watermark(&v, t0()), T0 - 99.0);
}

/// K1: only the last 10000 samples count.
#[test]
fn k1_ring_keeps_last_10000_samples() {
    let v = view();
    let t = t0();
    rt(
        &v,
        t,
        (0..10_000).map(|_| file("/k", T0 - 1000.0)).collect(),
    );
    assert_eq!(watermark(&v, t), T0 - 1000.0);
    rt(&v, t, (0..4_999).map(|_| file("/k", T0 - 10.0)).collect());
    assert_eq!(watermark(&v, t), T0 - 1000.0, "5001 vs 4999");
    rt(&v, t, (0..2).map(|_| file("/k", T0 - 10.0)).collect());
    assert_eq!(watermark(&v, t), T0 - 10.0, "4999 vs 5001 after eviction");
}

/// K2: the mode; ties go to the smallest skew (§12 examples).
#[test]
fn k2_mode_with_smallest_tie() {
    let v = view();
    let t = Now2000::now();
    rt(
        &v,
        t,
        (0..5).map(|i| file(&format!("/a{i}"), 1900.0)).collect(),
    );
    rt(
        &v,
        t,
        (0..2).map(|i| file(&format!("/b{i}"), 2500.0)).collect(),
    );
    assert_eq!(watermark(&v, t), 1900.0);
    let v = view();
    rt(
        &v,
        t,
        (0..3).map(|i| file(&format!("/a{i}"), 1950.0)).collect(),
    );
    rt(
        &v,
        t,
        (0..3).map(|i| file(&format!("/b{i}"), 1800.0)).collect(),
    );
    assert_eq!(v.read().stats(2000.0).clock_skew_seconds, 50.0);
    assert_eq!(watermark(&v, t), 1950.0);
}

struct Now2000;
impl Now2000 {
    fn now() -> fustor_core::Now {
        fustor_core::Now::at(2000.0, MONO0)
    }
}

/// K3: the watermark follows physical time without writes; K4: skew 0 when undefined, reset
/// clears the histogram.
#[test]
fn k3_k4_watermark_advances_and_resets() {
    let v = view();
    let t = t0();
    assert_eq!(stats(&v, t).logical_now, T0, "cold start: epoch");
    assert_eq!(stats(&v, t).clock_skew_seconds, 0.0);
    calibrate(&v, t, 100.0, 5);
    assert_eq!(stats(&v, t.plus(50.0)).logical_now, T0 - 50.0);
    rt(&v, t, vec![file("/outlier", T0 + 100_000.0)]);
    assert_eq!(
        stats(&v, t).logical_now,
        T0 - 100.0,
        "one outlier cannot move it"
    );
    v.reset();
    assert_eq!(stats(&v, t).logical_now, T0);
    assert_eq!(stats(&v, t).clock_skew_seconds, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Scenarios S65–S68

#[test]
fn s65_clock_mode_ignores_minority_skew() {
    let v = view_f0();
    let t = t0();
    rt(
        &v,
        t,
        (0..5)
            .map(|i| file(&format!("/m{i}"), T0 - 100.0))
            .collect(),
    );
    rt(
        &v,
        t,
        (0..2)
            .map(|i| file(&format!("/f{i}"), T0 + 7200.0))
            .collect(),
    );
    assert_close(stats(&v, t).logical_now, T0 - 100.0, 2.0);
}

#[test]
fn s66_compensation_rows_do_not_move_clock() {
    let v = view_f0();
    let t = t0();
    rt(
        &v,
        t,
        (0..5)
            .map(|i| file(&format!("/m{i}"), T0 - 100.0))
            .collect(),
    );
    rt(
        &v,
        t,
        (0..2)
            .map(|i| file(&format!("/f{i}"), T0 + 7200.0))
            .collect(),
    );
    audit(
        &v,
        t,
        (0..20)
            .map(|i| file(&format!("/a{i}"), T0 - 50_000.0))
            .collect(),
    );
    assert_close(stats(&v, t).logical_now, T0 - 100.0, 2.0);
}

#[test]
fn s67_clock_tie_break() {
    let v = view_f0();
    let t = t0();
    rt(
        &v,
        t,
        (0..3).map(|i| file(&format!("/a{i}"), T0 - 50.0)).collect(),
    );
    rt(
        &v,
        t,
        (0..3)
            .map(|i| file(&format!("/b{i}"), T0 - 200.0))
            .collect(),
    );
    assert_close(stats(&v, t).logical_now, T0 - 50.0, 2.0);
}

#[test]
fn s68_suspect_age_uses_watermark() {
    let v = view_f0();
    let t = t0();
    calibrate(&v, t, 100.0, 5);
    audit(
        &v,
        t,
        vec![file("/a.txt", T0 - 103.0), file("/b.txt", T0 - 110.0)],
    );
    assert!(is_suspect(&v, "/a.txt"), "age 3 < 5");
    assert_eq!(suspect_until(&v, "/a.txt"), Some(MONO0 + 2.0), "HOT − age");
    assert!(!is_suspect(&v, "/b.txt"), "age 10 >= 5");
}
