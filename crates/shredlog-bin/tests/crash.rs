//! Crash tests: a child process is killed with SIGKILL at random moments while
//! it appends or erases, and the store it leaves behind is reopened and checked.
//!
//! * Appends: every batch the child saw acknowledged must be there, equal to
//!   what was written, nothing that was not written may appear, and what is
//!   stored is a prefix of what was appended.
//! * The `shredlog import` command: every line it reported as stored is there.
//! * Privacy operations: every acknowledged erasure or deletion holds (and the
//!   erased visitor's email is in no file of the directory), the one operation
//!   in flight is either wholly done or not at all, everything else is intact.
//! * Privacy operations mixed with compaction (`CompactOptions::everything()`,
//!   sometimes rate-limited so that kills land inside a segment rewrite) over
//!   16 KiB segments: the same checks, plus no compaction output (`*.seg.tmp`)
//!   survives a reopen and nothing shredded comes back.
//! * For both privacy mixes, a copy of the directory is also opened without
//!   its audit log (so that open cannot redo logged wipes): nothing the
//!   acknowledged operations redacted or deleted may read back intact, i.e.
//!   the wipes themselves reached the keyring before the acknowledgement.
//!
//! The children are this test binary run again with `SHREDLOG_CRASH_ROLE` set
//! (the `crash_child` test acts on it; without it that test does nothing).
//! `SHREDLOG_CRASH_ITERATIONS` sets the number of kills per test for long runs.

// The engine's test helpers (a deterministic PRNG, directory snapshots).
#[path = "../../shredlog/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Rng;
use shredlog::{CompactOptions, Error, Message, Options, Store, interchange};
use workload::{self, WorkloadConfig, WorkloadSummary};

const ROLE: &str = "SHREDLOG_CRASH_ROLE";
const DAY_MS: i64 = 86_400_000;

/// Kills per test: `SHREDLOG_CRASH_ITERATIONS`, else `default`.
fn iterations(default: usize) -> usize {
    std::env::var("SHREDLOG_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: {name} not set"))
}

// ---------------------------------------------------------------------------
// Workload

fn config(seed: u64, visitors: usize) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        visitors,
        transcripts_per_visitor: (1, 4),
        messages_per_transcript: (4, 14),
        file_probability: 0.05,
        file_size: (200, 3000),
        ..WorkloadConfig::default()
    }
}

/// An interchange file and what it holds.
struct Workload {
    config: WorkloadConfig,
    path: PathBuf,
    lines: Vec<String>,
    msgs: Vec<Message>,
    summary: WorkloadSummary,
    /// Line indexes of each transcript, in order.
    by_transcript: HashMap<String, Vec<usize>>,
    /// Position of each line within its transcript.
    pos: Vec<usize>,
}

impl Workload {
    fn generate(dir: &Path, config: WorkloadConfig) -> Workload {
        let path = dir.join(format!("workload-{}.jsonl", config.seed));
        let mut bytes = Vec::new();
        let summary = workload::generate(&config, &mut bytes).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len() as u64, summary.lines, "one message a line");
        let msgs: Vec<Message> = lines
            .iter()
            .map(|l| interchange::parse_line(l).unwrap())
            .collect();
        let mut by_transcript: HashMap<String, Vec<usize>> = HashMap::new();
        let mut pos = Vec::with_capacity(msgs.len());
        for (i, m) in msgs.iter().enumerate() {
            let v = by_transcript.entry(m.transcript.clone()).or_default();
            pos.push(v.len());
            v.push(i);
        }
        Workload {
            config,
            path,
            lines,
            msgs,
            summary,
            by_transcript,
            pos,
        }
    }

    fn transcript(&self, id: &str) -> Vec<Message> {
        self.by_transcript[id]
            .iter()
            .map(|&i| self.msgs[i].clone())
            .collect()
    }
}

/// Reads a transcript; a missing one reads as empty.
fn read_or_empty(store: &Store, id: &str, ctx: &str) -> Vec<Message> {
    match store.transcript(id) {
        Ok(v) => v,
        Err(Error::TranscriptNotFound) => Vec::new(),
        Err(e) => panic!("{ctx}: reading {id}: {e}"),
    }
}

fn assert_verifies(store: &Store, ctx: &str) {
    let report = store
        .verify()
        .unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    assert!(
        report.is_ok(),
        "{ctx}: verify found problems: {:#?}",
        report.problems
    );
}

fn open(dir: &Path, options: &Options, ctx: &str) -> Store {
    Store::open(dir, options.clone()).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"))
}

// ---------------------------------------------------------------------------
// Children

/// A running child process whose stdout lines are collected.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    ready: mpsc::Receiver<()>,
    out: Option<JoinHandle<()>>,
    err: Option<JoinHandle<String>>,
}

struct Finished {
    lines: Vec<String>,
    stderr: String,
    status: ExitStatus,
    /// Whether the child was still running when it was killed.
    killed: bool,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning the child");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, ready) = mpsc::channel();
        let sink = Arc::clone(&lines);
        let out = std::thread::spawn(move || {
            // Only complete lines count: a line cut by the kill is dropped.
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            loop {
                buf.clear();
                match r.read_line(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.ends_with('\n') => {
                        let l = buf.trim_end().to_owned();
                        if l == "READY" {
                            let _ = tx.send(());
                        }
                        sink.lock().unwrap().push(l);
                    }
                    Ok(_) => break,
                }
            }
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines,
            ready,
            out: Some(out),
            err: Some(err),
        }
    }

    /// Waits for the child to print `READY` (or to die).
    fn wait_ready(&mut self, limit: Duration) -> bool {
        self.ready.recv_timeout(limit).is_ok()
    }

    fn kill(mut self) -> Finished {
        let killed = matches!(self.child.try_wait(), Ok(None));
        let _ = self.child.kill(); // SIGKILL
        self.finish(killed)
    }

    fn wait(mut self) -> Finished {
        self.finish(false)
    }

