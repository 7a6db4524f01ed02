//! Concurrency stress test: writers, readers, an eraser and the compactor work
//! on one store at once for a bounded time (`SHREDLOG_STRESS_SECS`, default 5),
//! over small (16 KiB) segments so that rolls, checkpoints and compactions of
//! sealed segments happen all the time.
//!
//! Invariants checked while they run:
//! * A read of a transcript is never torn: it is a prefix of the messages
//!   written to it, equal to them (or, once the visitor's erasure has started,
//!   equal to their redacted form), holding at least every message whose append
//!   had returned before the read began and none that had not been begun.
//! * Once `redact_visitor` has returned, every later read of the visitor's
//!   transcripts shows their personal data as `<redacted>` (it is equal to the
//!   redacted reference and contains none of the visitor's personal strings),
//!   and a lookup by their email finds nothing. Once `delete_transcript` /
//!   `delete_visitor` has returned, the transcript is not found and not listed.
//! * Listings by email only name the visitor's live transcripts, each with a
//!   message count between what was acknowledged and what was begun.
//!
//! At the end: `verify` passes, every transcript reads exactly as the model
//! says (all acknowledged messages, intact / redacted / gone), an erased
//! visitor's email is in no file, and a final compaction, then a close and
//! reopen, give the same reads and listings.
//!
//! Writers and the eraser serialise on a per-visitor lock (an append and an
//! erasure of the *same* visitor never overlap); everything else overlaps
//! freely.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Rng;
use shredlog::{CompactOptions, Error, Message, Options, Store};

const VISITORS: u64 = 150;
const TRANSCRIPTS_PER_VISITOR: usize = 3;
const MAX_MESSAGES: usize = 16;
const WRITERS: u64 = 2;
const READERS: u64 = 2;
const BASE_TS: i64 = 1_714_000_000_000;

// Visitor states.
const V_LIVE: u8 = 0;
const V_ERASING: u8 = 1;
const V_REDACTED: u8 = 2;
const V_DELETING: u8 = 3;
const V_DELETED: u8 = 4;
// Transcript states.
const T_LIVE: u8 = 0;
const T_DELETING: u8 = 1;
const T_DELETED: u8 = 2;

fn secs() -> f64 {
    std::env::var("SHREDLOG_STRESS_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(5.0)
}

fn tid(v: u64, k: usize) -> String {
    format!("t-{v}-{k}")
}

fn email(v: u64) -> String {
    common::visitor(v).email
}

/// The messages that may ever be written to transcript `k` of visitor `v`.
fn script(v: u64, k: usize) -> Vec<Message> {
    let id = tid(v, k);
    (0..MAX_MESSAGES as u64)
        .map(|i| {
            common::message(
                v,
                &id,
                i,
                BASE_TS + (v as i64) * 10_000_000 + (k as i64) * 100_000 + i as i64 * 1000,
            )
        })
        .collect()
}

struct TState {
    id: String,
    /// Messages whose append returned Ok.
    acked: AtomicUsize,
    /// Messages whose append was begun.
    begun: AtomicUsize,
    status: AtomicU8,
}

struct VState {
    n: u64,
    email: String,
    /// Held by a writer while it appends to, and by the eraser while it erases,
    /// this visitor.
    lock: Mutex<()>,
    status: AtomicU8,
    ts: Vec<TState>,
}

struct Shared {
    store: Store,
    visitors: Vec<VState>,
    /// Written messages, intact and redacted, per transcript id.
    full: HashMap<String, Vec<Message>>,
    redacted: HashMap<String, Vec<Message>>,
    stop: AtomicBool,
    /// Visitors handed out to writers so far.
    next_visitor: AtomicU64,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    messages: AtomicU64,
    reads: AtomicU64,
    reads_redacted: AtomicU64,
    reads_not_found: AtomicU64,
    reads_ahead_of_ack: AtomicU64,
    listings: AtomicU64,
    redactions: AtomicU64,
    visitor_deletions: AtomicU64,
    transcript_deletions: AtomicU64,
    reads_after_erasure: AtomicU64,
    compactions: AtomicU64,
    throttled_compactions: AtomicU64,
    segments_rewritten: AtomicU64,
    segments_removed: AtomicU64,
    pii_parts_dropped: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, SeqCst);
}

