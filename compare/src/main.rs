//! `shredlog-compare`: runs one deterministic workload through shredlog and
//! through the engines users would otherwise pick (SQLite, redb, fjall and,
//! with the `rocksdb` feature, RocksDB), measures the device's own limits in
//! the same run, prints a markdown report and writes it to docs/BENCHMARKS.md.
//! See that file for what each number means and how to reproduce it.

mod data;
mod device;
mod engines;
mod forensic;
mod phases;
mod probe;
mod report;
mod stats;
mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use shredlog::{Message, Store};
use workload::WorkloadConfig;

use data::{Rng, Workload};
use engines::{Db, Kind};
use stats::{Latencies, Size};

#[derive(Parser, Debug, Clone)]
#[command(version, about = "Side-by-side benchmark of shredlog and its peers")]
pub struct Args {
    /// Visitors in the workload (each with 1–5 transcripts of 4–16 lines).
    #[arg(long, default_value_t = 10000)]
    pub visitors: usize,
    /// Messages per durable commit, the same for every engine.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Workload and sampling seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Traffic profile: `chat` (short lines; files per the two flags below)
    /// or `support` (a support desk's traffic: longer conversations, long
    /// texts, 50–500 KB uploads in a few percent of transcripts carrying
    /// most of the bytes; `workload::WorkloadConfig::support_desk`, which
    /// ignores the two file flags). Each profile writes its own report:
    /// docs/BENCHMARKS.md and docs/BENCHMARKS-support.md.
    #[arg(long, value_enum, default_value_t = Profile::Chat)]
    pub profile: Profile,
    /// Probability that a transcript carries one uploaded file (`chat`).
    #[arg(long, default_value_t = 0.01)]
    pub file_probability: f64,
    /// Largest uploaded file, bytes (smallest: 1024; `chat`).
    #[arg(long, default_value_t = 16384)]
    pub max_file_bytes: usize,
    /// Visitors queried (disjoint from the erased ones).
    #[arg(long, default_value_t = 400)]
    pub query_sample: usize,
    /// Visitors erased one by one (and searched for in the files).
    #[arg(long, default_value_t = 200)]
    pub erase_sample: usize,
    /// Comma-separated engines (default: all that are built in).
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<String>,
    /// Directory for the stores and the device probes (a fresh subdirectory
    /// is created and removed). Default: the current directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where to write the report; `-` for nowhere.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Size of the sequential-write probe, MiB.
    #[arg(long, default_value_t = 256)]
    pub seq_mib: u64,
    /// fdatasync probes.
    #[arg(long, default_value_t = 200)]
    pub syncs: usize,
    /// Seconds of group-commit probing for each of 1 and 8 writers (in four
    /// alternating rounds).
    #[arg(long, default_value_t = 3.0)]
    pub group_commit_secs: f64,
    /// Skip the device probes (for profiling runs; the report then lacks them).
    #[arg(long)]
    pub no_device: bool,
    /// Skip shredlog's second store at a tenth of the size.
    #[arg(long)]
    pub no_scaling: bool,
    /// Do not count syncs with strace.
    #[arg(long)]
    pub no_strace: bool,
    /// Skip the streaming ingest (a fresh process per engine importing the
    /// interchange file; it measures peak memory).
    #[arg(long)]
    pub no_stream: bool,
    /// Internal: the sync probe's child process (see probe.rs).
    #[arg(long, hide = true)]
    pub sync_probe: Option<String>,
    /// Internal: the streaming ingest's child process (see stream.rs).
    #[arg(long, hide = true)]
    pub stream_probe: Option<String>,
    /// Internal: the interchange file the streaming child reads.
    #[arg(long, hide = true)]
    pub stream_input: Option<PathBuf>,
    /// Keep the stores after the run (for inspection).
    #[arg(long)]
    pub keep: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(name) = &args.sync_probe {
        let kind = Kind::parse(name).context("unknown engine")?;
        let dir = args
            .dir
            .clone()
            .context("--dir is required with --sync-probe")?;
        return probe::child(kind, &dir, &args);
    }
    if let Some(name) = &args.stream_probe {
        let kind = Kind::parse(name).context("unknown engine")?;
        let dir = args
            .dir
            .clone()
            .context("--dir is required with --stream-probe")?;
        let input = args
            .stream_input
            .clone()
            .context("--stream-input is required with --stream-probe")?;
        return stream::child(kind, &dir, &input, args.batch);
    }
    let started = Instant::now();
    let kinds: Vec<Kind> = if args.engines.is_empty() {
        Kind::ALL.into_iter().filter(|k| k.available()).collect()
    } else {
        args.engines
            .iter()
            .map(|s| Kind::parse(s).with_context(|| format!("unknown engine {s:?}")))
            .collect::<Result<_>>()?
    };
    for k in &kinds {
        if !k.available() {
            bail!(
                "{} is not built in: build with `--features rocksdb` (see docs/BENCHMARKS.md)",
                k.name()
            );
        }
    }
    let parent = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix(".shredlog-compare-")
        .tempdir_in(&parent)?;
    let root = work.path().to_path_buf();
    eprintln!("working in {}", root.display());

