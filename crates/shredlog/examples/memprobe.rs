//! Memory and open time of a store, for the scale figures in
//! docs/BENCHMARKS.md (issue 15).
//!
//! ```text
//! cargo run --release -p shredlog --example memprobe -- DATA_DIR WORKLOAD.jsonl \
//!     [--queries N] [--seed N] [--opens N] [--cache-bytes N] [--passes N]
//! ```
//!
//! Opens the store `--opens` times (default 3; each open is closed again, the
//! median is printed), then once more and keeps it open; prints the heap
//! the process holds (a counting allocator) and its resident memory
//! (`/proc/self/status`: anonymous and file-backed) after open, then after
//! `--queries` (default 1,000) random visitor queries (look up by email, list,
//! read every transcript). The visitors' emails are a seeded sample of the
//! lines of the workload file the store was imported from (interchange
//! lines), or of a file of emails, one a line; only the sample is held, and
//! the peak resident memory is reset after reading it, so that the figures
//! are the store's.
//!
//! With `--passes N` it then times the sample's queries again, warm, as the
//! comparison harness does: `N` passes, and per visitor the fastest of them
//! counts; it prints the median and p99 of listing a visitor's transcripts
//! by email and of reading one of them (the visitor's first listed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use shredlog::{Options, Store};

/// Counts the bytes the process holds on the heap, and the peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
#[expect(unsafe_code, reason = "a counting global allocator")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = HELD.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn status() -> String {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or_else(|| "?".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0))
    };
    format!(
        "heap {:.1} MiB (peak {:.1}), RSS {} MiB (anon {}, file {}), peak RSS {} MiB",
        HELD.load(Ordering::Relaxed) as f64 / 1048576.0,
        PEAK.load(Ordering::Relaxed) as f64 / 1048576.0,
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:"),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: memprobe DATA_DIR WORKLOAD.jsonl [--queries N]")?;
    let workload = args
        .next()
        .ok_or("usage: memprobe DATA_DIR WORKLOAD.jsonl")?;
    let (mut queries, mut seed, mut opens, mut passes) = (1000usize, 1u64, 3usize, 0usize);
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("a flag needs a value")?;
        match flag.as_str() {
            "--queries" => queries = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--opens" => opens = value.parse()?,
            "--passes" => passes = value.parse()?,
            "--cache-bytes" => options.cache_bytes = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    // The emails queried: a seeded sample of the workload's lines (a
    // visitor with more lines is more likely to be asked about), held
    // `queries` at a time so that the probe's own memory does not grow
    // with the workload.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut emails: Vec<String> = Vec::with_capacity(queries);
    let mut lines = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(&workload)?).lines() {
        let line = line?;
        // An interchange line, or an email a line.
        let email = if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            v.pointer("/visitor/email")
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        } else {
            Some(line.trim().to_owned()).filter(|l| !l.is_empty())
        };
        let Some(e) = email else { continue };
        lines += 1;
        // Reservoir sampling (Algorithm R).
        if emails.len() < queries {
            emails.push(e);
        } else if let Some(slot) = emails.get_mut((next() % lines) as usize) {
            *slot = e;
        }
    }
    // Peak resident memory from here on is the store's (Linux: writing 5
    // to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut times = Vec::new();
    for _ in 0..opens {
        let t = Instant::now();
        let store = Store::open(&dir, options.clone())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        store.close()?;
    }
    times.sort_by(f64::total_cmp);
    let before = status();
    let t = Instant::now();
    let store = Store::open(&dir, options.clone())?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "lines with an email in the workload: {lines} (queries sample {})",
        emails.len()
    );
    println!(
        "open: {open_ms:.2} ms (opens before: {:?} ms, median {:.3})",
        times
            .iter()
            .map(|t| (t * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        times.get(times.len() / 2).copied().unwrap_or(open_ms)
    );
    println!("before open: {before}");
    println!("after open:  {}", status());
    let stats = store.stats()?;
    println!(
        "store: {} transcripts, {} messages, {} visitors, {} segments, {:.1} MB segments, {:.1} MB keyring",
        stats.transcripts,
        stats.messages,
        stats.visitors,
        stats.segments,
        stats.segment_bytes as f64 / 1e6,
        stats.keyring_bytes as f64 / 1e6
    );
    let (mut listed, mut read) = (0usize, 0usize);
    let t = Instant::now();
    for email in &emails {
        for info in store.transcripts_by_email(email, None, None)? {
            listed += 1;
            read += store.transcript(&info.id)?.len();
        }
    }
    println!(
        "{queries} visitor queries: {listed} transcripts, {read} messages in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    println!("after queries: {}", status());
    if passes > 0 {
        let mut best = vec![[f64::INFINITY; 2]; emails.len()];
        for _ in 0..passes {
            for (email, b) in emails.iter().zip(best.iter_mut()) {
                let t = Instant::now();
                let listed = store.transcripts_by_email(email, None, None)?;
                b[0] = b[0].min(t.elapsed().as_secs_f64());
                if let Some(first) = listed.first() {
                    let t = Instant::now();
                    store.transcript(&first.id)?;
                    b[1] = b[1].min(t.elapsed().as_secs_f64());
                }
            }
        }
        for (i, what) in ["list", "read"].iter().enumerate() {
            let mut v: Vec<f64> = best
                .iter()
                .map(|b| b[i] * 1e6)
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)));
            println!(
                "warm {what} (fastest of {passes} passes per visitor): median {:.1} µs, p99 {:.1} µs",
                at(0.5).copied().unwrap_or(0.0),
                at(0.99).copied().unwrap_or(0.0)
            );
        }
    }
    store.close()?;
    Ok(())
}
