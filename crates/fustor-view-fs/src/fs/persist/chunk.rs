//! Checksummed chunks: the framing of every persisted view state.
//!
//! A chunk is `tag u8, length u32 LE, crc32 u32 LE (of tag and payload), payload`. Writers cut
//! their stream into chunks of at most [`CHUNK_BYTES`], so reading needs one chunk of memory
//! and a damaged byte is found in the chunk that holds it, whatever the size of the view.

use std::io::{Read, Write};

use fustor_core::view::SnapshotError;

/// Target payload size; records never straddle chunks.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Refuse anything larger on read (a corrupt length must not allocate gigabytes).
const MAX_CHUNK_BYTES: usize = 16 * 1024 * 1024;

fn crc(tag: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[tag]);
    h.update(payload);
    h.finalize()
}

/// Buffers records of one tag and writes them as chunks.
pub struct ChunkWriter<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    tag: u8,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        ChunkWriter {
            out,
            buf: Vec::with_capacity(CHUNK_BYTES + 4096),
            tag: 0,
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)
    }

    /// Starts records of `tag`, flushing the records of another tag first.
    pub fn begin(&mut self, tag: u8) -> std::io::Result<()> {
        if tag != self.tag {
            self.flush()?;
            self.tag = tag;
        }
        Ok(())
    }

    /// The record buffer; call [`ChunkWriter::end_record`] after each record.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn end_record(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered records as one chunk (nothing if empty).
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.write_chunk(self.tag, &[])?;
        Ok(())
    }

    /// Writes one chunk of `tag`: the buffered records, or `payload` when nothing is buffered.
    pub fn write_chunk(&mut self, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        let body: &[u8] = if self.buf.is_empty() {
            payload
        } else {
            &self.buf
        };
        let len = u32::try_from(body.len())
            .map_err(|_| std::io::Error::other("chunk larger than 4 GiB"))?;
        let mut head = [0u8; 9];
        head[0] = tag;
        head[1..5].copy_from_slice(&len.to_le_bytes());
        head[5..9].copy_from_slice(&crc(tag, body).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(body)?;
        self.buf.clear();
        Ok(())
    }
}

/// Reads chunks back, checking each checksum.
pub struct ChunkReader<'a> {
    input: &'a mut dyn Read,
    payload: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(input: &'a mut dyn Read) -> Self {
        ChunkReader {
            input,
            payload: Vec::new(),
        }
    }

    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.input.read_exact(buf).map_err(truncated)
    }

    /// The next chunk's tag and payload.
    pub fn next_chunk(&mut self) -> Result<(u8, Rd<'_>), SnapshotError> {
        let mut head = [0u8; 9];
        self.input.read_exact(&mut head).map_err(truncated)?;
        let tag = head[0];
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let sum = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        if len > MAX_CHUNK_BYTES {
            return Err(SnapshotError::corrupt(format!(
                "chunk of {len} bytes (tag {tag}) is larger than any this build writes"
            )));
        }
        self.payload.resize(len, 0);
        self.input
            .read_exact(&mut self.payload)
            .map_err(truncated)?;
        if crc(tag, &self.payload) != sum {
            return Err(SnapshotError::corrupt(format!(
                "checksum mismatch in a chunk of tag {tag}"
            )));
        }
        Ok((tag, Rd::new(&self.payload)))
    }
}

fn truncated(e: std::io::Error) -> SnapshotError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        SnapshotError::corrupt("file ends before the end marker (truncated)")
    } else {
        SnapshotError::Io(e)
    }
}

/// Appends little-endian and variable-length integers.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_var(&mut self, v: u64);
    fn put_f64(&mut self, v: f64);
    fn put_bytes(&mut self, b: &[u8]);
    fn put_opt_str(&mut self, s: Option<&str>);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn put_f64(&mut self, v: f64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.put_var(b.len() as u64);
        self.extend_from_slice(b);
    }
    fn put_opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.put_u8(0),
            Some(s) => {
                self.put_u8(1);
                self.put_bytes(s.as_bytes());
            }
        }
    }
}

/// A cursor over one chunk's payload; every read is bounds-checked.
pub struct Rd<'a> {
    b: &'a [u8],
}

fn short() -> SnapshotError {
    SnapshotError::corrupt("record runs past the end of its chunk")
}

impl<'a> Rd<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Rd { b }
    }
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        let (&v, rest) = self.b.split_first().ok_or_else(short)?;
        self.b = rest;
        Ok(v)
    }
    pub fn var(&mut self) -> Result<u64, SnapshotError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SnapshotError::corrupt("variable-length integer too long"))
    }
    pub fn f64(&mut self) -> Result<f64, SnapshotError> {
        let (head, rest) = self.b.split_at_checked(8).ok_or_else(short)?;
        self.b = rest;
        let mut a = [0u8; 8];
        a.copy_from_slice(head);
        Ok(f64::from_le_bytes(a))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = usize::try_from(self.var()?).map_err(|_| short())?;
        let (head, rest) = self.b.split_at_checked(n).ok_or_else(short)?;
        self.b = rest;
        Ok(head)
    }
    pub fn str(&mut self) -> Result<&'a str, SnapshotError> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| SnapshotError::corrupt("a name or path is not valid UTF-8"))
    }
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, SnapshotError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(SnapshotError::corrupt(format!("bad option tag {t}"))),
        }
    }
}

/// Zig-zag, so small negative numbers stay small as varints.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
