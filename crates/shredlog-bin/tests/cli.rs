//! End-to-end tests of the `shredlog` command (DESIGN §5) on
//! `examples/sample.jsonl`: import, show, transcripts, export (JSON and CSV),
//! redact, delete, retention, holds, restriction, consent, audit, verify,
//! redact-text, error reporting, and an erasure cut short by a crash.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use shredlog::pii::Detector;
use shredlog::{REDACTED, Timestamp};
use workload::{self, VisitorTruth, WorkloadConfig};

// ---------------------------------------------------------------------------
// Helpers.

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample.jsonl")
}

fn sample_lines() -> Vec<String> {
    std::fs::read_to_string(sample_path())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The sample, parsed: transcript → its lines in order, and visitor email
/// (lower case) → transcript ids.
struct Sample {
    lines: Vec<String>,
    transcripts: BTreeMap<String, Vec<String>>,
    visitors: BTreeMap<String, Vec<String>>,
}

fn sample() -> Sample {
    let lines = sample_lines();
    let mut transcripts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut visitors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let t = v["transcript"].as_str().unwrap().to_owned();
        if let Some(email) = v["visitor"]["email"].as_str() {
            let ids = visitors.entry(email.to_lowercase()).or_default();
            if !ids.contains(&t) {
                ids.push(t.clone());
            }
        }
        transcripts.entry(t).or_default().push(l.clone());
    }
    Sample {
        lines,
        transcripts,
        visitors,
    }
}

/// The generator's truth for the sample (the workload unit tests check that
/// examples/sample.jsonl is exactly this configuration's output).
fn sample_truth() -> Vec<VisitorTruth> {
    let cfg = WorkloadConfig {
        seed: 1,
        visitors: 12,
        file_probability: 0.2,
        file_size: (256, 2048),
        ..WorkloadConfig::default()
    };
    let mut out = Vec::new();
    let summary = workload::generate(&cfg, &mut out).unwrap();
    assert_eq!(
        out,
        std::fs::read(sample_path()).unwrap(),
        "examples/sample.jsonl is the generator's output"
    );
    summary.visitors
}

fn shredlog(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shredlog"));
    for var in [
        "SHREDLOG_DATA",
        "SHREDLOG_KEK",
        "SHREDLOG_KEY_FILE",
        "SHREDLOG_FAILPOINTS",
        "SHREDLOG_TOKEN",
        "SHREDLOG_CONFIG",
        "SHREDLOG_MAX_MESSAGE_BYTES",
    ] {
        c.env_remove(var);
    }
    c.arg("--data").arg(data).args(args);
    c
}

