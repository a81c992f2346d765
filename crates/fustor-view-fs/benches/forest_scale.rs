//! Scale benchmark of the forest view engine. Prints figures.
//!
//! `cargo bench -p fustor-view-fs --bench forest_scale` (env `MEMBERS`, default 10; `FILES`,
//! files per member, default 1,000,000; `DIRS`, leaf directories per member, default 10,000).
//! Every member is a copy of one share (directories 4–6 levels deep, names 8–40 bytes) that
//! differs from the others in about 0.2% of its files (0.1% missing, 0.1% another size), fed as
//! snapshot events in batches of 1,000 rows. Only engine calls are timed, not the generation of
//! the rows.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Rng, T0, env, make_dirs, median, rss_bytes};
use fustor_core::view::{ViewContext, ViewDriver};
use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::fs::TreeOptions;
use fustor_view_fs::{ForestView, FsViewConfig};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and p99 of `n` runs of `f`, in milliseconds.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    let p99 = v[(v.len() * 99 / 100).min(v.len() - 1)];
    (ms(median(v)), ms(p99))
}

fn file_row(rng: &mut Rng, dir: &str, i: usize) -> FsRow {
    let l = rng.range(8, 38) as usize;
    let ext = if i % 10 == 0 { ".h5" } else { ".dat" };
    let mut row = FsRow::upsert(
        format!("{dir}/{}{ext}", rng.name(l)),
        T0 - 86_400.0 - (i % 1000) as f64,
        1000 + i as u64,
        false,
    );
    row.file_name = None;
    row
}

