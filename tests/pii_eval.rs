//! Evaluates the detector on the labelled corpus in `tests/pii_corpus/`:
//! recall per kind and the false-alarm rate on PII-free lines, with minimum
//! thresholds so that a regression fails. Writes the figures to
//! `target/pii-eval-ours.json` for `tools/pii-eval/compare.py`.
//!
//! A labelled value counts as found when it no longer appears in the redacted
//! line (the check `shredlog redact-text` is judged by); "exact" additionally
//! requires every byte of it to lie inside a detected span.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use shredlog::pii::{Detector, PLACEHOLDER};

#[derive(serde::Deserialize)]
struct Line {
    text: String,
    spans: Vec<Label>,
    case: String,
}

#[derive(serde::Deserialize)]
struct Label {
    kind: String,
    value: String,
}

#[derive(Default, serde::Serialize)]
struct Tally {
    total: usize,
    found: usize,
    exact: usize,
}

/// Minimum recall per kind (found / total).
const MIN_RECALL: &[(&str, f64)] = &[
    ("email", 0.99),
    ("obfuscated-email", 0.97),
    ("phone", 0.97),
    ("ipv4", 0.99),
    ("ipv6", 0.99),
];
/// Maximum share of PII-free lines that redaction changes.
const MAX_FALSE_ALARMS: f64 = 0.005;

#[test]
fn corpus_recall_and_false_alarms() {
    let corpus = include_str!("pii_corpus/corpus.jsonl");
    let detector = Detector::default();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let (mut clean, mut alarms) = (0usize, 0usize);
    let mut misses = Vec::new();
    let mut false_alarms = Vec::new();
    for raw in corpus.lines() {
        let line: Line = serde_json::from_str(raw).expect("corpus line is JSON");
        let redacted = detector.redact(&line.text, PLACEHOLDER);
        if line.spans.is_empty() {
            clean += 1;
            if redacted != line.text {
                alarms += 1;
                false_alarms.push(format!("{} | {:?} -> {:?}", line.case, line.text, redacted));
            }
            continue;
        }
        let spans = detector.find(&line.text);
        for label in &line.spans {
            let t = tallies.entry(label.kind.clone()).or_default();
            t.total += 1;
            if !redacted.contains(&label.value) {
                t.found += 1;
            } else {
                misses.push(format!("{} | {:?} -> {:?}", line.case, line.text, redacted));
            }
            if let Some(at) = line.text.find(&label.value) {
                let end = at + label.value.len();
                let covered = (at..end).all(|i| spans.iter().any(|s| s.start <= i && i < s.end));
                if covered {
                    t.exact += 1;
                }
            }
        }
    }
    let fa_rate = alarms as f64 / clean.max(1) as f64;
    println!("kind               total  recall  exact");
    for (kind, t) in &tallies {
        println!(
            "{kind:<18} {:>5}  {:.4}  {:.4}",
            t.total,
            t.found as f64 / t.total as f64,
            t.exact as f64 / t.total as f64
        );
    }
    println!("false alarms: {alarms}/{clean} PII-free lines = {fa_rate:.4}");
    for m in misses.iter().take(40) {
        println!("MISS  {m}");
    }
    for f in false_alarms.iter().take(40) {
        println!("ALARM {f}");
    }
    let json = serde_json::json!({
        "tool": "shredlog",
        "rules_version": shredlog::pii::RULES_VERSION,
        "kinds": tallies,
        "clean_lines": clean,
        "false_alarms": alarms,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let out = std::env::var_os("CARGO_TARGET_DIR").map_or(out, std::path::PathBuf::from);
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("pii-eval-ours.json"), json.to_string());

    for (kind, min) in MIN_RECALL {
        let t = &tallies[*kind];
        let recall = t.found as f64 / t.total as f64;
        assert!(recall >= *min, "{kind} recall {recall:.4} < {min}");
    }
    assert!(
        fa_rate <= MAX_FALSE_ALARMS,
        "false alarms {fa_rate:.4} > {MAX_FALSE_ALARMS}"
    );
}