/// What every transcript reads like once its visitor is erased: a store with
/// every message written, every visitor erased.
fn redacted_reference(
    dir: &std::path::Path,
    full: &HashMap<String, Vec<Message>>,
) -> HashMap<String, Vec<Message>> {
    let store = Store::open(dir, Options::default()).unwrap();
    let mut all: Vec<&Message> = full.values().flatten().collect();
    all.sort_by_key(|m| (m.transcript.clone(), m.ts.unix_millis()));
    let all: Vec<Message> = all.into_iter().cloned().collect();
    for chunk in all.chunks(2000) {
        store.append_batch(chunk).unwrap();
    }
    for v in 0..VISITORS {
        store.redact_visitor(&email(v), "reference").unwrap();
    }
    let out = full
        .keys()
        .map(|id| (id.clone(), store.transcript(id).unwrap()))
        .collect();
    drop(store);
    out
}

fn writer(sh: &Shared, w: u64) {
    let mut rng = Rng(0x57e5_5000 + w);
    // The visitors this writer is working on.
    let mut working: Vec<usize> = Vec::new();
    while !sh.stop.load(SeqCst) {
        while working.len() < 12 {
            let n = sh.next_visitor.fetch_add(1, SeqCst);
            if n >= VISITORS {
                break;
            }
            working.push(n as usize);
        }
        if working.is_empty() {
            // Every visitor is written out.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let slot = rng.below(working.len() as u64) as usize;
        let v = &sh.visitors[working[slot]];
        let _g = v.lock.lock().unwrap();
        let open: Vec<&TState> =
            v.ts.iter()
                .filter(|t| t.status.load(SeqCst) == T_LIVE && t.begun.load(SeqCst) < MAX_MESSAGES)
                .collect();
        if v.status.load(SeqCst) != V_LIVE || open.is_empty() {
            working.swap_remove(slot);
            continue;
        }
        let t = open[rng.below(open.len() as u64) as usize];
        let from = t.begun.load(SeqCst);
        let to = (from + 1 + rng.below(3) as usize).min(MAX_MESSAGES);
        t.begun.store(to, SeqCst);
        let msgs = &sh.full[&t.id][from..to];
        let r = if msgs.len() == 1 && rng.below(2) == 0 {
            sh.store.append(&msgs[0])
        } else {
            sh.store.append_batch(msgs)
        };
        r.unwrap_or_else(|e| panic!("writer {w}: appending {}[{from}..{to}]: {e}", t.id));
        t.acked.store(to, SeqCst);
        bump(&sh.counters.appends);
        sh.counters.messages.fetch_add((to - from) as u64, SeqCst);
    }
}

/// Checks one read of transcript `k` of visitor `vi` against the states seen
/// before and after it.
fn check_read(sh: &Shared, vi: usize, k: usize) {
    let v = &sh.visitors[vi];
    let t = &v.ts[k];
    let (vb, tb, ab) = (
        v.status.load(SeqCst),
        t.status.load(SeqCst),
        t.acked.load(SeqCst),
    );
    let got = sh.store.transcript(&t.id);
    let (va, ta, ba, aa) = (
        v.status.load(SeqCst),
        t.status.load(SeqCst),
        t.begun.load(SeqCst),
        t.acked.load(SeqCst),
    );
    bump(&sh.counters.reads);
    let gone_before = tb == T_DELETED || vb == V_DELETED;
    let may_be_gone = ab == 0 || ta != T_LIVE || va == V_DELETING || va == V_DELETED;
    let got = match got {
        Err(Error::TranscriptNotFound) => {
            assert!(
                may_be_gone,
                "{}: not found, but {ab} messages were acknowledged and it was not deleted",
                t.id
            );
            bump(&sh.counters.reads_not_found);
            return;
        }
        Err(e) => panic!("{}: read failed: {e}", t.id),
        Ok(got) => got,
    };
    assert!(
        !gone_before,
        "{}: deleted (delete returned before the read began) but still reads: {} messages",
        t.id,
        got.len()
    );
    let n = got.len();
    assert!(
        n >= ab && n <= ba.max(ab),
        "{}: read {n} messages; {ab} were acknowledged before the read, {ba} begun after it",
        t.id
    );
    if n > aa {
        bump(&sh.counters.reads_ahead_of_ack);
    }
    let intact = got[..] == sh.full[&t.id][..n];
    let redacted = got[..] == sh.redacted[&t.id][..n];
    if vb == V_REDACTED {
        bump(&sh.counters.reads_after_erasure);
        assert!(
            redacted,
            "{}: read after redact_visitor returned shows data that is not redacted:\n{got:#?}",
            t.id
        );
        let text = format!("{got:?}");
        for s in common::personal_strings(v.n) {
            assert!(
                !text.contains(&s),
                "{}: read after redact_visitor returned contains {s:?}",
                t.id
            );
        }
        if n > 0 {
            let first = got[0]
                .visitor
                .as_ref()
                .expect("first message names the visitor");
            assert_eq!(first.email, "<redacted>", "{}: visitor email", t.id);
        }
    } else if va == V_LIVE {
        assert!(
            intact,
            "{}: torn or altered read (visitor not being erased):\n got {got:#?}\nwant a prefix of \
             {:#?}",
            t.id, sh.full[&t.id]
        );
    } else {
        assert!(
            intact || redacted,
            "{}: read during erasure is neither intact nor redacted (half-erased or torn):\n{got:#?}",
            t.id
        );
    }
    if redacted && !intact {
        bump(&sh.counters.reads_redacted);
    }
}

fn check_listing(sh: &Shared, vi: usize) {
    let v = &sh.visitors[vi];
    let vb = v.status.load(SeqCst);
    let before: Vec<(u8, usize)> =
        v.ts.iter()
            .map(|t| (t.status.load(SeqCst), t.acked.load(SeqCst)))
            .collect();
    let listed = sh
        .store
        .transcripts_by_email(&v.email, None, None)
        .unwrap_or_else(|e| panic!("listing {}: {e}", v.email));
    let va = v.status.load(SeqCst);
    let after: Vec<(u8, usize)> =
        v.ts.iter()
            .map(|t| (t.status.load(SeqCst), t.begun.load(SeqCst)))
            .collect();
    bump(&sh.counters.listings);
    if vb == V_REDACTED || vb == V_DELETED {
        assert!(
            listed.is_empty(),
            "{}: erased before the lookup began, but it lists {listed:?}",
            v.email
        );
        return;
    }
    for info in &listed {
        let k = v
            .ts
            .iter()
            .position(|t| t.id == info.id)
            .unwrap_or_else(|| panic!("{}: lists a stranger's transcript {}", v.email, info.id));
        assert!(
            before[k].0 != T_DELETED,
            "{}: lists {} which was deleted before the lookup began",
            v.email,
            info.id
        );
        assert!(
            info.messages >= before[k].1 && info.messages <= after[k].1.max(before[k].1),
            "{}: {} listed with {} messages; {} acknowledged before, {} begun after",
            v.email,
            info.id,
            info.messages,
            before[k].1,
            after[k].1
        );
    }
    // Every transcript with acknowledged messages, not deleted, of a visitor
    // not being erased, is listed.
    if va == V_LIVE {
        for (k, t) in v.ts.iter().enumerate() {
            if before[k].1 > 0 && after[k].0 == T_LIVE {
                assert!(
                    listed.iter().any(|i| i.id == t.id),
                    "{}: {} has {} acknowledged messages but is not listed: {listed:?}",
                    v.email,
                    t.id,
                    before[k].1
                );
            }
        }
    }
}

fn reader(sh: &Shared, r: u64) {
    let mut rng = Rng(0x4ead_0000 + r);
    while !sh.stop.load(SeqCst) {
        let handed = sh.next_visitor.load(SeqCst).min(VISITORS) as usize;
        if handed == 0 {
            std::thread::yield_now();
            continue;
        }
        // Mostly transcripts that hold something (a few tries), else any.
        let (mut vi, mut k) = (0, 0);
        for _ in 0..16 {
            vi = rng.below(handed as u64) as usize;
            k = rng.below(TRANSCRIPTS_PER_VISITOR as u64) as usize;
            let (v, t) = (&sh.visitors[vi], &sh.visitors[vi].ts[k]);
            if t.acked.load(SeqCst) > 0
                && t.status.load(SeqCst) == T_LIVE
                && v.status.load(SeqCst) != V_DELETED
            {
                break;
            }
        }
        if rng.below(4) == 0 {
            check_listing(sh, vi);
        } else {
            check_read(sh, vi, k);
        }
    }
}

fn eraser(sh: &Shared) {
    let mut rng = Rng(0xe4a5_e000);
    while !sh.stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        let handed = sh.next_visitor.load(SeqCst).min(VISITORS) as usize;
        if handed == 0 {
            continue;
        }
        let vi = rng.below(handed as u64) as usize;
        let v = &sh.visitors[vi];
        let _g = v.lock.lock().unwrap();
        if v.status.load(SeqCst) != V_LIVE {
            continue;
        }
        // Whether the visitor has a transcript that still reads (else the
        // directory may have dropped them, and erasure finds nobody).
        let written =
            v.ts.iter()
                .any(|t| t.acked.load(SeqCst) > 0 && t.status.load(SeqCst) == T_LIVE);
        match rng.below(10) {
            0..=5 => {
                v.status.store(V_ERASING, SeqCst);
                match sh.store.redact_visitor(&v.email, "stress") {
                    Ok(_) => {}
                    Err(Error::VisitorNotFound) if !written => {}
                    Err(e) => panic!("redact_visitor {}: {e}", v.email),
                }
                v.status.store(V_REDACTED, SeqCst);
                bump(&sh.counters.redactions);
                // A reader's next read must show the erasure: check one here
                // too, right after the call returned.
                check_read(sh, vi, rng.below(TRANSCRIPTS_PER_VISITOR as u64) as usize);
                check_listing(sh, vi);
            }
            6 => {
                v.status.store(V_DELETING, SeqCst);
                match sh.store.delete_visitor(&v.email, "stress") {
                    Ok(_) => {}
                    Err(Error::VisitorNotFound) if !written => {}
                    Err(e) => panic!("delete_visitor {}: {e}", v.email),
                }
                v.status.store(V_DELETED, SeqCst);
                bump(&sh.counters.visitor_deletions);
            }
            _ => {
                let t = &v.ts[rng.below(TRANSCRIPTS_PER_VISITOR as u64) as usize];
                if t.status.load(SeqCst) != T_LIVE {
                    continue;
                }
                t.status.store(T_DELETING, SeqCst);
                match sh.store.delete_transcript(&t.id, "stress") {
                    Ok(_) => {}
                    Err(Error::TranscriptNotFound) if t.acked.load(SeqCst) == 0 => {}
                    Err(e) => panic!("delete_transcript {}: {e}", t.id),
                }
                t.status.store(T_DELETED, SeqCst);
                bump(&sh.counters.transcript_deletions);
            }
        }
    }
}

