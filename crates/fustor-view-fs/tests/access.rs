//! Issue 14: permission-aware answers and usage reports of the fs view. The visibility rule
//! (`fs/access.rs`) against every permission bit combination of a directory, for its owner, a
//! member of its group through a secondary group, and anyone else; root squash and `admin`;
//! a property test that the filtered `tree` equals a brute-force filter of the full tree; and
//! the report's figures against the files they count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use fustor_core::FsRow;
use fustor_core::view::{Identity, ReportBy, ReportQuery};
use fustor_view_fs::FsView;
use fustor_view_fs::fs::{QueryError, TreeOptions};
use proptest::prelude::*;
use serde_json::Value;

fn owned(mut r: FsRow, uid: u32, gid: u32, mode: u32) -> FsRow {
    r.uid = Some(uid);
    r.gid = Some(gid);
    r.mode = Some(mode);
    r
}

fn who(uid: u32, gids: &[u32]) -> Identity {
    Identity {
        uid,
        gids: gids.to_vec(),
        admin: false,
    }
}

fn all() -> TreeOptions {
    TreeOptions::default()
}

/// Every path in a tree answer.
fn paths(v: &Value, out: &mut BTreeSet<String>) {
    if let Some(p) = v["path"].as_str() {
        out.insert(p.to_string());
    }
    for c in v["children"].as_array().into_iter().flatten() {
        paths(c, out);
    }
}

fn visible(v: &FsView, as_who: Option<&Identity>) -> BTreeSet<String> {
    let bytes = v
        .read()
        .tree_json_with("/", &all(), None, &[], false, as_who)
        .unwrap();
    let mut out = BTreeSet::new();
    paths(&serde_json::from_slice(&bytes).unwrap(), &mut out);
    out
}

#[test]
fn every_mode_of_a_directory_for_owner_group_member_and_other() {
    let v = view();
    rt(&v, t0(), vec![owned(dir("/", T0), 0, 0, 0o755)]);
    let owner = who(10, &[10]);
    // Group 20 is a secondary group of this user.
    let member = who(11, &[30, 20]);
    let other = who(12, &[31]);
    for mode in 0..=0o777u32 {
        rt(
            &v,
            t0(),
            vec![
                owned(dir("/d", T0), 10, 20, mode),
                owned(file_sz("/d/f", T0, 1), 10, 20, 0),
            ],
        );
        for (user, shift) in [(&owner, 6), (&member, 3), (&other, 0)] {
            let bits = (mode >> shift) & 7;
            let lists = bits & 5 == 5;
            let seen = visible(&v, Some(user));
            assert!(
                seen.contains("/d"),
                "mode {mode:o}: /d is listed by the root"
            );
            assert_eq!(
                seen.contains("/d/f"),
                lists,
                "mode {mode:o}, uid {}",
                user.uid
            );
            let direct = v
                .read()
                .tree_json_with("/d/f", &all(), None, &[], false, Some(user));
            assert_eq!(direct.is_ok(), lists, "mode {mode:o}, uid {}", user.uid);
            if !lists {
                assert_eq!(direct.err(), Some(QueryError::NotFound));
            }
        }
    }
}

#[test]
fn search_bits_of_every_ancestor_count_root_is_squashed_and_admin_sees_all() {
    let v = view();
    rt(
        &v,
        t0(),
        vec![
            owned(dir("/", T0), 0, 0, 0o755),
            // Listable by others (r) but not searchable (no x) two levels up.
            owned(dir("/a", T0), 0, 0, 0o704),
            owned(dir("/a/b", T0), 0, 0, 0o755),
            owned(file_sz("/a/b/f", T0, 1), 0, 0, 0o644),
            owned(dir("/root", T0), 0, 0, 0o700),
            owned(file_sz("/root/secret", T0, 1), 0, 0, 0o600),
            // An entry whose agent reported no owner (the Python agent).
            dir("/legacy", T0),
            file_sz("/legacy/x", T0, 1),
        ],
    );
    let user = who(1000, &[1000]);
    let seen = visible(&v, Some(&user));
    assert!(seen.contains("/a"), "{seen:?}");
    assert!(
        !seen.contains("/a/b") && !seen.contains("/a/b/f"),
        "{seen:?}"
    );
    assert!(seen.contains("/root") && !seen.contains("/root/secret"));
    assert!(seen.contains("/legacy") && !seen.contains("/legacy/x"));
    // uid 0 without admin is nobody (root squash).
    let root = who(0, &[0]);
    assert!(!visible(&v, Some(&root)).contains("/root/secret"));
    let admin = Identity {
        admin: true,
        ..root
    };
    assert_eq!(visible(&v, Some(&admin)), visible(&v, None));
    assert!(visible(&v, None).contains("/legacy/x"));
}