fn run_with(data: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut c = shredlog(data, args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        let mut s = child.stdin.take().unwrap();
        s.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run(data: &Path, args: &[&str]) -> Output {
    run_with(data, args, None, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and requires success; returns stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let o = run(data, args);
    assert!(
        o.status.success(),
        "shredlog {args:?} failed ({:?}): {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Runs and requires failure with one line on stderr; returns that line.
fn fails(data: &Path, args: &[&str]) -> String {
    let o = run(data, args);
    assert!(!o.status.success(), "shredlog {args:?} should fail");
    one_line_error(&o)
}

fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    assert!(
        err.ends_with('\n') && err.trim_end().lines().count() == 1,
        "expected one line on stderr, got {err:?}"
    );
    assert!(err.starts_with("shredlog: error: "), "{err:?}");
    err.trim_end().to_owned()
}

fn imported(data: &Path) {
    let out = ok(data, &["import", sample_path().to_str().unwrap()]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let n = sample_lines().len();
    assert!(
        out.starts_with(&format!("imported {n} messages ({n} lines)")),
        "{out}"
    );
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn show(data: &Path, t: &str) -> Vec<Value> {
    json_lines(&ok(data, &["show", t]))
}

fn ms(ts: &Value) -> i64 {
    Timestamp::parse(ts.as_str().unwrap())
        .unwrap()
        .unix_millis()
}

/// Mixed letter case: `GoMeZ.mArIaJoSe@ExAmPlE.cOm`.
fn mixed_case(s: &str) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("data");
    (t, d)
}

/// Every file of the store with its bytes, by name.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let hay = hay.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase().into_bytes();
    hay.windows(needle.len()).any(|w| w == needle.as_slice())
}

fn segment(dir: &Path) -> PathBuf {
    files(dir)
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap()
}

// ---------------------------------------------------------------------------
// Import, read, list.

#[test]
fn import_then_show_prints_the_input_lines_of_each_transcript() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    assert!(s.transcripts.len() >= 20);
    for (t, lines) in &s.transcripts {
        let want: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(show(&d, t), want, "{t}");
    }
    let out = ok(&d, &["verify"]);
    assert!(out.starts_with("ok: "), "{out}");
    let e = fails(&d, &["show", "t-0000"]);
    assert!(e.contains("transcript not found"), "{e}");
}

#[test]
fn transcripts_lists_a_visitors_transcripts_newest_first_in_any_letter_case() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    for (email, ids) in &s.visitors {
        // Expected: newest (by latest message) first, with first/last/count.
        let mut want: Vec<(String, String, String, usize)> = ids
            .iter()
            .map(|t| {
                let v = json_lines(&s.transcripts[t].join("\n"));
                let first = v.iter().min_by_key(|m| ms(&m["ts"])).unwrap();
                let last = v.iter().max_by_key(|m| ms(&m["ts"])).unwrap();
                (
                    t.clone(),
                    Timestamp::from_unix_millis(ms(&first["ts"])).to_string(),
                    Timestamp::from_unix_millis(ms(&last["ts"])).to_string(),
                    v.len(),
                )
            })
            .collect();
        want.sort_by_key(|w| std::cmp::Reverse(Timestamp::parse(&w.2).unwrap().unix_millis()));
        let out = ok(&d, &["transcripts", "--email", &mixed_case(email)]);
        let got: Vec<(String, String, String, usize)> = out
            .lines()
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                assert_eq!(c.len(), 4, "{l}");
                (c[0].into(), c[1].into(), c[2].into(), c[3].parse().unwrap())
            })
            .collect();
        assert_eq!(got, want, "{email}");
        let json = json_lines(&ok(
            &d,
            &["transcripts", "--email", &email.to_uppercase(), "--json"],
        ));
        let ids_json: Vec<&str> = json
            .iter()
            .map(|j| j["transcript"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids_json,
            want.iter().map(|w| w.0.as_str()).collect::<Vec<_>>()
        );
        assert!(json.iter().all(|j| j["redacted"] == false));
    }
    // --from / --to select by time.
    let (email, ids) = s.visitors.iter().find(|(_, ids)| ids.len() >= 3).unwrap();
    let all = ok(&d, &["transcripts", "--email", email]);
    let newest = all.lines().next().unwrap().split('\t').collect::<Vec<_>>();
    let from_newest = ok(&d, &["transcripts", "--email", email, "--from", newest[1]]);
    assert_eq!(from_newest.lines().count(), 1);
    assert!(from_newest.starts_with(newest[0]));
    let before_newest = ok(
        &d,
        &[
            "transcripts",
            "--email",
            email,
            "--to",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert_eq!(before_newest, "");
    assert!(ids.len() >= 3);
    // An unknown visitor lists nothing.
    assert_eq!(
        ok(&d, &["transcripts", "--email", "nobody@example.com"]),
        ""
    );
    let e = fails(
        &d,
        &["transcripts", "--email", email, "--from", "yesterday"],
    );
    assert!(e.contains("RFC 3339"), "{e}");
}

// ---------------------------------------------------------------------------
// Export.

#[test]
fn json_export_reimports_into_a_fresh_store_and_csv_parses() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let (_t2, fresh) = data_dir();
    let mut exported_files = 0;
    for (email, ids) in &s.visitors {
        let out = ok(
            &d,
            &[
                "export",
                "--email",
                &email.to_uppercase(),
                "--format",
                "json",
            ],
        );
        let mut got = json_lines(&out);
        let mut want: Vec<Value> = ids
            .iter()
            .flat_map(|t| json_lines(&s.transcripts[t].join("\n")))
            .collect();
        let key = |v: &Value| v.to_string();
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got, want, "export of {email}");
        exported_files += out.matches(r#""kind":"file""#).count();
        // Re-import from stdin into a fresh store.
        let o = run_with(&fresh, &["import", "-"], Some(out.as_bytes()), &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        for t in ids {
            assert_eq!(
                show(&fresh, t),
                json_lines(&s.transcripts[t].join("\n")),
                "{t}"
            );
        }
        assert_eq!(
            ok(&fresh, &["transcripts", "--email", email]),
            ok(&d, &["transcripts", "--email", email])
        );

        // CSV: header, one row per message, no live formula, parseable.
        let csv_out = ok(&d, &["export", "--email", email, "--format", "csv"]);
        let mut r = csv::Reader::from_reader(csv_out.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, shredlog::export::CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        let n: usize = ids.iter().map(|t| s.transcripts[t].len()).sum();
        assert_eq!(rows.len(), n, "{email}");
        for row in &rows {
            assert_eq!(row.len(), header.len());
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@']),
                    "live formula {cell:?}"
                );
            }
            assert!(ids.contains(&row[5].to_string()));
        }
    }
    assert!(exported_files > 0);
    assert!(ok(&fresh, &["verify"]).starts_with("ok: "));
    let e = fails(&d, &["export", "--email", "nobody@example.com"]);
    assert!(e.contains("visitor not found"), "{e}");
}

// ---------------------------------------------------------------------------
// Privacy operations.

#[test]
fn redact_prints_a_json_erasure_report_and_leaves_redacted_transcripts() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let truth = sample_truth();
    let det = Detector::default();
    // The visitor with the most transcripts.
    let v = truth.iter().max_by_key(|v| v.transcripts.len()).unwrap();
    let out = ok(
        &d,
        &[
            "redact",
            "--email",
            &mixed_case(&v.email),
            "--reference",
            "TICKET-42",
        ],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["op"], "erasure");
    assert_eq!(report["reference"], "TICKET-42");
    assert_eq!(report["transcripts"], v.transcripts.len());
    assert_eq!(report["keys_destroyed"], v.transcripts.len() + 1);
    assert_eq!(report["seq"], 1);
    let subject = report["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("visitor:") && subject.len() == 8 + 32,
        "{subject}"
    );
    assert!(!contains_ci(out.as_bytes(), &v.email));

    let mut personal: Vec<String> = vec![v.email.clone(), v.name.clone()];
    personal.extend(v.phone.clone());
    personal.extend(v.internal_id.clone());
    personal.extend(v.ip.clone());
    let typed: Vec<&String> = v.typed_pii.iter().collect();
    for t in &v.transcripts {
        let got = show(&d, t);
        let orig = json_lines(&s.transcripts[t].join("\n"));
        assert_eq!(got.len(), orig.len());
        for (g, o) in got.iter().zip(&orig) {
            assert_eq!(g["ts"], o["ts"]);
            assert_eq!(g["from"], o["from"]);
            assert_eq!(g["kind"], o["kind"]);
            if let Some(vis) = g["visitor"].as_object() {
                assert!(vis.values().all(|x| x == REDACTED), "{g}");
            }
            if let Some(text) = o["text"].as_str() {
                assert_eq!(g["text"], det.redact(text, REDACTED));
            }
            if o["kind"] == "file" {
                assert_eq!(g["file"]["name"], REDACTED);
                assert_eq!(g["file"]["data"], "");
                assert_eq!(g["file"]["mime"], o["file"]["mime"]);
            }
            if o["kind"] == "form" {
                let f = g["form"].as_object().unwrap();
                assert_eq!(f.len(), o["form"].as_object().unwrap().len());
                assert!(f.values().all(|x| x == REDACTED));
            }
        }
        let text = got.iter().map(|g| g.to_string()).collect::<String>();
        for p in personal.iter().chain(typed.iter().copied()) {
            assert!(
                !contains_ci(text.as_bytes(), p),
                "{p:?} reads back from {t}"
            );
        }
    }
    // Gone from lookups and from every file.
    assert_eq!(ok(&d, &["transcripts", "--email", &v.email]), "");
    let e = fails(&d, &["export", "--email", &v.email]);
    assert!(e.contains("visitor not found"));
    let e = fails(&d, &["redact", "--email", &v.email]);
    assert!(e.contains("visitor not found"));
    for (p, bytes) in files(&d) {
        for needle in personal.iter().chain(typed.iter().copied()) {
            assert!(
                !contains_ci(&bytes, needle),
                "{needle:?} in {}",
                p.display()
            );
        }
    }
    // Other visitors untouched.
    for o in truth.iter().filter(|o| o.email != v.email) {
        for t in &o.transcripts {
            assert_eq!(show(&d, t), json_lines(&s.transcripts[t].join("\n")), "{t}");
        }
    }
    let audit = json_lines(&ok(&d, &["audit"]));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0], report);
    assert!(ok(&d, &["verify"]).starts_with("ok: "));
}

