//! Time to read whole transcripts, for the read figures in
//! docs/BENCHMARKS.md (uploads of 50–500 KB on the support profile).
//!
//! ```text
//! cargo run --release -p shredlog --example readprobe -- DATA_DIR WORKLOAD.jsonl \
//!     [--transcripts N] [--passes N]
//! ```
//!
//! Opens the store read-only, takes the first `--transcripts` (default
//! 4,000) distinct transcript ids of the workload file the store was
//! imported from (interchange lines), and reads each whole `--passes` times
//! (default 3); per transcript the fastest pass counts. Prints the median,
//! p90, p99 and the slowest, in µs, and the eight slowest transcripts with
//! their message counts.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::time::Instant;

use shredlog::{Options, Store};

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(workload)) = (args.first(), args.get(1)) else {
        return Err(
            "usage: readprobe DATA_DIR WORKLOAD.jsonl [--transcripts N] [--passes N]".into(),
        );
    };
    let want = arg(&args, "--transcripts", 4000)?;
    let passes = arg(&args, "--passes", 3)?.max(1);
    let store = Store::open(
        dir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .map_err(|e| format!("opening {dir}: {e}"))?;
    let file = std::fs::File::open(workload).map_err(|e| format!("{workload}: {e}"))?;
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{workload}: {e}"))?;
        let msg =
            shredlog::interchange::parse_line(&line).map_err(|e| format!("{workload}: {e}"))?;
        if seen.insert(msg.transcript.clone()) {
            ids.push(msg.transcript);
            if ids.len() == want {
                break;
            }
        }
    }
    if ids.is_empty() {
        return Err(format!("{workload}: no transcripts"));
    }
    let mut times: Vec<(f64, &str, usize)> = Vec::with_capacity(ids.len());
    for id in &ids {
        let mut best = f64::INFINITY;
        let mut n = 0;
        for _ in 0..passes {
            let t = Instant::now();
            let msgs = store
                .transcript(id)
                .map_err(|e| format!("reading a transcript: {e}"))?;
            best = best.min(t.elapsed().as_secs_f64() * 1e6);
            n = msgs.len();
        }
        times.push((best, id, n));
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].0;
    let mut out = std::io::stdout().lock();
    let mut print = || -> std::io::Result<()> {
        writeln!(
            out,
            "{} transcripts, fastest of {passes} passes: p50 {:.1} µs, p90 {:.1}, p99 {:.1}, slowest {:.1}",
            times.len(),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        )?;
        for (us, id, n) in times.iter().rev().take(8) {
            writeln!(out, "  {us:.1} µs  {id}  ({n} messages)")?;
        }
        Ok(())
    };
    // A closed stdout (`| head`) ends the output, not the program with a panic.
    let _ = print();
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("readprobe: {e}");
        std::process::exit(2);
    }
}
