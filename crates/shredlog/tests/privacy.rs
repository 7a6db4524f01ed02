//! Integration tests of the privacy operations (DESIGN §1, issue 3): erasure
//! (crypto-shredding) on a generated store of thousands of visitors, export and
//! re-import, deletion, retention with legal holds, restriction, consent, the
//! audit log and the CSV export.
//!
//! Ground truth comes from `workload`, which reports every visitor's
//! identity and every piece of personal data they typed. Typed personal data is
//! asserted on only where the detector in force recognises it (the detector is
//! being replaced); anything else that survives an erasure is printed as a
//! FINDING on stderr.
#![allow(clippy::type_complexity, clippy::vec_init_then_push)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::{Rng, contains, dir_bytes, keyring_slots};
use shredlog::pii::Detector;
use shredlog::{
    AuditEntry, Body, Error, FileUpload, HoldTarget, Message, Options, REDACTED, RetentionPolicy,
    Sender, Store, Timestamp, Visitor, interchange,
};
use workload::{self, VisitorTruth, WorkloadConfig, WorkloadSummary};

// ---------------------------------------------------------------------------
// Helpers.

/// A generated store: the store, its directory, the generator's truth and the
/// input lines of every transcript (in order).
struct Generated {
    dir: tempfile::TempDir,
    store: Store,
    truth: WorkloadSummary,
    lines: BTreeMap<String, Vec<String>>,
}