#[test]
fn delete_a_transcript_or_a_visitor() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let (email, ids) = s.visitors.iter().find(|(_, ids)| ids.len() >= 3).unwrap();
    let out = ok(
        &d,
        &["delete", "--transcript", &ids[0], "--reference", "D-1"],
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            r["op"].as_str(),
            r["transcripts"].as_u64(),
            r["keys_destroyed"].as_u64()
        ),
        (Some("delete-transcript"), Some(1), Some(2))
    );
    let e = fails(&d, &["show", &ids[0]]);
    assert!(e.contains("transcript not found"), "{e}");
    let listed = ok(&d, &["transcripts", "--email", email]);
    assert_eq!(listed.lines().count(), ids.len() - 1);
    assert!(!listed.contains(&format!("{}\t", ids[0])));
    assert_eq!(
        show(&d, &ids[1]),
        json_lines(&s.transcripts[&ids[1]].join("\n"))
    );

    let out = ok(
        &d,
        &[
            "delete",
            "--email",
            &email.to_uppercase(),
            "--reference",
            "D-2",
        ],
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["op"], "delete-visitor");
    assert_eq!(r["transcripts"], ids.len() - 1);
    for t in ids {
        let e = fails(&d, &["show", t]);
        assert!(e.contains("transcript not found"), "{e}");
    }
    assert_eq!(ok(&d, &["transcripts", "--email", email]), "");
    for (p, bytes) in files(&d) {
        assert!(!contains_ci(&bytes, email), "{email} in {}", p.display());
    }
    // Others untouched.
    for (other, oids) in s.visitors.iter().filter(|(e, _)| *e != email) {
        let listed = ok(&d, &["transcripts", "--email", other]);
        assert_eq!(listed.lines().count(), oids.len());
    }
    assert!(ok(&d, &["verify"]).starts_with("ok: "));
    // Neither or both targets: a usage error.
    assert!(!run(&d, &["delete"]).status.success());
    assert!(
        !run(&d, &["delete", "--email", email, "--transcript", &ids[1]])
            .status
            .success()
    );
}

