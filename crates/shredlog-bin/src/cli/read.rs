//! Read-only subcommands: show, transcripts, verify, stats; and compact.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use shredlog::{Store, interchange};

#[derive(Args, Debug)]
pub(crate) struct TranscriptsArgs {
    /// The visitor's email (any letter case).
    #[arg(long)]
    email: String,
    /// Only transcripts with messages at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only transcripts with messages at or before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Print JSON lines instead of tab-separated columns.
    #[arg(long)]
    json: bool,
}

pub(crate) fn show(store: &Store, id: &str) -> Result<ExitCode> {
    let messages = store.transcript(id).context("cannot show the transcript")?;
    let mut out = super::out::stdout();
    for m in &messages {
        writeln!(out, "{}", interchange::to_line(m))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn transcripts(store: &Store, args: &TranscriptsArgs) -> Result<ExitCode> {
    let from = args
        .from
        .as_deref()
        .map(super::parse_ts)
        .transpose()
        .context("--from")?;
    let to = args
        .to
        .as_deref()
        .map(super::parse_ts)
        .transpose()
        .context("--to")?;
    let list = store.transcripts_by_email(&args.email, from, to)?;
    let mut out = super::out::stdout();
    for t in &list {
        if args.json {
            let v = serde_json::json!({
                "transcript": t.id, "first": t.first.as_str(), "last": t.last.as_str(),
                "messages": t.messages, "redacted": t.redacted,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}\t{}\t{}\t{}", t.id, t.first, t.last, t.messages)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify(store: &Store, json: bool) -> Result<ExitCode> {
    let report = store.verify()?;
    let mut out = super::out::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for p in &report.problems {
            writeln!(out, "problem: {p}")?;
        }
        let r = store.recovery_report();
        if let Some((path, at, bytes)) = &r.truncated {
            writeln!(
                out,
                "note: {} ends in {bytes} bytes of a write a crash cut short at offset {at} (never acknowledged; the next write cuts them off)",
                path.display()
            )?;
        }
        if r.leftover_slots > 0 {
            // Found by reading every slot (verify does not use the index's
            // run): a writing open that builds on the run does not read the
            // slots, so it only finds them when the run is not there.
            let rebuilds = r.index_run_used || !store.dir().join("index.manifest").exists();
            writeln!(
                out,
                "note: {} keyring slots belong to nothing (left by a crash); {}",
                r.leftover_slots,
                if rebuilds {
                    "the next command that writes wipes them"
                } else {
                    "a command that writes wipes them once it rebuilds the index from the keyring \
                     (remove index.manifest, which is derived data, first)"
                }
            )?;
        }
        if !r.finished.is_empty() {
            writeln!(
                out,
                "note: {} logged operations cut short by a crash are applied when read; the next write finishes them on disk",
                r.finished.len()
            )?;
        }
        writeln!(
            out,
            "{}: {} records ({} live, {} dead), {} keyring slots, {} audit entries, {} problems",
            if report.is_ok() { "ok" } else { "DAMAGED" },
            report.records,
            report.live_records,
            report.dead_records,
            report.keyring_slots,
            report.audit_entries,
            report.problems.len()
        )?;
    }
    out.flush()?;
    if let Some(first) = report.problems.first() {
        eprintln!(
            "shredlog: error: the store is damaged ({} problems); first: {first}",
            report.problems.len()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn stats(store: &Store, json: bool) -> Result<ExitCode> {
    let s = store
        .stats()
        .context("cannot read the store's statistics")?;
    let mut out = super::out::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let total = (s.live_bytes + s.dead_bytes).max(1);
    writeln!(
        out,
        "transcripts:      {} ({} redacted)",
        s.transcripts, s.transcripts_redacted
    )?;
    writeln!(out, "messages:         {}", s.messages)?;
    writeln!(out, "visitors:         {}", s.visitors)?;
    writeln!(
        out,
        "segments:         {} ({} bytes)",
        s.segments, s.segment_bytes
    )?;
    writeln!(out, "live bytes:       {}", s.live_bytes)?;
    writeln!(
        out,
        "dead bytes:       {} ({:.1}% garbage)",
        s.dead_bytes,
        100.0 * s.dead_bytes as f64 / total as f64
    )?;
    writeln!(
        out,
        "keyring:          {} bytes, {} {} used, {} free",
        s.keyring_bytes,
        s.keyring_slots_used,
        // A keyring of format 1 or 2 (not yet rewritten) counts whole slots.
        if s.keyring_unit_bytes == 512 {
            "slots"
        } else {
            "cells"
        },
        s.keyring_slots_free
    )?;
    let older: u64 = s
        .rules_versions
        .iter()
        .filter(|(v, _)| **v < s.current_rules_version)
        .map(|(_, n)| n)
        .sum();
    writeln!(
        out,
        "detection rules:  version {} ({} transcripts written under older rules)",
        s.current_rules_version, older
    )?;
    for (id, bytes, u) in &s.per_segment {
        writeln!(
            out,
            "  segment {id:>6}: {bytes:>12} bytes, {:>12} live, {:>12} dead",
            u.live, u.dead
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn compact(store: &Store, max_mib_per_sec: Option<u64>) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let mut options = shredlog::CompactOptions::everything();
    options.bytes_per_sec = max_mib_per_sec.map(|m| m.saturating_mul(1 << 20));
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} compacting {bar:40} {bytes}/{total_bytes}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let last = std::cell::Cell::new(std::time::Instant::now());
    let progress = |done: u64, total: u64| match &bar {
        Some(bar) => {
            bar.set_length(total);
            bar.set_position(done);
        }
        None => {
            if done == total || last.get().elapsed() >= std::time::Duration::from_secs(1) {
                last.set(std::time::Instant::now());
                eprintln!("shredlog: compact: {done} of {total} bytes");
            }
        }
    };
    let before = store
        .stats()
        .context("cannot read the store's statistics")?;
    let report = store
        .compact_with_progress(&options, &progress)
        .context("compaction failed")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let after = store
        .stats()
        .context("cannot read the store's statistics")?;
    writeln!(
        super::out::stdout(),
        "{}",
        serde_json::to_string_pretty(&report)?
    )?;
    eprintln!(
        "shredlog: compact: segments {} -> {} bytes, dead {} -> {} bytes, keyring {} -> {} bytes",
        before.segment_bytes,
        after.segment_bytes,
        before.dead_bytes,
        after.dead_bytes,
        before.keyring_bytes,
        after.keyring_bytes
    );
    Ok(ExitCode::SUCCESS)
}