/// The rule written out plainly, from the rows themselves.
fn brute_force(rows: &[(String, bool, u32, u32, u32)], who: &Identity) -> BTreeSet<String> {
    let class = |uid: u32, gid: u32, mode: u32| {
        let me = if who.uid == 0 { 65534 } else { who.uid };
        if uid == me {
            (mode >> 6) & 7
        } else if who
            .gids
            .iter()
            .any(|&g| (if g == 0 { 65534 } else { g }) == gid)
        {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    };
    let attrs = |p: &str| rows.iter().find(|r| r.0 == p);
    let mut out = BTreeSet::new();
    out.insert("/".to_string());
    // Parents first: a listing from the root shows an entry only below a shown parent (an
    // entry behind an x-only directory is answered when asked for by path, not listed).
    let mut order: Vec<_> = rows.iter().filter(|r| r.0 != "/").collect();
    order.sort_by_key(|r| r.0.matches('/').count());
    'rows: for (p, _, _, _, _) in order {
        let parent = match p.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => p[..i].to_string(),
            None => continue,
        };
        if !out.contains(&parent) {
            continue;
        }
        // Every directory from the root to the parent: x; the parent also r.
        let comps: Vec<&str> = p.split('/').skip(1).collect();
        for i in 0..comps.len() {
            let dir = if i == 0 {
                "/".to_string()
            } else {
                format!("/{}", comps[..i].join("/"))
            };
            let Some(&(_, is_dir, uid, gid, mode)) = attrs(&dir) else {
                continue 'rows;
            };
            let bits = class(uid, gid, mode);
            let need = if i + 1 == comps.len() { 5 } else { 1 };
            if !is_dir || bits & need != need {
                continue 'rows;
            }
        }
        out.insert(p.clone());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn filtered_tree_equals_brute_force_filter(
        entries in prop::collection::vec(
            (prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
             any::<bool>(), 0u32..3, 0u32..3, 0u32..0o1000),
            1..25),
        root_mode in prop::sample::select(vec![0o755u32, 0o750, 0o711, 0o700]),
        uid in 0u32..3,
        gids in prop::collection::vec(0u32..3, 0..3),
    ) {
        let v = view();
        let mut rows = vec![("/".to_string(), true, 0u32, 0u32, root_mode)];
        let mut sent = vec![owned(dir("/", T0), 0, 0, root_mode)];
        for (comps, is_dir, u, g, mode) in entries {
            let p = format!("/{}", comps.join("/"));
            // Parents are directories: make them so, with the entry's owner and mode.
            for i in 1..comps.len() {
                let d = format!("/{}", comps[..i].join("/"));
                if !rows.iter().any(|r| r.0 == d) {
                    rows.push((d.clone(), true, u, g, mode));
                    sent.push(owned(dir(&d, T0), u, g, mode));
                }
            }
            if rows.iter().any(|r| r.0 == p) {
                continue;
            }
            // A path already used as a parent stays a directory.
            let is_dir = is_dir || rows.iter().any(|r| r.0.starts_with(&format!("{p}/")));
            rows.push((p.clone(), is_dir, u, g, mode));
            let r = if is_dir { dir(&p, T0) } else { file_sz(&p, T0, 1) };
            sent.push(owned(r, u, g, mode));
        }
        rt(&v, t0(), sent);
        let user = who(uid, &gids);
        // Entries below a file row that later became a directory are not in the view: compare
        // with what the view holds.
        let full = visible(&v, None);
        let rows: Vec<_> = rows.into_iter().filter(|r| full.contains(&r.0)).collect();
        prop_assert_eq!(visible(&v, Some(&user)), brute_force(&rows, &user));
        // Reports of the root (a scan of the node array) and of each top directory (a walk of
        // its child lists while it holds less than half the tree) count what the rule allows.
        for under in ["/", "/a", "/b", "/c"] {
            for as_who in [None, Some(&user)] {
                let q = ReportQuery {
                    path: under,
                    by: Some(ReportBy::Size),
                    top: 3,
                    best: None,
                    now: t0(),
                    identity: as_who,
                };
                let got = v.report(under, &q).map(|r| (r.files, r.largest.map(|l| l.len())));
                let want = countable(&rows, as_who, under).map(|n| (n, Some(n.min(3) as usize)));
                prop_assert_eq!(got.ok(), want, "report of {} as {:?}", under, as_who);
            }
        }
    }
}

