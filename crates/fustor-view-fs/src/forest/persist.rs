//! Persistence of a forest: every member tree is written like an fs view, under its pipe id.

use std::io::{Read, Write};
use std::sync::Arc;

use fustor_core::Now;
use fustor_core::view::{PersistView, SnapshotError};

use super::view::ForestView;
use crate::fs::FsView;
use crate::fs::persist::chunk::Put;
use crate::fs::persist::{
    ChunkReader, ChunkWriter, Kind, read_header, read_state, write_header, write_state,
};

const T_MEMBER: u8 = 0x21;
const T_FOREST_END: u8 = 0x2f;

impl PersistView for ForestView {
    fn write_snapshot(&self, out: &mut dyn Write, now: Now) -> std::io::Result<()> {
        let mut w = ChunkWriter::new(out);
        write_header(&mut w, Kind::Forest)?;
        let members = self.members();
        for (pipe, tree) in &members {
            w.buf().put_bytes(pipe.as_bytes());
            w.write_chunk(T_MEMBER, &[])?;
            write_state(&tree.read(), &mut w, now)?;
        }
        w.buf().put_var(members.len() as u64);
        w.write_chunk(T_FOREST_END, &[])
    }

    fn read_snapshot(&self, input: &mut dyn Read, now: Now) -> Result<(), SnapshotError> {
        let mut read = || -> Result<Vec<(String, FsView)>, SnapshotError> {
            let mut r = ChunkReader::new(input);
            let version = read_header(&mut r, Kind::Forest)?;
            let mut members = Vec::new();
            loop {
                let (tag, mut c) = r.next_chunk()?;
                match tag {
                    T_MEMBER => {
                        let pipe = c.str()?.to_string();
                        if members.iter().any(|(p, _)| *p == pipe) {
                            return Err(SnapshotError::corrupt("a forest member repeats"));
                        }
                        let st = read_state(self.config(), &mut r, version, now)?;
                        let view = FsView::from_state(self.tree_id(&pipe), st);
                        members.push((pipe, view));
                    }
                    T_FOREST_END => {
                        if c.var()? != members.len() as u64 {
                            return Err(SnapshotError::corrupt("forest member count differs"));
                        }
                        return Ok(members);
                    }
                    t => {
                        return Err(SnapshotError::corrupt(format!(
                            "section {t} where a forest member was expected"
                        )));
                    }
                }
            }
        };
        let result = read();
        let mut map = self.trees_mut();
        map.clear();
        let members = result?;
        for (pipe, view) in members {
            map.insert(pipe, Arc::new(view));
        }
        Ok(())
    }
}
