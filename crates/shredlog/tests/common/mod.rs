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

/// Every file of a directory, concatenated.
pub fn dir_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