fn compactor(sh: &Shared) {
    let mut rng = Rng(0xc0c0_0000);
    while !sh.stop.load(SeqCst) {
        let throttled = rng.below(4) == 0;
        let mut options = CompactOptions::everything();
        options.bytes_per_sec = throttled.then_some(2 << 20);
        let report = sh
            .store
            .compact(&options)
            .unwrap_or_else(|e| panic!("compaction failed: {e}"));
        bump(&sh.counters.compactions);
        if throttled {
            bump(&sh.counters.throttled_compactions);
        }
        let c = &sh.counters;
        c.segments_rewritten
            .fetch_add(report.segments_rewritten, SeqCst);
        c.segments_removed
            .fetch_add(report.segments_removed, SeqCst);
        c.pii_parts_dropped
            .fetch_add(report.pii_parts_dropped, SeqCst);
        std::thread::sleep(Duration::from_millis(rng.below(30)));
    }
}

/// Every transcript's final read (None: not found) and every visitor's listing.
type Snapshot = (
    BTreeMap<String, Option<Vec<Message>>>,
    BTreeMap<String, Vec<(String, usize, bool)>>,
);

fn snapshot(store: &Store, visitors: &[VState]) -> Snapshot {
    let mut reads = BTreeMap::new();
    let mut lists = BTreeMap::new();
    for v in visitors {
        for t in &v.ts {
            let got = match store.transcript(&t.id) {
                Ok(m) => Some(m),
                Err(Error::TranscriptNotFound) => None,
                Err(e) => panic!("{}: final read: {e}", t.id),
            };
            reads.insert(t.id.clone(), got);
        }
        let listed = store
            .transcripts_by_email(&v.email, None, None)
            .unwrap()
            .into_iter()
            .map(|i| (i.id, i.messages, i.redacted))
            .collect();
        lists.insert(v.email.clone(), listed);
    }
    (reads, lists)
}

