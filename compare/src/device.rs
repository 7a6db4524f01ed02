//! The device's and the CPU's own limits, measured in the same run, in the
//! directory the stores live in.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, Result};

use crate::stats::Latencies;

#[derive(Default)]
pub struct Device {
    /// Sequential write of `seq_bytes` (1 MiB writes, one fsync at the end), MB/s.
    pub seq_write_mb_s: f64,
    pub seq_bytes: u64,
    /// 4 KiB overwrite at offset 0 + fdatasync, µs.
    pub fdatasync: Latencies,
    /// AES-256-GCM seal of 300-byte messages on one core.
    pub aead_mb_s: f64,
    pub aead_msgs_s: f64,
}

pub fn measure(dir: &Path, seq_mib: u64, syncs: usize) -> Result<Device> {
    let (seq_write_mb_s, seq_bytes) = seq_write(dir, seq_mib)?;
    let fdatasync = fdatasync_latency(dir, syncs)?;
    let (aead_mb_s, aead_msgs_s) = aead(Duration::from_millis(1500));
    Ok(Device {
        seq_write_mb_s,
        seq_bytes,
        fdatasync,
        aead_mb_s,
        aead_msgs_s,
    })
}

fn seq_write(dir: &Path, mib: u64) -> Result<(f64, u64)> {
    let path = dir.join("device-seq-write");
    let mut chunk = vec![0u8; 1 << 20];
    // Not zeros, in case the file system or device treats zeros specially.
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let t = Instant::now();
    let mut f = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    let s = t.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    let bytes = mib << 20;
    Ok((bytes as f64 / 1e6 / s, bytes))
}

pub fn fdatasync_latency(dir: &Path, n: usize) -> Result<Latencies> {
    let path = dir.join("device-fdatasync");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let mut block = vec![7u8; 4096];
    f.write_all_at(&block, 0)?;
    f.sync_all()?;
    let mut lat = Latencies::default();
    for i in 0..n {
        block[0] = i as u8;
        let t = Instant::now();
        f.write_all_at(&block, 0)?;
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(lat)
}

/// Seals 300-byte messages for `budget` on this thread; (MB/s, messages/s).
fn aead(budget: Duration) -> (f64, f64) {
    let mut key = [0u8; 32];
    let _ = getrandom::fill(&mut key);
    let cipher = Aes256Gcm::new((&key).into());
    let mut buf = [0x5Au8; 300];
    let mut nonce = [0u8; 12];
    let mut n = 0u64;
    let t = Instant::now();
    loop {
        for _ in 0..1024 {
            nonce[..8].copy_from_slice(&n.to_le_bytes());
            let tag = cipher
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"aad", &mut buf)
                .unwrap_or_default();
            std::hint::black_box(&tag);
            n += 1;
        }
        if t.elapsed() >= budget {
            break;
        }
    }
    let s = t.elapsed().as_secs_f64();
    (n as f64 * 300.0 / 1e6 / s, n as f64 / s)
}
