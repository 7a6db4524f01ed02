//! The markdown report: tables, machine, targets, and the text around them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::data::{Samples, Workload};
use crate::device::Device;
use crate::engines::Kind;
use crate::forensic::Needles;
use crate::{Args, EngineRow, ShredExtra};

/// Everything below this line in docs/BENCHMARKS.md is kept when the file is
/// regenerated (hand-written notes).
pub const KEEP_MARKER: &str =
    "<!-- Everything below this line is kept when shredlog-compare rewrites this file. -->";

pub struct Report<'a> {
    pub args: &'a Args,
    pub dev: &'a Device,
    pub wl: &'a Workload,
    pub samples: &'a Samples,
    pub needles: &'a Needles,
    pub rows: &'a [EngineRow],
    pub extra: &'a ShredExtra,
    pub data_dir: &'a Path,
    pub elapsed: Duration,
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn ms(us: f64) -> String {
    if us.is_nan() {
        "–".into()
    } else if us < 1000.0 {
        format!("{:.3}", us / 1e3)
    } else {
        format!("{:.2}", us / 1e3)
    }
}

fn us(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.0}")
    }
}

fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

impl Report<'_> {
    fn ok_rows(&self) -> impl Iterator<Item = &EngineRow> {
        self.rows.iter().filter(|r| r.error.is_none())
    }

    fn shred(&self) -> Option<&EngineRow> {
        self.ok_rows().find(|r| r.kind == Some(Kind::Shredlog))
    }

    fn peers(&self) -> impl Iterator<Item = &EngineRow> {
        self.ok_rows().filter(|r| r.kind != Some(Kind::Shredlog))
    }

    /// The main table (also printed on stdout).
    pub fn summary_markdown(&self) -> String {
        let mut s = String::new();
        let n = self.samples.erase.len();
        let _ = writeln!(
            s,
            "| engine | ingest s | msgs/s | msgs/s incl. parsing | size after ingest MB | open ms | visitor query p50 / p99 ms | erase p50 / p99 ms | size after erase MB | reclaim s | size after reclaim MB | PII strings found (of {}): before erase / after erase / after reclaim |",
            self.needles.strings.len()
        );
        s.push_str(
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for r in self.rows {
            if let Some(e) = &r.error {
                let _ = writeln!(
                    s,
                    "| {} | failed: {} ||||||||||| ",
                    r.name(),
                    e.replace('|', "/")
                );
                continue;
            }
            let flag = if r.query_ok && r.erase_ok { "" } else { " ⚠" };
            let _ = writeln!(
                s,
                "| {}{} | {:.2} | {} | {} | {} | {:.1} | {} / {} | {} / {} | {} | {:.2} | {} | {} / {} / {} |",
                r.name(),
                flag,
                r.ingest_s,
                thousands(r.msgs_per_s),
                thousands(self.wl.msgs.len() as f64 / (r.ingest_s + self.wl.parse_s)),
                mb(r.size_ingest.allocated),
                r.open_ms,
                ms(r.query.p50()),
                ms(r.query.p99()),
                ms(r.erase.p50()),
                ms(r.erase.p99()),
                mb(r.size_erase.allocated),
                r.reclaim_s,
                mb(r.size_reclaim.allocated),
                r.found_before.total,
                r.found_erase.total,
                r.found_reclaim.total,
            );
        }
        let _ = writeln!(
            s,
            "\n{} messages in {} commits of {} (durable), {} visitors queried, {} erased.",
            self.wl.msgs.len(),
            self.rows.first().map_or(0, |r| r.commits),
            self.args.batch,
            self.samples.query.len(),
            n
        );
        s
    }

    fn detail_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| engine | device fdatasync p50 / p99 µs just before | ingest CPU s (all threads) | list a visitor's transcripts p50 / p99 µs | read one transcript p50 / p99 µs | visitor query p50 / p99 µs | erase p50 / p99 µs | the three opens, ms | open after the erasures ms | apparent size after ingest / erase / reclaim MB | results checked |\n");
        s.push_str(
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
        );
        for r in self.ok_rows() {
            let opens: Vec<String> = r.open_all_ms.iter().map(|m| format!("{m:.1}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} / {} | {:.2} of {:.2} s | {} / {} | {} / {} | {} / {} | {} / {} | {} | {:.1} | {} / {} / {} | {} |",
                r.name(),
                us(r.sync_before.p50()),
                us(r.sync_before.p99()),
                r.ingest_cpu_s,
                r.ingest_s,
                us(r.list.p50()),
                us(r.list.p99()),
                us(r.read.p50()),
                us(r.read.p99()),
                us(r.query.p50()),
                us(r.query.p99()),
                us(r.erase.p50()),
                us(r.erase.p99()),
                opens.join(", "),
                r.open_after_erase_ms,
                mb(r.size_ingest.apparent),
                mb(r.size_erase.apparent),
                mb(r.size_reclaim.apparent),
                match (r.query_ok, r.erase_ok) {
                    (true, true) => "queries and erasures ok".to_string(),
                    (q, e) => format!(
                        "{}{}",
                        if q { "" } else { "QUERY MISMATCH " },
                        if e { "" } else { "ERASED VISITOR STILL LISTED" }
                    ),
                },
            );
        }
        s
    }

    fn device_markdown(&self) -> String {
        let d = self.dev;
        let mut s = String::new();
        s.push_str("| probe | result |\n| --- | ---: |\n");
        let _ = writeln!(
            s,
            "| sequential write, {} MiB in 1 MiB writes + one fsync | {:.0} MB/s |",
            d.seq_bytes >> 20,
            d.seq_write_mb_s
        );
        let _ = writeln!(
            s,
            "| 4 KiB overwrite + fdatasync, {} times: p50 / p99 | {:.0} / {:.0} µs |",
            d.fdatasync.len(),
            d.fdatasync.p50(),
            d.fdatasync.p99()
        );
        let _ = writeln!(
            s,
            "| AES-256-GCM seal of 300 B messages, one core | {:.0} MB/s ({:.2} M messages/s) |",
            d.aead_mb_s,
            d.aead_msgs_s / 1e6
        );
        s
    }

    fn targets_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| target (issue 8) | measured in this run | verdict |\n| --- | --- | --- |\n");
        let Some(sh) = self.shred() else {
            s.push_str("| all | shredlog was not run | – |\n");
            return s;
        };
        let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
        let best = |f: &dyn Fn(&EngineRow) -> f64, lower: bool| -> Option<(&EngineRow, f64)> {
            let mut it = self
                .peers()
                .map(|r| (r, f(r)))
                .filter(|(_, v)| v.is_finite());
            let first = it.next()?;
            Some(it.fold(first, |a, b| {
                if (lower && b.1 < a.1) || (!lower && b.1 > a.1) {
                    b
                } else {
                    a
                }
            }))
        };

        // Ingest.
        if let Some((p, v)) = best(&|r| r.msgs_per_s, false) {
            let x = sh.msgs_per_s / v;
            let _ = writeln!(
                s,
                "| durable ingest at the same batch size ≥ the fastest peer | shredlog {} msgs/s, fastest peer {} {} msgs/s: **{}** | {} |",
                thousands(sh.msgs_per_s),
                p.name(),
                thousands(v),
                ratio(x),
                verdict(x >= 1.0)
            );
        }
        // Group commit.
        if let Some(g) = &self.extra.group_commit {
            let x = g.eight_per_s / g.one_per_s;
            let _ = writeln!(
                s,
                "| 8 concurrent `Immediate` writers ≥ 6× one writer | 1 writer {} appends/s, 8 writers {} appends/s: **{}** | {} |",
                thousands(g.one_per_s),
                thousands(g.eight_per_s),
                ratio(x),
                verdict(x >= 6.0)
            );
        }
        // Erasure: fsyncs.
        let sync_p50 = self.dev.fdatasync.p50();
        let counted = self.extra.syncs.iter().find_map(|(k, r)| match r {
            Ok(sy) if *k == Kind::Shredlog => Some(sy),
            _ => None,
        });
        match counted {
            Some(sy) => {
                let _ = writeln!(
                    s,
                    "| erasure of one visitor: ≤ 2 fsyncs | {:.2} syncs per `redact_visitor` (strace: {}); erase p50 {} µs = {:.1}× this device's fdatasync p50 ({:.0} µs) | {} |",
                    sy.per_erase(),
                    sy.erase
                        .iter()
                        .map(|(f, n)| format!("{f} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    us(sh.erase.p50()),
                    sh.erase.p50() / sync_p50,
                    sync_p50,
                    verdict(sy.per_erase() <= 2.0)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| erasure of one visitor: ≤ 2 fsyncs | not counted (no strace); erase p50 {} µs = {:.1}× this device's fdatasync p50 ({:.0} µs) | – |",
                    us(sh.erase.p50()),
                    sh.erase.p50() / sync_p50,
                    sync_p50
                );
            }
        }
        // Erasure: growth.
        if let Some(small) = &self.extra.small {
            let grow = self.wl.msgs.len() as f64 / small.messages as f64;
            let x = small.erase_large.p50() / small.erase.p50();
            let _ = writeln!(
                s,
                "| erasure time grows < 1.5× when the store grows 10× | erasures alternating between the two stores, both in the page cache: p50 {} µs at {} messages, {} µs at {} ({:.1}× the messages): **{}** | {} |",
                us(small.erase.p50()),
                thousands(small.messages as f64),
                us(small.erase_large.p50()),
                thousands(self.wl.msgs.len() as f64),
                grow,
                ratio(x),
                verdict(x < 1.5)
            );
        }
        // Erasure vs the peers: until the data is physically gone.
        let shred_gone_us = if sh.found_erase.total == 0 {
            sh.erase.p50()
        } else {
            sh.erase.p50() + sh.reclaim_s * 1e6
        };
        let mut parts = Vec::new();
        let mut all_met = true;
        for p in self.peers() {
            if p.found_reclaim.total == 0 {
                let gone = p.erase.p50() + p.reclaim_s * 1e6;
                let x = gone / shred_gone_us;
                all_met &= x > 1000.0;
                parts.push(format!("{} {:.0} ms ({})", p.name(), gone / 1e3, ratio(x)));
            } else {
                parts.push(format!(
                    "{}: never ({} strings still there after its reclamation)",
                    p.name(),
                    p.found_reclaim.total
                ));
            }
        }
        let _ = writeln!(
            s,
            "| erased data gone from the files > 1000× sooner than the peers (their delete + reclamation) | shredlog {} µs ({}); {} | {} |",
            us(shred_gone_us),
            if sh.found_erase.total == 0 {
                "no erased string readable after `redact_visitor`"
            } else {
                "strings remained until compaction"
            },
            parts.join("; "),
            verdict(all_met)
        );
        // Open.
        if let Some((p, v)) = best(&|r| r.open_ms, true) {
            let x = sh.open_ms / v;
            let _ = writeln!(
                s,
                "| open ≤ the fastest peer | shredlog {:.1} ms, fastest peer {} {:.1} ms: **{}** | {} |",
                sh.open_ms,
                p.name(),
                v,
                ratio(x),
                verdict(x <= 1.0)
            );
        }
        if let Some(small) = &self.extra.small {
            let t = self.wl.summary.transcripts as f64 / small.transcripts as f64;
            let b = sh.size_ingest.allocated as f64 / small.bytes as f64;
            let o = sh.open_ms / small.open_ms;
            let _ = writeln!(
                s,
                "| open time proportional to transcripts, not bytes | transcripts {}, bytes {}, open time {} (from {:.1} to {:.1} ms) | {} |",
                ratio(t),
                ratio(b),
                ratio(o),
                small.open_ms,
                sh.open_ms,
                if o <= t * 1.5 {
                    "met (grows no faster than the transcripts)"
                } else {
                    "**missed**"
                }
            );
        }
        // Reads.
        for (what, f) in [
            (
                "read one transcript p99",
                &(|r: &EngineRow| r.read.p99()) as &dyn Fn(&EngineRow) -> f64,
            ),
            ("list a visitor p99", &|r: &EngineRow| r.list.p99()),
            ("visitor query (list + read all) p99", &|r: &EngineRow| {
                r.query.p99()
            }),
        ] {
            if let Some((p, v)) = best(f, true) {
                let x = f(sh) / v;
                let _ = writeln!(
                    s,
                    "| {what} ≤ the best peer | shredlog {} µs, best peer {} {} µs: **{}** | {} |",
                    us(f(sh)),
                    p.name(),
                    us(v),
                    ratio(x),
                    verdict(x <= 1.0)
                );
            }
        }
        // Size.
        let (bound, overhead) = self.size_bound();
        let x = sh.size_ingest.allocated as f64 / bound as f64;
        let y = sh.size_reclaim.allocated as f64 / bound as f64;
        let _ = writeln!(
            s,
            "| size after compaction ≤ 1.1 × (live data + per-record encryption overhead) | live payload {} MB + overhead {} MB = {} MB; shredlog {} MB after ingest (nothing dead yet): **{}**; {} MB after erasing {} visitors and compacting: {} | {} |",
            mb(self.wl.payload_bytes),
            mb(overhead),
            mb(bound),
            mb(sh.size_ingest.allocated),
            ratio(x),
            mb(sh.size_reclaim.allocated),
            self.samples.erase.len(),
            ratio(y),
            verdict(x <= 1.1)
        );
        s
    }

    /// (live payload + overhead, overhead), bytes, per docs/FORMAT.md §12:
    /// 104 bytes per record, 16 more with a PII part; in the keyring
    /// (unwrapped, format 3: §6.2), per transcript a transcript slot of
    /// ⌈(8 + 79 + caller id) / 63⌉ cells and a PII slot of 1, per visitor a
    /// directory slot of ⌈(8 + 18 + email) / 63⌉ cells, 64 bytes each, and
    /// 1,024 bytes of header and state.
    fn size_bound(&self) -> (u64, u64) {
        let cells = |payload: usize| (8 + payload).div_ceil(63) as u64;
        let records = self.wl.msgs.len() as u64;
        let keyring: u64 = self
            .wl
            .summary
            .visitors
            .iter()
            .map(|v| {
                cells(18 + v.email.len())
                    + v.transcripts
                        .iter()
                        .map(|t| cells(79 + t.len()) + 1)
                        .sum::<u64>()
            })
            .sum();
        let overhead = 104 * records + 16 * self.wl.records_with_pii + 64 * keyring + 1024;
        (self.wl.payload_bytes + overhead, overhead)
    }

    /// The streaming ingest: throughput with parsing inside the timing and
    /// each engine's peak resident memory in a process of its own.
    fn streamed_markdown(&self) -> String {
        let mut s = String::new();
        let ok: Vec<(Kind, &crate::stream::Streamed)> = self
            .extra
            .streamed
            .iter()
            .filter_map(|(k, r)| r.as_ref().ok().map(|x| (*k, x)))
            .collect();
        if self.extra.streamed.is_empty() {
            return s;
        }
        let best_peer = ok
            .iter()
            .filter(|(k, _)| *k != Kind::Shredlog)
            .map(|(_, x)| x.msgs_per_s())
            .fold(0.0, f64::max);
        let sqlite_peak = ok
            .iter()
            .find(|(k, _)| *k == Kind::Sqlite)
            .map_or(f64::NAN, |(_, x)| x.peak_mib);
        let _ = writeln!(
            s,
            "\nStreaming ingest: a fresh process per engine reads the interchange file line by line, parses each line with `interchange::parse_line` **inside the timing**, and commits durably every {} messages, keeping nothing but the batch (and, for the peers, the application's map of visitor and transcript numbers). Peak memory is the process's `VmHWM`: everything it held at its high point, the engine's own caches and the batch included.\n\n| engine | msgs/s incl. parsing | of the fastest peer | wall s | CPU s (all threads) | of which parsing s | resident once open MiB | peak resident MiB | of SQLite's |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            self.args.batch
        );
        for (k, r) in &self.extra.streamed {
            match r {
                Ok(x) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
                        k.name(),
                        thousands(x.msgs_per_s()),
                        ratio(x.msgs_per_s() / best_peer),
                        x.wall_s,
                        x.cpu_s,
                        x.parse_s,
                        x.open_mib,
                        x.peak_mib,
                        ratio(x.peak_mib / sqlite_peak),
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        s,
                        "| {} | failed: {} |||||||| ",
                        k.name(),
                        e.replace('|', "/")
                    );
                }
            }
        }
        s
    }

    /// shredlog's ingest CPU time per message, by part.
    fn phases_markdown(&self) -> String {
        let mut s = String::new();
        let Some(p) = &self.extra.phases else {
            return s;
        };
        let total = p.parse_s + p.detect_s + p.seal_s + p.write_s;
        let _ = writeln!(
            s,
            "\nshredlog's CPU time per message, by part ({} messages; parsing timed when the workload was read, detection and sealing timed alone on one core over the same messages, writing = the ingest's CPU time above less those two):\n\n| part | µs per message | share |\n| --- | ---: | ---: |",
            thousands(p.messages as f64)
        );
        for (name, v) in [
            ("parse (`interchange::parse_line`)", p.parse_s),
            (
                "detect (`pii::Detector::find` on texts and consent prompts)",
                p.detect_s,
            ),
            ("seal (AES-256-GCM of each message's payload)", p.seal_s),
            (
                "write (encode, keys, index, segment writes and syncs)",
                p.write_s,
            ),
        ] {
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.0} % |",
                name,
                p.per_msg_us(v),
                100.0 * v / total
            );
        }
        let _ = writeln!(s, "| all | {:.2} | 100 % |", p.per_msg_us(total));
        s
    }

    pub fn render(&self, existing: Option<&Path>) -> Result<String> {
        let kept = existing
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| {
                t.find(KEEP_MARKER)
                    .map(|i| t[i + KEEP_MARKER.len()..].to_string())
            })
            .unwrap_or_else(|| "\n\n## Notes\n\n(none yet)\n".to_string());
        let a = self.args;
        let wl = self.wl;
        let cfg = crate::workload_config(a, a.visitors);
        let mut s = String::new();
        s.push_str("# Benchmarks: shredlog next to the engines users would otherwise pick\n\n");
        s.push_str("This file is written by the comparison harness (`compare/`, binary `shredlog-compare`); regenerate it whenever performance work lands. Every number below comes from **one run on one machine**: the peers, shredlog and the device's own limits were measured side by side.\n\n");
        s.push_str("## Reproduce\n\nOne command from the repository root (Debian 12; RocksDB is linked from the system library, never built from source):\n\n```sh\n");
        s.push_str("apt-get update && apt-get install -y librocksdb-dev libclang-dev strace && \\\n  ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu ROCKSDB_INCLUDE_DIR=/usr/include \\\n  cargo run --release -p shredlog-compare --features rocksdb -- --visitors 10000 --batch 1000\n```\n\n");
        s.push_str("Without RocksDB: `cargo run --release -p shredlog-compare -- --visitors 10000 --batch 1000`. `--help` lists the knobs (`--engines`, `--dir`, `--out -`, `--keep`, sample sizes). The stores are created in a fresh `.shredlog-compare-*` directory under `--dir` (default: the current directory, so the device probes measure the same file system) and removed afterwards. The first build takes about 12 minutes on this 2-core machine (bundled SQLite, RocksDB's bindings; RocksDB itself is not compiled); a run takes about a minute (this one's time is given below). `strace` is optional: without it the sync counts are left out. The harness is a separate workspace member: `cargo test` and `cargo clippy --all-targets` at the root never build it.\n\n");
        let _ = writeln!(
            s,
            "This run: `--profile {} --visitors {} --batch {} --seed {} --file-probability {} --max-file-bytes {} --query-sample {} --erase-sample {}`, engines: {}. It took {:.0} s (without the build).\n",
            a.profile.name(),
            a.visitors,
            a.batch,
            a.seed,
            a.file_probability,
            a.max_file_bytes,
            a.query_sample,
            a.erase_sample,
            self.rows
                .iter()
                .map(EngineRow::name)
                .collect::<Vec<_>>()
                .join(", "),
            self.elapsed.as_secs_f64()
        );
        s.push_str("## Machine\n\n");
        s.push_str(&machine(self.data_dir));
        s.push_str("\n## Workload\n\n");
        let _ = writeln!(
            s,
            "Traffic profile **{}**. `workload::generate` with seed {}: {} visitors, {} transcripts, **{} messages** (text, forms, consent events; a transcript carries one uploaded file with probability {}, {}–{} bytes; a text runs long, 300–3,000 characters, with probability {}), {:.1} MB of interchange JSON; parsing it alone took {:.2} s. Logical payload (ids, timestamps, texts, form fields, file bytes, each visitor's details once per transcript): {:.1} MB. The same parsed messages go to every engine, in input order, in durable commits of **{} messages**. {} visitors (disjoint from the erased ones) are queried; {} are erased one at a time.\n",
            a.profile.name(),
            a.seed,
            wl.summary.visitors.len(),
            wl.summary.transcripts,
            thousands(wl.msgs.len() as f64),
            cfg.file_probability,
            cfg.file_size.0,
            cfg.file_size.1,
            cfg.long_text_probability,
            wl.input_bytes as f64 / 1e6,
            wl.parse_s,
            wl.payload_bytes as f64 / 1e6,
            a.batch,
            self.samples.query.len(),
            self.samples.erase.len(),
        );
        s.push_str("## Device and CPU limits (same run, same file system)\n\n");
        s.push_str(&self.device_markdown());
        s.push_str("\n## Results\n\n");
        s.push_str(&self.summary_markdown());
        s.push_str("\nLatency detail (µs) and checks:\n\n");
        s.push_str(&self.detail_markdown());
        s.push_str("\nWhere the erased visitors' strings were found (file, distinct strings in it):\n\n| engine | right after the erasures | after the reclamation and close |\n| --- | --- | --- |\n");
        for r in self.ok_rows() {
            let w = |f: &crate::forensic::Found| {
                if f.total == 0 {
                    "nowhere".to_string()
                } else {
                    f.where_(4)
                }
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                r.name(),
                w(&r.found_erase),
                w(&r.found_reclaim)
            );
        }
        for r in self.ok_rows() {
            for n in &r.notes {
                let _ = writeln!(s, "\n{}: {}", r.name(), n);
            }
        }
        if !self.extra.syncs.is_empty() {
            let _ = writeln!(
                s,
                "\nSyncs counted with `strace -f` (fsync, fdatasync, sync_file_range, msync, every thread) on a separate small store ({} visitors, the same batch size; {} erasures):\n\n| engine | syncs per durable commit | syncs per erasure | during the ingest, by file | during the erasures, by file |\n| --- | ---: | ---: | --- | --- |",
                crate::probe::VISITORS,
                crate::probe::ERASURES
            );
            for (k, r) in &self.extra.syncs {
                match r {
                    Ok(sy) => {
                        let files = |m: &std::collections::BTreeMap<String, usize>| {
                            m.iter()
                                .map(|(f, n)| format!("{f}: {n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let _ = writeln!(
                            s,
                            "| {} | {:.2} ({} commits) | {:.2} | {} | {} |",
                            k.name(),
                            sy.per_commit(),
                            sy.commits,
                            sy.per_erase(),
                            files(&sy.ingest),
                            files(&sy.erase)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            s,
                            "| {} | failed: {} | | | |",
                            k.name(),
                            e.replace('|', "/")
                        );
                    }
                }
            }
        }
        s.push_str(&self.streamed_markdown());
        s.push_str(&self.phases_markdown());
        if let Some(g) = &self.extra.group_commit {
            let _ = writeln!(
                s,
                "\nshredlog group commit (`Store::append` of single messages, `Durability::Immediate`, {:.1} s in all for each, in four alternating rounds): 1 writer {} appends/s ({} appends), 8 writers {} appends/s ({} appends).",
                a.group_commit_secs,
                thousands(g.one_per_s),
                g.one_appends,
                thousands(g.eight_per_s),
                g.eight_appends
            );
        }
        if let Some(sm) = &self.extra.small {
            let _ = writeln!(
                s,
                "\nshredlog at a tenth of the size ({} visitors, {} transcripts, {} messages, {} MB): open {:.1} ms (median of 3), erase p50 / p99 {} / {} µs over {} erasures, alternating with erasures in the full-size store: p50 / p99 {} / {} µs (both stores' files read into the page cache first). Then {} more alternating, both stores' files dropped from the page cache first (cold): p50 / p99 {} / {} µs at a tenth, {} / {} µs at full size.",
                sm.visitors,
                sm.transcripts,
                thousands(sm.messages as f64),
                mb(sm.bytes),
                sm.open_ms,
                us(sm.erase.p50()),
                us(sm.erase.p99()),
                sm.erase.len(),
                us(sm.erase_large.p50()),
                us(sm.erase_large.p99()),
                sm.erase_cold.len(),
                us(sm.erase_cold.p50()),
                us(sm.erase_cold.p99()),
                us(sm.erase_large_cold.p50()),
                us(sm.erase_large_cold.p99())
            );
            for n in &sm.notes {
                let _ = writeln!(s, "\nshredlog at a tenth of the size: {n}");
            }
        }
        s.push_str("\n## Targets (issue 8), as ratios from this run\n\n");
        s.push_str(&self.targets_markdown());
        s.push_str("\n## What each number means\n\n");
        s.push_str(MEANINGS);
        s.push_str("\n## How each engine is set up\n\n");
        s.push_str(&engines_setup());
        s.push('\n');
        s.push_str(KEEP_MARKER);
        s.push_str(&kept);
        Ok(s)
    }
}

