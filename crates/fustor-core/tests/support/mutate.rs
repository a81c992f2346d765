//! Deterministic mutations of YAML configuration files, for "error or ok, never a panic" tests
//! of both daemons' loaders (issue 9). Shared by the core, agent and Fusion test crates.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_norway::{Mapping, Number, Value};

/// xorshift64*: tiny, seedable, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that broke or could break conversions: extremes, NaN spelled every way, wrong types.
pub fn extreme(rng: &mut Rng) -> Value {
    let n = |f: f64| Value::Number(Number::from(f));
    match rng.below(20) {
        0 => n(1e300),
        1 => n(-1e300),
        2 => Value::Number((-1i64).into()),
        3 => Value::Number(0u64.into()),
        4 => n(1e20),
        5 => Value::Number(u64::MAX.into()),
        6 => Value::Number(i64::MIN.into()),
        7 => n(f64::NAN),
        8 => n(f64::INFINITY),
        9 => Value::String("NaN".into()),
        10 => Value::String("x".repeat(100_000)),
        11 => Value::Bool(true),
        12 => Value::Null,
        13 => Value::Sequence(vec![Value::Number(1u64.into())]),
        14 => Value::Mapping(Mapping::new()),
        15 => Value::String("64MB".into()),
        16 => n(4_294_967_297.0),
        17 => n(1e-9),
        18 => Value::String(String::new()),
        _ => n(-0.5),
    }
}

#[derive(Clone)]
enum Seg {
    Key(Value),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, child) in s.iter().enumerate() {
                prefix.push(Seg::Index(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn rename(key: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    match rng.below(4) {
        0 if !chars.is_empty() => {
            chars.remove(rng.below(chars.len()));
        }
        1 => chars.insert(rng.below(chars.len() + 1), 's'),
        2 if chars.len() > 1 => {
            let i = rng.below(chars.len() - 1);
            chars.swap(i, i + 1);
        }
        _ => chars.extend("_secs".chars()),
    }
    chars.into_iter().collect()
}

/// One mutated document: 1–3 tree edits (extreme value, wrong type, delete or rename a key),
/// sometimes followed by a text edit (a line duplicated or dropped: duplicate keys, broken
/// indentation).
pub fn mutate(doc: &Value, rng: &mut Rng) -> String {
    let mut v = doc.clone();
    for _ in 0..=rng.below(3) {
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        // Half of the edits go to numbers: that is where conversions can overflow.
        let numeric: Vec<&Vec<Seg>> = all
            .iter()
            .filter(|p| matches!(parent_mut(&mut v.clone(), p), Some(Value::Number(_))))
            .collect();
        let path = if !numeric.is_empty() && rng.below(2) == 0 {
            numeric[rng.below(numeric.len())].clone()
        } else {
            all[rng.below(all.len())].clone()
        };
        let (last, parent) = path.split_last().unwrap();
        let op = if matches!(parent_mut(&mut v, &path), Some(Value::Number(_))) {
            rng.below(2)
        } else {
            rng.below(4)
        };
        let Some(parent) = parent_mut(&mut v, parent) else {
            continue;
        };
        match (op, last, parent) {
            (0 | 1, Seg::Key(k), Value::Mapping(m)) => {
                let e = extreme(rng);
                m.insert(k.clone(), e);
            }
            (0 | 1, Seg::Index(i), Value::Sequence(s)) => s[*i] = extreme(rng),
            (2, Seg::Key(k), Value::Mapping(m)) => {
                m.remove(k);
            }
            (2, Seg::Index(i), Value::Sequence(s)) => {
                s.remove(*i);
            }
            (_, Seg::Key(k), Value::Mapping(m)) => {
                if let (Some(name), Some(val)) = (k.as_str(), m.remove(k)) {
                    m.insert(Value::String(rename(name, rng)), val);
                }
            }
            _ => {}
        }
    }
    let mut text = serde_norway::to_string(&v).unwrap_or_default();
    if rng.below(4) == 0 {
        let mut lines: Vec<&str> = text.lines().collect();
        if !lines.is_empty() {
            let i = rng.below(lines.len());
            if rng.below(2) == 0 {
                lines.insert(i, lines[i]);
            } else {
                lines.remove(i);
            }
        }
        text = lines.join("\n");
    }
    text
}

/// The ```yaml blocks of a Markdown document.
pub fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + 8..];
        let Some(end) = body.find("```") else { break };
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

/// Runs `f`, turning a panic into a test failure message that shows the document.
pub fn never_panics(what: &str, doc: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        let shown: String = doc.chars().take(2000).collect();
        panic!("{what} panicked on this configuration:\n{shown}");
    }
}
