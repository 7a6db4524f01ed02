//! Time of visitor erasures right after open, with the store's files in
//! the page cache or not, for the erasure figures in docs/BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p shredlog --example eraseprobe -- DATA_DIR WORKLOAD.jsonl \
//!     [--erasures N] [--skip N] [--cold]
//! ```
//!
//! Takes every 37th distinct visitor email of the workload file the store
//! was imported from (interchange lines), after skipping `--skip` (default
//! 0) of those picks, and erases `--erasures` of them (default 100) with
//! `redact_visitor`, one at a time, each durable when it returns. With
//! `--cold`, every file of the store is first written back and dropped from
//! the page cache (`posix_fadvise(DONTNEED)`), so that the erasures read
//! from the device. Prints the median, p90, p99 and slowest erasure in µs,
//! and the first ten in order. It erases: run it on a copy.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;
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

/// Writes back and drops from the page cache every file in `dir`.
fn evict(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            let f = std::fs::File::open(e.path())?;
            f.sync_all()?;
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(workload)) = (args.first(), args.get(1)) else {
        return Err(
            "usage: eraseprobe DATA_DIR WORKLOAD.jsonl [--erasures N] [--skip N] [--cold]".into(),
        );
    };
    let n = arg(&args, "--erasures", 100)?.max(1);
    let skip = arg(&args, "--skip", 0)?;
    let file = std::fs::File::open(workload).map_err(|e| format!("{workload}: {e}"))?;
    let mut emails = Vec::new();
    let mut seen = HashSet::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{workload}: {e}"))?;
        let msg =
            shredlog::interchange::parse_line(&line).map_err(|e| format!("{workload}: {e}"))?;
        if let Some(v) = msg.visitor
            && seen.insert(v.email.clone())
            && (seen.len() - 1) % 37 == 0
        {
            emails.push(v.email);
            if emails.len() == skip + n {
                break;
            }
        }
    }
    if args.iter().any(|a| a == "--cold") {
        evict(Path::new(dir)).map_err(|e| format!("dropping {dir} from the page cache: {e}"))?;
    }
    let store = Store::open(dir, Options::default()).map_err(|e| format!("opening {dir}: {e}"))?;
    let mut times = Vec::with_capacity(n);
    for email in emails.iter().skip(skip) {
        let t = Instant::now();
        match store.redact_visitor(email, "eraseprobe") {
            Ok(_) => times.push(t.elapsed().as_secs_f64() * 1e6),
            // Erased by an earlier run on this store: not timed.
            Err(shredlog::Error::VisitorNotFound) => {}
            Err(e) => return Err(format!("erasing: {e}")),
        }
    }
    store.close().map_err(|e| format!("closing: {e}"))?;
    if times.is_empty() {
        return Err("no visitor of the sample was found in the store".into());
    }
    let first: Vec<u64> = times.iter().take(10).map(|t| *t as u64).collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let _ = writeln!(
        std::io::stdout().lock(),
        "{} erasures: p50 {:.0} µs, p90 {:.0}, p99 {:.0}, slowest {:.0}; the first ten: {first:?}",
        times.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("eraseprobe: {e}");
        std::process::exit(2);
    }
}
