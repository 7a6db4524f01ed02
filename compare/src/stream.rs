//! Streaming ingest, the way an application imports a file: a fresh process
//! per engine reads the interchange file line by line, parses each line with
//! `interchange::parse_line` inside the timing, hands the engine one durable
//! commit per batch and keeps nothing else. It reports the wall and CPU time
//! and the process's peak resident memory (`VmHWM`), so the memory figure is
//! the engine's own plus what any importer needs (one batch, the session's
//! maps), never the harness's copy of the whole workload.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use shredlog::{Message, interchange};

use crate::data::{Meta, Session};
use crate::engines::Kind;
use crate::stats;

/// What one streaming run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Streamed {
    pub messages: u64,
    /// Wall time from the first line read to the last commit returning.
    pub wall_s: f64,
    /// CPU time of the process (all threads) over the same span.
    pub cpu_s: f64,
    /// Of the wall time, spent in `interchange::parse_line`.
    pub parse_s: f64,
    /// Peak resident memory of the process, MiB (`VmHWM`).
    pub peak_mib: f64,
    /// Resident memory once the engine was open, before the first line, MiB.
    pub open_mib: f64,
}

impl Streamed {
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.wall_s
    }
}

/// The child's side: streams `input` into a new store of `kind` in `dir` and
/// prints one JSON line of [`Streamed`] on stdout.
pub fn child(kind: Kind, dir: &Path, input: &Path, batch: usize) -> Result<()> {
    let mut db = kind.open(dir)?;
    let open_mib = status_mib("VmRSS:");
    let file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let peers = kind != Kind::Shredlog;
    let mut session = Session::default();
    let (mut msgs, mut bare, mut meta): (Vec<Message>, Vec<Message>, Vec<Meta>) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut line = String::new();
    let mut out = Streamed {
        open_mib,
        ..Streamed::default()
    };
    let mut parse = Duration::ZERO;
    let cpu = stats::cpu_s();
    let t = Instant::now();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let p = Instant::now();
        let m =
            interchange::parse_line(text).with_context(|| format!("line {}", out.messages + 1))?;
        parse += p.elapsed();
        if peers {
            // What the peers store: the visitor in its own row, the
            // message without it (see data.rs).
            meta.push(session.next(&m)?);
            let mut b = m.clone();
            b.visitor = None;
            bare.push(b);
        }
        msgs.push(m);
        out.messages += 1;
        if msgs.len() == batch {
            db.ingest(&msgs, &bare, &meta)?;
            msgs.clear();
            bare.clear();
            meta.clear();
        }
    }
    if !msgs.is_empty() {
        db.ingest(&msgs, &bare, &meta)?;
    }
    out.wall_s = t.elapsed().as_secs_f64();
    out.cpu_s = stats::cpu_s() - cpu;
    out.parse_s = parse.as_secs_f64();
    db.close()?;
    out.peak_mib = status_mib("VmHWM:");
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// Runs the child for `kind` on `input` in a new store `dir`.
pub fn run(kind: Kind, dir: &Path, input: &Path, batch: usize) -> Result<Streamed> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--stream-probe")
        .arg(kind.name())
        .arg("--stream-input")
        .arg(input)
        .arg("--dir")
        .arg(dir)
        .arg("--batch")
        .arg(batch.to_string())
        .output()
        .context("starting the streaming child")?;
    if !out.status.success() {
        bail!(
            "streaming child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .last()
        .context("the streaming child printed nothing")?;
    serde_json::from_str(last).context("reading the streaming child's report")
}

/// A `/proc/self/status` field in MiB (0 if unreadable).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
