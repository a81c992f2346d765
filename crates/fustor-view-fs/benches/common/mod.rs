//! Helpers shared by the scale benchmarks: a deterministic generator, RSS, env knobs, medians.

#![allow(dead_code)]

use std::time::Duration;

pub const T0: f64 = 1_700_000_000.0;

/// xorshift64: deterministic synthetic names without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    pub fn name(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + (self.next() % 26) as u8) as char)
            .collect()
    }
}

/// Resident set size of this process.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Leaf directory paths, 4–6 levels deep, shared prefixes at the upper levels.
pub fn make_dirs(rng: &mut Rng, n: usize) -> Vec<String> {
    let top: Vec<String> = (0..10)
        .map(|_| {
            let l = rng.range(8, 41) as usize;
            rng.name(l)
        })
        .collect();
    (0..n)
        .map(|i| {
            let depth = 4 + i % 3;
            let mut p = format!("/{}", top[i % top.len()]);
            for level in 1..depth {
                let seed = if level + 1 < depth {
                    (i / 7usize.pow(level as u32)) as u64
                } else {
                    i as u64
                };
                let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
                let l = r.range(8, 41) as usize;
                p.push('/');
                p.push_str(&r.name(l));
            }
            p
        })
        .collect()
}
