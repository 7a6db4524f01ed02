//! Pins the detector's exact output: digests of what [`Detector::find`] and
//! [`Detector::redact`] return over
//!
//! - the tuning corpus (`tests/pii_corpus`),
//! - the held-out corpus (`tests/pii_heldout`; only compared, never printed),
//! - the texts of the workload generator, chat and support profiles,
//! - deterministic random "token soup" built from the characters and words the
//!   detectors look at (`@`, at-words, dot-words, brackets, digits, spaces of
//!   several widths, letters whose case folding is special, …), alone and
//!   spliced into tuning-corpus lines,
//!
//! against `tests/pii_same_output.digests`, recorded with the detector of
//! RULES_VERSION 3 before its speed-ups. A change that only makes the detector
//! faster must leave every digest as it is. A deliberate rule change (which
//! bumps `RULES_VERSION`) re-records them:
//!
//! ```sh
//! PII_SAME_OUTPUT_BLESS=1 cargo test --release -p shredlog --test pii_same_output
//! ```
//!
//! To find which texts changed, dump every output with
//! `PII_SAME_OUTPUT_DUMP=/tmp/before` (one file per source) on both versions
//! and diff the dumps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use shredlog::pii::{Detector, DetectorConfig, PLACEHOLDER, Span};

const DIGESTS: &str = "tests/pii_same_output.digests";

fn corpus_texts(jsonl: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("corpus line is JSON");
            v["text"].as_str().expect("text field").to_owned()
        })
        .collect()
}

/// Every string value of every workload line, except uploaded files' bytes.
fn workload_texts(config: &workload::WorkloadConfig) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if k != "data" {
                        walk(v, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut buf = Vec::new();
    workload::generate(config, &mut buf).expect("workload generates");
    let mut out = Vec::new();
    for line in std::str::from_utf8(&buf).expect("UTF-8").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("workload line is JSON");
        walk(&v, &mut out);
    }
    out
}

/// Pieces the detectors care about.
const TOKENS: &[&str] = &[
    " ",
    " ",
    " ",
    "  ",
    "\u{a0}",
    "\u{3000}",
    "\u{200b}",
    "\t",
    "\n",
    "at",
    "AT",
    "At",
    "aT",
    "@",
    "@",
    "＠",
    "(at)",
    "[at]",
    "-at-",
    "_at_",
    "(@)",
    "dot",
    "DOT",
    "Dot",
    ".",
    ".",
    ". ",
    "(dot)",
    "[.]",
    "(.)",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "«",
    "»",
    "【",
    "】",
    "（",
    "）",
    "［",
    "］",
    "＜",
    "＞",
    "-",
    "_",
    "*",
    "#",
    "/",
    "|",
    "~",
    "ann",
    "ann.lee",
    "j_doe",
    "a+b",
    "x7",
    "example",
    "gmail",
    "live",
    "me",
    "look",
    "sign up",
    "com",
    "de",
    "co",
    "uk",
    "org",
    "png",
    "py",
    "xn--p1ai",
    "пример",
    "рф",
    "arroba",
    "ARROBA",
    "arobase",
    "chiocciola",
    "apenstaartje",
    "klammeraffe",
    "\u{212a}lammeraffe",
    "małpa",
    "MAŁPA",
    "malpa",
    "ät",
    "ÄT",
    "Ät",
    "punto",
    "punkt",
    "point",
    "ponto",
    "kropka",
    "tečka",
    "period",
    "İ",
    "ſ",
    "é",
    "Σ",
    "日本",
    "メール",
    "电话",
    "email",
    "Email:",
    "mail",
    "contact",
    "tel",
    "call",
    "order",
    "0",
    "1",
    "7",
    "42",
    "+",
    "+49",
    "0049",
    "030",
    "1234567",
    "555-0100",
    "(0)",
    "０３",
    "٣",
    "192.168.0.1",
    "::",
    "2001:db8::1",
    ":",
    ",",
    "'",
    "’",
    "%",
    "<redacted>",
    "K",
    "A",
    "a",
    "t",
    "T",
    "r",
    "p",
    "c",
    "h",
    "m",
    "k",
    "l",
    "x",
    "Ã",
    "â",
    "Ä",
    "ä",
];

/// A small deterministic generator (xorshift64*), the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn token(&mut self) -> &'static str {
        TOKENS[self.below(TOKENS.len())]
    }
}