    eprintln!("device: sequential write, fdatasync, AES-256-GCM ...");
    let dev = if args.no_device {
        device::Device::default()
    } else {
        device::measure(&root, args.seq_mib, args.syncs)?
    };

    let config = workload_config(&args, args.visitors);
    eprintln!(
        "workload: generating and parsing ({} visitors) ...",
        args.visitors
    );
    let wl = data::prepare(config)?;
    eprintln!(
        "workload: {} messages, {} transcripts, {:.1} MB of interchange input, parsed in {:.2} s",
        wl.msgs.len(),
        wl.summary.transcripts,
        wl.input_bytes as f64 / 1e6,
        wl.parse_s
    );
    let samples = data::samples(
        wl.summary.visitors.len(),
        args.erase_sample,
        args.query_sample,
        args.seed,
    );
    let needles = forensic::needles(&wl.summary.visitors, &samples.erase)?;
    eprintln!(
        "forensic: {} strings of {} erased visitors ({} left out as ambiguous)",
        needles.strings.len(),
        samples.erase.len(),
        needles.ambiguous
    );

    let mut rows = Vec::new();
    for kind in &kinds {
        let dir = root.join(kind.name());
        eprintln!("{}: running ...", kind.name());
        let t = Instant::now();
        let row = run_engine(*kind, &dir, &wl, &samples, &needles, &args)
            .unwrap_or_else(|e| EngineRow::failed(*kind, format!("{e:#}")));
        eprintln!(
            "{}: done in {:.1} s{}",
            kind.name(),
            t.elapsed().as_secs_f64(),
            row.error
                .as_deref()
                .map(|e| format!(" — FAILED: {e}"))
                .unwrap_or_default()
        );
        // shredlog's store stays until the paired erasures below.
        if !(args.keep || (*kind == Kind::Shredlog && !args.no_scaling)) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        rows.push(row);
    }

    let mut extra = ShredExtra::default();
    if let Some(row) = rows
        .iter()
        .find(|r| r.kind == Some(Kind::Shredlog) && r.error.is_none())
    {
        eprintln!("shredlog: timing detection and sealing alone ...");
        extra.phases = Some(phases::measure(&wl, row.ingest_cpu_s));
    }
    if !args.no_stream {
        let input = root.join("workload.jsonl");
        data::write_input(&workload_config(&args, args.visitors), &input)?;
        for kind in &kinds {
            eprintln!("{}: streaming ingest in its own process ...", kind.name());
            let dir = root.join(format!("stream-{}", kind.name()));
            let r = stream::run(*kind, &dir, &input, args.batch).map_err(|e| format!("{e:#}"));
            let _ = std::fs::remove_dir_all(&dir);
            extra.streamed.push((*kind, r));
        }
        let _ = std::fs::remove_file(&input);
    }
    if kinds.contains(&Kind::Shredlog) {
        eprintln!("shredlog: group commit (1 writer, then 8) ...");
        extra.group_commit = Some(group_commit(&root.join("group-commit"), &wl, &args)?);
        if !args.no_scaling {
            let small_visitors = (args.visitors / 10).max(20);
            eprintln!(
                "shredlog: a second store at a tenth of the size ({small_visitors} visitors) ..."
            );
            let large = (root.join(Kind::Shredlog.name()), &wl, &samples);
            extra.small = Some(small_store(
                &root.join("small"),
                &args,
                small_visitors,
                large,
            )?);
            if !args.keep {
                let _ = std::fs::remove_dir_all(root.join(Kind::Shredlog.name()));
            }
        }
    }