const MEANINGS: &str = "\
- **ingest s, msgs/s**: wall time to write every message, one durable commit per batch (the batch size above), from an open empty store to the last commit returning; msgs/s = messages / ingest s. Serialising each message (peers: interchange JSON without the visitor object; shredlog: its own encoding, PII detection and AES-256-GCM sealing) is inside the timing; parsing the input is not (it is reported once, above).
- **device fdatasync just before**: 50 of the device probe's 4 KiB overwrite + fdatasync, run in the engine's own directory right before its turn. The engines run one after the other on a shared machine, and the device's sync latency changes by an order of magnitude from minute to minute (neighbours' I/O). This column shows what each engine's sync-bound numbers (ingest, erase) were up against; compare engines' sync-bound figures only where these are alike.
- **ingest CPU s**: CPU time of the whole process (user + system, every thread, from /proc/self/stat) during the ingest, next to its wall time. Below the wall time, the rest is spent waiting, mostly for syncs; above it, the engine used more than one core (shredlog detects personal data on every core for batches of 128 messages and more).
- **syncs per durable commit / per erasure**: counted, not estimated: the harness runs itself under `strace -f` on a small separate store and counts fsync, fdatasync, sync_file_range and msync calls of every thread between markers, by file (numbered files shown as `N`).
- **size after ingest / erase / reclaim MB**: bytes the store's directory occupies on the device (allocated blocks, as `du` counts them; 1 MB = 10⁶ bytes), after closing it (ingest, reclaim) or while open right after the last erasure (erase). The detail table gives the apparent file lengths.
- **open ms**: close the store, then time opening it again until it can answer a query (SQLite: until the schema is read); median of three. *Open after the erasures* is the same, measured again once the erasures are done (before the reclamation).
- **visitor query**: look a visitor up by email, list their transcripts newest first, read every message of every transcript, and decode it into `shredlog::Message`s (peers parse the stored JSON; shredlog decrypts and joins). One untimed warm-up pass over the sample, then three timed passes; for each visitor the fastest of the three counts (this machine is shared, and a preemption is not the engine's tail), and p50 / p99 are taken over the sampled visitors. *list* and *read one transcript* in the detail table are the two halves measured on their own (a random transcript of the same visitor).
- **erase p50 / p99**: one erasure request, durable when the call returns. shredlog: `redact_visitor` (destroys the PII keys and the directory entry; the conversation stays readable with `<redacted>`). Peers: delete every row of the visitor (visitor, email index, transcript rows and index entries, every message) in one durable commit.
- **reclaim s**: the engine's own space reclamation, run once after all the erasures (see the set-up list for which call).
- **PII strings found**: the erased visitors' email, name, phone, internal id, IP and every email/phone/IP they typed (from the workload's ground truth, `VisitorTruth`), searched as plain bytes (ASCII case-insensitive) in every file of the store's directory: before the erasures (shows the search works: a peer that stores them in clear finds all), right after them, and after the reclamation and close. Strings shorter than 5 bytes, and strings that also occur in the data of a visitor who was not erased (shared names), are left out. Zero after erase means nothing of the erased visitors can be read from the files any more.
- **device limits**: sequential write = one file written in 1 MiB writes and fsynced once, MB/s over the whole thing; fdatasync = rewriting 4 KiB at offset 0 of a file and fdatasync'ing it, 200 times; AEAD = AES-256-GCM (`aes-gcm` crate, the one shredlog uses) sealing 300-byte messages on one thread for 1.5 s.
- **targets**: each a ratio of two numbers from this run. *Erased data gone*: for a peer, its erase p50 plus its reclamation time, provided the forensic count is zero after the reclamation (else the data is never gone); for shredlog, its erase p50 when nothing is found right after the erasure. *Size*: the bound is the logical payload plus docs/FORMAT.md §12's fixed costs (104 bytes per record, 16 more for a record with a PII part; in the keyring, the cells of each transcript's two slots and each visitor's directory slot as §6.2 sizes them (192 bytes per transcript and 64 per visitor for ids of up to 39 bytes and emails of up to 37), and 1,024 bytes of header and state).
- A ⚠ next to an engine means a check failed (a visitor query returned a different number of transcripts or messages than the workload holds, or an erased visitor was still listed).
";

