//! shredlog's ingest CPU time per message, split into the work it is made
//! of: parsing the interchange line, detecting personal data, sealing, and
//! the rest (encoding, key slots, index, writes and syncs). Parsing is timed
//! when the workload is read; detection and sealing are timed here on one
//! core, over the same messages, with the same detector settings and cipher
//! the store uses; "write" is what remains of the ingest's CPU time.

use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use shredlog::pii::Detector;
use shredlog::{Body, Options};

use crate::data::{Workload, payload_len};

/// Seconds of CPU, in all, for each part.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    pub messages: usize,
    pub parse_s: f64,
    pub detect_s: f64,
    pub seal_s: f64,
    /// The ingest's CPU time less detection and sealing.
    pub write_s: f64,
}

impl Phases {
    /// Microseconds per message of `s` seconds.
    pub fn per_msg_us(&self, s: f64) -> f64 {
        s * 1e6 / self.messages.max(1) as f64
    }
}

/// Times detection and sealing over `wl`'s messages and splits
/// `ingest_cpu_s` (shredlog's measured ingest CPU time) with them.
pub fn measure(wl: &Workload, ingest_cpu_s: f64) -> Phases {
    let options = Options::default();
    let detector = match Detector::new(&options.detector) {
        Ok(d) => d,
        Err(_) => return Phases::default(),
    };
    // Detection: every text the store scans (texts and consent prompts;
    // forms, files and the visitor go whole into the sealed PII part).
    let t = Instant::now();
    let mut found = 0usize;
    for m in &wl.msgs {
        match &m.body {
            Body::Text(text) => found += detector.find(text).len(),
            Body::Consent { prompt, .. } => found += detector.find(prompt).len(),
            Body::Form(_) | Body::File(_) => {}
        }
    }
    std::hint::black_box(found);
    let detect_s = t.elapsed().as_secs_f64();

    // Sealing: each message's payload under AES-256-GCM, in place, with a
    // fresh nonce per message (the store seals a content part and, when
    // there is personal data, a PII part; their sum is about the payload).
    let mut key = [0u8; 32];
    let _ = getrandom::fill(&mut key);
    let cipher = Aes256Gcm::new((&key).into());
    let mut seen = std::collections::HashSet::new();
    let lens: Vec<usize> = wl
        .msgs
        .iter()
        .map(|m| payload_len(m, seen.insert(m.transcript.as_str())) as usize)
        .collect();
    let mut buf = vec![0x5Au8; lens.iter().copied().max().unwrap_or(0)];
    let t = Instant::now();
    for (i, &n) in lens.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"aad", &mut buf[..n])
            .unwrap_or_default();
        std::hint::black_box(&tag);
    }
    let seal_s = t.elapsed().as_secs_f64();
    Phases {
        messages: wl.msgs.len(),
        parse_s: wl.parse_s,
        detect_s,
        seal_s,
        write_s: (ingest_cpu_s - detect_s - seal_s).max(0.0),
    }
}