fn generate(config: &WorkloadConfig) -> Generated {
    let mut out = Vec::new();
    let truth = workload::generate(config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut batch = Vec::new();
    for line in text.lines() {
        let msg = interchange::parse_line(line).unwrap();
        lines
            .entry(msg.transcript.clone())
            .or_default()
            .push(line.to_owned());
        batch.push(msg);
        if batch.len() == 2000 {
            store.append_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.append_batch(&batch).unwrap();
    Generated {
        dir,
        store,
        truth,
        lines,
    }
}

fn config(seed: u64, visitors: usize) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        visitors,
        transcripts_per_visitor: (1, 4),
        messages_per_transcript: (3, 10),
        file_probability: 0.1,
        file_size: (256, 4096),
        ..WorkloadConfig::default()
    }
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

/// A transcript as JSON values, for comparison with input lines.
fn as_json(msgs: &[Message]) -> Vec<serde_json::Value> {
    msgs.iter()
        .map(|m| json(&interchange::to_line(m)))
        .collect()
}

fn lines_json(lines: &[String]) -> Vec<serde_json::Value> {
    lines.iter().map(|l| json(l)).collect()
}

/// A needle for the byte scan: (what, bytes, case-insensitive).
type Needle = (String, Vec<u8>, bool);

/// The personal strings of a visitor that must not survive an erasure.
fn personal_needles(v: &VisitorTruth) -> Vec<Needle> {
    let mut n: Vec<Needle> = vec![
        ("email".into(), v.email.clone().into_bytes(), true),
        ("name".into(), v.name.clone().into_bytes(), false),
    ];
    for (what, val) in [
        ("phone", &v.phone),
        ("internal id", &v.internal_id),
        ("ip", &v.ip),
    ] {
        if let Some(val) = val {
            n.push((what.into(), val.clone().into_bytes(), what == "ip"));
        }
    }
    n
}

fn lower(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// Every file under `dir` (recursively), as (relative path, bytes).
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Searches every file of `dir` for every needle (ASCII letter case folded
/// when `fold`); returns (file, needle) hits. One regex over all needles, so
/// that scanning megabytes for hundreds of needles stays fast in debug builds.
fn scan_with(dir: &Path, needles: &[(String, Vec<u8>)], fold: bool) -> Vec<(PathBuf, String)> {
    if needles.is_empty() {
        return Vec::new();
    }
    let norm = |b: &[u8]| if fold { lower(b) } else { b.to_vec() };
    let mut names: HashMap<Vec<u8>, Vec<&str>> = HashMap::new();
    for (what, n) in needles {
        assert!(!n.is_empty());
        names.entry(norm(n)).or_default().push(what);
    }
    let alternatives: Vec<String> = names
        .keys()
        .map(|n| n.iter().map(|b| format!("\\x{b:02x}")).collect())
        .collect();
    let re = regex::bytes::RegexBuilder::new(&format!("(?-u:{})", alternatives.join("|")))
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .unwrap();
    // In text mode a hit must stand on its own: `s.schaefer@gmx.example`
    // inside `jens.schaefer@gmx.example` is another visitor's address.
    let word = |b: u8| b.is_ascii_alphanumeric() || b"._%+'-".contains(&b);
    let standalone = |hay: &[u8], start: usize, end: usize| {
        let before = start.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(end).copied();
        let after2 = hay.get(end + 1).copied();
        let joined_after = match after {
            Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'@' => true,
            Some(b'.' | b'-') => after2.is_some_and(|c| c.is_ascii_alphanumeric()),
            _ => false,
        };
        !before.is_some_and(word) && !joined_after
    };
    let mut hits = Vec::new();
    for (path, bytes) in all_files(dir) {
        let hay = norm(&bytes);
        for m in re.find_iter(&hay) {
            if fold && !standalone(&hay, m.start(), m.end()) {
                continue;
            }
            for what in &names[m.as_bytes()] {
                hits.push((
                    path.clone(),
                    format!("{what} {:?}", String::from_utf8_lossy(m.as_bytes())),
                ));
            }
        }
    }
    hits
}

/// Personal strings, any letter case.
fn scan(dir: &Path, needles: &[Needle]) -> Vec<(PathBuf, String)> {
    let n: Vec<(String, Vec<u8>)> = needles
        .iter()
        .map(|(w, b, _)| (format!("{w} {:?}", String::from_utf8_lossy(b)), b.clone()))
        .collect();
    scan_with(dir, &n, true)
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Keys and slot positions read from a keyring file by its documented layout
/// (docs/FORMAT.md, src/keyring.rs `encode_slot`).
#[derive(Default)]
struct KeyringView {
    /// caller transcript id → (transcript slot, PII slot, content key, PII key).
    transcripts: HashMap<String, (usize, usize, [u8; 32], Option<[u8; 32]>)>,
    /// normalised email → directory slot.
    visitors: HashMap<String, usize>,
    /// slot → its bytes in the file.
    ranges: HashMap<usize, std::ops::Range<usize>>,
}

fn read_keyring(bytes: &[u8]) -> KeyringView {
    let mut pii: HashMap<usize, ([u8; 16], [u8; 32])> = HashMap::new();
    let mut tslots = Vec::new();
    let mut view = KeyringView::default();
    for slot in keyring_slots(bytes) {
        let i = slot.index;
        view.ranges.insert(i, slot.range());
        let p = &slot.payload[..];
        match slot.kind {
            1 => {
                let tid: [u8; 16] = p[0..16].try_into().unwrap();
                let content: [u8; 32] = p[32..64].try_into().unwrap();
                let pii_slot = u32::from_le_bytes(p[64..68].try_into().unwrap()) as usize;
                let id_len = p[78] as usize;
                let id = String::from_utf8(p[79..79 + id_len].to_vec()).unwrap();
                tslots.push((i, tid, content, pii_slot, id));
            }
            2 => {
                pii.insert(
                    i,
                    (p[0..16].try_into().unwrap(), p[16..48].try_into().unwrap()),
                );
            }
            3 => {
                let (_, email, _) = slot.visitor().unwrap();
                let email = String::from_utf8(email.to_vec()).unwrap();
                view.visitors.insert(email, i);
            }
            // A link: where a directory entry is (a visitor id and a cell).
            5 => {}
            k => panic!("slot {i}: unknown kind {k} (is the keyring wrapped?)"),
        }
    }
    for (i, tid, content, pii_slot, id) in tslots {
        let key = pii
            .get(&pii_slot)
            .filter(|(t, _)| *t == tid)
            .map(|(_, k)| *k);
        view.transcripts.insert(id, (i, pii_slot, content, key));
    }
    view
}

/// The message a transcript must read as once its PII key is destroyed.
fn expected_redacted(orig: &Message, det: &Detector) -> Message {
    let r = || REDACTED.to_owned();
    let visitor = orig.visitor.as_ref().map(|v| Visitor {
        email: r(),
        name: v.name.as_ref().map(|_| r()),
        phone: v.phone.as_ref().map(|_| r()),
        id: v.id.as_ref().map(|_| r()),
        ip: v.ip.as_ref().map(|_| r()),
    });
    let body = match &orig.body {
        Body::Text(t) => Body::Text(det.redact(t, REDACTED)),
        Body::Form(f) => Body::Form(f.keys().map(|k| (k.clone(), r())).collect()),
        Body::File(f) => Body::File(FileUpload {
            name: r(),
            mime: f.mime.clone(),
            data: Vec::new(),
        }),
        Body::Consent { granted, prompt } => Body::Consent {
            granted: *granted,
            prompt: det.redact(prompt, REDACTED),
        },
    };
    Message {
        visitor,
        body,
        ..orig.clone()
    }
}

/// Whether the detector recognises `s` on its own, whole.
fn detector_finds_whole(det: &Detector, s: &str) -> bool {
    let spans = det.find(s);
    spans.len() == 1 && spans[0].start == 0 && spans[0].end == s.len()
}

/// An email or IP address in its simplest form (asserted on regardless of the detector).
fn simple_form(s: &str) -> bool {
    let email = s.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && d.contains('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._-+".contains(c))
    });
    email || s.parse::<std::net::IpAddr>().is_ok()
}

fn random_case(s: &str, rng: &mut Rng) -> String {
    s.chars()
        .map(|c| {
            if rng.below(2) == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn msg(t: &str, ts: i64, from: Sender, visitor: Option<Visitor>, body: Body) -> Message {
    Message {
        transcript: t.into(),
        id: None,
        ts: Timestamp::from_unix_millis(ts),
        from: Some(from),
        visitor,
        body,
    }
}

fn person(n: u32) -> Visitor {
    Visitor {
        email: format!("Person.{n}@Example.com"),
        name: Some(format!("Firstname{n} Lastname{n}")),
        phone: Some(format!("+44 20 7946 {:04}", 100 + n)),
        id: Some(format!("cust-{n:05}")),
        ip: Some(format!("198.51.100.{}", 10 + n)),
    }
}

fn text(s: &str) -> Body {
    Body::Text(s.into())
}

const DAY: i64 = 86_400_000;
/// 2024-06-01T00:00:00Z.
const NOW: i64 = 1_717_200_000_000;

// ---------------------------------------------------------------------------
// Erasure on a generated store.

/// The issue's main scenario: thousands of visitors, erase a sample, then
/// look for their personal data everywhere.
#[test]
fn erasure_of_sampled_visitors_leaves_no_personal_data_in_the_live_files() {
    let g = generate(&config(31, 2500));
    let det = g.store.detector().clone();
    let visitors = &g.truth.visitors;
    assert_eq!(visitors.len(), 2500);

    // A deterministic sample of ~50 visitors.
    let sample: Vec<usize> = (0..visitors.len()).filter(|i| i % 50 == 17).collect();
    let sampled: HashSet<usize> = sample.iter().copied().collect();
    let sv = |f: &dyn Fn(&VisitorTruth) -> bool| sample.iter().any(|&i| f(&visitors[i]));
    assert!(sv(&|v| !v.typed_pii.is_empty()), "sample has typed PII");
    assert!(sv(&|v| v.phone.is_some()), "sample has phones");
    assert!(
        sv(&|v| v.ip.as_deref().is_some_and(|ip| ip.contains(':'))),
        "sample has IPv6"
    );
    assert!(
        sv(&|v| v.transcripts.len() > 1),
        "sample has repeat visitors"
    );
    let sample_has_file = sample.iter().any(|&i| {
        visitors[i]
            .transcripts
            .iter()
            .any(|t| g.lines[t].iter().any(|l| l.contains(r#""kind":"file""#)))
    });
    assert!(sample_has_file, "sample has uploaded files");

    let needles: Vec<Needle> = sample
        .iter()
        .flat_map(|&i| {
            let v = &visitors[i];
            let mut n = personal_needles(v);
            for p in &v.typed_pii {
                n.push(("typed".into(), p.clone().into_bytes(), true));
            }
            n
        })
        .collect();

    // Before: a copy of the data directory, and the scanner's sanity check
    // (the email directory holds every sampled email, so the scan must see them).
    let before = tempfile::tempdir().unwrap();
    copy_dir(g.dir.path(), before.path());
    let pre_hits = scan(before.path(), &needles);
    for &i in &sample {
        let email = &visitors[i].email;
        assert!(
            pre_hits
                .iter()
                .any(|(_, w)| w.contains(&format!("{email:?}"))),
            "the scan finds {email} before the erasure (sanity of the scan)"
        );
    }
    let keyring_before = std::fs::read(before.path().join("keyring")).unwrap();
    let view = read_keyring(&keyring_before);

    // Erase, naming each visitor in a random letter case.
    let mut rng = Rng(99);
    let mut reports = Vec::new();
    for &i in &sample {
        let v = &visitors[i];
        let asked = random_case(&v.email, &mut rng);
        let report = g
            .store
            .redact_visitor(&format!(" {asked} "), &format!("ticket-{i}"))
            .unwrap();
        assert_eq!(report.op, "erasure");
        assert_eq!(report.transcripts, v.transcripts.len() as u64);
        assert_eq!(report.keys_destroyed, v.transcripts.len() as u64 + 1);
        assert_eq!(report.reference, format!("ticket-{i}"));
        assert!(report.subject.starts_with("visitor:"));
        reports.push(report);
        // A second request finds nobody.
        assert!(matches!(
            g.store.redact_visitor(&v.email, "again"),
            Err(Error::VisitorNotFound)
        ));
    }

    // 1. A byte scan of every live file finds none of their personal strings.
    let hits = scan(g.dir.path(), &needles);
    assert!(hits.is_empty(), "personal data survives erasure: {hits:?}");

    // 2. The PII keys of their transcripts are nowhere in the live files, and
    //    their keyring slots (PII keys, directory entries) are zero.
    let mut erased_keys: Vec<(String, Vec<u8>)> = Vec::new();
    for &i in &sample {
        for t in &visitors[i].transcripts {
            let key = view.transcripts[t]
                .3
                .expect("a live PII key before the erasure");
            erased_keys.push((format!("PII key of {t}"), key.to_vec()));
        }
    }
    let found_before = scan_with(before.path(), &erased_keys, false);
    assert_eq!(
        found_before.len(),
        erased_keys.len(),
        "sanity: the search finds every key in the copy"
    );
    let found_after = scan_with(g.dir.path(), &erased_keys, false);
    assert!(
        found_after.is_empty(),
        "erased keys still on disk: {found_after:?}"
    );
    let keyring_after = std::fs::read(g.dir.path().join("keyring")).unwrap();
    let view_after = read_keyring(&keyring_after);
    let zero = |slot: usize| {
        keyring_after[view.ranges[&slot].clone()]
            .iter()
            .all(|&b| b == 0)
    };
    for &i in &sample {
        let v = &visitors[i];
        for t in &v.transcripts {
            let (tslot, pii_slot, content_key, _) = view.transcripts[t];
            assert!(zero(pii_slot), "PII slot of {t} not zeroed");
            // The content key stays, so the conversation still reads.
            assert_eq!(view_after.transcripts[t].0, tslot);
            assert_eq!(view_after.transcripts[t].2, content_key);
            assert_eq!(view_after.transcripts[t].3, None);
        }
        assert!(
            zero(view.visitors[&v.email]),
            "directory slot of {} not zeroed",
            v.email
        );
        assert!(!view_after.visitors.contains_key(&v.email));
    }
    // Every other visitor's keys and directory entry are untouched.
    for (i, v) in visitors.iter().enumerate() {
        if sampled.contains(&i) {
            continue;
        }
        assert_eq!(
            view_after.visitors.get(&v.email),
            view.visitors.get(&v.email)
        );
        for t in &v.transcripts {
            assert_eq!(view_after.transcripts[t], view.transcripts[t], "{t}");
        }
    }
    let erased_keys = erased_keys.len();

    // 3. Their transcripts still read: non-personal text intact, `<redacted>`
    //    where personal data was; no personal string in what is read back.
    let mut findings = Vec::new();
    for &i in &sample {
        let v = &visitors[i];
        assert!(
            g.store
                .transcripts_by_email(&v.email, None, None)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            g.store.export(&v.email),
            Err(Error::VisitorNotFound)
        ));
        for t in &v.transcripts {
            let got = g.store.transcript(t).unwrap();
            let orig: Vec<Message> = g.lines[t]
                .iter()
                .map(|l| interchange::parse_line(l).unwrap())
                .collect();
            assert_eq!(got.len(), orig.len(), "{t}");
            for (o, m) in orig.iter().zip(&got) {
                assert_eq!(m, &expected_redacted(o, &det), "{t}");
            }
            let read_back: String = got.iter().map(|m| interchange::to_line(m) + "\n").collect();
            let low = read_back.to_ascii_lowercase();
            for (what, needle, ci) in personal_needles(v) {
                let needle = String::from_utf8(needle).unwrap();
                let present = if ci {
                    low.contains(&needle.to_ascii_lowercase())
                } else {
                    read_back.contains(&needle)
                };
                assert!(!present, "{what} {needle:?} reads back from {t}");
            }
            for p in &v.typed_pii {
                if !low.contains(&p.to_ascii_lowercase()) {
                    continue;
                }
                if detector_finds_whole(&det, p) || simple_form(p) {
                    panic!("typed PII {p:?} reads back from {t} after erasure");
                }
                findings.push(format!("{t}: {p:?}"));
            }
        }
    }
    if !findings.is_empty() {
        eprintln!(
            "FINDING: typed personal data the detector does not recognise survives erasure \
             (in the content part, readable with the content key): {findings:?}"
        );
    }

    // 4. Every other visitor is untouched.
    let mut checked = 0;
    for (i, v) in visitors.iter().enumerate() {
        if sampled.contains(&i) {
            continue;
        }
        let listed = g.store.transcripts_by_email(&v.email, None, None).unwrap();
        assert_eq!(listed.len(), v.transcripts.len(), "{}", v.email);
        assert!(listed.iter().all(|t| !t.redacted));
        for t in &v.transcripts {
            let got = g.store.transcript(t).unwrap();
            assert_eq!(as_json(&got), lines_json(&g.lines[t]), "{t}");
            checked += 1;
        }
    }
    assert!(checked > 2000);

    // 5. verify passes, now and after reopening; the erasure is durable.
    let report = g.store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let stats = g.store.stats().unwrap();
    assert_eq!(stats.transcripts_redacted, erased_keys as u64);
    assert_eq!(stats.visitors, (visitors.len() - sample.len()) as u64);
    let audit = g.store.audit_log().unwrap();
    assert_eq!(audit, reports, "one audit entry per erasure, as returned");

    let dir = g.dir;
    drop(g.store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(store.verify().unwrap().is_ok());
    for &i in sample.iter().take(10) {
        for t in &visitors[i].transcripts {
            let got = store.transcript(t).unwrap();
            assert!(
                got.iter()
                    .all(|m| m.visitor.as_ref().is_none_or(|v| v.email == REDACTED))
            );
        }
    }
    let hits = scan(dir.path(), &needles);
    assert!(hits.is_empty(), "personal data after reopen: {hits:?}");
    let audit_bytes = std::fs::read(dir.path().join("audit.log")).unwrap();
    assert_eq!(
        audit_bytes.iter().filter(|&&b| b == b'\n').count(),
        sample.len()
    );
}

/// Erasure is in-place key destruction: the work is the visitor's keyring
/// slots, whatever the size of the store; no segment byte changes.
#[test]
fn erasure_touches_only_the_visitors_keyring_slots_whatever_the_store_size() {
    let mut touched_per_size = Vec::new();
    for (seed, visitors) in [(5u64, 40usize), (6, 1500)] {
        let g = generate(&WorkloadConfig {
            transcripts_per_visitor: (1, 5),
            ..config(seed, visitors)
        });
        // The visitor with the most transcripts.
        let (vi, v) = g
            .truth
            .visitors
            .iter()
            .enumerate()
            .max_by_key(|(i, v)| (v.transcripts.len(), std::cmp::Reverse(*i)))
            .unwrap();
        let k = v.transcripts.len();
        assert!(k >= 3);
        let before: BTreeMap<String, Vec<u8>> = dir_bytes(g.dir.path()).into_iter().collect();
        let stats_before = g.store.stats().unwrap();
        // A sample of other transcripts, read before.
        let others: Vec<(String, Vec<Message>)> = g
            .truth
            .visitors
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != vi)
            .step_by((visitors / 40).max(1))
            .flat_map(|(_, o)| o.transcripts.clone())
            .map(|t| {
                let m = g.store.transcript(&t).unwrap();
                (t, m)
            })
            .collect();

        g.store.redact_visitor(&v.email, "size test").unwrap();

        let after: BTreeMap<String, Vec<u8>> = dir_bytes(g.dir.path()).into_iter().collect();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "an erasure creates or removes no file"
        );
        for (name, old) in &before {
            let new = &after[name];
            match name.as_str() {
                "keyring" => {
                    assert_eq!(old.len(), new.len(), "the keyring does not grow");
                    // Bytes 512-1023 are the keyring's state (its durable
                    // marks), which every sync may rewrite; it holds no key.
                    // Every slot that changed is zero now, and nothing
                    // outside the slots changed.
                    let slots = keyring_slots(old);
                    let changed: Vec<usize> = slots
                        .iter()
                        .filter(|s| old[s.range()] != new[s.range()])
                        .map(|s| s.index)
                        .collect();
                    let mut outside = new.clone();
                    for s in &slots {
                        if changed.contains(&s.index) {
                            assert!(new[s.range()].iter().all(|&b| b == 0));
                        }
                        outside[s.range()].copy_from_slice(&old[s.range()]);
                    }
                    assert_eq!(outside[1024..], old[1024..], "only slots change");
                    touched_per_size.push((visitors, k, changed.len()));
                    assert_eq!(changed.len(), k + 1, "k PII slots and one directory slot");
                }
                "audit.log" => {
                    assert!(new.starts_with(old));
                    assert_eq!(new[old.len()..].iter().filter(|&&b| b == b'\n').count(), 1);
                }
                _ => assert!(old == new, "{name} changed by an erasure"),
            }
        }
        let stats = g.store.stats().unwrap();
        assert_eq!(
            stats.transcripts_redacted,
            stats_before.transcripts_redacted + k as u64
        );
        assert_eq!(stats.segment_bytes, stats_before.segment_bytes);
        for (t, m) in &others {
            assert_eq!(&g.store.transcript(t).unwrap(), m, "{t} changed");
        }
        for t in &v.transcripts {
            assert!(
                g.store
                    .transcript(t)
                    .unwrap()
                    .iter()
                    .any(|m| m.visitor.as_ref().is_some_and(|v| v.email == REDACTED))
            );
        }
    }
    eprintln!(
        "(store visitors, visitor's transcripts, keyring slots touched): {touched_per_size:?}"
    );
}

// ---------------------------------------------------------------------------
// Export.

#[test]
fn json_exports_of_random_visitors_reimport_into_a_fresh_store() {
    let g = generate(&WorkloadConfig {
        file_probability: 0.3,
        ..config(11, 300)
    });
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Store::open(fresh_dir.path(), Options::default()).unwrap();
    let mut rng = Rng(5);
    let mut picked = HashSet::new();
    while picked.len() < 25 {
        picked.insert(rng.below(g.truth.visitors.len() as u64) as usize);
    }
    let mut files = 0;
    for &i in &picked {
        let v = &g.truth.visitors[i];
        let export = g.store.export(&v.email.to_uppercase()).unwrap();
        let mut out = Vec::new();
        shredlog::export::write_json(&export, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // Interchange lines: exactly the input lines of the visitor's transcripts.
        let mut want: Vec<serde_json::Value> = Vec::new();
        for t in &v.transcripts {
            want.extend(lines_json(&g.lines[t]));
        }
        let got: Vec<serde_json::Value> = text.lines().map(json).collect();
        assert_eq!(got.len(), want.len());
        for line in &got {
            assert!(want.contains(line), "export line not in the input: {line}");
        }
        files += text.matches(r#""kind":"file""#).count();
        // Re-import.
        let msgs: Vec<Message> = text
            .lines()
            .map(|l| interchange::parse_line(l).unwrap())
            .collect();
        fresh.append_batch(&msgs).unwrap();
        for t in &v.transcripts {
            assert_eq!(
                as_json(&fresh.transcript(t).unwrap()),
                lines_json(&g.lines[t]),
                "{t} after re-import"
            );
        }
        let a = g.store.transcripts_by_email(&v.email, None, None).unwrap();
        let b = fresh.transcripts_by_email(&v.email, None, None).unwrap();
        assert_eq!(a, b);
        assert_eq!(fresh.export(&v.email).unwrap(), export);
    }
    assert!(files > 0, "the sample includes uploaded files");
    assert!(fresh.verify().unwrap().is_ok());
}

/// After a retention run redacted some of a visitor's transcripts, the JSON
/// export shows `<redacted>` in them (as documented in docs/EXPORT.md).
#[test]
fn export_of_a_partly_redacted_visitor_shows_redacted_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let p = person(1);
    store
        .append_batch(&[
            msg(
                "old",
                NOW - 40 * DAY,
                Sender::Visitor,
                Some(p.clone()),
                text("mail me at ann@work.example"),
            ),
            msg(
                "old",
                NOW - 40 * DAY + 1,
                Sender::Operator,
                None,
                text("Sure, order #A-1 noted"),
            ),
            msg(
                "new",
                NOW - DAY,
                Sender::Visitor,
                Some(p.clone()),
                text("still ann@work.example"),
            ),
        ])
        .unwrap();
    store.apply_retention(30 * DAY, false, NOW, "ret").unwrap();
    let export = store.export(&p.email).unwrap();
    assert_eq!(
        export.visitor.as_ref(),
        Some(&p),
        "latest details come from the live transcript"
    );
    let mut out = Vec::new();
    shredlog::export::write_json(&export, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        json(lines[0]),
        json(&format!(
            r#"{{"transcript":"old","ts":"{}","from":"visitor","visitor":{{"email":"<redacted>","name":"<redacted>","phone":"<redacted>","id":"<redacted>","ip":"<redacted>"}},"kind":"text","text":"mail me at <redacted>"}}"#,
            Timestamp::from_unix_millis(NOW - 40 * DAY)
        ))
    );
    assert!(lines[1].contains("Sure, order #A-1 noted"));
    assert!(lines[2].contains("ann@work.example"));
}

#[test]
fn csv_export_has_a_header_one_row_per_message_and_neutralised_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let v = Visitor {
        email: "=Evil@Example.com".into(),
        name: Some("=HYPERLINK(\"http://x.example\",\"click\")".into()),
        phone: Some("+44 20 7946 0000".into()),
        id: Some("@id-1".into()),
        ip: Some("-1".into()),
    };
    let tricky = [
        "=1+2",
        "+SUM(A1:A3)",
        "-2+3",
        "@SUM(1)",
        "a, b and \"c\"",
        "line one\nline two\r\nline three",
        "plain text",
        "\ttabbed",
    ];
    let mut msgs = vec![msg(
        "csv-1",
        NOW,
        Sender::Visitor,
        Some(v.clone()),
        text(tricky[0]),
    )];
    for (i, t) in tricky.iter().enumerate().skip(1) {
        msgs.push(msg(
            "csv-1",
            NOW + i as i64,
            Sender::Operator,
            None,
            text(t),
        ));
    }
    msgs.push(msg(
        "csv-1",
        NOW + 100,
        Sender::Visitor,
        None,
        Body::Form(
            [
                ("email".to_string(), "=x@y.example".to_string()),
                ("order".to_string(), "A, \"1\"".to_string()),
            ]
            .into(),
        ),
    ));
    msgs.push(msg(
        "csv-1",
        NOW + 101,
        Sender::Visitor,
        None,
        Body::File(FileUpload {
            name: "=cmd.pdf".into(),
            mime: "application/pdf".into(),
            data: b"%PDF-1.7 hello".to_vec(),
        }),
    ));
    msgs.push(msg(
        "csv-1",
        NOW + 102,
        Sender::System,
        None,
        Body::Consent {
            granted: true,
            prompt: "-May we, \"keep\" this?".into(),
        },
    ));
    store.append_batch(&msgs).unwrap();

    let export = store.export("=evil@example.com").unwrap();
    let mut out = Vec::new();
    shredlog::export::write_csv(&export, &mut out).unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(out.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, shredlog::export::CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), msgs.len(), "one row per message");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(&row[col("visitor_email")], "'=Evil@Example.com");
        assert_eq!(
            &row[col("visitor_name")],
            "'=HYPERLINK(\"http://x.example\",\"click\")"
        );
        assert_eq!(&row[col("visitor_phone")], "'+44 20 7946 0000");
        assert_eq!(&row[col("visitor_id")], "'@id-1");
        assert_eq!(&row[col("visitor_ip")], "'-1");
        assert_eq!(&row[col("transcript")], "csv-1");
        assert_eq!(&row[col("seq")], i.to_string());
        assert_eq!(&row[col("ts")], msgs[i].ts.as_str());
    }
    let neutral = |s: &str| {
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        }
    };
    for (i, t) in tricky.iter().enumerate() {
        assert_eq!(&rows[i][col("kind")], "text");
        assert_eq!(&rows[i][col("text")], neutral(t), "row {i}");
        assert_eq!(
            &rows[i][col("from")],
            if i == 0 { "visitor" } else { "operator" }
        );
    }
    let form = &rows[tricky.len()];
    assert_eq!(&form[col("kind")], "form");
    let f: serde_json::Value = serde_json::from_str(&form[col("form_json")]).unwrap();
    assert_eq!(
        f,
        serde_json::json!({"email": "=x@y.example", "order": "A, \"1\""})
    );
    let file = &rows[tricky.len() + 1];
    assert_eq!(&file[col("file_name")], "'=cmd.pdf");
    assert_eq!(&file[col("file_mime")], "application/pdf");
    assert_eq!(&file[col("file_size")], "14");
    // The hash of the file's bytes, computed at export (records do not
    // carry it, and reading a transcript does not compute it).
    let want: String = <sha2::Sha256 as sha2::Digest>::digest(b"%PDF-1.7 hello")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(file[col("file_sha256")], want);
    let consent = &rows[tricky.len() + 2];
    assert_eq!(&consent[col("consent_granted")], "true");
    assert_eq!(&consent[col("consent_prompt")], "'-May we, \"keep\" this?");
    // No cell a spreadsheet would evaluate.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "live formula {cell:?}"
            );
        }
    }
    // The raw text quotes cells with commas, quotes and line breaks.
    let raw = String::from_utf8(out).unwrap();
    assert!(raw.contains("\"a, b and \"\"c\"\"\""));
    assert!(raw.contains("\"line one\nline two\r\nline three\""));
}

#[test]
fn csv_export_of_a_generated_visitor_and_after_redaction() {
    let g = generate(&WorkloadConfig {
        file_probability: 0.5,
        transcripts_per_visitor: (2, 4),
        ..config(12, 100)
    });
    let has_file = |t: &String| g.lines[t].iter().any(|l| l.contains(r#""kind":"file""#));
    // A visitor with an uploaded file and a transcript without one.
    let v = g
        .truth
        .visitors
        .iter()
        .find(|v| v.transcripts.iter().any(has_file) && !has_file(v.transcripts.last().unwrap()))
        .unwrap();
    // The newest transcript, without a file, is kept under a hold.
    let keep = v.transcripts.last().unwrap();
    let n: usize = v.transcripts.iter().map(|t| g.lines[t].len()).sum();
    let header: Vec<String> = shredlog::export::CSV_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let read = |store: &Store| {
        let mut out = Vec::new();
        shredlog::export::write_csv(&store.export(&v.email).unwrap(), &mut out).unwrap();
        let mut r = csv::Reader::from_reader(out.as_slice());
        let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(h, header);
        r.records().map(|r| r.unwrap()).collect::<Vec<_>>()
    };
    let col = |name: &str| header.iter().position(|c| c == name).unwrap();
    let rows = read(&g.store);
    assert_eq!(rows.len(), n);
    let file_rows: Vec<_> = rows.iter().filter(|r| &r[col("kind")] == "file").collect();
    assert!(!file_rows.is_empty());
    for r in &file_rows {
        assert_eq!(r[col("file_sha256")].len(), 64);
        assert!(r[col("file_size")].parse::<u64>().unwrap() >= 256);
        assert_ne!(&r[col("file_name")], REDACTED);
    }
    assert!(
        rows.iter()
            .all(|r| r[col("visitor_email")].eq_ignore_ascii_case(&v.email))
    );
    // Hold one transcript and let retention redact the others (cutoff far in
    // the future): the personal values of the redacted ones read `<redacted>`.
    g.store
        .place_hold(HoldTarget::Transcript(keep), "keep")
        .unwrap();
    g.store
        .apply_retention(0, false, i64::MAX / 2, "all")
        .unwrap();
    let rows = read(&g.store);
    assert_eq!(rows.len(), n);
    let mut redacted_files = 0;
    for r in &rows {
        // The visitor columns show the details most recently given (from the
        // live transcript) on every row.
        assert!(r[col("visitor_email")].eq_ignore_ascii_case(&v.email));
        if &r[col("transcript")] == keep.as_str() {
            continue;
        }
        match &r[col("kind")] {
            "file" => {
                assert_eq!(&r[col("file_name")], REDACTED);
                assert_eq!(&r[col("file_sha256")], "");
                assert!(!r[col("file_size")].is_empty(), "the size is kept");
                redacted_files += 1;
            }
            "form" => {
                let f: BTreeMap<String, String> =
                    serde_json::from_str(&r[col("form_json")]).unwrap();
                assert!(f.values().all(|x| x == REDACTED));
            }
            _ => {}
        }
    }
    assert!(redacted_files > 0);
}

// ---------------------------------------------------------------------------
// Deletion.

#[test]
fn deleting_a_transcript_or_a_visitor_makes_it_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let all = common::populate(&store, 3, 9, 8);
    let by =
        |id: &str| -> Vec<Message> { all.iter().filter(|m| m.transcript == id).cloned().collect() };
    let keyring_before = std::fs::read(dir.path().join("keyring")).unwrap();
    let view = read_keyring(&keyring_before);
    let v0 = common::visitor(0).email;
    let v1 = common::visitor(1).email;

    // One transcript.
    let e = store.delete_transcript("t-0", "DEL-1").unwrap();
    assert_eq!(
        (
            e.op.as_str(),
            e.subject.as_str(),
            e.transcripts,
            e.keys_destroyed
        ),
        ("delete-transcript", "transcript:t-0", 1, 2)
    );
    assert!(matches!(
        store.transcript("t-0"),
        Err(Error::TranscriptNotFound)
    ));
    assert!(matches!(
        store.delete_transcript("t-0", "again"),
        Err(Error::TranscriptNotFound)
    ));
    let listed: Vec<String> = store
        .transcripts_by_email(&v0, None, None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, ["t-6", "t-3"]);
    assert_eq!(store.transcript("t-3").unwrap(), by("t-3"));
    let export = store.export(&v0).unwrap();
    assert_eq!(
        export
            .transcripts
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["t-3", "t-6"]
    );

    // Everything of a visitor (email given in another case).
    let e = store.delete_visitor(&v1.to_uppercase(), "DEL-2").unwrap();
    assert_eq!(
        (e.op.as_str(), e.transcripts, e.keys_destroyed),
        ("delete-visitor", 3, 7)
    );
    for t in ["t-1", "t-4", "t-7"] {
        assert!(
            matches!(store.transcript(t), Err(Error::TranscriptNotFound)),
            "{t}"
        );
    }
    assert!(
        store
            .transcripts_by_email(&v1, None, None)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(store.export(&v1), Err(Error::VisitorNotFound)));
    assert!(matches!(store.consent(&v1), Err(Error::VisitorNotFound)));
    assert!(matches!(
        store.delete_visitor(&v1, "again"),
        Err(Error::VisitorNotFound)
    ));
    // Others untouched.
    for t in ["t-2", "t-5", "t-8", "t-3", "t-6"] {
        assert_eq!(store.transcript(t).unwrap(), by(t), "{t}");
    }
    let s = store.stats().unwrap();
    assert_eq!((s.transcripts, s.visitors), (5, 2));
    assert!(store.verify().unwrap().is_ok());

    // Both keys of every deleted transcript are gone from every file; the
    // visitor's email too.
    let needles: Vec<Needle> = common::personal_strings(1)
        .into_iter()
        .map(|s| ("visitor 1".to_string(), s.into_bytes(), true))
        .collect();
    let check = |dir: &Path| {
        let live = all_files(dir);
        for t in ["t-0", "t-1", "t-4", "t-7"] {
            let (_, _, content, pii) = view.transcripts[t];
            for (p, b) in &live {
                assert!(
                    !contains(b, &content),
                    "content key of {t} in {}",
                    p.display()
                );
                assert!(
                    !contains(b, &pii.unwrap()),
                    "PII key of {t} in {}",
                    p.display()
                );
            }
        }
        assert!(scan(dir, &needles).is_empty());
    };
    check(dir.path());
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    check(dir.path());
    for t in ["t-0", "t-1", "t-4", "t-7"] {
        assert!(
            matches!(store.transcript(t), Err(Error::TranscriptNotFound)),
            "{t} after reopen"
        );
    }
    assert!(store.verify().unwrap().is_ok());
    // A deleted id can be used again; it starts empty.
    let again = common::message(0, "t-0", 0, 1_800_000_000_000);
    store.append(&again).unwrap();
    assert_eq!(store.transcript("t-0").unwrap(), vec![again.clone()]);
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.transcript("t-0").unwrap(), vec![again]);
    // Deleting a visitor's transcripts one by one: the last one takes the
    // directory entry (the email) with it.
    let v2 = common::visitor(2).email;
    for (t, left) in [("t-2", 2), ("t-5", 1)] {
        store.delete_transcript(t, "DEL-3").unwrap();
        assert_eq!(store.export(&v2).unwrap().transcripts.len(), left);
    }
    store.delete_transcript("t-8", "DEL-3").unwrap();
    assert!(matches!(store.export(&v2), Err(Error::VisitorNotFound)));
    let hits = scan(dir.path(), &[("email".into(), v2.into_bytes(), true)]);
    assert!(hits.is_empty(), "{hits:?}");
    let ops: Vec<String> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(
        ops,
        [
            "delete-transcript",
            "delete-visitor",
            "delete-transcript",
            "delete-transcript",
            "delete-transcript"
        ]
    );
}

// ---------------------------------------------------------------------------
// Retention and legal holds.

#[test]
fn retention_redacts_or_deletes_old_transcripts_except_those_on_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    // (transcript, visitor, age of its latest message in days)
    let plan: &[(&str, u32, i64)] = &[
        ("old-1a", 1, 40),
        ("old-1b", 1, 31),
        ("new-1", 1, 1),
        ("old-2-held", 2, 45),
        ("old-2", 2, 50),
        ("old-3", 3, 60),
        ("new-3", 3, 2),
        ("old-4", 4, 90),
    ];
    for (t, v, age) in plan {
        let ts = NOW - age * DAY;
        store
            .append_batch(&[
                msg(
                    t,
                    ts - 60_000,
                    Sender::Visitor,
                    Some(person(*v)),
                    text(&format!(
                        "hi, I'm at {}, call +1 212-555-{:04}",
                        person(*v).ip.unwrap(),
                        v
                    )),
                ),
                msg(
                    t,
                    ts,
                    Sender::Operator,
                    None,
                    text("Your order #A-2024-1 ships today."),
                ),
            ])
            .unwrap();
    }
    store
        .place_hold(HoldTarget::Transcript("old-2-held"), "CASE-7")
        .unwrap();
    store
        .place_hold(HoldTarget::Email("PERSON.3@example.COM"), "CASE-8")
        .unwrap();
    let holds = store.holds();
    assert_eq!(holds.len(), 2);
    assert!(
        holds
            .iter()
            .any(|(s, h)| s == "transcript:old-2-held" && h.reference == "CASE-7")
    );
    assert!(
        holds
            .iter()
            .any(|(s, h)| s.starts_with("visitor:") && h.reference == "CASE-8")
    );

    // Holds exempt from deletion.
    assert!(matches!(
        store.delete_transcript("old-2-held", "x"),
        Err(Error::LegalHold)
    ));
    assert!(matches!(
        store.delete_transcript("new-3", "x"),
        Err(Error::LegalHold)
    ));
    assert!(matches!(
        store.delete_visitor(&person(3).email, "x"),
        Err(Error::LegalHold)
    ));
    assert!(
        matches!(
            store.delete_visitor(&person(2).email, "x"),
            Err(Error::LegalHold)
        ),
        "one held transcript holds the visitor's deletion"
    );

    // Redact mode: old, unheld transcripts.
    let e = store
        .apply_retention(30 * DAY, false, NOW, "RET-1")
        .unwrap();
    assert_eq!(
        (
            e.op.as_str(),
            e.subject.as_str(),
            e.transcripts,
            e.keys_destroyed
        ),
        ("retention", "store", 4, 4)
    );
    assert!(
        e.detail
            .as_deref()
            .unwrap()
            .contains(&format!("cutoff:{}", NOW - 30 * DAY))
    );
    let redacted = |store: &Store, t: &str| {
        store.transcript(t).unwrap()[0]
            .visitor
            .as_ref()
            .unwrap()
            .email
            == REDACTED
    };
    for t in ["old-1a", "old-1b", "old-2", "old-4"] {
        assert!(redacted(&store, t), "{t}");
        let m = store.transcript(t).unwrap();
        assert_eq!(m[0].body, text("hi, I'm at <redacted>, call <redacted>"));
        assert_eq!(m[1].body, text("Your order #A-2024-1 ships today."));
    }
    for t in ["new-1", "old-2-held", "old-3", "new-3"] {
        assert!(!redacted(&store, t), "{t} must be untouched");
    }
    let listed = store
        .transcripts_by_email(&person(1).email, None, None)
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|t| (t.id.as_str(), t.redacted))
            .collect::<Vec<_>>(),
        [("new-1", false), ("old-1b", true), ("old-1a", true)]
    );
    // Nothing left to do.
    assert_eq!(
        store
            .apply_retention(30 * DAY, false, NOW, "RET-2")
            .unwrap()
            .transcripts,
        0
    );
    assert!(matches!(
        store.apply_retention(-1, false, NOW, "bad"),
        Err(Error::Invalid(_))
    ));

    // Delete mode.
    let e = store.apply_retention(30 * DAY, true, NOW, "RET-3").unwrap();
    assert_eq!(e.transcripts, 4);
    assert!(e.detail.as_deref().unwrap().contains("mode:delete"));
    for t in ["old-1a", "old-1b", "old-2", "old-4"] {
        assert!(
            matches!(store.transcript(t), Err(Error::TranscriptNotFound)),
            "{t}"
        );
    }
    for t in ["new-1", "old-2-held", "old-3", "new-3"] {
        assert!(store.transcript(t).is_ok(), "{t}");
    }
    // Releasing a hold makes the transcript subject to retention again.
    store
        .release_hold(HoldTarget::Transcript("old-2-held"), "CASE-7 closed")
        .unwrap();
    store.apply_retention(30 * DAY, true, NOW, "RET-4").unwrap();
    assert!(matches!(
        store.transcript("old-2-held"),
        Err(Error::TranscriptNotFound)
    ));
    assert!(
        store.transcript("old-3").is_ok(),
        "still held through its visitor"
    );

    // The stored policy round-trips and survives reopening.
    let policy = RetentionPolicy {
        older_than_ms: 365 * DAY,
        delete: false,
    };
    store.set_retention_policy(Some(policy.clone())).unwrap();
    assert_eq!(store.retention_policy(), Some(policy.clone()));
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.retention_policy(), Some(policy));
    assert_eq!(store.holds().len(), 1);
    assert!(store.run_retention_policy("cron").unwrap().is_some());
    store.set_retention_policy(None).unwrap();
    assert!(store.run_retention_policy("cron").unwrap().is_none());
    assert!(store.verify().unwrap().is_ok());
    let ops: Vec<String> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(
        ops,
        [
            "hold",
            "hold",
            "retention",
            "retention",
            "retention",
            "release-hold",
            "retention",
            "retention"
        ]
    );
    // policy.json names no email.
    let policy_file = std::fs::read(dir.path().join("policy.json")).unwrap();
    assert!(!contains(&lower(&policy_file), b"person.3@example.com"));
}