fn engines_setup() -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .unwrap_or_default();
    let v = |name: &str| lock_version(&lock, name).unwrap_or_else(|| "?".into());
    let rocks_sys = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "librocksdb-dev"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "not installed".into());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- **shredlog** (this tree): `Options::default()` with `Durability::Immediate`; `append_batch` per commit batch; query = `transcripts_by_email` + `transcript`; erase = `redact_visitor`; reclaim = `compact(&CompactOptions::everything())`. Encryption is always on (it is the design); there is no compression."
    );
    let _ = writeln!(
        s,
        "- **sqlite**: rusqlite {} (`bundled`, SQLite {}), `journal_mode=WAL`, `synchronous=FULL` (the WAL is synced at every commit), `secure_delete=OFF` (the default); tables `visitors(vid PK, email UNIQUE, name, phone, ext_id, ip)`, `transcripts(tid PK, vid, first_ms)` with an index on `(vid, first_ms)`, `messages(tid, seq, line, PRIMARY KEY(tid, seq))`; one transaction per commit batch; erase = three `DELETE`s in one transaction; reclaim = `VACUUM` then `PRAGMA wal_checkpoint(TRUNCATE)`. SQLite does not compress.",
        v("rusqlite"),
        rusqlite::version()
    );
    let _ = writeln!(
        s,
        "- **sqlite-secure-delete**: the same with `PRAGMA secure_delete=ON` (freed content is overwritten with zeros)."
    );
    let _ = writeln!(
        s,
        "- **redb** {}: one write transaction per commit batch with the default durability (`Immediate`); five tables with `&[u8]` keys and values (below); reclaim = `Database::compact()` until it reports nothing left. redb does not compress.",
        v("redb")
    );
    let _ = writeln!(
        s,
        "- **fjall** {}: built without its `lz4` feature and every keyspace created with `CompressionPolicy::disabled()` for data and index blocks (the journal is uncompressed by default); one `WriteBatch` per commit batch with `durability(Some(PersistMode::SyncAll))`; reclaim = `rotate_memtable_and_wait` + `major_compact` on each keyspace.",
        v("fjall")
    );
    let _ = writeln!(
        s,
        "- **rocksdb**: crate {} (librocksdb-sys {}) linked against the system library (Debian's librocksdb-dev {}; the bindings are generated from the system's `rocksdb/c.h` via `ROCKSDB_INCLUDE_DIR`), built only with `--features rocksdb`; a column family per table, `DBCompressionType::None` for all and the bottommost level; one `WriteBatch` per commit batch written with `sync=true`; reclaim = `compact_range_cf` with `BottommostLevelCompaction::Force` on every column family.",
        v("rocksdb"),
        v("librocksdb-sys"),
        rocks_sys
    );
    s.push_str("- **key-value schema** (redb, fjall, RocksDB): `visitors`: vid (u64 BE) → visitor JSON; `email`: normalised email → vid; `visitor_transcripts`: vid ‖ first-message time (u64 BE) ‖ transcript id → empty (listing = reverse prefix scan); `transcripts`: id → vid ‖ time; `messages`: id ‖ 0x00 ‖ seq (u32 BE) → the message as interchange JSON without the visitor object. Erase = read the keys, then delete them all in one durable commit.\n");
    s.push_str("- **what the peers are given**: the visitor's numeric id and each message's sequence number come from the harness (as an application's session would supply them), so the peers do no lookups while ingesting; they write the visitor row, the email entry, the transcript row and its index entry on a transcript's first message. shredlog does all of that itself (and the PII detection). This favours the peers.\n");
    s
}

