//! Scale benchmark of the fs view engine. Prints figures; see docs/performance.md.
//!
//! `cargo bench -p fustor-view-fs --bench view_scale` (env `FILES`, default 10,000,000; `DIRS`,
//! default 10,000). Builds a synthetic research-data tree (directories 4–6 deep, names 8–40
//! bytes, 10% `*.h5`), then measures snapshot ingest, realtime upserts, memory per file, query
//! latencies and audit end. Only engine calls are timed, not the generation of the rows.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Rng, T0, env, make_dirs, median, rss_bytes};
use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::fs::TreeOptions;
use fustor_view_fs::{FsView, FsViewConfig};

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn file_row(rng: &mut Rng, dir: &str, i: usize) -> FsRow {
    let l = rng.range(8, 38) as usize;
    let ext = if i % 10 == 0 { ".h5" } else { ".dat" };
    let name = format!("{}{}", rng.name(l), ext);
    let mut row = FsRow::upsert(
        format!("{dir}/{name}"),
        T0 - 86_400.0 - (i % 1000) as f64,
        1000 + i as u64,
        false,
    );
    row.file_name = None;
    // Owners as a site has them (issue 14): 50 users in 5 groups, most files group-readable.
    row.uid = Some(1000 + (i % 50) as u32);
    row.gid = Some(100 + (i % 5) as u32);
    row.mode = Some(if i % 4 == 0 { 0o600 } else { 0o644 });
    row
}

/// A directory row owned by `uid`, private to its group every other directory.
fn dir_row(path: &str, uid: u32, k: usize) -> FsRow {
    let mut row = FsRow::upsert(path.to_string(), T0 - 3600.0, 4096, true);
    row.uid = Some(uid);
    row.gid = Some(100 + (k % 5) as u32);
    row.mode = Some(if k % 2 == 0 { 0o750 } else { 0o755 });
    row
}

/// Issue 14: reports, and answers for a key bound to a user against the same answers unfiltered.
fn issue14(view: &FsView, big: &str, opts: &TreeOptions, dirs: &[String], now: Now) {
    use fustor_core::view::{Identity, ReportBy, ReportQuery};
    use fustor_view_fs::fs::SearchLimits;
    let user = Identity {
        uid: 1001,
        gids: vec![101],
        admin: false,
    };
    let time = |n: usize, f: &mut dyn FnMut() -> usize| {
        let mut tt = Vec::new();
        let mut out = 0;
        for _ in 0..n {
            let t = Instant::now();
            out = f();
            tt.push(t.elapsed());
        }
        (median(tt).as_secs_f64() * 1e3, out)
    };
    let report = |path: &str, by: Option<ReportBy>, who: Option<&Identity>| {
        let q = ReportQuery {
            path,
            by,
            top: 10,
            best: None,
            now,
            identity: who,
        };
        match view.report(path, &q) {
            Ok(r) => r.files as usize,
            Err(e) => {
                println!("report {path} failed: {e}");
                0
            }
        }
    };
    let top1: String = dirs[0].split('/').take(2).collect::<Vec<_>>().join("/");
    // The leaves below dirs[0]'s top are all 0o750 in group 100: closed to `user`. Those below
    // dirs[1]'s top are 0o755.
    let top2: String = dirs[1].split('/').take(2).collect::<Vec<_>>().join("/");
    for (label, path, by, who) in [
        ("site_by_owner", "/", Some(ReportBy::Owner), None),
        ("site_all_sections", "/", None, None),
        ("subtree_depth1_all", top1.as_str(), None, None),
        ("site_all_as_user", "/", None, Some(&user)),
        ("subtree_depth1_as_user", top2.as_str(), None, Some(&user)),
    ] {
        let (ms, files) = time(11, &mut || report(path, by, who));
        println!("report_{label}_ms p50={ms:.2} files={files}");
    }
    let (plain, n1) = time(21, &mut || {
        view.read()
            .tree_json(big, opts, Some(100_000), &[])
            .map(|o| o.len())
            .unwrap_or(0)
    });
    let (as_user, n2) = time(21, &mut || {
        view.read()
            .tree_json_with(big, opts, Some(100_000), &[], false, Some(&user))
            .map(|o| o.len())
            .unwrap_or(0)
    });
    println!("tree_10k_ms p50={plain:.2} bytes={n1} as_user p50={as_user:.2} bytes={n2}");
    let limits = SearchLimits::default();
    let (plain, n1) = time(3, &mut || {
        view.search_json("*.h5", limits)
            .map(|p| p.total)
            .unwrap_or(0)
    });
    let (as_user, n2) = time(3, &mut || {
        view.search_json_as("*.h5", limits, &user)
            .map(|p| p.total)
            .unwrap_or(0)
    });
    println!("search_h5_json_ms p50={plain:.0} hits={n1} as_user p50={as_user:.0} hits={n2}");
}