#[test]
fn holds_block_erasure_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for v in 1..=3 {
        store
            .append(&msg(
                &format!("t-{v}"),
                NOW,
                Sender::Visitor,
                Some(person(v)),
                text("hello"),
            ))
            .unwrap();
    }
    store
        .place_hold(HoldTarget::Email(&person(1).email), "LIT-1")
        .unwrap();
    store
        .place_hold(HoldTarget::Transcript("t-2"), "LIT-2")
        .unwrap();
    // Default: a hold does not stop an erasure request.
    store.redact_visitor(&person(1).email, "ERASE-1").unwrap();
    assert_eq!(
        store.transcript("t-1").unwrap()[0]
            .visitor
            .as_ref()
            .unwrap()
            .email,
        REDACTED
    );

    store.set_holds_block_erasure(true).unwrap();
    assert!(matches!(
        store.redact_visitor(&person(2).email, "ERASE-2"),
        Err(Error::LegalHold)
    ));
    assert_eq!(
        store.transcript("t-2").unwrap()[0].visitor.as_ref(),
        Some(&person(2)),
        "nothing was erased"
    );
    store.redact_visitor(&person(3).email, "ERASE-3").unwrap();
    // The setting persists.
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        store.redact_visitor(&person(2).email, "ERASE-2"),
        Err(Error::LegalHold)
    ));
    let refused = store
        .audit_log()
        .unwrap()
        .iter()
        .filter(|e| e.reference == "ERASE-2")
        .count();
    assert_eq!(refused, 0, "a refused erasure leaves no audit entry");
    store
        .release_hold(HoldTarget::Transcript("t-2"), "LIT-2 over")
        .unwrap();
    store.redact_visitor(&person(2).email, "ERASE-2").unwrap();
    assert_eq!(
        store.transcript("t-2").unwrap()[0]
            .visitor
            .as_ref()
            .unwrap()
            .email,
        REDACTED
    );
    assert!(store.verify().unwrap().is_ok());
}

