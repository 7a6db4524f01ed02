//! Latency samples and file sizes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Latencies(Vec<f64>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1e6);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0.0–1.0) in microseconds, nearest rank.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    pub fn p50(&self) -> f64 {
        self.quantile_us(0.5)
    }

    pub fn p99(&self) -> f64 {
        self.quantile_us(0.99)
    }
}

/// Every regular file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Bytes the files under `dir` occupy on the device (allocated blocks, as
/// `du` counts them) and their apparent length.
#[derive(Clone, Copy, Debug, Default)]
pub struct Size {
    pub allocated: u64,
    pub apparent: u64,
}

pub fn size(dir: &Path) -> Size {
    let mut s = Size::default();
    for f in files(dir) {
        if let Ok(m) = std::fs::metadata(&f) {
            s.allocated += m.blocks() * 512;
            s.apparent += m.len();
        }
    }
    s
}

/// Reads every file under `dir` whole, so that its pages are in the page
/// cache. Returns the bytes read.
pub fn warm(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for f in files(dir) {
        n += std::io::copy(&mut std::fs::File::open(&f)?, &mut std::io::sink())?;
    }
    Ok(n)
}

/// Drops the pages of every file under `dir` from the page cache (written
/// back first, then `posix_fadvise(DONTNEED)`), so that what reads them next
/// goes to the device. Returns the number of files evicted.
pub fn evict(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for f in files(dir) {
        let file = std::fs::File::open(&f)?;
        file.sync_all()?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
        n += 1;
    }
    Ok(n)
}

/// CPU time (user + system, all threads) this process has used so far, in
/// seconds, from /proc/self/stat (clock ticks of 1/100 s).
pub fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let tick = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