    if args.no_strace {
        eprintln!("syncs: not counted (--no-strace)");
    } else if !probe::strace_available() {
        eprintln!("syncs: not counted (strace is not installed: apt-get install strace)");
    } else {
        for kind in &kinds {
            eprintln!("{}: counting syncs under strace ...", kind.name());
            let dir = root.join(format!("probe-{}", kind.name()));
            let r = probe::run(*kind, &dir, &args).map_err(|e| format!("{e:#}"));
            if !args.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            extra.syncs.push((*kind, r));
        }
    }

    let report = report::Report {
        args: &args,
        dev: &dev,
        wl: &wl,
        samples: &samples,
        needles: &needles,
        rows: &rows,
        extra: &extra,
        data_dir: &parent,
        elapsed: started.elapsed(),
    };
    let out = match &args.out {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p.clone()),
        None => Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new(".."))
                .join(args.profile.report_file()),
        ),
    };
    let text = report.render(out.as_deref())?;
    println!("{}", report.summary_markdown());
    if let Some(p) = out {
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    if args.keep {
        let kept = work.keep();
        eprintln!("kept the stores in {}", kept.display());
    }
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The traffic a run generates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Short chat lines, few and small files.
    Chat,
    /// A support desk: long texts and large uploads.
    Support,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Chat => "chat",
            Profile::Support => "support",
        }
    }

    /// The report this profile writes by default.
    pub fn report_file(self) -> &'static str {
        match self {
            Profile::Chat => "docs/BENCHMARKS.md",
            Profile::Support => "docs/BENCHMARKS-support.md",
        }
    }
}

pub fn workload_config(args: &Args, visitors: usize) -> WorkloadConfig {
    match args.profile {
        Profile::Chat => WorkloadConfig {
            seed: args.seed,
            visitors,
            file_probability: args.file_probability,
            file_size: (1024, args.max_file_bytes.max(1024)),
            ..WorkloadConfig::default()
        },
        Profile::Support => WorkloadConfig::support_desk(args.seed, visitors),
    }
}

/// Everything measured for one engine.
#[derive(Default)]
pub struct EngineRow {
    pub kind: Option<Kind>,
    pub error: Option<String>,
    pub ingest_s: f64,
    /// fdatasync latency (50 probes) right before this engine ran.
    pub sync_before: Latencies,
    /// CPU time of the whole process (all threads) during the ingest.
    pub ingest_cpu_s: f64,
    pub msgs_per_s: f64,
    pub commits: usize,
    pub size_ingest: Size,
    /// Median of three reopenings, ms.
    pub open_ms: f64,
    pub open_all_ms: Vec<f64>,
    /// Median of three reopenings after the erasures, ms.
    pub open_after_erase_ms: f64,
    pub list: Latencies,
    pub read: Latencies,
    pub query: Latencies,
    /// Messages returned by the visitor queries (checked against the workload).
    pub query_ok: bool,
    pub erase: Latencies,
    pub erase_ok: bool,
    pub size_erase: Size,
    pub found_before: forensic::Found,
    pub found_erase: forensic::Found,
    pub reclaim_s: f64,
    pub size_reclaim: Size,
    pub found_reclaim: forensic::Found,
    /// Engine-specific remarks (shredlog: what open found).
    pub notes: Vec<String>,
}