    fn finish(&mut self, killed: bool) -> Finished {
        let status = self.child.wait().unwrap();
        if let Some(h) = self.out.take() {
            h.join().unwrap();
        }
        let stderr = self
            .err
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        Finished {
            lines: self.lines.lock().unwrap().clone(),
            stderr,
            status,
            killed,
        }
    }
}

impl Finished {
    /// Panics unless the child was killed by us or exited cleanly.
    fn assert_sane(&self, ctx: &str) {
        let by_kill = self.status.signal() == Some(9);
        assert!(
            by_kill || self.status.success(),
            "{ctx}: child failed ({:?}); stdout tail {:?}; stderr:\n{}",
            self.status,
            self.lines.iter().rev().take(5).collect::<Vec<_>>(),
            self.stderr
        );
    }
}

/// This test binary, run again as a child in `role`.
fn child_command(role: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "crash_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE, role);
    cmd
}

/// The entry point of the children; does nothing in an ordinary test run.
#[test]
fn crash_child() {
    match std::env::var(ROLE).as_deref() {
        Ok("append") => child_append(),
        Ok("privacy") => child_privacy(),
        Ok("open") => {
            let store = Store::open(env_var("CRASH_DIR"), Options::default()).unwrap();
            store.close().unwrap();
            println!("DONE");
        }
        _ => {}
    }
}

fn child_options() -> Options {
    Options {
        segment_size: env_var("CRASH_SEGMENT_SIZE").parse().unwrap(),
        checkpoint: env_var("CRASH_CHECKPOINT") == "1",
        ..Options::default()
    }
}

/// Options of the privacy children: the defaults, or `CRASH_SEGMENT_SIZE`
/// byte segments when it is set.
fn privacy_options() -> Options {
    match std::env::var("CRASH_SEGMENT_SIZE") {
        Ok(s) => Options {
            segment_size: s.parse().unwrap(),
            ..Options::default()
        },
        Err(_) => Options::default(),
    }
}

/// Appends lines `CRASH_START..` of `CRASH_INPUT` in batches of random size,
/// printing `BEGIN end` before and `ACK end` after each acknowledged batch.
fn child_append() {
    let dir = PathBuf::from(env_var("CRASH_DIR"));
    let start: usize = env_var("CRASH_START").parse().unwrap();
    let mut rng = Rng(env_var("CRASH_SEED").parse().unwrap());
    let max_batch: u64 = env_var("CRASH_MAX_BATCH").parse().unwrap();
    let text = std::fs::read_to_string(env_var("CRASH_INPUT")).unwrap();
    let msgs: Vec<Message> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(start)
        .map(|l| interchange::parse_line(l).unwrap())
        .collect();
    let options = child_options();
    let mut store = Store::open(&dir, options.clone()).unwrap();
    println!("READY");
    let mut i = 0;
    while i < msgs.len() {
        let end = (i + 1 + rng.below(max_batch) as usize).min(msgs.len());
        println!("BEGIN {}", start + end);
        if let Err(e) = store.append_batch(&msgs[i..end]) {
            println!("FAIL {e}");
            std::process::exit(3);
        }
        println!("ACK {}", start + end);
        i = end;
        // Now and then a clean close and reopen, so that crashes also hit
        // stores recovered from a checkpoint written at close.
        if rng.below(40) == 0 {
            store.close().unwrap();
            store = Store::open(&dir, options.clone()).unwrap();
            println!("REOPENED");
        }
    }
    store.close().unwrap();
    println!("DONE");
}

// ---------------------------------------------------------------------------
// 1a. Appends through the library

/// Checks a reopened store against the workload: verify passes, each
/// transcript holds a prefix of its messages, equal to them; the lines stored
/// form a prefix of the input that covers every acknowledged line; lookups by
/// email list exactly the transcripts with messages. Returns the number of
/// lines stored.
fn check_appends(store: &Store, w: &Workload, acked: usize, ctx: &str) -> usize {
    assert_verifies(store, ctx);
    let mut stored_len: HashMap<&str, usize> = HashMap::new();
    for (id, idxs) in &w.by_transcript {
        let got = read_or_empty(store, id, ctx);
        assert!(
            got.len() <= idxs.len(),
            "{ctx}: {id} holds {} messages, only {} were written",
            got.len(),
            idxs.len()
        );
        for (k, m) in got.iter().enumerate() {
            assert!(
                *m == w.msgs[idxs[k]],
                "{ctx}: message {k} of {id} (input line {}) reads back altered:\n got {}\nwant {}",
                idxs[k] + 1,
                interchange::to_line(m),
                w.lines[idxs[k]]
            );
        }
        stored_len.insert(id.as_str(), got.len());
    }
    let stored: Vec<bool> = (0..w.msgs.len())
        .map(|i| w.pos[i] < stored_len[w.msgs[i].transcript.as_str()])
        .collect();
    let prefix = stored.iter().position(|s| !s).unwrap_or(stored.len());
    assert!(
        prefix >= acked,
        "{ctx}: acknowledged line {} (of {acked} acknowledged) is missing after recovery",
        prefix + 1
    );
    if let Some(later) = stored.iter().skip(prefix).position(|s| *s) {
        panic!(
            "{ctx}: line {} is missing but the later line {} is stored",
            prefix + 1,
            prefix + later + 1
        );
    }
    for v in &w.summary.visitors {
        let listed: BTreeSet<(String, usize)> = store
            .transcripts_by_email(&v.email, None, None)
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.messages))
            .collect();
        let want: BTreeSet<(String, usize)> = v
            .transcripts
            .iter()
            .filter(|t| stored_len[t.as_str()] > 0)
            .map(|t| (t.clone(), stored_len[t.as_str()]))
            .collect();
        assert_eq!(listed, want, "{ctx}: transcripts listed for {}", v.email);
    }
    prefix
}

