//! Counting each engine's syncs (fsync, fdatasync, sync_file_range, msync)
//! per durable commit and per erasure: the harness runs itself under `strace`
//! on a small workload, with markers on stderr around the two phases.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::engines::{Db, Kind};
use crate::{Args, data, workload_config};

const INGEST_BEGIN: &str = "PROBE-INGEST-BEGIN";
const ERASE_BEGIN: &str = "PROBE-ERASE-BEGIN";
const END: &str = "PROBE-END";

pub const VISITORS: usize = 300;
pub const ERASURES: usize = 20;

/// The child's side: ingest and erase with markers.
pub fn child(kind: Kind, dir: &Path, args: &Args) -> Result<()> {
    let wl = data::prepare(workload_config(args, VISITORS))?;
    let samples = data::samples(VISITORS, ERASURES, 0, args.seed);
    let mut db = kind.open(dir)?;
    eprintln!("{INGEST_BEGIN}");
    for ((m, b), meta) in wl
        .msgs
        .chunks(args.batch)
        .zip(wl.bare.chunks(args.batch))
        .zip(wl.meta.chunks(args.batch))
    {
        db.ingest(m, b, meta)?;
    }
    eprintln!("{END}");
    eprintln!("{ERASE_BEGIN}");
    for &vi in &samples.erase {
        db.erase(&wl.summary.visitors[vi].email)?;
    }
    eprintln!("{END}");
    Db::close(db)?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct Syncs {
    pub commits: usize,
    pub erasures: usize,
    /// Syncs during the ingest, per file.
    pub ingest: BTreeMap<String, usize>,
    /// Syncs during the erasures, per file.
    pub erase: BTreeMap<String, usize>,
}

impl Syncs {
    pub fn per_commit(&self) -> f64 {
        self.ingest.values().sum::<usize>() as f64 / self.commits.max(1) as f64
    }

    pub fn per_erase(&self) -> f64 {
        self.erase.values().sum::<usize>() as f64 / self.erasures.max(1) as f64
    }
}

pub fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the probe for `kind` in `dir` under strace and counts.
pub fn run(kind: Kind, dir: &Path, args: &Args) -> Result<Syncs> {
    let exe = std::env::current_exe()?;
    let trace = dir.with_extension("strace");
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-e"])
        .arg("trace=fsync,fdatasync,sync_file_range,msync,write")
        .arg("-o")
        .arg(&trace)
        .arg(exe)
        .arg("--sync-probe")
        .arg(kind.name())
        .arg("--dir")
        .arg(dir)
        .args(["--batch", &args.batch.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--profile", args.profile.name()])
        .args(["--file-probability", &args.file_probability.to_string()])
        .args(["--max-file-bytes", &args.max_file_bytes.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running strace")?;
    if !status.success() {
        bail!("the sync probe under strace failed ({status})");
    }
    let text = std::fs::read_to_string(&trace)?;
    let _ = std::fs::remove_file(&trace);
    let commits = data::prepare(workload_config(args, VISITORS))?
        .msgs
        .len()
        .div_ceil(args.batch);
    let mut out = Syncs {
        commits,
        erasures: ERASURES.min(VISITORS / 2),
        ..Syncs::default()
    };
    let mut phase: Option<bool> = None; // Some(true) = ingest, Some(false) = erase
    for line in text.lines() {
        if line.contains("write(2<") {
            if line.contains(INGEST_BEGIN) {
                phase = Some(true);
            } else if line.contains(ERASE_BEGIN) {
                phase = Some(false);
            } else if line.contains(END) {
                phase = None;
            }
            continue;
        }
        let Some(p) = phase else { continue };
        let Some(call) = ["fsync(", "fdatasync(", "sync_file_range(", "msync("]
            .iter()
            .find(|c| line.contains(*c))
        else {
            continue;
        };
        // `fdatasync(5</path/to/file>) = 0`: name the file relative to the store.
        let after = &line[line.find(call).map_or(0, |i| i + call.len())..];
        let path = after
            .split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map_or("?", |(p, _)| p);
        let dir_s = dir.to_string_lossy();
        let name = path
            .strip_prefix(dir_s.as_ref())
            .map(|r| r.trim_start_matches('/'))
            .map(|r| if r.is_empty() { "(directory)" } else { r })
            .unwrap_or(path);
        let name = generic_name(name);
        let map = if p { &mut out.ingest } else { &mut out.erase };
        *map.entry(format!("{} {}", call.trim_end_matches('('), name))
            .or_insert(0) += 1;
    }
    Ok(out)
}

/// Numbered files (`000012.log`, `3.jnl`) named by their kind, so that the
/// counts add up per kind of file.
fn generic_name(name: &str) -> String {
    let mut out = String::new();
    let mut digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out
}