impl EngineRow {
    fn failed(kind: Kind, error: String) -> EngineRow {
        EngineRow {
            kind: Some(kind),
            error: Some(error),
            ..EngineRow::default()
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.map_or("?", Kind::name)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_engine(
    kind: Kind,
    dir: &Path,
    wl: &Workload,
    samples: &data::Samples,
    needles: &forensic::Needles,
    args: &Args,
) -> Result<EngineRow> {
    let mut row = EngineRow {
        kind: Some(kind),
        ..EngineRow::default()
    };
    std::fs::create_dir_all(dir)?;
    // The device changes under a shared machine: note its sync latency in
    // this engine's time slot.
    row.sync_before = device::fdatasync_latency(dir, 50)?;

    // Ingest: one durable commit per batch.
    let mut db = kind.open(dir)?;
    let cpu = stats::cpu_s();
    let t = Instant::now();
    let n = wl.msgs.len();
    let mut i = 0;
    while i < n {
        let j = (i + args.batch).min(n);
        db.ingest(&wl.msgs[i..j], &wl.bare[i..j], &wl.meta[i..j])
            .with_context(|| format!("ingesting messages {i}..{j}"))?;
        row.commits += 1;
        i = j;
    }
    row.ingest_s = t.elapsed().as_secs_f64();
    row.ingest_cpu_s = stats::cpu_s() - cpu;
    row.msgs_per_s = n as f64 / row.ingest_s;
    db.close()?;
    row.size_ingest = stats::size(dir);

    // Open: close and reopen three times, keep the median.
    eprintln!("{}: reopening ...", kind.name());
    let mut opens = Vec::new();
    let mut db: Option<Box<dyn Db>> = None;
    for _ in 0..3 {
        if let Some(d) = db.take() {
            d.close()?;
        }
        let t = Instant::now();
        db = Some(kind.open(dir)?);
        opens.push(t.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!("{}: querying ...", kind.name());
    row.open_all_ms = opens.clone();
    row.open_ms = median(&mut opens);
    let mut db = db.context("opened")?;

    // Queries: one warm-up pass over the sample, then three timed passes;
    // per visitor the fastest of the three counts (so that a preemption on
    // this shared 2-core machine does not pose as the engine's tail).
    let visitors = &wl.summary.visitors;
    let per_transcript = messages_per_transcript(&wl.msgs);
    let mut rng = Rng::new(args.seed ^ 0xABCD);
    let picks: Vec<&str> = samples
        .query
        .iter()
        .map(|&vi| {
            let ts = &visitors[vi].transcripts;
            ts[rng.below(ts.len())].as_str()
        })
        .collect();
    let n_q = samples.query.len();
    let mut best = vec![[f64::INFINITY; 3]; n_q];
    row.query_ok = true;
    for pass in 0..4 {
        for (qi, &vi) in samples.query.iter().enumerate() {
            let v = &visitors[vi];
            let t = Instant::now();
            let ids = db.list(&v.email)?;
            let listed = t.elapsed();
            let mut total = 0usize;
            for id in &ids {
                total += db.read(id)?.len();
            }
            let whole = t.elapsed();
            let t = Instant::now();
            let one = db.read(picks[qi])?;
            let read = t.elapsed();
            if pass == 0 {
                continue;
            }
            let b = &mut best[qi];
            b[0] = b[0].min(listed.as_secs_f64());
            b[1] = b[1].min(whole.as_secs_f64());
            b[2] = b[2].min(read.as_secs_f64());
            let expect: usize = v
                .transcripts
                .iter()
                .map(|t| per_transcript.get(t.as_str()).copied().unwrap_or(0))
                .sum();
            if ids.len() != v.transcripts.len()
                || total != expect
                || one.len() != per_transcript.get(picks[qi]).copied().unwrap_or(0)
            {
                row.query_ok = false;
            }
        }
    }
    for b in &best {
        row.list.push(Duration::from_secs_f64(b[0]));
        row.query.push(Duration::from_secs_f64(b[1]));
        row.read.push(Duration::from_secs_f64(b[2]));
    }
    row.notes.extend(db.notes());

    row.found_before = forensic::count(needles, dir)?;

    // Erasure, one visitor at a time, each durable before it returns.
    eprintln!(
        "{}: erasing {} visitors ...",
        kind.name(),
        samples.erase.len()
    );
    row.erase_ok = true;
    for &vi in &samples.erase {
        let v = &visitors[vi];
        let t = Instant::now();
        db.erase(&v.email)
            .with_context(|| format!("erasing visitor #{vi}"))?;
        row.erase.push(t.elapsed());
        if !db.list(&v.email)?.is_empty() {
            row.erase_ok = false;
        }
    }
    eprintln!("{}: erased", kind.name());
    row.size_erase = stats::size(dir);
    row.found_erase = forensic::count(needles, dir)?;

    // Open again now that the store has seen erasures (median of three).
    let mut opens = Vec::new();
    let mut db = Some(db);
    for _ in 0..3 {
        if let Some(d) = db.take() {
            d.close()?;
        }
        let t = Instant::now();
        db = Some(kind.open(dir)?);
        opens.push(t.elapsed().as_secs_f64() * 1e3);
    }
    row.open_after_erase_ms = median(&mut opens);
    let mut db = db.context("opened")?;

    // The engine's own reclamation, then close (so that files it lets go of
    // are gone) and look again.
    let t = Instant::now();
    db.reclaim()?;
    row.reclaim_s = t.elapsed().as_secs_f64();
    db.close()?;
    row.size_reclaim = stats::size(dir);
    row.found_reclaim = forensic::count(needles, dir)?;
    Ok(row)
}

fn messages_per_transcript(msgs: &[Message]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for msg in msgs {
        *m.entry(msg.transcript.as_str()).or_insert(0) += 1;
    }
    m
}

#[derive(Default)]
pub struct ShredExtra {
    pub group_commit: Option<GroupCommit>,
    /// Syncs counted under strace, per engine.
    pub syncs: Vec<(Kind, std::result::Result<probe::Syncs, String>)>,
    pub small: Option<SmallStore>,
    /// shredlog's ingest CPU time split into its parts.
    pub phases: Option<phases::Phases>,
    /// The streaming ingest, per engine.
    pub streamed: Vec<(Kind, std::result::Result<stream::Streamed, String>)>,
}

pub struct GroupCommit {
    pub one_per_s: f64,
    pub eight_per_s: f64,
    pub one_appends: u64,
    pub eight_appends: u64,
}

/// `Immediate` appends of single messages: one writer, then eight writers
/// sharing the store, each for `group_commit_secs`.
fn group_commit(dir: &Path, wl: &Workload, args: &Args) -> Result<GroupCommit> {
    let store = Store::open(dir, engines_shred_options())?;
    let budget = Duration::from_secs_f64(args.group_commit_secs / 4.0);
    let phase = |writers: usize, tag: &str| -> Result<(u64, f64)> {
        let count = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let t = Instant::now();
        std::thread::scope(|s| {
            for w in 0..writers {
                let store = &store;
                let count = &count;
                let failed = &failed;
                s.spawn(move || {
                    let mut round = 0u64;
                    'outer: loop {
                        for m in &wl.msgs {
                            if t.elapsed() >= budget {
                                break 'outer;
                            }
                            let mut m = m.clone();
                            m.transcript = format!("{tag}{w}-{round}-{}", m.transcript);
                            if store.append(&m).is_err() {
                                failed.store(true, Ordering::Relaxed);
                                break 'outer;
                            }
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        round += 1;
                    }
                });
            }
        });
        if failed.load(Ordering::Relaxed) {
            bail!("an append failed during the group-commit probe");
        }
        let n = count.load(Ordering::Relaxed);
        Ok((n, n as f64 / t.elapsed().as_secs_f64()))
    };
    // Alternate short phases so that both see the same device.
    let rounds = 4;
    let (mut one_appends, mut one_s, mut eight_appends, mut eight_s) = (0, 0.0, 0, 0.0);
    for r in 0..rounds {
        let (n, rate) = phase(1, &format!("a{r}-"))?;
        one_appends += n;
        one_s += n as f64 / rate;
        let (n, rate) = phase(8, &format!("b{r}-"))?;
        eight_appends += n;
        eight_s += n as f64 / rate;
    }
    let one_per_s = one_appends as f64 / one_s;
    let eight_per_s = eight_appends as f64 / eight_s;
    store.close()?;
    if !args.keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(GroupCommit {
        one_per_s,
        eight_per_s,
        one_appends,
        eight_appends,
    })
}

fn engines_shred_options() -> shredlog::Options {
    shredlog::Options {
        durability: shredlog::Durability::Immediate,
        ..shredlog::Options::default()
    }
}

pub struct SmallStore {
    pub visitors: usize,
    pub messages: usize,
    pub transcripts: u64,
    pub bytes: u64,
    pub open_ms: f64,
    pub erase: Latencies,
    /// Erasures in the full-size store, alternating with `erase`.
    pub erase_large: Latencies,
    /// Erasures in each store after both were dropped from the page cache,
    /// alternating (small, full-size).
    pub erase_cold: Latencies,
    pub erase_large_cold: Latencies,
    pub notes: Vec<String>,
}

/// shredlog alone on a workload a tenth of the size: open time and erasure,
/// to see how they grow with the store. The erasures alternate with erasures
/// of not-yet-erased visitors (the query sample) in the full-size store, so
/// that both see the same device (its sync latency drifts by 10× and more on
/// this shared machine from one minute to the next). Both stores' files are
/// read into the page cache first: the small store was just written and sat
/// there, the full-size one was written long before, with other engines'
/// files since, and left so the ratio measured the cache, not the store's
/// size. A quarter as many erasures more then alternate with both stores'
/// files dropped from the page cache (cold), reported beside.
fn small_store(
    dir: &Path,
    args: &Args,
    visitors: usize,
    large: (PathBuf, &Workload, &data::Samples),
) -> Result<SmallStore> {
    let wl = data::prepare(workload_config(args, visitors))?;
    let cold_n = args.erase_sample / 4;
    let samples = data::samples(visitors, args.erase_sample, cold_n, args.seed);
    let mut db = Kind::Shredlog.open(dir)?;
    for ((m, b), meta) in wl
        .msgs
        .chunks(args.batch)
        .zip(wl.bare.chunks(args.batch))
        .zip(wl.meta.chunks(args.batch))
    {
        db.ingest(m, b, meta)?;
    }
    db.close()?;
    let bytes = stats::size(dir).allocated;
    let mut opens = Vec::new();
    let mut db = None;
    for _ in 0..3 {
        if let Some(d) = db.take() {
            Db::close(d)?;
        }
        let t = Instant::now();
        db = Some(Kind::Shredlog.open(dir)?);
        opens.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut db = db.context("opened")?;
    let notes = db.notes();
    let (large_dir, large_wl, large_samples) = large;
    let mut big = Kind::Shredlog.open(&large_dir)?;
    stats::warm(dir).context("reading the small store into the page cache")?;
    stats::warm(&large_dir).context("reading the full-size store into the page cache")?;
    let mut erase = Latencies::default();
    let mut erase_large = Latencies::default();
    for (i, &vi) in samples.erase.iter().enumerate() {
        let t = Instant::now();
        db.erase(&wl.summary.visitors[vi].email)?;
        erase.push(t.elapsed());
        if let Some(&li) = large_samples.query.get(i) {
            let t = Instant::now();
            big.erase(&large_wl.summary.visitors[li].email)?;
            erase_large.push(t.elapsed());
        }
    }
    stats::evict(dir).context("dropping the small store from the page cache")?;
    stats::evict(&large_dir).context("dropping the full-size store from the page cache")?;
    let mut erase_cold = Latencies::default();
    let mut erase_large_cold = Latencies::default();
    let large_cold = large_samples.query.iter().skip(samples.erase.len());
    for (&vi, &li) in samples.query.iter().zip(large_cold) {
        let t = Instant::now();
        db.erase(&wl.summary.visitors[vi].email)?;
        erase_cold.push(t.elapsed());
        let t = Instant::now();
        big.erase(&large_wl.summary.visitors[li].email)?;
        erase_large_cold.push(t.elapsed());
    }
    big.close()?;
    db.close()?;
    if !args.keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(SmallStore {
        visitors,
        messages: wl.msgs.len(),
        transcripts: wl.summary.transcripts,
        bytes,
        open_ms: median(&mut opens),
        erase,
        erase_large,
        erase_cold,
        erase_large_cold,
        notes,
    })
}
