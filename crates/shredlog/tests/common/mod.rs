//! Helpers shared by the integration tests.
#![allow(dead_code)]

use shredlog::{Body, FileUpload, Message, Sender, Timestamp, Visitor};

/// A small deterministic PRNG (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn visitor(n: u64) -> Visitor {
    Visitor {
        email: format!("Visitor.{n}@Example.com"),
        name: Some(format!("Name{n} Surname{n}")),
        phone: Some(format!("+44 20 7946 {:04}", n % 10000)),
        id: Some(format!("v-{n:06}")),
        ip: Some(format!("203.0.113.{}", n % 250 + 1)),
    }
}

/// The personal strings of visitor `n` (as written by [`visitor`] and [`message`]).
pub fn personal_strings(n: u64) -> Vec<String> {
    let v = visitor(n);
    vec![
        v.email.clone(),
        v.email.to_lowercase(),
        v.name.unwrap_or_default(),
        v.id.unwrap_or_default(),
        format!("typed.{n}@mail.example"),
    ]
}

/// Message `i` of transcript `t` of visitor `v`.
pub fn message(v: u64, t: &str, i: u64, ts: i64) -> Message {
    let body = match i % 7 {
        3 => Body::Form(
            [
                ("name".to_string(), format!("Name{v} Surname{v}")),
                ("order".to_string(), format!("A-{i}")),
            ]
            .into(),
        ),
        5 => Body::File(FileUpload {
            name: format!("scan-{v}.png"),
            mime: "image/png".into(),
            data: (0..(64 + i * 13) as u32)
                .map(|b| (b * 7 + v as u32) as u8)
                .collect(),
        }),
        6 => Body::Consent {
            granted: i.is_multiple_of(2),
            prompt: "May we keep this chat for 90 days?".into(),
        },
        _ => Body::Text(format!(
            "message {i} of the conversation, please write to typed.{v}@mail.example about order 12-{i}"
        )),
    };
    Message {
        transcript: t.to_string(),
        id: None,
        ts: Timestamp::from_unix_millis(ts),
        from: Some(if i.is_multiple_of(2) {
            Sender::Visitor
        } else {
            Sender::Operator
        }),
        visitor: (i == 0).then(|| visitor(v)),
        body,
    }
}

/// Appends `per` messages to each of `transcripts` transcripts spread over
/// `visitors` visitors; returns every message in append order.
pub fn populate(
    store: &shredlog::Store,
    visitors: u64,
    transcripts: u64,
    per: u64,
) -> Vec<Message> {
    let mut all = Vec::new();
    for t in 0..transcripts {
        let v = t % visitors;
        let id = format!("t-{t}");
        let batch: Vec<Message> = (0..per)
            .map(|i| message(v, &id, i, 1_700_000_000_000 + (t * 1000 + i) as i64 * 1000))
            .collect();
        store.append_batch(&batch).unwrap();
        all.extend(batch);
    }
    all
}

/// Options with segments of 4 KiB: a store of many of them.
pub fn tiny_segments() -> shredlog::Options {
    shredlog::Options {
        segment_size: 4 << 10,
        ..shredlog::Options::default()
    }
}

/// A closed store (with [`tiny_segments`]) of 8 visitors' 160 transcripts
/// `t-0` … `t-159` of 8 messages each, in more than 64 segments, and what
/// was appended.
pub fn many_segments() -> (tempfile::TempDir, Vec<Message>) {
    let dir = tempfile::tempdir().unwrap();
    let store = shredlog::Store::open(dir.path(), tiny_segments()).unwrap();
    let all = populate(&store, 8, 160, 8);
    store.close().unwrap();
    (dir, all)
}

/// Every file of a directory, concatenated. (A file a running store
/// removes meanwhile, such as the index run a background compaction
/// replaces, is left out.)
pub fn dir_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::read(e.path()) {
                Ok(bytes) => out.push((e.file_name().to_string_lossy().into_owned(), bytes)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("{}: {err}", e.path().display()),
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A slot of a format-3 keyring file, parsed from its bytes as a reader
/// following docs/FORMAT.md §6.2 would (plaintext keyrings only).
#[allow(dead_code)]
pub struct RawSlot {
    /// Its first cell.
    pub index: usize,
    /// Cells it takes.
    pub cells: usize,
    pub kind: u8,
    /// The payload (the slot's body in a plaintext keyring).
    pub payload: Vec<u8>,
}

#[allow(dead_code)]
impl RawSlot {
    /// Byte range of the slot in the file.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.index * 64..(self.index + self.cells) * 64
    }

    /// A directory entry's (visitor id, email, revision): kind 3, whose
    /// body holds the id, then a u16 of the email's length (bits 0-8) and
    /// the revision (bits 9-15), then the email.
    pub fn visitor(&self) -> Option<(&[u8], &[u8], u8)> {
        let p = &self.payload;
        if self.kind != 3 {
            return None;
        }
        let word = u16::from_le_bytes([p[16], p[17]]);
        let n = (word & 0x1ff) as usize;
        Some((&p[..16], &p[18..18 + n], (word >> 9) as u8))
    }
}

/// Every slot in use of a format-3 or format-4 keyring file (cells of 64
/// bytes from byte 1024; byte 0 of a cell: 0 free, n the first of n cells,
/// 0x80 a later one, 0x40 a directory table sector's header; the cells'
/// other 63 bytes in order: crc, kind, version, payload length, payload).
/// In format 4 the cells of the region to retire (header bytes 136-144:
/// first cell, sectors) are not slots.
#[allow(dead_code)]
pub fn keyring_slots(bytes: &[u8]) -> Vec<RawSlot> {
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    assert!(matches!(version, 3 | 4), "keyring format 3 or 4");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let retire = if version == 4 {
        word(136)..word(136) + word(140) * 8
    } else {
        0..0
    };
    let mut out = Vec::new();
    let mut i = 16;
    while (i + 1) * 64 <= bytes.len() {
        let n = bytes[i * 64] as usize;
        if n == 0 || n > 8 || retire.contains(&i) {
            i += 1;
            continue;
        }
        let stream: Vec<u8> = bytes[i * 64..(i + n) * 64]
            .chunks(64)
            .flat_map(|c| c[1..].to_vec())
            .collect();
        let len = u16::from_le_bytes([stream[6], stream[7]]) as usize;
        out.push(RawSlot {
            index: i,
            cells: n,
            kind: stream[4],
            payload: stream[8..8 + len].to_vec(),
        });
        i += n;
    }
    out
}