/// Storage limitation: once retention has redacted every transcript of a
/// visitor, nothing personal about them should remain in the live files.
/// The email directory entry (an email address, plaintext in the keyring when
/// no key-encryption key is used) is personal data too.
#[test]
fn retention_leaves_no_email_of_a_visitor_whose_transcripts_are_all_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store
        .append(&msg(
            "t-old",
            NOW - 100 * DAY,
            Sender::Visitor,
            Some(person(1)),
            text("hello"),
        ))
        .unwrap();
    store
        .append(&msg(
            "t-new",
            NOW,
            Sender::Visitor,
            Some(person(2)),
            text("hello"),
        ))
        .unwrap();
    store.apply_retention(30 * DAY, false, NOW, "RET").unwrap();
    assert!(
        store.transcript("t-old").unwrap()[0]
            .visitor
            .as_ref()
            .unwrap()
            .email
            == REDACTED
    );
    let needle: Needle = ("email".into(), person(1).email.into_bytes(), true);
    let hits = scan(dir.path(), &[needle]);
    assert!(
        hits.is_empty(),
        "the email of a visitor whose every transcript retention redacted is still stored: {hits:?}"
    );
}

#[test]
fn retention_delete_leaves_nothing_of_a_visitor_with_no_transcript_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store
        .append(&msg(
            "t-old",
            NOW - 100 * DAY,
            Sender::Visitor,
            Some(person(1)),
            text("hello"),
        ))
        .unwrap();
    store
        .append(&msg(
            "t-new",
            NOW,
            Sender::Visitor,
            Some(person(2)),
            text("hello"),
        ))
        .unwrap();
    store.apply_retention(30 * DAY, true, NOW, "RET").unwrap();
    assert!(
        store
            .transcripts_by_email(&person(1).email, None, None)
            .unwrap()
            .is_empty()
    );
    let hits = scan(
        dir.path(),
        &[("email".into(), person(1).email.into_bytes(), true)],
    );
    assert!(hits.is_empty(), "{hits:?}");
    assert_eq!(store.stats().unwrap().visitors, 1);
}