#[test]
fn retention_older_than_1d_redacts_or_deletes_all_but_held_transcripts() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let total = s.transcripts.len();
    let held = "t-1001";
    let r: Value = serde_json::from_str(&ok(
        &d,
        &["hold", "--transcript", held, "--reference", "CASE-1"],
    ))
    .unwrap();
    assert_eq!(r["op"], "hold");
    // Redact mode: every sample transcript is from 2024, older than a day.
    let r: Value = serde_json::from_str(&ok(
        &d,
        &["retention", "--older-than", "1d", "--reference", "R-1"],
    ))
    .unwrap();
    assert_eq!(r["op"], "retention");
    assert_eq!(r["transcripts"], total - 1);
    assert_eq!(r["keys_destroyed"], total - 1);
    for (t, lines) in &s.transcripts {
        let got = show(&d, t);
        if t == held {
            assert_eq!(got, json_lines(&lines.join("\n")));
        } else {
            assert!(
                got[0]["visitor"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|x| x == REDACTED),
                "{t}"
            );
            assert_eq!(got.len(), lines.len());
        }
    }
    let again: Value = serde_json::from_str(&ok(&d, &["retention", "--older-than", "1d"])).unwrap();
    assert_eq!(again["transcripts"], 0);
    // Nothing is older than 100 years: nothing to do.
    let none: Value =
        serde_json::from_str(&ok(&d, &["retention", "--older-than", "5200w", "--delete"])).unwrap();
    assert_eq!(none["transcripts"], 0);
    // Delete mode.
    let r: Value =
        serde_json::from_str(&ok(&d, &["retention", "--older-than", "1d", "--delete"])).unwrap();
    assert_eq!(r["transcripts"], total - 1);
    for t in s.transcripts.keys().filter(|t| *t != held) {
        assert!(fails(&d, &["show", t]).contains("transcript not found"));
    }
    assert_eq!(show(&d, held).len(), s.transcripts[held].len());
    // A held transcript cannot be deleted until the hold is released.
    let e = fails(&d, &["delete", "--transcript", held]);
    assert!(e.contains("legal hold"), "{e}");
    ok(&d, &["hold", "--transcript", held, "--release"]);
    ok(&d, &["delete", "--transcript", held]);
    assert!(ok(&d, &["verify"]).starts_with("ok: "));
    // A usage error (reported by the argument parser, which adds a hint line).
    let o = run(&d, &["retention", "--older-than", "soon"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not a duration like 90d"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn restriction_consent_and_audit_commands() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let truth = sample_truth();
    // A visitor with consent events.
    let (email, ids) = s
        .visitors
        .iter()
        .find(|(_, ids)| {
            ids.iter().any(|t| {
                s.transcripts[t]
                    .iter()
                    .any(|l| l.contains(r#""kind":"consent""#))
            })
        })
        .unwrap();
    let consent: Value =
        serde_json::from_str(&ok(&d, &["consent", "--email", &email.to_uppercase()])).unwrap();
    let events = s
        .lines
        .iter()
        .filter(|l| l.contains(r#""kind":"consent""#))
        .filter(|l| {
            ids.iter()
                .any(|t| l.contains(&format!(r#""transcript":"{t}""#)))
        })
        .count();
    assert_eq!(consent["history"].as_array().unwrap().len(), events);
    let last = consent["history"].as_array().unwrap().last().unwrap();
    assert_eq!(consent["current"], last["granted"]);

    ok(&d, &["restrict", "--email", email, "--reference", "ART18"]);
    let e = fails(&d, &["show", &ids[0]]);
    assert!(e.contains("restricted"), "{e}");
    let e = fails(&d, &["transcripts", "--email", email]);
    assert!(e.contains("restricted"), "{e}");
    // Appends are refused; export still works.
    let line = s.transcripts[&ids[0]][0].clone();
    let o = run_with(&d, &["import", "-"], Some(line.as_bytes()), &[]);
    assert!(!o.status.success());
    assert!(one_line_error(&o).contains("restricted"));
    assert!(!ok(&d, &["export", "--email", email]).is_empty());
    ok(&d, &["restrict", "--email", email, "--lift"]);
    assert_eq!(
        show(&d, &ids[0]),
        json_lines(&s.transcripts[&ids[0]].join("\n"))
    );

    let audit = json_lines(&ok(&d, &["audit"]));
    let ops: Vec<&str> = audit.iter().map(|a| a["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["restriction", "lift-restriction"]);
    let raw = std::fs::read(d.join("audit.log")).unwrap();
    for v in &truth {
        assert!(!contains_ci(&raw, &v.email));
        assert!(!contains_ci(&raw, &v.name));
    }
}

// ---------------------------------------------------------------------------
// verify.

fn flip_middle_byte(seg: &Path) {
    let mut b = std::fs::read(seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(seg, b).unwrap();
}

/// Without an index checkpoint, opening the store scans the segment and
/// refuses it: one line on stderr naming the file.
#[test]
fn verify_fails_on_a_damaged_segment_that_open_scans() {
    let (_t, d) = data_dir();
    imported(&d);
    assert!(run(&d, &["verify"]).status.success());
    std::fs::remove_file(d.join("index.ckpt")).unwrap();
    let seg = segment(&d);
    flip_middle_byte(&seg);
    let e = fails(&d, &["verify"]);
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(e.contains(name), "{e}");
}

/// With the checkpoint that import leaves behind (the usual case), `verify`
/// must also exit non-zero and say on stderr, in one line, which file is damaged.
#[test]
fn verify_reports_a_damaged_segment_on_stderr() {
    let (_t, d) = data_dir();
    imported(&d);
    let seg = segment(&d);
    flip_middle_byte(&seg);
    let o = run(&d, &["verify"]);
    assert!(!o.status.success(), "verify passed a damaged store");
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        stdout(&o).contains(name) || stderr(&o).contains(name),
        "the damaged file is named somewhere"
    );
    let err = stderr(&o);
    assert!(
        err.trim_end().lines().count() == 1 && err.contains(name),
        "expected one line on stderr naming {name}; stderr was {err:?}, stdout was {:?}",
        stdout(&o)
    );
}

// ---------------------------------------------------------------------------
// Import errors.

#[test]
fn a_malformed_line_stops_the_import_with_its_number_and_keeps_earlier_lines() {
    let (_t, d) = data_dir();
    let s = sample();
    let t1 = &s.transcripts["t-1001"];
    let input = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        t1[0],
        t1[1],
        t1[2],
        r#"{"transcript":"t-1001","ts":"2024-01-21T18:59:52.076Z","from":"visitor","kind":"text","text":"my mail is s.guerin@courriel.example""#,
        t1[3]
    );
    let o = run_with(&d, &["import", "-"], Some(input.as_bytes()), &[]);
    assert!(!o.status.success());
    let e = one_line_error(&o);
    assert!(e.contains("line 4"), "{e}");
    assert!(!e.contains("s.guerin"), "{e}");
    let got = show(&d, "t-1001");
    assert_eq!(
        got,
        json_lines(&t1[..3].join("\n")),
        "lines 1-3 stored, line 5 not"
    );

    // A line that parses but breaks a store rule (a new transcript without
    // its visitor) in the middle of a batch: the lines before it are kept.
    let (_t2, d2) = data_dir();
    let input = format!(
        "{}\n{}\n{}\n",
        t1[0],
        r#"{"transcript":"t-new","ts":"2024-01-21T18:59:52.076Z","from":"operator","kind":"text","text":"hello"}"#,
        t1[1]
    );
    let o = run_with(&d2, &["import", "-"], Some(input.as_bytes()), &[]);
    assert!(!o.status.success());
    let e = one_line_error(&o);
    assert!(e.contains("line 2") && e.contains("visitor"), "{e}");
    assert_eq!(show(&d2, "t-1001"), json_lines(&t1[0]));
    assert!(ok(&d2, &["verify"]).starts_with("ok: "));
}

#[test]
fn an_unknown_field_is_an_error_naming_the_field_and_line() {
    let (_t, d) = data_dir();
    let cases = [
        (
            r#"{"transcript":"t-1","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"text","text":"hi","colour":"blue"}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"transcript":"t-1","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{"email":"ann@example.com","pet":"Rex"},"kind":"text","text":"hi"}"#,
            "unknown field `visitor.pet`",
        ),
        (
            r#"{"transcript":"t-1","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"file","file":{"name":"a.txt","mime":"text/plain","data":"aGk=","size":2}}"#,
            "unknown field `file.size`",
        ),
        (
            r#"{"transcript":"t-1","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"consent","consent":{"granted":true,"prompt":"ok?","when":"now"}}"#,
            "unknown field `consent.when`",
        ),
    ];
    let good = r#"{"transcript":"t-0","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{"email":"bob@example.com"},"kind":"text","text":"hi"}"#;
    for (line, want) in cases {
        let input = format!("{good}\n{line}\n");
        let o = run_with(&d, &["import", "-"], Some(input.as_bytes()), &[]);
        assert!(!o.status.success());
        let e = one_line_error(&o);
        assert!(e.contains("line 2") && e.contains(want), "{e}");
    }
}

#[test]
fn errors_never_echo_personal_data() {
    let (_t, d) = data_dir();
    imported(&d);
    let secret = "Secret.Person@Hidden.example";
    let name = "Zebediah Quux";
    let phone = "+44 20 7946 0999";
    let lines = [
        format!(
            r#"{{"transcript":"t-x","ts":"{secret}","from":"visitor","visitor":{{"email":"{secret}"}},"kind":"text","text":"hi"}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"{name}","visitor":{{"email":"{secret}"}},"kind":"text","text":"hi"}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}"}},"kind":"text","text":"hi","{secret}":1}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}","name":["{name}"]}},"kind":"text","text":"hi"}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}","phone":"{phone}"}},"kind":"{name}","text":"hi"}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}"}},"kind":"file","file":{{"name":"{name}.pdf","mime":"x","data":"{phone}"}}}}"#
        ),
        format!(
            r#"{{"transcript":"t-x","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}"}},"kind":"text","text":"{name} {phone}"#
        ),
        // An existing transcript named with a different visitor.
        format!(
            r#"{{"transcript":"t-1001","ts":"2024-01-21T18:59:52.076Z","from":"visitor","visitor":{{"email":"{secret}","name":"{name}"}},"kind":"text","text":"hi"}}"#
        ),
    ];
    let check = |o: &Output, what: &str| {
        assert!(!o.status.success(), "{what} should fail");
        let e = one_line_error(o);
        for p in [
            secret,
            name,
            phone,
            "s.guerin@courriel.example",
            "Sébastien",
        ] {
            assert!(
                !contains_ci(e.as_bytes(), p),
                "{what}: error echoes {p:?}: {e}"
            );
        }
    };
    for (i, line) in lines.iter().enumerate() {
        let o = run_with(
            &d,
            &["import", "-"],
            Some(format!("{line}\n").as_bytes()),
            &[],
        );
        check(&o, &format!("import case {i}"));
    }
    for args in [
        vec!["export", "--email", secret],
        vec!["redact", "--email", secret],
        vec!["delete", "--email", secret],
        vec!["consent", "--email", secret],
        vec!["restrict", "--email", secret],
        vec!["hold", "--email", secret],
    ] {
        let o = run(&d, &args);
        check(&o, &format!("{args:?}"));
    }
    ok(&d, &["restrict", "--email", "s.guerin@courriel.example"]);
    check(&run(&d, &["show", "t-1001"]), "show restricted");
    check(
        &run(&d, &["transcripts", "--email", "S.Guerin@courriel.example"]),
        "list restricted",
    );
    // Nothing of the failed lines was stored.
    assert!(fails(&d, &["show", "t-x"]).contains("not found"));
}

// ---------------------------------------------------------------------------
// redact-text.

#[test]
fn redact_text_filter_replaces_personal_data_line_by_line() {
    let (_t, d) = data_dir();
    let input = "mail ann@work.example or ANN.LEE@Example.COM now\r\nno personal data here, order #A-2024-1\ncall +44 20 7946 0958 from 203.0.113.9 or 2001:db8::1\n\nlast line without newline";
    let o = run_with(&d, &["redact-text"], Some(input.as_bytes()), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "mail <redacted> or <redacted> now\r\nno personal data here, order #A-2024-1\ncall <redacted> from <redacted> or <redacted>\n\nlast line without newline"
    );
    assert!(!d.exists(), "redact-text does not create a store");
    // Same rules as the store: every text of the sample.
    let det = Detector::default();
    let texts: Vec<String> = sample_lines()
        .iter()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .map(|t| t.replace(['\n', '\r'], " "))
        })
        .collect();
    let o = run_with(
        &d,
        &["redact-text"],
        Some((texts.join("\n") + "\n").as_bytes()),
        &[],
    );
    assert!(o.status.success());
    let out = stdout(&o);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), texts.len());
    for (g, t) in got.iter().zip(&texts) {
        assert_eq!(*g, det.redact(t, REDACTED));
    }
    for v in sample_truth() {
        for p in &v.typed_pii {
            assert!(!out.contains(p.as_str()), "{p:?} passes the filter");
        }
    }
}

/// One configuration for every subcommand: `--detect`, `--pii-pattern` and
/// the config file's `[pii]` reach the detector; `[store]` and
/// `--max-message-bytes` reach the store.
#[test]
fn the_config_file_and_flags_configure_detector_and_store() {
    let (t, d) = data_dir();
    let line =
        "mail ann@work.example, call +44 20 7946 0958, card 4111 1111 1111 1111, ref CN-12345678\n";
    let filter = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("redact-text");
        let o = run_with(&d, &all, Some(line.as_bytes()), &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    // Defaults: emails and phones, not cards or custom numbers.
    assert_eq!(
        filter(&[]),
        "mail <redacted>, call <redacted>, card 4111 1111 1111 1111, ref CN-12345678\n"
    );
    assert_eq!(
        filter(&["--detect", "email", "--pii-pattern", "customer=CN-\\d{8}"]),
        "mail <redacted>, call +44 20 7946 0958, card 4111 1111 1111 1111, ref <redacted>\n"
    );
    let config = t.path().join("shredlog.toml");
    std::fs::write(
        &config,
        "[store]\nsegment-size = 65536\n[pii]\npayment-cards = true\n[[pii.custom]]\nname = \"customer\"\nregex = 'CN-\\d{8}'\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    assert_eq!(
        filter(&["--config", cfg]),
        "mail <redacted>, call <redacted>, card <redacted>, ref <redacted>\n"
    );
    // The same file through the environment, and a flag beating it.
    let o = run_with(
        &d,
        &["--detect", "phone", "redact-text"],
        Some(line.as_bytes()),
        &[("SHREDLOG_CONFIG", cfg)],
    );
    assert_eq!(
        stdout(&o),
        "mail ann@work.example, call <redacted>, card 4111 1111 1111 1111, ref <redacted>\n"
    );
    // [store] reaches the store: small segments roll.
    let o = run(
        &d,
        &[
            "--config",
            cfg,
            "import",
            "--batch",
            "20",
            sample_path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let segments = std::fs::read_dir(&d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();
    assert!(
        segments > 1,
        "segment-size = 65536 rolls segments ({segments})"
    );
    // The message limit: one clear error, nothing stored.
    let big = format!(
        "{{\"transcript\":\"t-big\",\"ts\":\"2024-05-02T10:15:03Z\",\"from\":\"visitor\",\"visitor\":{{\"email\":\"big@x.example\"}},\"kind\":\"text\",\"text\":\"{}\"}}\n",
        "a".repeat(4000)
    );
    let o = run_with(
        &d,
        &["--max-message-bytes", "1KiB", "import", "-"],
        Some(big.as_bytes()),
        &[],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1024"), "{}", stderr(&o));
    assert!(fails(&d, &["show", "t-big"]).contains("not found"));
    // Mistakes name the place.
    std::fs::write(&config, "[pii]\nlasers = true\n").unwrap();
    let err = fails(&d, &["--config", cfg, "stats"]);
    assert!(err.contains("lasers") && err.contains("line 2"), "{err}");
    let err = fails(&d, &["--detect", "names", "stats"]);
    assert!(err.contains("unknown kind `names`"), "{err}");
}

/// The new user's mistake of issue 13: an email in the reference of an
/// erasure is refused (it would outlive the erasure in audit.log), as are a
/// 5,000-character reference with terminal escapes and a transcript id that
/// is an email; nothing is written, and the same erasure with a ticket
/// number leaves no trace of the address in any file.
#[test]
fn personal_data_is_refused_where_erasure_cannot_reach() {
    let (_t, d) = data_dir();
    imported(&d);
    let email = "s.guerin@courriel.example";
    let audit_before = ok(&d, &["audit"]);
    let err = fails(
        &d,
        &[
            "redact",
            "--email",
            email,
            "--reference",
            &format!("request from {email}"),
        ],
    );
    assert!(
        err.contains("the reference contains an email address; use a ticket number"),
        "{err}"
    );
    assert!(!err.contains(email), "{err}");
    let long = format!("\u{1b}[2J{}", "x".repeat(5000));
    let err = fails(&d, &["redact", "--email", email, "--reference", &long]);
    assert!(err.contains("longer than 256 characters"), "{err}");
    let err = fails(
        &d,
        &[
            "hold",
            "--transcript",
            "t-1001",
            "--reference",
            "for +44 20 7946 0958",
        ],
    );
    assert!(
        err.contains("the reference contains a phone number"),
        "{err}"
    );
    assert_eq!(ok(&d, &["audit"]), audit_before, "nothing was logged");
    let line = r#"{"transcript":"chat-ann@example.com","ts":"2024-05-02T10:15:03Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"text","text":"hi"}"#;
    let o = run_with(
        &d,
        &["import", "-"],
        Some(format!("{line}\n").as_bytes()),
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 1: the transcript id contains an email address"),
        "{}",
        stderr(&o)
    );
    ok(
        &d,
        &[
            "redact",
            "--email",
            "S.Guerin@COURRIEL.example.",
            "--reference",
            "DSAR-2024-17",
        ],
    );
    ok(&d, &["compact"]);
    for entry in std::fs::read_dir(&d).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
        assert!(
            !bytes.windows(email.len()).any(|w| w == email.as_bytes()),
            "the erased address is in {}",
            path.display()
        );
    }
}

// ---------------------------------------------------------------------------
// Crash during an erasure.

/// The process dies after the audit entry (the intent) and one keyring wipe:
/// the next read already shows the erasure (applied in memory, writing
/// nothing), and the next command that writes finishes it on disk.
#[test]
fn an_erasure_cut_short_by_a_crash_is_finished_at_the_next_open() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let (email, ids) = s.visitors.iter().find(|(_, ids)| ids.len() >= 3).unwrap();
    let o = run_with(
        &d,
        &["redact", "--email", email],
        None,
        &[("SHREDLOG_FAILPOINTS", "keyring.write=abort@2")],
    );
    assert!(!o.status.success(), "the failpoint aborts the process");
    let audit = std::fs::read_to_string(d.join("audit.log")).unwrap();
    assert_eq!(audit.lines().count(), 1, "the intent was logged first");
    assert!(audit.contains(r#""op":"erasure""#));
    let before = files(&d);
    // Reads show it finished.
    for t in ids {
        let got = show(&d, t);
        assert!(
            got[0]["visitor"]
                .as_object()
                .unwrap()
                .values()
                .all(|x| x == REDACTED),
            "{t}"
        );
    }
    assert_eq!(ok(&d, &["transcripts", "--email", email]), "");
    let verified = ok(&d, &["verify"]);
    assert!(verified.contains("\nok: "), "{verified}");
    assert!(
        verified.contains("cut short by a crash are applied"),
        "{verified}"
    );
    assert_eq!(files(&d), before, "read-only commands wrote to the store");
    // The next command that writes finishes it on disk.
    ok(&d, &["compact"]);
    for (p, bytes) in files(&d) {
        assert!(!contains_ci(&bytes, email), "{email} in {}", p.display());
    }
    assert!(ok(&d, &["verify"]).starts_with("ok: "));
}

// ---------------------------------------------------------------------------
// Integrity of the command itself.

/// Importing the same file twice stores each message once when its lines
/// carry message ids, and says so.
#[test]
fn importing_a_file_twice_stores_messages_with_ids_once() {
    let (t, d) = data_dir();
    let file = t.path().join("with-ids.jsonl");
    let lines: Vec<String> = sample_lines()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["id"] = Value::String(format!("line-{i}"));
            v.to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let n = lines.len();
    let first = ok(&d, &["import", file.to_str().unwrap()]);
    assert!(
        first.starts_with(&format!("imported {n} messages")),
        "{first}"
    );
    let second = ok(&d, &["import", file.to_str().unwrap()]);
    assert!(second.starts_with("imported 0 messages"), "{second}");
    assert!(
        second.contains(&format!("{n} were already stored")),
        "{second}"
    );
    let stats: Value = serde_json::from_str(&ok(&d, &["stats", "--json"])).unwrap();
    assert_eq!(stats["messages"], n);
    // Export writes the ids back.
    let s = sample();
    let (email, _) = s.visitors.iter().next().unwrap();
    let exported = ok(&d, &["export", "--email", email]);
    assert!(
        exported.lines().all(|l| l.contains(r#""id":"line-"#)),
        "{exported}"
    );
}

/// A reader that goes away (`| head`) ends the output quietly: no panic, and
/// the exit status is the command's (an erasure that was done is reported
/// as done).
#[test]
fn a_closed_stdout_is_not_a_failure() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let (email, _) = s.visitors.iter().next().unwrap();
    for args in [
        vec!["stats"],
        vec!["audit"],
        vec!["show", "t-1002"],
        vec!["export", "--email", email.as_str()],
        vec!["retention", "--older-than", "1d", "--reference", "RET-1"],
        vec!["verify"],
    ] {
        let mut c = shredlog(&d, &args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        // Close the reading end before the command writes.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(o.status.success(), "{args:?}: {:?} {err}", o.status);
    }
    // The retention run was committed.
    let audit = ok(&d, &["audit"]);
    assert!(audit.contains(r#""op":"retention""#), "{audit}");
}

/// A mistyped --data is an error for commands that do not create a store,
/// and creates nothing.
#[test]
fn a_mistyped_data_directory_is_an_error_not_an_empty_store() {
    let (t, _) = data_dir();
    let typo = t.path().join("shredlog-dta");
    for args in [
        vec!["verify"],
        vec!["stats"],
        vec!["show", "t-1"],
        vec!["redact", "--email", "a@example.com"],
        vec!["compact"],
    ] {
        let err = fails(&typo, &args);
        assert!(err.contains("no shredlog store"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
}

/// Read-only commands change no byte of any file.
#[test]
fn read_only_commands_write_nothing() {
    let (_t, d) = data_dir();
    imported(&d);
    let s = sample();
    let (email, ids) = s.visitors.iter().next().unwrap();
    let before = files(&d);
    for args in [
        vec!["show", ids[0].as_str()],
        vec!["transcripts", "--email", email.as_str()],
        vec!["export", "--email", email.as_str()],
        vec!["export", "--email", email.as_str(), "--format", "csv"],
        vec!["consent", "--email", email.as_str()],
        vec!["audit"],
        vec!["verify"],
        vec!["stats"],
    ] {
        ok(&d, &args);
        assert_eq!(files(&d), before, "{args:?} wrote to the store");
    }
}

/// `reapply` on a sound store logs nothing and changes no byte; a
/// reference holding personal data is refused in one line that does not
/// repeat it. (Keys brought back are destroyed again: the library's test
/// `privacy.rs::a_key_an_erasure_destroyed_that_came_back_is_reported_and_destroyed_again`.)
#[test]
fn reapply_on_a_sound_store_logs_nothing() {
    let (_t, d) = data_dir();
    imported(&d);
    let (email, _) = sample().visitors.into_iter().next().unwrap();
    ok(&d, &["redact", "--email", &email, "--reference", "T-1"]);
    let named = |name: &str| std::fs::read(d.join(name)).unwrap();
    let before = (named("keyring"), named("audit.log"));
    let o = run(&d, &["reapply", "--reference", "T-2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("0 audit entries had keys left"),
        "{}",
        stderr(&o)
    );
    assert!(before.0 == named("keyring"), "nothing destroyed");
    assert!(before.1 == named("audit.log"), "nothing logged");
    let e = fails(&d, &["reapply", "--reference", "ann@example.com"]);
    assert!(!e.contains("ann@example.com"), "{e}");
    assert!(run(&d, &["verify"]).status.success());
}