fn main() {
    let files = env("FILES", 10_000_000);
    let ndirs = env("DIRS", 10_000);
    let per_dir = files / ndirs;
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let dirs = make_dirs(&mut rng, ndirs);
    let now = Now::at(T0, 1000.0);
    println!("# fustor-view-fs scale bench: {files} files in {ndirs} leaf dirs ({per_dir}/dir)");

    let rss0 = rss_bytes();
    let view = FsView::new("bench", FsViewConfig::default());

    // 1. Snapshot ingest into an empty view, batches of 1,000 rows (10 events x 100).
    let mut ingest = Duration::ZERO;
    let mut batch: Vec<FsRow> = Vec::with_capacity(1000);
    let mut sample_paths: Vec<String> = Vec::new();
    let flush = |batch: &mut Vec<FsRow>, ingest: &mut Duration| {
        let events: Vec<Event> = batch
            .chunks(100)
            .map(|c| Event::fs(EventType::Update, MessageSource::Snapshot, c.to_vec()))
            .collect();
        batch.clear();
        let t = Instant::now();
        view.apply(&events, now);
        *ingest += t.elapsed();
    };
    let mut n = 0usize;
    // Every directory above the leaves, open to all, so owners decide at the leaves.
    let mut above: std::collections::BTreeSet<String> = Default::default();
    above.insert("/".to_string());
    for d in &dirs {
        let mut end = 0;
        while let Some(i) = d[end + 1..].find('/') {
            end += 1 + i;
            above.insert(d[..end].to_string());
        }
    }
    for p in &above {
        let mut row = dir_row(p, 0, 1);
        row.gid = Some(0);
        batch.push(row);
    }
    for (k, dir) in dirs.iter().enumerate() {
        batch.push(dir_row(dir, 1000 + (k % 50) as u32, k));
        for _ in 0..per_dir {
            let row = file_row(&mut rng, dir, n);
            if n % 97 == 0 && sample_paths.len() < 200_000 {
                sample_paths.push(row.path.clone().unwrap_or_default());
            }
            batch.push(row);
            n += 1;
            if batch.len() >= 1000 {
                flush(&mut batch, &mut ingest);
            }
        }
    }
    flush(&mut batch, &mut ingest);
    let rows = n + dirs.len();
    let nodes = view.read().node_count();
    println!(
        "snapshot_ingest rows={rows} secs={:.2} rows_per_sec={:.0}",
        ingest.as_secs_f64(),
        rows as f64 / ingest.as_secs_f64()
    );
    let rss1 = rss_bytes();
    println!(
        "memory nodes={nodes} rss_growth_mb={:.0} bytes_per_file={:.1} (tree tables {:.1} bytes/node)",
        (rss1 - rss0) as f64 / 1e6,
        (rss1 - rss0) as f64 / files as f64,
        view.read().tree_heap_bytes() as f64 / nodes as f64
    );

    // 2. Realtime upserts of existing files in the full view.
    let rt_rows = 1_000_000.min(files);
    let mut rt = Duration::ZERO;
    let mut k = 0usize;
    while k < rt_rows {
        let events: Vec<Event> = (0..10)
            .map(|e| {
                let rows = (0..100)
                    .map(|j| {
                        let p = &sample_paths[(k + e * 100 + j) * 7919 % sample_paths.len()];
                        let mut r = FsRow::upsert(p.clone(), T0 + (k % 100) as f64, 42, false);
                        r.is_atomic_write = Some(true);
                        r
                    })
                    .collect();
                Event::fs(EventType::Update, MessageSource::Realtime, rows)
            })
            .collect();
        let t = Instant::now();
        view.apply(&events, now);
        rt += t.elapsed();
        k += 1000;
    }
    println!(
        "realtime_upsert rows={rt_rows} rows_per_sec={:.0}",
        rt_rows as f64 / rt.as_secs_f64()
    );

    // 3. stats at root and at a depth-3 directory.
    let depth3: String = dirs[0].split('/').take(4).collect::<Vec<_>>().join("/");
    let mut root_t = Vec::new();
    let mut d3_t = Vec::new();
    for _ in 0..2001 {
        let t = Instant::now();
        black_box(view.read().stats(T0));
        root_t.push(t.elapsed());
        let t = Instant::now();
        black_box(view.read().subtree_stats(&depth3));
        d3_t.push(t.elapsed());
    }
    println!("stats_root_us p50={:.2}", micros(median(root_t)));
    println!(
        "stats_depth3_us p50={:.2} (path {} levels)",
        micros(median(d3_t)),
        depth3.matches('/').count()
    );

    // 4. tree of a 10,000-entry directory, max_depth=1.
    let big = "/bigdir";
    let mut rows: Vec<FsRow> = vec![dir_row(big, 1000, 1)];
    rows.extend((0..10_000).map(|i| file_row(&mut rng, big, i)));
    let events: Vec<Event> = rows
        .chunks(100)
        .map(|c| Event::fs(EventType::Update, MessageSource::Snapshot, c.to_vec()))
        .collect();
    view.apply(&events, now);
    let opts = TreeOptions {
        recursive: true,
        max_depth: Some(1),
        only_path: false,
    };
    let mut tt = Vec::new();
    let mut size = 0;
    for _ in 0..21 {
        let t = Instant::now();
        let out = view
            .read()
            .tree_json(big, &opts, Some(100_000), &[])
            .unwrap_or_default();
        tt.push(t.elapsed());
        size = out.len();
    }
    println!(
        "tree_10k_entries_ms p50={:.2} json_bytes={size}",
        median(tt).as_secs_f64() * 1e3
    );

    // 5. glob search over all names.
    let mut st = Vec::new();
    let mut hits = 0;
    for _ in 0..3 {
        let t = Instant::now();
        hits = view
            .read()
            .search("*.h5", None)
            .map(|h| h.len())
            .unwrap_or(0);
        st.push(t.elapsed());
    }
    println!(
        "search_h5_ms p50={:.0} hits={hits}",
        median(st).as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let none = view
        .read()
        .search("*.zzz", None)
        .map(|h| h.len())
        .unwrap_or(0);
    println!(
        "search_nomatch_ms={:.0} hits={none}",
        t.elapsed().as_secs_f64() * 1e3
    );
    // 5b. Searches the name index narrows (issue 10): an exact path, and a name prefix.
    let mut probe = (String::new(), String::new());
    let mut k = 0usize;
    view.read().for_each_file(|_, p, name| {
        k += 1;
        if k == files / 2 {
            probe = (p.to_string(), name.to_string());
        }
    });
    let prefix = format!("{}*", &probe.1[..probe.1.len().min(12)]);
    for (label, pattern) in [
        ("exact_path", probe.0.as_str()),
        ("name_prefix", prefix.as_str()),
    ] {
        let mut tt = Vec::new();
        let mut hits = 0;
        for _ in 0..101 {
            let t = Instant::now();
            hits = view
                .search(pattern, fustor_view_fs::fs::SearchLimits::default())
                .map(|h| h.total)
                .unwrap_or(0);
            tt.push(t.elapsed());
        }
        println!(
            "search_{label}_ms p50={:.3} hits={hits}",
            median(tt).as_secs_f64() * 1e3
        );
    }
    issue14(&view, big, &opts, &dirs, now);

    let t = Instant::now();
    let mut walked = 0usize;
    view.read().for_each_file(|_, p, _| walked += p.len());
    println!(
        "walk_all_files_ms={:.0} (path bytes {walked})",
        t.elapsed().as_secs_f64() * 1e3
    );

    // 6. Audit of the whole tree with 1% of files missing, then audit end.
    let audit_now = now.plus(10.0);
    let mut audit_apply = Duration::ZERO;
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let _ = make_dirs(&mut rng, ndirs); // same stream as the snapshot
    let mut n = 0usize;
    let mut batch: Vec<FsRow> = Vec::with_capacity(1000);
    let mut audit_rows = 0usize;
    let flush_audit = |batch: &mut Vec<FsRow>, t_acc: &mut Duration| {
        let events: Vec<Event> = batch
            .chunks(100)
            .map(|c| Event::fs(EventType::Update, MessageSource::Audit, c.to_vec()))
            .collect();
        batch.clear();
        let t = Instant::now();
        view.apply(&events, audit_now);
        *t_acc += t.elapsed();
    };
    for dir in &dirs {
        batch.push(FsRow::upsert(dir.clone(), T0 - 3600.0, 4096, true));
        for _ in 0..per_dir {
            let mut row = file_row(&mut rng, dir, n);
            n += 1;
            if n % 100 == 0 {
                continue; // 1% missing
            }
            row.parent_path = Some(dir.clone());
            row.parent_mtime = Some(T0 - 3600.0);
            batch.push(row);
            audit_rows += 1;
            if batch.len() >= 1000 {
                flush_audit(&mut batch, &mut audit_apply);
            }
        }
    }
    flush_audit(&mut batch, &mut audit_apply);
    let t = Instant::now();
    view.audit_end(audit_now);
    let end = t.elapsed();
    let st = view.read().stats(T0);
    println!(
        "audit rows={audit_rows} apply_rows_per_sec={:.0} audit_end_ms={:.0} blind_deletions={}",
        audit_rows as f64 / audit_apply.as_secs_f64(),
        end.as_secs_f64() * 1e3,
        st.blind_spot_deletions
    );
}
