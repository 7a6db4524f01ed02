//! The workload, generated once and parsed once, and what every engine is fed.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};
use shredlog::{Body, Message, interchange};
use workload::{VisitorTruth, WorkloadConfig, WorkloadSummary, generate};

/// Per message: what an application's session would hand a peer engine
/// alongside the message (the visitor's numeric id, the message's sequence
/// number in its transcript, whether it opens the transcript and when the
/// transcript started). shredlog works all of this out itself.
#[derive(Clone, Debug)]
pub struct Meta {
    pub vid: u64,
    pub seq: u32,
    pub first: bool,
    pub first_ms: i64,
}

pub struct Workload {
    pub summary: WorkloadSummary,
    /// Parsed messages, in input order (what shredlog appends).
    pub msgs: Vec<Message>,
    /// The same messages without their `visitor` object (the peers keep the
    /// visitor in its own table and the message row refers to it by id).
    pub bare: Vec<Message>,
    pub meta: Vec<Meta>,
    /// Seconds spent parsing the interchange text into messages.
    pub parse_s: f64,
    /// Bytes of interchange input.
    pub input_bytes: u64,
    /// Logical payload bytes of every message (see `payload_bytes`).
    pub payload_bytes: u64,
    /// Messages that get a PII part in shredlog (approximation used for the
    /// size bound: every message with a visitor, a form, a file or typed PII).
    pub records_with_pii: u64,
}

pub fn prepare(config: WorkloadConfig) -> Result<Workload> {
    let mut text = Vec::new();
    let summary = generate(&config, &mut text).context("generating the workload")?;
    let text = String::from_utf8(text).context("workload is not UTF-8")?;
    let t = Instant::now();
    let msgs: Vec<Message> = text
        .lines()
        .enumerate()
        .map(|(i, l)| interchange::parse_line(l).with_context(|| format!("line {}", i + 1)))
        .collect::<Result<_>>()?;
    let parse_s = t.elapsed().as_secs_f64();

    let mut session = Session::default();
    let mut meta = Vec::with_capacity(msgs.len());
    let mut bare = Vec::with_capacity(msgs.len());
    let mut payload_bytes = 0u64;
    let mut records_with_pii = 0u64;
    let pii_strings = pii_by_transcript(&summary.visitors);
    for m in &msgs {
        payload_bytes += payload_len(m, !session.knows(&m.transcript));
        let typed = pii_strings
            .get(m.transcript.as_str())
            .is_some_and(|typed| match &m.body {
                Body::Text(t) => typed.iter().any(|p| t.contains(p.as_str())),
                _ => false,
            });
        if m.visitor.is_some() || matches!(m.body, Body::Form(_) | Body::File(_)) || typed {
            records_with_pii += 1;
        }
        let entry = session.next(m)?;
        meta.push(entry);
        let mut b = m.clone();
        b.visitor = None;
        bare.push(b);
    }
    Ok(Workload {
        input_bytes: text.len() as u64,
        summary,
        msgs,
        bare,
        meta,
        parse_s,
        payload_bytes,
        records_with_pii,
    })
}

/// Writes the interchange text of `config`'s workload to `path` (for the
/// streaming ingest, which reads it as an importer would).
pub fn write_input(config: &WorkloadConfig, path: &std::path::Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    generate(config, &mut out).context("generating the workload")?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

/// What an application's session knows while it feeds messages in order:
/// each visitor's numeric id and each open transcript's message count and
/// start, from which it hands every message its [`Meta`].
#[derive(Default)]
pub struct Session {
    vids: HashMap<String, u64>,
    open: HashMap<String, (u64, u32, i64)>,
}

impl Session {
    /// Whether transcript `id` has had a message.
    pub fn knows(&self, id: &str) -> bool {
        self.open.contains_key(id)
    }

    /// The next message's meta.
    pub fn next(&mut self, m: &Message) -> Result<Meta> {
        Ok(match self.open.get_mut(&m.transcript) {
            Some(e) => {
                e.1 += 1;
                Meta {
                    vid: e.0,
                    seq: e.1,
                    first: false,
                    first_ms: e.2,
                }
            }
            None => {
                let v = m
                    .visitor
                    .as_ref()
                    .context("a transcript's first line has no visitor")?;
                let next = self.vids.len() as u64 + 1;
                let vid = *self.vids.entry(email_key(&v.email)).or_insert(next);
                let first_ms = m.ts.unix_millis();
                self.open.insert(m.transcript.clone(), (vid, 0, first_ms));
                Meta {
                    vid,
                    seq: 0,
                    first: true,
                    first_ms,
                }
            }
        })
    }
}

fn pii_by_transcript(visitors: &[VisitorTruth]) -> HashMap<&str, Vec<String>> {
    let mut out = HashMap::new();
    for v in visitors {
        for t in &v.transcripts {
            out.insert(t.as_str(), v.typed_pii.clone());
        }
    }
    out
}

/// What a message says, in bytes, without any encoding around it: transcript
/// id, timestamp text, one byte for the sender, the body's strings (form keys
/// and values, file name, MIME type and bytes, consent prompt plus one byte),
/// and the visitor's fields once per transcript (`with_visitor` on its first
/// message: the generator repeats the same visitor object on every line).
pub fn payload_len(m: &Message, with_visitor: bool) -> u64 {
    let mut n = m.transcript.len() + m.ts.as_str().len() + 1;
    n += match &m.body {
        Body::Text(t) => t.len(),
        Body::Form(f) => f.iter().map(|(k, v)| k.len() + v.len()).sum(),
        Body::File(f) => f.name.len() + f.mime.len() + f.data.len(),
        Body::Consent { prompt, .. } => prompt.len() + 1,
    };
    if let Some(v) = m.visitor.as_ref().filter(|_| with_visitor) {
        n += v.email.len();
        for s in [&v.name, &v.phone, &v.id, &v.ip].into_iter().flatten() {
            n += s.len();
        }
    }
    n as u64
}

/// Deterministic sampling (SplitMix64), independent of the engines.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_C0FF_EE00_0001)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A shuffled copy of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
        v
    }
}

/// Which visitors are erased and which are queried: disjoint, deterministic.
pub struct Samples {
    pub erase: Vec<usize>,
    pub query: Vec<usize>,
}

pub fn samples(visitors: usize, erase: usize, query: usize, seed: u64) -> Samples {
    let mut rng = Rng::new(seed);
    let order = rng.permutation(visitors);
    let erase_n = erase.min(visitors / 2);
    let query_n = query.min(visitors - erase_n);
    Samples {
        erase: order[..erase_n].to_vec(),
        query: order[erase_n..erase_n + query_n].to_vec(),
    }
}

/// The key a peer engine files a visitor's email under: shredlog's canonical
/// form, so that every engine finds the same visitors.
pub fn email_key(email: &str) -> String {
    shredlog::normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase())
}