// ---------------------------------------------------------------------------
// Restriction (Art. 18).

#[test]
fn restriction_refuses_appends_and_reads_but_allows_export_erasure_and_lifting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let all = common::populate(&store, 3, 6, 7);
    let by =
        |id: &str| -> Vec<Message> { all.iter().filter(|m| m.transcript == id).cloned().collect() };
    let v0 = common::visitor(0).email;
    let export_before = store.export(&v0).unwrap();
    let consent_before = store.consent(&v0).unwrap();

    let e = store.restrict_visitor(&v0.to_lowercase(), "R-1").unwrap();
    assert_eq!(e.op, "restriction");
    assert!(e.subject.starts_with("visitor:"));
    // Appends: to an existing transcript, a new transcript, or in a mixed batch.
    assert!(matches!(
        store.append(&common::message(0, "t-0", 7, 1_800_000_000_000)),
        Err(Error::Restricted)
    ));
    assert!(matches!(
        store.append(&common::message(0, "t-new", 0, 1_800_000_000_000)),
        Err(Error::Restricted)
    ));
    let mixed = [
        common::message(1, "t-1", 7, 1_800_000_000_000),
        common::message(0, "t-3", 7, 1_800_000_000_001),
    ];
    assert!(matches!(store.append_batch(&mixed), Err(Error::Restricted)));
    assert_eq!(
        store.transcript("t-1").unwrap(),
        by("t-1"),
        "nothing of the refused batch was written"
    );
    // Ordinary reads.
    assert!(matches!(store.transcript("t-0"), Err(Error::Restricted)));
    assert!(matches!(store.transcript("t-3"), Err(Error::Restricted)));
    assert!(matches!(
        store.transcripts_by_email(&v0.to_uppercase(), None, None),
        Err(Error::Restricted)
    ));
    // Export and consent still work.
    assert_eq!(store.export(&v0).unwrap(), export_before);
    assert_eq!(store.consent(&v0).unwrap(), consent_before);
    // Other visitors are not affected.
    store
        .append(&common::message(1, "t-1", 7, 1_800_000_000_000))
        .unwrap();
    assert_eq!(store.transcript("t-2").unwrap(), by("t-2"));
    // Survives reopening; policy.json names no email.
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(store.transcript("t-0"), Err(Error::Restricted)));
    let policy = std::fs::read(dir.path().join("policy.json")).unwrap();
    assert!(!contains(&lower(&policy), v0.to_lowercase().as_bytes()));
    // Lifting.
    let e = store.lift_restriction(&v0, "R-2").unwrap();
    assert_eq!(e.op, "lift-restriction");
    assert_eq!(store.transcript("t-0").unwrap(), by("t-0"));
    store
        .append(&common::message(0, "t-0", 7, 1_800_000_000_000))
        .unwrap();
    assert_eq!(
        store.transcripts_by_email(&v0, None, None).unwrap().len(),
        2
    );

    // Erasure of a restricted visitor works.
    let v2 = common::visitor(2).email;
    store.restrict_visitor(&v2, "R-3").unwrap();
    let e = store.redact_visitor(&v2, "E-1").unwrap();
    assert_eq!(e.transcripts, 2);
    assert!(matches!(store.export(&v2), Err(Error::VisitorNotFound)));
    let hits = scan(dir.path(), &[("email".into(), v2.into_bytes(), true)]);
    assert!(hits.is_empty(), "{hits:?}");
    let ops: Vec<String> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(
        ops,
        ["restriction", "lift-restriction", "restriction", "erasure"]
    );
}