/// `ACK n` lines → highest n; `BEGIN n` → end of the batch in flight.
fn acked_and_in_flight(lines: &[String]) -> (usize, usize) {
    let mut acked = 0;
    let mut begun = 0;
    for l in lines {
        if let Some(n) = l.strip_prefix("ACK ") {
            acked = acked.max(n.parse().unwrap());
        } else if let Some(n) = l.strip_prefix("BEGIN ") {
            begun = begun.max(n.parse().unwrap());
        }
    }
    (acked, begun.max(acked))
}

#[derive(Default)]
struct AppendStats {
    kills: usize,
    early_kills: usize,
    acked_batches: usize,
    partial_batches: Vec<String>,
    truncations: usize,
    fresh_dirs: usize,
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_message() {
    let t0 = Instant::now();
    let kills = iterations(12);
    let tmp = tempfile::tempdir().unwrap();
    let w = Workload::generate(tmp.path(), config(7, 200));
    // (segment size, checkpoints): tiny segments roll (and checkpoint) often.
    let setups: [(u64, bool); 3] = [(24 << 10, true), (64 << 20, true), (96 << 10, false)];
    let per_dir = kills.div_ceil(setups.len()).max(1);
    let mut rng = Rng(0x5eed_0001);
    let mut stats = AppendStats::default();
    let mut round = 0;
    while stats.kills < kills {
        let (segment_size, checkpoint) = setups[round % setups.len()];
        let options = Options {
            segment_size,
            checkpoint,
            ..Options::default()
        };
        let dir = tmp.path().join(format!("store-{round}"));
        stats.fresh_dirs += 1;
        let mut stored = 0usize;
        let mut kills_here = 0;
        let mut finished = false;
        while !finished {
            let last = kills_here >= per_dir || stats.kills >= kills;
            let ctx = format!(
                "round {round} run {kills_here} (segments {segment_size} B, checkpoint {checkpoint})"
            );
            let mut cmd = child_command("append");
            cmd.env("CRASH_DIR", &dir)
                .env("CRASH_INPUT", &w.path)
                .env("CRASH_START", stored.to_string())
                .env("CRASH_SEED", rng.next().to_string())
                .env("CRASH_MAX_BATCH", "40")
                .env("CRASH_SEGMENT_SIZE", segment_size.to_string())
                .env("CRASH_CHECKPOINT", if checkpoint { "1" } else { "0" });
            let mut child = Running::spawn(cmd);
            let done = if last {
                child.wait()
            } else {
                if rng.below(5) == 0 {
                    // Early: while the child opens (and recovers) the store.
                    std::thread::sleep(Duration::from_millis(rng.below(40)));
                    stats.early_kills += 1;
                } else {
                    assert!(
                        child.wait_ready(Duration::from_secs(60)),
                        "{ctx}: child never got ready"
                    );
                    std::thread::sleep(Duration::from_millis(5 + rng.below(300)));
                }
                let f = child.kill();
                stats.kills += 1;
                kills_here += 1;
                f
            };
            done.assert_sane(&ctx);
            let (acked, in_flight) = acked_and_in_flight(&done.lines);
            stats.acked_batches += done.lines.iter().filter(|l| l.starts_with("ACK ")).count();
            let store = open(&dir, &options, &ctx);
            stats.truncations += usize::from(store.recovery_report().truncated.is_some());
            // What was durable before the batch in flight: this run's last
            // acknowledgement, or what earlier runs left when it has none.
            let before = acked.max(stored);
            let now_stored = check_appends(&store, &w, before, &ctx);
            if in_flight > before && now_stored > before && now_stored < in_flight {
                stats.partial_batches.push(format!(
                    "{ctx}: batch of lines {}..={} was cut short by the kill and {} of its {} messages survive",
                    before + 1,
                    in_flight,
                    now_stored - before,
                    in_flight - before
                ));
            }
            drop(store);
            stored = now_stored;
            if !done.killed || last {
                assert!(
                    done.lines.iter().any(|l| l == "DONE"),
                    "{ctx}: child did not finish"
                );
                assert_eq!(
                    stored,
                    w.msgs.len(),
                    "{ctx}: everything is stored at the end"
                );
                finished = true;
            }
        }
        round += 1;
    }
    eprintln!(
        "append crash test: {} kills ({} early, during open) over {} directories, \
         {} acknowledged batches checked, {} torn tails truncated, {} lines, {:.1} s",
        stats.kills,
        stats.early_kills,
        stats.fresh_dirs,
        stats.acked_batches,
        stats.truncations,
        w.msgs.len(),
        t0.elapsed().as_secs_f64()
    );
    // `append_batch` is all or none, across a crash too: recovery drops the
    // records of a batch whose last record never reached the disk.
    assert!(
        stats.partial_batches.is_empty(),
        "{} batches were partly stored: {:?}",
        stats.partial_batches.len(),
        stats.partial_batches
    );
}

// ---------------------------------------------------------------------------
// 1a'. The real `shredlog import` command

#[test]
fn sigkill_during_cli_import_loses_no_reported_line() {
    let t0 = Instant::now();
    let kills = iterations(12).div_ceil(6).max(1);
    let tmp = tempfile::tempdir().unwrap();
    // Progress is reported at most once a second: an optimised build needs
    // a larger input to be killed after some reports.
    let visitors = if cfg!(debug_assertions) { 300 } else { 8000 };
    let w = Workload::generate(tmp.path(), config(21, visitors));
    let options = Options::default();
    let mut rng = Rng(0x5eed_0002);
    let (mut n_kills, mut reports, mut dirs, mut runs) = (0usize, 0usize, 0usize, 0usize);
    // An import that finishes before its kill is fine too; bound the number
    // of directories so that a fast machine cannot loop for ever.
    while n_kills < kills && dirs < 3 * kills + 3 {
        let dir = tmp.path().join(format!("store-{dirs}"));
        dirs += 1;
        let mut stored = 0usize;
        loop {
            let last = n_kills >= kills;
            let ctx = format!("import dir {dirs} run {runs}");
            // The rest of the input, as its own file (line numbers restart at 1).
            let part = tmp.path().join(format!("part-{runs}.jsonl"));
            runs += 1;
            std::fs::write(&part, w.lines[stored..].join("\n") + "\n").unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_shredlog"));
            cmd.arg("--data")
                .arg(&dir)
                .args(["--durability", "immediate", "import"])
                .arg(&part)
                .args(["--batch", "50"]);
            let child = Running::spawn(cmd);
            let done = if last {
                child.wait()
            } else {
                // Progress is reported at most once a second: mostly let it
                // run a while, sometimes kill it early.
                let delay = if rng.below(3) == 0 {
                    rng.below(1000)
                } else {
                    1050 + rng.below(1000)
                };
                std::thread::sleep(Duration::from_millis(delay));
                child.kill()
            };
            n_kills += usize::from(done.killed);
            done.assert_sane(&ctx);
            let mut acked_here = 0usize;
            for l in done.stderr.lines() {
                if let Some(rest) = l.strip_prefix("shredlog: import: stored through line ") {
                    let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
                    acked_here = acked_here.max(n);
                    reports += 1;
                }
            }
            let store = open(&dir, &options, &ctx);
            let now = check_appends(&store, &w, stored + acked_here, &ctx);
            drop(store);
            eprintln!(
                "{ctx}: reported {acked_here} more lines stored, {} found after recovery{}",
                now - stored,
                if done.killed {
                    " (killed)"
                } else {
                    " (finished)"
                }
            );
            stored = now;
            if !done.killed {
                assert!(
                    done.status.success(),
                    "{ctx}: import failed:\n{}",
                    done.stderr
                );
                assert_eq!(
                    stored,
                    w.msgs.len(),
                    "{ctx}: everything is stored at the end"
                );
                break;
            }
        }
    }
    eprintln!(
        "cli import crash test: {n_kills} kills over {dirs} directories, {reports} progress reports checked, {} lines, {:.1} s",
        w.msgs.len(),
        t0.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// 1b. Privacy operations

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Redact(usize),
    DeleteVisitor(usize),
    /// Visitor, index of the transcript among theirs.
    DeleteTranscript(usize, usize),
    /// Re-redaction by rewrite (same rules: reads the same afterwards).
    Rewrite(usize, usize),
    Retention {
        cutoff: i64,
        delete: bool,
    },
    /// `Store::compact(&CompactOptions::everything())`, with `bytes_per_sec`
    /// limited to `rate` unless it is 0. Changes nothing a reader can see.
    Compact {
        rate: u64,
    },
}

impl Op {
    fn encode(&self) -> String {
        match *self {
            Op::Redact(v) => format!("redact {v}"),
            Op::DeleteVisitor(v) => format!("delete-visitor {v}"),
            Op::DeleteTranscript(v, k) => format!("delete-transcript {v} {k}"),
            Op::Rewrite(v, k) => format!("rewrite {v} {k}"),
            Op::Retention { cutoff, delete } => format!("retention {cutoff} {}", u8::from(delete)),
            Op::Compact { rate } => format!("compact {rate}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Op::Redact(_) => "redact",
            Op::DeleteVisitor(_) => "delete-visitor",
            Op::DeleteTranscript(..) => "delete-transcript",
            Op::Rewrite(..) => "rewrite",
            Op::Retention { .. } => "retention",
            Op::Compact { rate: 0 } => "compact",
            Op::Compact { .. } => "compact-throttled",
        }
    }

    fn decode(s: &str) -> Op {
        let f: Vec<&str> = s.split(' ').collect();
        match f[0] {
            "redact" => Op::Redact(f[1].parse().unwrap()),
            "delete-visitor" => Op::DeleteVisitor(f[1].parse().unwrap()),
            "delete-transcript" => {
                Op::DeleteTranscript(f[1].parse().unwrap(), f[2].parse().unwrap())
            }
            "rewrite" => Op::Rewrite(f[1].parse().unwrap(), f[2].parse().unwrap()),
            "retention" => Op::Retention {
                cutoff: f[1].parse().unwrap(),
                delete: f[2] == "1",
            },
            "compact" => Op::Compact {
                rate: f[1].parse().unwrap(),
            },
            other => panic!("unknown op {other}"),
        }
    }
}

/// A random privacy operation; with `compact`, compactions join the mix
/// (about one operation in eight, a third of them rate-limited to
/// 64 KiB/s–1 MiB/s so that they last long enough for kills to land inside).
fn random_op(rng: &mut Rng, truth: &WorkloadSummary, config: &WorkloadConfig, compact: bool) -> Op {
    if compact && rng.below(8) == 0 {
        let rate = if rng.below(3) == 0 {
            (64 << 10) + rng.below(960 << 10)
        } else {
            0
        };
        return Op::Compact { rate };
    }
    let v = rng.below(truth.visitors.len() as u64) as usize;
    let k = rng.below(truth.visitors[v].transcripts.len() as u64) as usize;
    match rng.below(20) {
        0..=5 => Op::Redact(v),
        6..=8 => Op::DeleteVisitor(v),
        9..=13 => Op::DeleteTranscript(v, k),
        14..=16 => Op::Rewrite(v, k),
        _ => Op::Retention {
            cutoff: config.start_unix_ms
                + rng.below(u64::from(config.span_days) / 3 + 1) as i64 * DAY_MS,
            delete: rng.below(3) == 0,
        },
    }
}

/// Performs random privacy operations on the store `CRASH_DIR` forever (well,
/// up to a bound), printing `BEGIN n op` before and `OK n` / `NF n` (not found)
/// after each.
fn child_privacy() {
    let dir = PathBuf::from(env_var("CRASH_DIR"));
    let mut rng = Rng(env_var("CRASH_SEED").parse().unwrap());
    let config = config(
        env_var("CRASH_WORKLOAD_SEED").parse().unwrap(),
        env_var("CRASH_VISITORS").parse().unwrap(),
    );
    let truth = workload::generate(&config, std::io::sink()).unwrap();
    let max_ops: usize = std::env::var("CRASH_MAX_OPS").map_or(3000, |s| s.parse().unwrap());
    let compact = std::env::var("CRASH_COMPACT").is_ok_and(|s| s == "1");
    let store = Store::open(&dir, privacy_options()).unwrap();
    println!("READY");
    for n in 0..max_ops {
        let op = random_op(&mut rng, &truth, &config, compact);
        println!("BEGIN {n} {}", op.encode());
        let r = match op {
            Op::Redact(v) => store
                .redact_visitor(&truth.visitors[v].email, "crash-test")
                .map(drop),
            Op::DeleteVisitor(v) => store
                .delete_visitor(&truth.visitors[v].email, "crash-test")
                .map(drop),
            Op::DeleteTranscript(v, k) => store
                .delete_transcript(&truth.visitors[v].transcripts[k], "crash-test")
                .map(drop),
            Op::Rewrite(v, k) => store
                .rewrite_transcript(&truth.visitors[v].transcripts[k], &[], "crash-test")
                .map(drop),
            Op::Retention { cutoff, delete } => store
                .apply_retention(30 * DAY_MS, delete, cutoff + 30 * DAY_MS, "crash-test")
                .map(drop),
            Op::Compact { rate } => {
                let mut options = CompactOptions::everything();
                options.bytes_per_sec = (rate > 0).then_some(rate);
                store.compact(&options).map(drop)
            }
        };
        match r {
            Ok(()) => println!("OK {n}"),
            Err(Error::VisitorNotFound | Error::TranscriptNotFound) => println!("NF {n}"),
            Err(e) => {
                println!("FAIL {n} {e}");
                std::process::exit(3);
            }
        }
    }
    drop(store);
    println!("DONE");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TState {
    Intact,
    Redacted,
    Deleted,
}

/// What the store should hold: each transcript's state, and which visitors
/// were erased or deleted by request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    t: HashMap<String, TState>,
    gone: Vec<bool>,
}

/// Whether a visitor's email should still find them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Yes,
    No,
    /// Only redacted transcripts are left: the store may keep the directory
    /// entry (they still belong to someone) or drop it (no personal data is
    /// left that needs it).
    Either,
}

/// What the store was seen to hold: transcript states and whether each
/// visitor's email finds them.
struct Seen {
    t: HashMap<String, TState>,
    dir: Vec<bool>,
}

struct Facts {
    truth: WorkloadSummary,
    last_ts: HashMap<String, i64>,
}

impl Model {
    fn new(truth: &WorkloadSummary) -> Model {
        Model {
            t: truth
                .visitors
                .iter()
                .flat_map(|v| v.transcripts.iter().map(|t| (t.clone(), TState::Intact)))
                .collect(),
            gone: vec![false; truth.visitors.len()],
        }
    }

    fn dir(&self, f: &Facts, v: usize) -> Dir {
        let states: Vec<TState> = f.truth.visitors[v]
            .transcripts
            .iter()
            .map(|t| self.t[t])
            .collect();
        if self.gone[v] || states.iter().all(|s| *s == TState::Deleted) {
            Dir::No
        } else if states.contains(&TState::Intact) {
            Dir::Yes
        } else {
            Dir::Either
        }
    }

    /// Whether `op` finds its target (`None`: either is right).
    fn applies(&self, f: &Facts, op: Op) -> Option<bool> {
        match op {
            Op::Redact(v) | Op::DeleteVisitor(v) => match self.dir(f, v) {
                Dir::Yes => Some(true),
                Dir::No => Some(false),
                Dir::Either => None,
            },
            Op::DeleteTranscript(v, k) | Op::Rewrite(v, k) => {
                Some(self.t[&f.truth.visitors[v].transcripts[k]] != TState::Deleted)
            }
            Op::Retention { .. } | Op::Compact { .. } => Some(true),
        }
    }

    /// Applies the effects of `op` having succeeded.
    fn apply(&mut self, f: &Facts, op: Op) {
        match op {
            Op::Redact(v) => {
                for t in &f.truth.visitors[v].transcripts {
                    if self.t[t] == TState::Intact {
                        self.t.insert(t.clone(), TState::Redacted);
                    }
                }
                self.gone[v] = true;
            }
            Op::DeleteVisitor(v) => {
                for t in &f.truth.visitors[v].transcripts {
                    self.t.insert(t.clone(), TState::Deleted);
                }
                self.gone[v] = true;
            }
            Op::DeleteTranscript(v, k) => {
                self.t
                    .insert(f.truth.visitors[v].transcripts[k].clone(), TState::Deleted);
            }
            // A new version under new keys that reads exactly like the old;
            // compaction only moves bytes.
            Op::Rewrite(..) | Op::Compact { .. } => {}
            Op::Retention { cutoff, delete } => {
                for (id, s) in self.t.iter_mut() {
                    if f.last_ts[id] < cutoff && *s != TState::Deleted {
                        *s = if delete {
                            TState::Deleted
                        } else {
                            TState::Redacted
                        };
                    }
                }
            }
        }
    }

    /// Differences between the model and what was seen (empty: it matches).
    fn diff(&self, f: &Facts, seen: &Seen) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids: Vec<&String> = self.t.keys().collect();
        ids.sort();
        for id in ids {
            if self.t[id] != seen.t[id] {
                out.push(format!(
                    "{id}: want {:?}, found {:?}",
                    self.t[id], seen.t[id]
                ));
            }
        }
        for (i, v) in f.truth.visitors.iter().enumerate() {
            let want = self.dir(f, i);
            let ok = match want {
                Dir::Yes => seen.dir[i],
                Dir::No => !seen.dir[i],
                Dir::Either => true,
            };
            if !ok {
                out.push(format!(
                    "visitor {i} ({}): findable by email: want {want:?}, found {}",
                    v.email, seen.dir[i]
                ));
            }
        }
        out
    }
}

/// Observes the store; panics on a transcript that is neither intact, nor
/// redacted, nor gone, and on lookups that list the wrong transcripts.
fn observe(
    store: &Store,
    w: &Workload,
    redacted: &HashMap<String, Vec<Message>>,
    ctx: &str,
) -> Seen {
    let mut m = Seen {
        t: HashMap::new(),
        dir: Vec::new(),
    };
    for id in w.by_transcript.keys() {
        let state = match store.transcript(id) {
            Err(Error::TranscriptNotFound) => TState::Deleted,
            Err(e) => panic!("{ctx}: reading {id}: {e}"),
            Ok(got) if got == w.transcript(id) => TState::Intact,
            Ok(got) if got == redacted[id] => TState::Redacted,
            Ok(got) => panic!(
                "{ctx}: {id} is neither intact nor redacted (half-erased?):\n{}",
                got.iter()
                    .map(interchange::to_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        m.t.insert(id.clone(), state);
    }
    for v in &w.summary.visitors {
        let listed: BTreeSet<String> = store
            .transcripts_by_email(&v.email, None, None)
            .unwrap_or_else(|e| panic!("{ctx}: lookup: {e}"))
            .into_iter()
            .map(|t| t.id)
            .collect();
        if !listed.is_empty() {
            let live: BTreeSet<String> = v
                .transcripts
                .iter()
                .filter(|t| m.t[t.as_str()] != TState::Deleted)
                .cloned()
                .collect();
            assert_eq!(
                listed, live,
                "{ctx}: lookup by {} lists the wrong transcripts",
                v.email
            );
        }
        m.dir.push(!listed.is_empty());
    }
    m
}

/// The first place in `files` where the email `needle` occurs, compared
/// case-insensitively: (file name, offset).
fn find_ci(files: &[(String, Vec<u8>)], needle: &[u8]) -> Option<(String, usize)> {
    let at = needle.iter().position(|&b| b == b'@')?;
    for (name, bytes) in files {
        for (p, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'@') {
            if p < at || p - at + needle.len() > bytes.len() {
                continue;
            }
            let s = p - at;
            if bytes[s..s + needle.len()].eq_ignore_ascii_case(needle) {
                return Some((name.clone(), s));
            }
        }
    }
    None
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn import_all(dir: &Path, w: &Workload, options: &Options) {
    let store = Store::open(dir, options.clone()).unwrap();
    for chunk in w.msgs.chunks(250) {
        store.append_batch(chunk).unwrap();
    }
    store.close().unwrap();
}

fn privacy_ops_of(lines: &[String]) -> (Vec<(Op, bool)>, Option<Op>) {
    let mut done = Vec::new();
    let mut pending: Option<(usize, Op)> = None;
    for l in lines {
        let mut f = l.splitn(3, ' ');
        match (f.next(), f.next(), f.next()) {
            (Some("BEGIN"), Some(n), Some(op)) => {
                pending = Some((n.parse().unwrap(), Op::decode(op)))
            }
            (Some(tag @ ("OK" | "NF")), Some(n), None) => {
                let (m, op) = pending.take().expect("outcome without BEGIN");
                assert_eq!(m, n.parse::<usize>().unwrap());
                done.push((op, tag == "OK"));
            }
            _ => {}
        }
    }
    (done, pending.map(|(_, op)| op))
}

/// A store of imported transcripts to copy for each run, and what each
/// transcript reads like intact and redacted.
struct PrivacyBench {
    tmp: tempfile::TempDir,
    w: Workload,
    facts: Facts,
    pristine: PathBuf,
    redacted: HashMap<String, Vec<Message>>,
    /// Segment size of the store (`None`: the default), passed to the child.
    segment_size: Option<u64>,
    /// Whether the child's operation mix includes compactions.
    compact: bool,
}

#[derive(Default)]
struct PrivacyStats {
    runs: usize,
    acked_ok: usize,
    acked_nf: usize,
    in_flight_done: usize,
    in_flight_not: usize,
    ops: BTreeMap<&'static str, usize>,
    in_flight_at_kill: BTreeMap<&'static str, usize>,
}

impl PrivacyBench {
    fn new(seed: u64, visitors: usize) -> PrivacyBench {
        PrivacyBench::with(seed, visitors, None, false)
    }

    /// A bench whose store uses `segment_size` byte segments and whose
    /// children also compact when `compact` is set.
    fn with(seed: u64, visitors: usize, segment_size: Option<u64>, compact: bool) -> PrivacyBench {
        let options = Options {
            segment_size: segment_size.unwrap_or(Options::default().segment_size),
            ..Options::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let w = Workload::generate(tmp.path(), config(seed, visitors));
        let facts = Facts {
            truth: w.summary.clone(),
            last_ts: w
                .by_transcript
                .iter()
                .map(|(id, idxs)| {
                    let last = idxs
                        .iter()
                        .map(|&i| w.msgs[i].ts.unix_millis())
                        .max()
                        .unwrap();
                    (id.clone(), last)
                })
                .collect(),
        };
        let pristine = tmp.path().join("pristine");
        import_all(&pristine, &w, &options);
        // What each transcript reads like once its personal data is destroyed.
        let refdir = tmp.path().join("reference");
        copy_dir(&pristine, &refdir);
        let store = Store::open(&refdir, Options::default()).unwrap();
        for v in &w.summary.visitors {
            store.redact_visitor(&v.email, "reference").unwrap();
        }
        let redacted = w
            .by_transcript
            .keys()
            .map(|id| (id.clone(), store.transcript(id).unwrap()))
            .collect();
        PrivacyBench {
            tmp,
            w,
            facts,
            pristine,
            redacted,
            segment_size,
            compact,
        }
    }

    /// A fresh copy of the imported store.
    fn fresh_dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        copy_dir(&self.pristine, &dir);
        dir
    }

    fn child(&self, dir: &Path, seed: u64) -> Command {
        let mut cmd = child_command("privacy");
        cmd.env("CRASH_DIR", dir)
            .env("CRASH_SEED", seed.to_string())
            .env("CRASH_WORKLOAD_SEED", self.w.config.seed.to_string())
            .env("CRASH_VISITORS", self.w.summary.visitors.len().to_string());
        if let Some(size) = self.segment_size {
            cmd.env("CRASH_SEGMENT_SIZE", size.to_string());
        }
        if self.compact {
            cmd.env("CRASH_COMPACT", "1");
        }
        cmd
    }

    fn options(&self) -> Options {
        Options {
            segment_size: self.segment_size.unwrap_or(Options::default().segment_size),
            ..Options::default()
        }
    }

    /// Checks the store in `dir` after a child that printed `lines` died:
    /// the acknowledged operations agree with `model`, the store matches the
    /// model with or without the operation in flight (which `model` then
    /// takes on), every acknowledged operation is in the audit log, and no
    /// email that no longer finds its visitor is in any file.
    fn check(
        &self,
        dir: &Path,
        lines: &[String],
        model: &mut Model,
        audit_entries: &mut usize,
        stats: &mut PrivacyStats,
        ctx: &str,
    ) {
        let (f, w) = (&self.facts, &self.w);
        stats.runs += 1;
        let (ops, in_flight) = privacy_ops_of(lines);
        for (op, ok) in &ops {
            if let Some(want) = model.applies(f, *op) {
                assert_eq!(
                    *ok,
                    want,
                    "{ctx}: {op:?} {} but the acknowledged operations before it say it should {}",
                    if *ok { "succeeded" } else { "found nothing" },
                    if want { "succeed" } else { "find nothing" }
                );
            }
            if *ok {
                model.apply(f, *op);
            }
            stats.acked_ok += usize::from(*ok);
            stats.acked_nf += usize::from(!*ok);
            *stats.ops.entry(op.kind()).or_default() += usize::from(*ok);
            *audit_entries += usize::from(*ok && !matches!(op, Op::Compact { .. }));
        }
        let mut after = model.clone();
        if let Some(op) = in_flight
            && after.applies(f, op) != Some(false)
        {
            after.apply(f, op);
        }

        let store = open(dir, &self.options(), ctx);
        assert_verifies(&store, ctx);
        // A compaction cut short leaves its output (copies of records, some
        // of which may since have been shredded) behind; open removes it.
        // (A checkpoint's `index.ckpt.tmp` holds no personal data and is
        // overwritten by the next checkpoint; it may stay.)
        let leftovers: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg.tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{ctx}: compaction output survives a reopen: {leftovers:?}"
        );
        let seen = observe(&store, w, &self.redacted, ctx);
        let logged = store
            .audit_log()
            .unwrap()
            .iter()
            .filter(|e| {
                [
                    "erasure",
                    "delete-visitor",
                    "delete-transcript",
                    "retention",
                    "rewrite",
                ]
                .contains(&e.op.as_str())
            })
            .count();
        drop(store);
        let acked_model = model.clone();
        let (vs_acked, vs_after) = (model.diff(f, &seen), after.diff(f, &seen));
        if vs_acked.is_empty() {
            stats.in_flight_not += usize::from(after != *model);
        } else if vs_after.is_empty() {
            stats.in_flight_done += 1;
            *model = after;
        } else {
            panic!(
                "{ctx}: the store matches neither the acknowledged operations nor those plus \
                 the one in flight ({in_flight:?}).\nversus acknowledged only:\n  {}\nversus with \
                 the one in flight:\n  {}",
                vs_acked
                    .iter()
                    .take(12)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  "),
                vs_after
                    .iter()
                    .take(12)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            );
        }
        // The keyring alone must hold every acknowledged erasure: open a
        // copy without the audit log (so that open cannot redo wipes from
        // it) and check that nothing the acknowledged operations destroyed
        // reads back intact. (Open redoes logged wipes, which would hide an
        // erasure that never wiped its slot until the next open, while the
        // key sat in the live files.)
        let bare = dir.with_extension("no-audit");
        let _ = std::fs::remove_dir_all(&bare);
        copy_dir(dir, &bare);
        std::fs::remove_file(bare.join("audit.log")).ok();
        {
            // Salvage: the keyring's state records the audit log as
            // acknowledged, so without it the store is damaged.
            let salvage = Options {
                salvage: true,
                ..self.options()
            };
            let store = open(&bare, &salvage, &format!("{ctx} (no audit log)"));
            if *audit_entries > 0 {
                assert!(
                    store.recovery_report().found_damage(),
                    "{ctx}: a missing audit log of {audit_entries} acknowledged entries went unnoticed"
                );
            }
            for (id, state) in &acked_model.t {
                if *state == TState::Intact {
                    continue;
                }
                if let Ok(got) = store.transcript(id) {
                    assert!(
                        got != w.transcript(id),
                        "{ctx}: {id} is {state:?} by acknowledged operations, but without the \
                         audit log it reads intact: its keys are still in the keyring"
                    );
                }
            }
        }
        std::fs::remove_dir_all(&bare).ok();
        // Every acknowledged operation left an audit entry; the one in flight
        // may have.
        assert!(
            logged == *audit_entries || (in_flight.is_some() && logged == *audit_entries + 1),
            "{ctx}: {logged} audit entries for {audit_entries} acknowledged operations (in flight: {in_flight:?})"
        );
        *audit_entries = logged;
        // An email that no longer finds its visitor (erased, deleted) is in
        // no file.
        let files = common::dir_bytes(dir);
        for (i, v) in w.summary.visitors.iter().enumerate() {
            if !seen.dir[i]
                && let Some((file, off)) = find_ci(&files, v.email.as_bytes())
            {
                panic!(
                    "{ctx}: visitor {i} ({:?}) cannot be found by email {} any more, but it is \
                     still in {file} at offset {off}",
                    model.dir(f, i),
                    v.email
                );
            }
        }
        // The audit log never names an email.
        let audit_file: Vec<(String, Vec<u8>)> = files
            .iter()
            .filter(|(n, _)| n.starts_with("audit"))
            .cloned()
            .collect();
        for v in &w.summary.visitors {
            assert!(
                find_ci(&audit_file, v.email.as_bytes()).is_none(),
                "{ctx}: audit log names {}",
                v.email
            );
        }
    }
}

/// Kills children doing privacy operations on copies of `bench`'s store,
/// `per_dir` kills a copy, each `0..max_sleep_ms` after the child got ready
/// (one in five while it opens), and checks the store after each.
fn privacy_kills(
    bench: &PrivacyBench,
    kills: usize,
    per_dir: usize,
    max_sleep_ms: u64,
    seed: u64,
    label: &str,
) {
    let t0 = Instant::now();
    let mut rng = Rng(seed);
    let mut stats = PrivacyStats::default();
    let (mut n_kills, mut early, mut dirs) = (0usize, 0usize, 0usize);
    while n_kills < kills {
        let dir = bench.fresh_dir(&format!("{label}-{dirs}"));
        dirs += 1;
        let mut model = Model::new(&bench.w.summary);
        let mut audit_entries = 0usize;
        for run in 0..per_dir {
            if n_kills >= kills {
                break;
            }
            let ctx = format!("{label} dir {dirs} run {run}");
            let mut child = Running::spawn(bench.child(&dir, rng.next()));
            if rng.below(5) == 0 {
                // Early: while the child opens (and finishes what the last
                // kill cut short).
                std::thread::sleep(Duration::from_millis(rng.below(60)));
                early += 1;
            } else {
                assert!(
                    child.wait_ready(Duration::from_secs(60)),
                    "{ctx}: child never got ready"
                );
                std::thread::sleep(Duration::from_millis(rng.below(max_sleep_ms)));
            }
            let done = child.kill();
            n_kills += 1;
            done.assert_sane(&ctx);
            bench.check(
                &dir,
                &done.lines,
                &mut model,
                &mut audit_entries,
                &mut stats,
                &ctx,
            );
            if let Some(op) = privacy_ops_of(&done.lines).1 {
                *stats.in_flight_at_kill.entry(op.kind()).or_default() += 1;
            }
        }
    }
    eprintln!(
        "{label} crash test: {n_kills} kills ({early} early) over {dirs} directories; {} acknowledged \
         operations ({:?}), {} acknowledged not-found; in flight at the kill: {:?}; the operation in \
         flight was found done {} times, not done {} times; {:.1} s",
        stats.acked_ok,
        stats.ops,
        stats.acked_nf,
        stats.in_flight_at_kill,
        stats.in_flight_done,
        stats.in_flight_not,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn sigkill_during_privacy_operations_keeps_erasure_atomic() {
    let bench = PrivacyBench::new(13, 120);
    privacy_kills(&bench, iterations(12), 4, 60, 0x5eed_0003, "privacy");
}

/// Privacy operations mixed with compactions (some rate-limited, so that the
/// kill lands inside a segment rewrite) over 16 KiB segments.
#[test]
fn sigkill_during_privacy_operations_and_compaction() {
    let bench = PrivacyBench::with(19, 120, Some(16 << 10), true);
    privacy_kills(&bench, iterations(12), 4, 250, 0x5eed_0004, "compaction");
}

/// Deterministic crash points: the child aborts itself (like a kill) at the
/// N-th hit of a failpoint inside a privacy operation, then a second child
/// opening the store aborts at the first keyring write or sync of the
/// recovery that finishes the cut-short operation; the store must still end
/// up with that operation wholly done or not at all.
#[test]
fn abort_at_failpoints_inside_privacy_operations() {
    let t0 = Instant::now();
    let bench = PrivacyBench::new(17, 40);
    let mut points: Vec<(&str, u64)> = vec![
        ("audit.write", 2),
        ("audit.sync", 2),
        ("keyring.sync", 1),
        ("keyring.sync", 3),
    ];
    let hits = (iterations(12) / 2).max(2) as u64;
    points.extend((1..=hits).map(|n| ("keyring.write", n * 2 - 1)));
    let mut stats = PrivacyStats::default();
    let (mut aborted, mut recovery_aborted) = (0usize, 0usize);
    for (i, (fp, n)) in points.iter().enumerate() {
        let ctx = format!("abort at {fp}@{n}");
        let dir = bench.fresh_dir(&format!("abort-{i}"));
        let mut model = Model::new(&bench.w.summary);
        let mut audit_entries = 0usize;
        let mut cmd = bench.child(&dir, 0xab0a7 + i as u64);
        cmd.env("CRASH_MAX_OPS", "25")
            .env("SHREDLOG_FAILPOINTS", format!("{fp}=abort@{n}"));
        let done = Running::spawn(cmd).wait();
        let by_abort = done.status.signal() == Some(6);
        assert!(
            by_abort || done.status.success(),
            "{ctx}: child failed ({:?}):\n{}",
            done.status,
            done.stderr
        );
        aborted += usize::from(by_abort);
        // Recovery itself is cut short, at its first keyring write, then at
        // its keyring sync.
        for recovery_fp in ["keyring.write=abort@1", "keyring.sync=abort@1"] {
            let mut open_cmd = child_command("open");
            open_cmd
                .env("CRASH_DIR", &dir)
                .env("SHREDLOG_FAILPOINTS", recovery_fp);
            let opened = Running::spawn(open_cmd).wait();
            let cut = opened.status.signal() == Some(6);
            assert!(
                cut || opened.status.success(),
                "{ctx}: opening child failed ({:?}):\n{}",
                opened.status,
                opened.stderr
            );
            recovery_aborted += usize::from(cut);
        }
        bench.check(
            &dir,
            &done.lines,
            &mut model,
            &mut audit_entries,
            &mut stats,
            &ctx,
        );
    }
    eprintln!(
        "abort sweep: {} crash points ({aborted} hit), {recovery_aborted} recoveries cut short; {} \
         acknowledged operations checked; the operation in flight was found done {} times, not done \
         {} times; {:.1} s",
        points.len(),
        stats.acked_ok,
        stats.in_flight_done,
        stats.in_flight_not,
        t0.elapsed().as_secs_f64()
    );
}