/// Files of a report on `under` as `who` may see it, from the rows themselves: `None` when
/// `under` is not in the view or not shown to `who`; a file counts when every directory above
/// it is searchable and its parent readable.
fn countable(
    rows: &[(String, bool, u32, u32, u32)],
    who: Option<&Identity>,
    under: &str,
) -> Option<u64> {
    // A file row that later got entries below it became a directory without an owner
    // (closed to everyone).
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            let below = format!("{}/", r.0);
            if !r.1 && rows.iter().any(|o| o.0.starts_with(&below)) {
                (r.0.clone(), true, u32::MAX, u32::MAX, 0)
            } else {
                r.clone()
            }
        })
        .collect();
    let attrs = |p: &str| rows.iter().find(|r| r.0 == p);
    let class = |w: &Identity, uid: u32, gid: u32, mode: u32| {
        let sq = |i: u32| if i == 0 { 65534 } else { i };
        if uid == sq(w.uid) {
            (mode >> 6) & 7
        } else if w.gids.iter().any(|&g| sq(g) == gid) {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    };
    // Whether `who` sees `p` (`x` on every directory above, `r` on the parent).
    let reaches = |p: &str| {
        let Some(w) = who else { return true };
        let comps: Vec<&str> = p.split('/').skip(1).filter(|c| !c.is_empty()).collect();
        (0..comps.len()).all(|i| {
            let dir = format!("/{}", comps[..i].join("/"));
            let need = if i + 1 == comps.len() { 5 } else { 1 };
            attrs(&dir).is_some_and(|&(_, d, u, g, m)| d && class(w, u, g, m) & need == need)
        })
    };
    let node = attrs(under)?;
    if !reaches(under) {
        return None;
    }
    if !node.1 {
        return Some(1);
    }
    let prefix = if under == "/" {
        "/".to_string()
    } else {
        format!("{under}/")
    };
    Some(
        rows.iter()
            .filter(|r| !r.1 && r.0.starts_with(&prefix) && reaches(&r.0))
            .count() as u64,
    )
}

fn report(v: &FsView, path: &str, by: Option<ReportBy>, who: Option<&Identity>) -> Value {
    let q = ReportQuery {
        path,
        by,
        top: 2,
        best: None,
        now: t0(),
        identity: who,
    };
    serde_json::to_value(v.report(path, &q).unwrap()).unwrap()
}

