//! Streaming JSON of nodes (`query-api.md` §3.1).
//!
//! Nodes are written straight from the arena under the read lock, without building an
//! intermediate `serde_json::Value` tree or going through serde's per-entry machinery: a
//! 10,000-entry listing is one pass over the children. Strings are escaped and numbers written
//! exactly as `serde_json` does (its formatter writes the numbers; a test compares the strings).

use serde_json::Value;

use super::access::Visibility;
use super::owners::{Owners, Ownership};
use super::state::FsState;
use super::tree::{NodeId, ROOT};

/// How far below a node the listing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `recursive=true` without `max_depth`.
    Full,
    /// `max_depth=N`: nodes N levels down have no `children` key.
    Limited(u32),
    /// `recursive=false`: a directory shows `"children": []`.
    NoRecurse,
}

pub(crate) struct NodeJson<'a> {
    pub st: &'a FsState,
    pub id: NodeId,
    pub path: String,
    pub depth: Depth,
    pub only_path: bool,
    /// Directories carry `"subtree": {...}` (`dir_stats=true`).
    pub dir_stats: bool,
    pub extra: &'a [(&'a str, Value)],
    /// With a key bound to a user: directories whose children that user may not list show
    /// none (issue 14).
    pub vis: Option<&'a Visibility>,
}

/// Writes `s` as a JSON string exactly as `serde_json` (with the lossless formatter when
/// `lossless`) would. Names and paths are plain text almost always; only a string holding
/// escaped bytes goes through the formatter.
fn write_str(out: &mut Vec<u8>, s: &str, lossless: bool) {
    if lossless && fustor_core::lossless::has_escapes(s) {
        let _ = fustor_core::lossless::to_writer(&mut *out, s);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 0xF) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>, lossless: bool) {
    match s {
        Some(s) => write_str(out, s, lossless),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    use serde_json::ser::Formatter;
    if v.is_finite() {
        let _ = serde_json::ser::CompactFormatter.write_f64(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Extension keys (issue 14), written only for nodes whose agent reported them, so answers
/// of views fed by the Python agent keep the reference's keys.
fn write_owner(out: &mut Vec<u8>, owners: &Owners, o: Ownership, lossless: bool) {
    use serde_json::ser::Formatter;
    let mut f = serde_json::ser::CompactFormatter;
    out.extend_from_slice(b",\"uid\":");
    let _ = f.write_u32(out, o.uid);
    out.extend_from_slice(b",\"gid\":");
    let _ = f.write_u32(out, o.gid);
    out.extend_from_slice(b",\"mode\":");
    let _ = f.write_u32(out, o.mode);
    if let Some(n) = owners.uname(o.uid) {
        out.extend_from_slice(b",\"owner\":");
        write_str(out, n, lossless);
    }
    if let Some(n) = owners.gname(o.gid) {
        out.extend_from_slice(b",\"group\":");
        write_str(out, n, lossless);
    }
}

impl NodeJson<'_> {
    /// The node's JSON. Listings are the most frequent large answer (a 1,000-entry directory
    /// is 300 KB); serde's map serializer spent half their time escaping constant keys.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>, lossless: bool) {
        write_node(
            self.st,
            self.id,
            &self.path,
            self.depth,
            self.only_path,
            self.dir_stats,
            self.extra,
            self.vis,
            out,
            lossless,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn write_node(
    st: &FsState,
    id: NodeId,
    path: &str,
    depth: Depth,
    only_path: bool,
    dir_stats: bool,
    extra: &[(&str, Value)],
    vis: Option<&Visibility>,
    out: &mut Vec<u8>,
    lossless: bool,
) {
    let tree = &st.tree;
    let node = tree.node(id);
    let is_dir = node.is_dir();
    out.extend_from_slice(b"{\"name\":");
    write_str(out, if id == ROOT { "" } else { tree.name(id) }, lossless);
    out.extend_from_slice(if is_dir {
        b",\"content_type\":\"directory\",\"path\":"
    } else {
        b",\"content_type\":\"file\",\"path\":"
    });
    write_str(out, path, lossless);
    if !only_path {
        use serde_json::ser::Formatter;
        let (agent, uri) = st.lineages.get(node.lineage());
        out.extend_from_slice(b",\"size\":");
        let _ = serde_json::ser::CompactFormatter.write_u64(out, node.size);
        out.extend_from_slice(b",\"modified_time\":");
        write_f64(out, node.mtime);
        out.extend_from_slice(b",\"created_time\":");
        write_f64(out, node.ctime);
        out.extend_from_slice(b",\"integrity_suspect\":");
        write_bool(out, node.suspect());
        if is_dir {
            out.extend_from_slice(b",\"audit_skipped\":");
            write_bool(out, node.audit_skipped());
        }
        out.extend_from_slice(b",\"last_agent_id\":");
        write_opt_str(out, agent, lossless);
        out.extend_from_slice(b",\"source_uri\":");
        write_opt_str(out, uri, lossless);
        out.extend_from_slice(b",\"agent_missing\":");
        write_bool(out, !node.known_by_agent());
        if is_dir && dir_stats {
            out.extend_from_slice(b",\"subtree\":");
            let _ = serde_json::to_writer(&mut *out, &st.subtree_of(id));
        }
        if let Some(o) = tree.ownership(id) {
            write_owner(out, tree.owners(), o, lossless);
        }
    }
    if is_dir {
        match depth {
            Depth::Limited(0) => {}
            Depth::NoRecurse => out.extend_from_slice(b",\"children\":[]"),
            Depth::Full | Depth::Limited(_) => {
                let child_depth = match depth {
                    Depth::Limited(n) => Depth::Limited(n.saturating_sub(1)),
                    d => d,
                };
                out.extend_from_slice(b",\"children\":[");
                let mut child_path = String::with_capacity(path.len() + 64);
                let listed = vis.is_none_or(|v| v.lists(tree, id));
                for (i, c) in tree.children(id).enumerate().take_while(|_| listed) {
                    if i > 0 {
                        out.push(b',');
                    }
                    child_path.clear();
                    if path != "/" {
                        child_path.push_str(path);
                    }
                    child_path.push('/');
                    child_path.push_str(tree.name(c));
                    write_node(
                        st,
                        c,
                        &child_path,
                        child_depth,
                        only_path,
                        dir_stats,
                        &[],
                        vis,
                        out,
                        lossless,
                    );
                }
                out.push(b']');
            }
        }
    }
    for (k, v) in extra {
        out.push(b',');
        write_str(out, k, lossless);
        out.push(b':');
        let _ = if lossless {
            fustor_core::lossless::to_writer(&mut *out, v)
        } else {
            serde_json::to_writer(&mut *out, v)
        };
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        for s in [
            "plain",
            "q\"b\\s",
            "ctl\u{1}\u{1f}\n\r\t\u{8}\u{c}x",
            "ünï",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s, true);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let escaped = fustor_core::lossless::escape(b"caf\xe9");
        let mut out = Vec::new();
        write_str(&mut out, &escaped, true);
        assert_eq!(out, b"\"caf\\udce9\"");
    }
}