fn main() {
    let members = env("MEMBERS", 10);
    let files = env("FILES", 1_000_000);
    let ndirs = env("DIRS", 10_000).max(3);
    let per_dir = files / ndirs;
    let dirs = make_dirs(&mut Rng(0x2545F4914F6CDD1D), ndirs);
    let now = Now::at(T0, 1000.0);
    println!(
        "# forest scale bench: {members} members x {} files ({ndirs} leaf dirs, {per_dir}/dir)",
        per_dir * ndirs
    );

    let rss0 = rss_bytes();
    let forest = ForestView::new("forest", FsViewConfig::default());
    let mut ingest = Duration::ZERO;
    let mut batch: Vec<FsRow> = Vec::with_capacity(1000);
    for m in 0..members {
        let pipe = format!("pipe-{m:02}");
        let ctx = ViewContext {
            pipe_id: &pipe,
            session_id: "s",
            agent_id: "a",
            source_uri: None,
        };
        // The same name stream for every member: they are copies of one share.
        let mut rng = Rng(0x9E3779B97F4A7C15);
        let mut flush = |batch: &mut Vec<FsRow>| {
            let events: Vec<Event> = batch
                .chunks(100)
                .map(|c| Event::fs(EventType::Update, MessageSource::Snapshot, c.to_vec()))
                .collect();
            batch.clear();
            let t = Instant::now();
            forest.apply(&events, &ctx, now);
            ingest += t.elapsed();
        };
        let mut n = 0usize;
        for dir in &dirs {
            batch.push(FsRow::upsert(dir.clone(), T0 - 3600.0, 4096, true));
            for _ in 0..per_dir {
                let mut row = file_row(&mut rng, dir, n);
                n += 1;
                if (n + m) % 1000 == 0 {
                    continue;
                }
                if (n * 7 + m) % 1000 == 1 {
                    row.size = row.size.map(|s| s + 1);
                }
                batch.push(row);
                if batch.len() >= 1000 {
                    flush(&mut batch);
                }
            }
        }
        flush(&mut batch);
    }
    let rss1 = rss_bytes();
    let total: usize = forest
        .members()
        .iter()
        .filter_map(|(_, t)| t.read().subtree_stats("/"))
        .map(|s| s.file_count as usize)
        .sum();
    println!(
        "snapshot_ingest files={total} secs={:.2} rows_per_sec={:.0}",
        ingest.as_secs_f64(),
        total as f64 / ingest.as_secs_f64()
    );
    println!(
        "memory nodes={} rss_growth_mb={:.0} bytes_per_file={:.1}",
        forest.node_count(),
        rss1.saturating_sub(rss0) as f64 / 1e6,
        rss1.saturating_sub(rss0) as f64 / total.max(1) as f64
    );

    let depth4: String = dirs[0].split('/').take(5).collect::<Vec<_>>().join("/");
    for (label, path) in [("root", "/"), ("depth4", depth4.as_str())] {
        let (p50, p99) = time(1001, || {
            black_box(forest.stats(path, Some("file_count")));
        });
        println!("stats_best_file_count_{label}_ms p50={p50:.3} p99={p99:.3}");
    }
    // The same figures computed on one thread per member: shows whether parallel members pay.
    let trees = forest.members();
    let (p50, _) = time(1001, || {
        std::thread::scope(|s| {
            let hs: Vec<_> = trees
                .iter()
                .map(|(_, t)| s.spawn(|| t.read().subtree_stats(&depth4)))
                .collect();
            for h in hs {
                black_box(h.join().ok());
            }
        });
    });
    println!("stats_depth4_thread_per_member_variant_ms p50={p50:.3} (not used)");

    let leaf = &dirs[1];
    let opts = TreeOptions {
        recursive: true,
        max_depth: Some(1),
        only_path: false,
    };
    let bytes = forest.tree_json(leaf, &opts, None, None).len();
    println!(
        "# tree: json bytes (the HTTP path) vs serde_json::Value; {per_dir} entries/member, {bytes} bytes"
    );
    for (label, best) in [("all_members", None), ("best", Some("file_count"))] {
        let (p50, p99) = time(201, || {
            black_box(forest.tree_json(leaf, &opts, best, Some(100_000)));
        });
        let (v50, _) = time(51, || {
            black_box(forest.tree(leaf, &opts, best, Some(100_000)));
        });
        println!("tree_max_depth1_leaf_{label}_ms p50={p50:.3} p99={p99:.3} value_p50={v50:.3}");
    }
    let t0 = forest.member("pipe-00");
    let (p50, _) = time(201, || {
        black_box(
            t0.as_ref()
                .map(|t| t.read().tree_json(leaf, &opts, Some(100_000), &[])),
        );
    });
    println!("fs_tree_json_leaf_one_member_ms p50={p50:.3}");
    let depth1: String = dirs[0].split('/').take(2).collect::<Vec<_>>().join("/");
    // Entries of the max_depth=1 listing (the node itself excluded).
    let kids = forest.member("pipe-00").map_or(0, |t| {
        t.read()
            .response_size(&depth1, &opts, usize::MAX)
            .map_or(0, |n| n - 1)
    });
    for (label, best) in [("all_members", None), ("best", Some("file_count"))] {
        let (p50, p99) = time(51, || {
            black_box(forest.tree_json(&depth1, &opts, best, Some(100_000)));
        });
        let (v50, _) = time(11, || {
            black_box(forest.tree(&depth1, &opts, best, Some(100_000)));
        });
        println!(
            "tree_max_depth1_depth1_dir_{label}_ms p50={p50:.3} p99={p99:.3} value_p50={v50:.3} ({kids} entries/member)"
        );
    }
    let t = Instant::now();
    let v = forest.search("*.h5", Some(100));
    let hits = v["members"]["pipe-00"]["count"].as_u64().unwrap_or(0);
    println!(
        "search_h5_all_members_ms={:.0} (hits per member {hits})",
        ms(t.elapsed())
    );
    let depth3: String = dirs[0].split('/').take(4).collect::<Vec<_>>().join("/");
    let t = Instant::now();
    let v = forest.diff(&depth3, Some(1000));
    println!(
        "diff_depth3_ms={:.1} compared_files={} differences={}",
        ms(t.elapsed()),
        v["compared_files"],
        v["difference_count"]
    );
    let t = Instant::now();
    let v = forest.diff("/", Some(1000));
    println!(
        "diff_root_ms={:.0} compared_files={} differences={} truncated={}",
        ms(t.elapsed()),
        v["compared_files"],
        v["difference_count"],
        v["truncated"]
    );
}