// ---------------------------------------------------------------------------
// Consent.

#[test]
fn consent_state_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let consent = |granted: bool, prompt: &str| Body::Consent {
        granted,
        prompt: prompt.into(),
    };
    store
        .append_batch(&[
            msg("c-1", NOW, Sender::Visitor, Some(person(1)), text("hi")),
            msg(
                "c-1",
                NOW + 1000,
                Sender::Visitor,
                None,
                consent(true, "May we keep this chat for 90 days?"),
            ),
            msg(
                "c-2",
                NOW + DAY,
                Sender::Visitor,
                Some(person(1)),
                text("hi again"),
            ),
            msg(
                "c-2",
                NOW + DAY + 5,
                Sender::Visitor,
                None,
                consent(true, "Newsletter?"),
            ),
            msg(
                "c-2",
                NOW + DAY + 9,
                Sender::Visitor,
                None,
                consent(false, "Newsletter?"),
            ),
            msg(
                "c-3",
                NOW,
                Sender::Visitor,
                Some(person(2)),
                text("no consent asked"),
            ),
        ])
        .unwrap();
    let state = store.consent("PERSON.1@EXAMPLE.COM").unwrap();
    assert_eq!(state.current, Some(false), "the latest answer: withdrawn");
    let h: Vec<(bool, &str, &str, &str)> = state
        .history
        .iter()
        .map(|e| {
            (
                e.granted,
                e.prompt.as_str(),
                e.transcript.as_str(),
                e.ts.as_str(),
            )
        })
        .collect();
    let ts = |ms: i64| Timestamp::from_unix_millis(ms).as_str().to_owned();
    let (t1, t2, t3) = (ts(NOW + 1000), ts(NOW + DAY + 5), ts(NOW + DAY + 9));
    assert_eq!(
        h,
        [
            (
                true,
                "May we keep this chat for 90 days?",
                "c-1",
                t1.as_str()
            ),
            (true, "Newsletter?", "c-2", t2.as_str()),
            (false, "Newsletter?", "c-2", t3.as_str()),
        ]
    );
    let none = store.consent(&person(2).email).unwrap();
    assert_eq!((none.current, none.history.len()), (None, 0));
    assert!(matches!(
        store.consent("nobody@example.com"),
        Err(Error::VisitorNotFound)
    ));
    // Granting again later.
    store
        .append(&msg(
            "c-2",
            NOW + 2 * DAY,
            Sender::Visitor,
            None,
            consent(true, "Newsletter?"),
        ))
        .unwrap();
    assert_eq!(store.consent(&person(1).email).unwrap().current, Some(true));
    // Consent events are not personal data: they survive the retention
    // redaction of their transcript (c-1) while the visitor has live data (c-2).
    let e = store
        .apply_retention(DAY, false, NOW + 2 * DAY, "RET-1")
        .unwrap();
    assert_eq!(e.transcripts, 2, "c-1 and c-3");
    let state = store.consent(&person(1).email).unwrap();
    assert_eq!(state.history.len(), 4);
    assert_eq!(state.history[0].transcript, "c-1");
    assert_eq!(state.current, Some(true));
    // Once retention has redacted every transcript of the visitor, their email
    // is gone from the directory too: nothing answers to it any more.
    store
        .apply_retention(0, false, NOW + 3 * DAY, "RET")
        .unwrap();
    assert!(matches!(
        store.consent(&person(1).email),
        Err(Error::VisitorNotFound)
    ));
}