fn token_soup(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let n = 1 + rng.below(24);
            (0..n).map(|_| rng.token()).collect()
        })
        .collect()
}

/// Tuning-corpus lines with tokens spliced in at char boundaries.
fn spliced(seed: u64, lines: &[String], count: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let mut s = lines[rng.below(lines.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let mut at = rng.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.insert_str(at, rng.token());
            }
            s
        })
        .collect()
}

fn push_spans(out: &mut String, spans: &[Span]) {
    for s in spans {
        let _ = write!(out, " {}..{}:{}", s.start, s.end, s.kind.code());
    }
}

/// One line per text: the default detector's spans, the spans with every
/// detector on, and the default redaction.
fn outputs(texts: &[String]) -> (String, usize) {
    let default = Detector::default();
    let all = Detector::new(&DetectorConfig {
        payment_cards: true,
        ibans: true,
        ..DetectorConfig::default()
    })
    .unwrap();
    let mut out = String::new();
    let mut found = 0;
    for text in texts {
        let spans = default.find(text);
        found += spans.len();
        out.push('D');
        push_spans(&mut out, &spans);
        out.push_str(" |A");
        push_spans(&mut out, &all.find(text));
        out.push_str(" |R ");
        out.push_str(&serde_json::to_string(&default.redact(text, PLACEHOLDER)).unwrap());
        out.push('\n');
    }
    (out, found)
}

#[test]
fn detector_output_is_unchanged() {
    let tuning = corpus_texts(include_str!("pii_corpus/corpus.jsonl"));
    let sources: Vec<(&str, Vec<String>)> = vec![
        ("tuning", tuning.clone()),
        (
            "heldout",
            corpus_texts(include_str!("pii_heldout/heldout.jsonl")),
        ),
        (
            "workload-chat",
            workload_texts(&workload::WorkloadConfig {
                seed: 11,
                visitors: 150,
                long_text_probability: 0.05,
                file_probability: 0.0,
                ..workload::WorkloadConfig::default()
            }),
        ),
        (
            "workload-support",
            workload_texts(&workload::WorkloadConfig {
                file_probability: 0.0,
                ..workload::WorkloadConfig::support_desk(12, 150)
            }),
        ),
        ("token-soup", token_soup(0x5EED_0001, 100_000)),
        ("spliced", spliced(0x5EED_0002, &tuning, 50_000)),
    ];
    let mut got = String::new();
    for (name, texts) in &sources {
        let (out, found) = outputs(texts);
        if let Some(dir) = std::env::var_os("PII_SAME_OUTPUT_DUMP") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(std::path::Path::new(&dir).join(name), &out).unwrap();
        }
        let digest = Sha256::digest(out.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(got, "{name} {} {found} {hex}", texts.len());
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DIGESTS);
    if std::env::var_os("PII_SAME_OUTPUT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("the recorded digests");
    assert_eq!(
        got, want,
        "the detector's output changed (source, texts, spans, digest)"
    );
}

/// Not a check: times [`Detector::find`] over a support desk's message texts
/// (`PII_TIME_ROUNDS` passes, default 50) and prints the throughput, for
/// comparing two builds of the detector as whole processes:
///
/// ```sh
/// cargo test --release -p shredlog --test pii_same_output -- --ignored --nocapture time_support_desk
/// ```
#[test]
#[ignore]
fn time_support_desk() {
    let config = workload::WorkloadConfig {
        file_probability: 0.0,
        ..workload::WorkloadConfig::support_desk(7, 300)
    };
    let mut buf = Vec::new();
    workload::generate(&config, &mut buf).expect("workload generates");
    let texts: Vec<String> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = v.get("text").or_else(|| v.get("consent")?.get("prompt"))?;
            text.as_str().map(str::to_owned)
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let rounds: usize = std::env::var("PII_TIME_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let detector = Detector::default();
    let started = std::time::Instant::now();
    let mut spans = 0;
    for _ in 0..rounds {
        for t in &texts {
            spans += std::hint::black_box(detector.find(std::hint::black_box(t))).len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "find: {} texts, {:.2} MB x {rounds} in {secs:.3} s = {:.1} MB/s ({spans} spans)",
        texts.len(),
        bytes as f64 / 1e6,
        (bytes * rounds) as f64 / 1e6 / secs
    );
}