fn lock_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let i = lock.find(&needle)? + needle.len();
    let rest = &lock[i..];
    Some(rest[..rest.find('"')?].to_string())
}

fn machine(dir: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("?")
        .to_string();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let aes = flags.split_whitespace().any(|f| f == "aes");
    let mhz = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("?")
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    let (fs, dev, opts) = mount_of(dir);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "- CPU: {model}, {cpus} logical CPUs visible, {mhz} MHz, AES-NI {}\n- Memory: {mem}\n- File system of the stores: {fs} on {dev} ({opts})\n- OS: {os}, Linux {kernel}; {rustc}, release profile\n- Shared machine: other builds may run next to the benchmark, so repeat a run before trusting a small difference.\n",
        if aes { "yes" } else { "no" }
    )
}

/// (fs type, device, options) of the mount holding `dir`.
fn mount_of(dir: &Path) -> (String, String, String) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String, String, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let mp = f[1];
        if dir.starts_with(mp) && best.as_ref().is_none_or(|b| mp.len() >= b.0) {
            let opts: Vec<&str> = f[3].split(',').take(4).collect();
            best = Some((
                mp.len(),
                f[2].into(),
                f[0].into(),
                format!("mounted at {mp}, {}", opts.join(",")),
            ));
        }
    }
    best.map_or(("?".into(), "?".into(), "?".into()), |b| (b.1, b.2, b.3))
}