#[test]
fn consent_history_matches_the_generated_events() {
    let g = generate(&config(21, 300));
    let mut checked = 0;
    for v in &g.truth.visitors {
        let mut want: Vec<(i64, bool, String, String)> = Vec::new();
        for t in &v.transcripts {
            for l in &g.lines[t] {
                let m = interchange::parse_line(l).unwrap();
                if let Body::Consent { granted, prompt } = m.body {
                    want.push((m.ts.unix_millis(), granted, prompt, t.clone()));
                }
            }
        }
        want.sort_by_key(|w| w.0);
        let state = g.store.consent(&v.email).unwrap();
        let got: Vec<(i64, bool, String, String)> = state
            .history
            .iter()
            .map(|e| {
                (
                    Timestamp::parse(&e.ts).unwrap().unix_millis(),
                    e.granted,
                    e.prompt.clone(),
                    e.transcript.clone(),
                )
            })
            .collect();
        assert_eq!(got, want, "{}", v.email);
        assert_eq!(state.current, want.last().map(|w| w.1));
        checked += usize::from(!want.is_empty());
    }
    assert!(checked > 20, "{checked} visitors with consent events");
}

// ---------------------------------------------------------------------------
// Audit log.

#[test]
fn every_operation_leaves_an_audit_entry_without_personal_data() {
    let g = generate(&config(41, 40));
    let vs = &g.truth.visitors;
    let s = &g.store;
    let mut returned: Vec<AuditEntry> = Vec::new();
    returned.push(
        s.place_hold(HoldTarget::Email(&vs[0].email), "REF-hold")
            .unwrap(),
    );
    returned.push(
        s.release_hold(HoldTarget::Email(&vs[0].email), "REF-release")
            .unwrap(),
    );
    returned.push(
        s.place_hold(HoldTarget::Transcript(&vs[1].transcripts[0]), "REF-thold")
            .unwrap(),
    );
    returned.push(s.restrict_visitor(&vs[2].email, "REF-restrict").unwrap());
    returned.push(s.lift_restriction(&vs[2].email, "REF-lift").unwrap());
    returned.push(s.redact_visitor(&vs[3].email, "REF-erase").unwrap());
    returned.push(
        s.delete_transcript(&vs[4].transcripts[0], "REF-del-t")
            .unwrap(),
    );
    returned.push(s.delete_visitor(&vs[5].email, "REF-del-v").unwrap());
    returned.push(
        s.apply_retention(0, false, NOW + 400 * DAY, "REF-retention")
            .unwrap(),
    );
    let log = s.audit_log().unwrap();
    assert_eq!(log, returned);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<u64>>()
    );
    assert_eq!(
        log.iter().map(|e| e.op.as_str()).collect::<Vec<_>>(),
        [
            "hold",
            "release-hold",
            "hold",
            "restriction",
            "lift-restriction",
            "erasure",
            "delete-transcript",
            "delete-visitor",
            "retention"
        ]
    );
    for e in &log {
        assert!(Timestamp::parse(&e.at).is_ok(), "{e:?}");
        assert!(
            e.subject == "store" || e.subject.starts_with("transcript:") || {
                let hex = e.subject.strip_prefix("visitor:").unwrap_or("");
                hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
            },
            "{e:?}"
        );
    }
    // The erasure report is serialisable and carries the counts.
    let erasure = serde_json::to_value(&log[5]).unwrap();
    assert_eq!(erasure["op"], "erasure");
    assert_eq!(erasure["transcripts"], vs[3].transcripts.len());
    assert_eq!(erasure["keys_destroyed"], vs[3].transcripts.len() + 1);
    // audit.log holds no email, name, phone, id or IP of anybody.
    let raw = std::fs::read(g.dir.path().join("audit.log")).unwrap();
    let low = lower(&raw);
    for v in vs {
        for (what, needle, _) in personal_needles(v) {
            assert!(
                !contains(&low, &lower(&needle)),
                "{what} of {} in audit.log",
                v.email
            );
        }
    }
    assert!(contains(&raw, b"REF-erase"));
    // The log survives reopening and continues its numbering.
    let dir = g.dir;
    drop(g.store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.audit_log().unwrap(), log);
    let next = store
        .delete_transcript(&vs[6].transcripts[0], "REF-after")
        .unwrap();
    assert_eq!(next.seq, 10);
}