fn assert_verifies(store: &Store, ctx: &str) {
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{ctx}: verify: {:#?}", report.problems);
}

#[test]
fn writers_readers_eraser_and_compactor_at_once() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut full = HashMap::new();
    for v in 0..VISITORS {
        for k in 0..TRANSCRIPTS_PER_VISITOR {
            full.insert(tid(v, k), script(v, k));
        }
    }
    let redacted = redacted_reference(&tmp.path().join("reference"), &full);
    let setup = t0.elapsed();
    let dir = tmp.path().join("store");
    let options = Options {
        segment_size: 16 << 10,
        ..Options::default()
    };
    let store = Store::open(&dir, options.clone()).unwrap();
    let visitors: Vec<VState> = (0..VISITORS)
        .map(|n| VState {
            n,
            email: email(n),
            lock: Mutex::new(()),
            status: AtomicU8::new(V_LIVE),
            ts: (0..TRANSCRIPTS_PER_VISITOR)
                .map(|k| TState {
                    id: tid(n, k),
                    acked: AtomicUsize::new(0),
                    begun: AtomicUsize::new(0),
                    status: AtomicU8::new(T_LIVE),
                })
                .collect(),
        })
        .collect();
    let sh = Arc::new(Shared {
        store,
        visitors,
        full,
        redacted,
        stop: AtomicBool::new(false),
        next_visitor: AtomicU64::new(0),
        counters: Counters::default(),
    });
    let run = Duration::from_secs_f64(secs());
    let started = Instant::now();
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for w in 0..WRITERS {
            let sh = &*sh;
            hs.push(s.spawn(move || writer(sh, w)));
        }
        for r in 0..READERS {
            let sh = &*sh;
            hs.push(s.spawn(move || reader(sh, r)));
        }
        hs.push(s.spawn(|| eraser(&sh)));
        hs.push(s.spawn(|| compactor(&sh)));
        // Stop early if a thread panicked.
        while started.elapsed() < run && !hs.iter().any(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        sh.stop.store(true, SeqCst);
        for h in hs {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
    let ran = started.elapsed();
    let sh = Arc::try_unwrap(sh).unwrap_or_else(|_| panic!("threads still hold the store"));

    // The end state against the model.
    assert_verifies(&sh.store, "after the run");
    let before = snapshot(&sh.store, &sh.visitors);
    for v in &sh.visitors {
        let vs = v.status.load(SeqCst);
        for t in &v.ts {
            let acked = t.acked.load(SeqCst);
            assert_eq!(
                acked,
                t.begun.load(SeqCst),
                "{}: append in flight at the end",
                t.id
            );
            let got = &before.0[&t.id];
            let gone = vs == V_DELETED || t.status.load(SeqCst) == T_DELETED || acked == 0;
            match got {
                None => assert!(gone, "{}: lost ({acked} messages acknowledged)", t.id),
                Some(m) => {
                    assert!(!gone, "{}: reads though deleted or never written", t.id);
                    let want = if vs == V_REDACTED {
                        &sh.redacted[&t.id][..acked]
                    } else {
                        &sh.full[&t.id][..acked]
                    };
                    assert!(
                        m[..] == *want,
                        "{}: final read differs from the model",
                        t.id
                    );
                }
            }
        }
    }
    // An erased or deleted visitor's email is in no file.
    let files: Vec<(String, Vec<u8>)> = common::dir_bytes(&dir)
        .into_iter()
        .map(|(n, b)| (n, b.to_ascii_lowercase()))
        .collect();
    for v in &sh.visitors {
        let vs = v.status.load(SeqCst);
        if vs == V_REDACTED || vs == V_DELETED {
            let needle = v.email.to_ascii_lowercase();
            for (name, bytes) in &files {
                assert!(
                    !common::contains(bytes, needle.as_bytes()),
                    "{}: erased, but its email is still in {name}",
                    v.email
                );
            }
        }
    }
    // A final compaction changes no read.
    let last = sh.store.compact(&CompactOptions::everything()).unwrap();
    assert_verifies(&sh.store, "after the final compaction");
    assert!(
        snapshot(&sh.store, &sh.visitors) == before,
        "a final compaction changed what reads"
    );
    let stats = sh.store.stats().unwrap();
    let Shared {
        store,
        visitors,
        counters: c,
        ..
    } = sh;
    store.close().unwrap();
    // Reopening gives the same reads.
    let store = Store::open(&dir, options.clone()).unwrap();
    assert_verifies(&store, "after reopening");
    let reopened = snapshot(&store, &visitors);
    for (id, got) in &before.0 {
        assert!(
            reopened.0[id] == *got,
            "{id}: reads differently after reopening"
        );
    }
    assert!(reopened.1 == before.1, "listings differ after reopening");
    store.close().unwrap();

    let g = |a: &AtomicU64| a.load(SeqCst);
    eprintln!(
        "stress: {:.1} s with {WRITERS} writers, {READERS} readers, an eraser and a compactor \
         (setup {:.1} s): {} appends ({} messages) of {} visitors; {} reads ({} redacted, {} not \
         found, {} after the erasure had returned, {} showing a message before its append \
         returned), {} listings; {} redactions, {} visitor deletions, {} transcript deletions; {} \
         compactions ({} throttled): {} segments rewritten, {} removed, {} PII parts dropped; \
         final compaction rewrote {} segments; {} segments, {} dead bytes left",
        ran.as_secs_f64(),
        setup.as_secs_f64(),
        g(&c.appends),
        g(&c.messages),
        visitors.len().min(
            visitors
                .iter()
                .filter(|v| v.ts.iter().any(|t| t.begun.load(SeqCst) > 0))
                .count()
        ),
        g(&c.reads),
        g(&c.reads_redacted),
        g(&c.reads_not_found),
        g(&c.reads_after_erasure),
        g(&c.reads_ahead_of_ack),
        g(&c.listings),
        g(&c.redactions),
        g(&c.visitor_deletions),
        g(&c.transcript_deletions),
        g(&c.compactions),
        g(&c.throttled_compactions),
        g(&c.segments_rewritten),
        g(&c.segments_removed),
        g(&c.pii_parts_dropped),
        last.segments_rewritten,
        stats.segments,
        stats.dead_bytes,
    );
}