#[test]
fn report_counts_owners_groups_sizes_and_ages() {
    let v = view();
    let day = 86_400.0;
    let mut a = owned(file_sz("/p/a", T0 - 10.0, 1000), 1, 100, 0o644);
    a.uname = Some("ann".into());
    a.gname = Some("lab".into());
    rt(
        &v,
        t0(),
        vec![
            owned(dir("/", T0), 0, 0, 0o755),
            owned(dir("/p", T0), 1, 100, 0o750),
            a,
            owned(file_sz("/p/b", T0 - 3.0 * day, 0), 1, 100, 0o644),
            owned(file_sz("/q/c", T0 - 400.0 * day, 5000), 2, 100, 0o600),
            owned(file_sz("/q/d", T0 - 40.0 * day, 3), 2, 200, 0o644),
            file_sz("/q/legacy", T0 - 10.0 * day, 7),
        ],
    );
    let all = report(&v, "/", None, None);
    assert_eq!(all["files"], 5);
    assert_eq!(all["bytes"], 6010);
    assert_eq!(all["incremental"], false);
    let owners = &all["owners"];
    assert_eq!(owners[0]["id"], 2, "{all}");
    assert_eq!(owners[0]["bytes"], 5003);
    assert_eq!(owners[1]["id"], 1);
    assert_eq!(owners[1]["name"], "ann");
    assert_eq!(owners.as_array().unwrap().len(), 2, "top=2");
    // Sizes: 0 | 2..4 | 4..8 | 512..1024 | 4096..8192.
    let sizes: Vec<(u64, u64)> = all["size_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["min"].as_u64().unwrap(), b["files"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, vec![(0, 1), (2, 1), (4, 1), (512, 1), (4096, 1)]);
    let ages: Vec<u64> = all["age_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["files"].as_u64().unwrap())
        .collect();
    assert_eq!(ages, vec![1, 1, 1, 1, 1]);
    assert_eq!(all["largest"][0]["path"], "/q/c");
    assert_eq!(all["largest"][1]["path"], "/p/a");
    assert_eq!(all["oldest"][0]["path"], "/q/c");
    assert_eq!(all["oldest"][1]["path"], "/q/d");

    // Site-wide by owner: the kept totals, the same figures as the scan.
    let kept = report(&v, "/", Some(ReportBy::Owner), None);
    assert_eq!(kept["incremental"], true);
    assert_eq!(kept["owners"], all["owners"]);
    let groups = report(&v, "/", Some(ReportBy::Group), None);
    assert_eq!(groups["groups"][0]["id"], 100);
    assert_eq!(groups["groups"][0]["name"], "lab");
    assert_eq!(groups["groups"][0]["bytes"], 6000);

    // A subtree, and the same subtree seen by a user who may not list /q.
    let q = report(&v, "/q", None, None);
    assert_eq!(
        (q["files"].as_u64(), q["bytes"].as_u64()),
        (Some(3), Some(5010))
    );
    assert!(q.get("incremental").is_some());
    let other = who(3, &[300]);
    let seen = report(&v, "/", None, Some(&other));
    // /p is 0o750 (others: nothing); /q has no owner reported: closed.
    assert_eq!(seen["files"], 0, "{seen}");
    let member = who(3, &[100]);
    let seen = report(&v, "/", Some(ReportBy::Owner), Some(&member));
    assert_eq!(seen["files"], 2, "{seen}");
    assert_eq!(seen["incremental"], false);
    // One file.
    let one = report(&v, "/p/a", None, None);
    assert_eq!(one["files"], 1);
    assert_eq!(one["largest"][0]["owner"], "ann");
    // Removing files moves the kept totals.
    rt_del(&v, t0(), &["/q"]);
    let kept = report(&v, "/", Some(ReportBy::Owner), None);
    assert_eq!(kept["owners"][0]["id"], 1, "{kept}");
    assert_eq!(kept["files"], 2);
}

/// A subtree large enough for the parallel walk (one worker per core) counts, as a user, the
/// files of the directories that user may list, and with an ordinary key all of them.
#[test]
fn large_subtree_report_as_user_walks_in_parallel() {
    let v = view();
    let mut rows = vec![
        owned(dir("/", T0), 0, 0, 0o755),
        owned(dir("/t", T0), 0, 0, 0o755),
        owned(dir("/u", T0), 0, 0, 0o755),
    ];
    // /t: 300 directories of 800 files; every third directory closed to others.
    let mut open_files = 0u64;
    for d in 0..300u32 {
        let mode = if d % 3 == 0 { 0o750 } else { 0o755 };
        rows.push(owned(dir(&format!("/t/{d}"), T0), 7, 7, mode));
        for f in 0..800 {
            rows.push(owned(file_sz(&format!("/t/{d}/{f}"), T0, 2), 7, 7, 0o644));
        }
        if mode == 0o755 {
            open_files += 800;
        }
    }
    // /u holds more than /t, so /t is walked rather than scanned.
    for d in 0..300u32 {
        rows.push(owned(dir(&format!("/u/{d}"), T0), 7, 7, 0o755));
        for f in 0..900 {
            rows.push(owned(file_sz(&format!("/u/{d}/{f}"), T0, 2), 7, 7, 0o644));
        }
    }
    for chunk in rows.chunks(10_000) {
        snap(&v, t0(), chunk.to_vec());
    }
    let all = report(&v, "/t", Some(ReportBy::Size), None);
    assert_eq!(all["files"], 240_000, "{all}");
    let user = who(1000, &[100]);
    let seen = report(&v, "/t", Some(ReportBy::Size), Some(&user));
    assert_eq!(seen["files"], open_files, "{seen}");
    assert_eq!(seen["bytes"], open_files * 2);
}