/// A key the audit log says an erasure destroyed, back in the keyring: a
/// PII slot's bytes put back from a copy of the keyring taken before the
/// erasure, and the index rebuilt from the keyring (the state an open
/// before 125ef26 could leave after a keyring compaction cut short).
/// `verify` names the generation and the entry; `reapply_audit_log`
/// destroys the key again, durably, under an audit entry of its own.
#[test]
fn a_key_an_erasure_destroyed_that_came_back_is_reported_and_destroyed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    common::populate(&store, 2, 4, 3);
    let v0 = common::visitor(0).email;
    let before = std::fs::read(dir.path().join("keyring")).unwrap();
    let slots = keyring_slots(&before);
    let vid = slots
        .iter()
        .filter_map(|s| s.visitor())
        .find(|(_, e, _)| e.eq_ignore_ascii_case(v0.as_bytes()))
        .map(|(vid, _, _)| vid.to_vec())
        .unwrap();
    let tids: HashSet<Vec<u8>> = slots
        .iter()
        .filter(|s| s.kind == 1 && s.payload[16..32] == vid[..])
        .map(|s| s.payload[0..16].to_vec())
        .collect();
    let pii: Vec<_> = slots
        .iter()
        .filter(|s| s.kind == 2 && tids.contains(&s.payload[0..16]))
        .collect();
    assert_eq!((tids.len(), pii.len()), (2, 2));
    let erased = store.redact_visitor(&v0, "E-1").unwrap();
    drop(store);

    // One PII slot put back, the index rebuilt from the keyring.
    let back = pii[0];
    let mut keyring = std::fs::read(dir.path().join("keyring")).unwrap();
    assert!(keyring[back.range()].iter().all(|&b| b == 0), "wiped");
    keyring[back.range()].copy_from_slice(&before[back.range()]);
    std::fs::write(dir.path().join("keyring"), &keyring).unwrap();
    std::fs::remove_file(dir.path().join("index.manifest")).unwrap();
    let key = &back.payload[16..48];
    let tid = shredlog_hex(&back.payload[0..16]);

    for read_only in [true, false] {
        let store = Store::open(
            dir.path(),
            Options {
                read_only,
                ..Options::default()
            },
        )
        .unwrap();
        // What the bug looked like: the erased visitor's email reads again.
        let emails: Vec<String> = ["t-0", "t-2"]
            .iter()
            .flat_map(|t| store.transcript(t).unwrap())
            .filter_map(|m| m.visitor.map(|v| v.email))
            .collect();
        assert!(emails.contains(&v0), "read_only {read_only}: {emails:?}");
        let problems = store.verify().unwrap().problems;
        assert_eq!(problems.len(), 1, "read_only {read_only}: {problems:?}");
        assert!(
            problems[0].contains(&tid)
                && problems[0].contains(&format!("audit entry {} (erasure)", erased.seq))
                && problems[0].contains(&format!("keyring slot(s) {} ", back.index)),
            "read_only {read_only}: {}",
            problems[0]
        );
        assert!(!problems[0].contains(&v0), "no email in a problem");
        if read_only {
            assert!(matches!(
                store.reapply_audit_log("FIX-1"),
                Err(Error::ReadOnly)
            ));
            continue;
        }
        let done = store.reapply_audit_log("FIX-1").unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        let e = &done[0];
        assert_eq!(
            (
                e.op.as_str(),
                e.subject.as_str(),
                e.transcripts,
                e.keys_destroyed,
                e.reference.as_str()
            ),
            ("reapply", erased.subject.as_str(), 1, 1, "FIX-1")
        );
        assert_eq!(e.seq, erased.seq + 1);
        assert!(store.reapply_audit_log("FIX-2").unwrap().is_empty());
        assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
        drop(store);
    }
    let keyring = std::fs::read(dir.path().join("keyring")).unwrap();
    assert!(!contains(&keyring, key), "the PII key is wiped");
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for t in ["t-0", "t-2"] {
        for m in store.transcript(t).unwrap() {
            if let Some(v) = m.visitor {
                assert_eq!(v.email, REDACTED);
            }
        }
    }
    let log = store.audit_log().unwrap();
    assert_eq!(
        log.iter().map(|e| e.op.as_str()).collect::<Vec<_>>(),
        ["erasure", "reapply"]
    );
    assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
}

fn shredlog_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
