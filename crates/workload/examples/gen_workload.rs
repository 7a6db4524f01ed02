//! Writes a synthetic chat workload (interchange JSON lines) to stdout.
//!
//! ```text
//! cargo run --release --example gen_workload -- --seed 7 --visitors 1000 \
//!     [--profile chat|support] [--messages MIN MAX] [--transcripts MIN MAX] \
//!     [--files P] [--file-size MIN MAX] [--long-texts P] [--days N] \
//!     [--truth truth.json] > out.jsonl
//! ```
//!
//! `--profile support` (give it before the other flags, which adjust it) is
//! a support desk's traffic: longer conversations, long texts, and uploads
//! of 50 to 500 KB that carry most of the bytes. The default, `chat`, is
//! short chat lines with few small files.
//!
//! ```text
//! ```

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use workload::{WorkloadConfig, generate};

const USAGE: &str = "usage: gen_workload [--profile chat|support] [--seed N] [--visitors N] \
[--messages MIN MAX] [--transcripts MIN MAX] [--files P] [--file-size MIN MAX] [--long-texts P] \
[--days N] [--truth FILE] > out.jsonl";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_workload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
) -> Result<T, String> {
    let raw = args
        .next()
        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
    raw.parse()
        .map_err(|_| format!("{flag}: cannot parse {raw:?}\n{USAGE}"))
}

fn run() -> Result<(), String> {
    let mut cfg = WorkloadConfig::default();
    let mut truth: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--profile" => {
                let name: String = value(&mut args, &flag)?;
                cfg = match name.as_str() {
                    "chat" => WorkloadConfig {
                        seed: cfg.seed,
                        visitors: cfg.visitors,
                        ..WorkloadConfig::default()
                    },
                    "support" => WorkloadConfig::support_desk(cfg.seed, cfg.visitors),
                    _ => return Err(format!("--profile: chat or support\n{USAGE}")),
                };
            }
            "--long-texts" => cfg.long_text_probability = value(&mut args, &flag)?,
            "--seed" => cfg.seed = value(&mut args, &flag)?,
            "--visitors" => cfg.visitors = value(&mut args, &flag)?,
            "--messages" => {
                cfg.messages_per_transcript = (value(&mut args, &flag)?, value(&mut args, &flag)?)
            }
            "--transcripts" => {
                cfg.transcripts_per_visitor = (value(&mut args, &flag)?, value(&mut args, &flag)?)
            }
            "--files" => cfg.file_probability = value(&mut args, &flag)?,
            "--file-size" => cfg.file_size = (value(&mut args, &flag)?, value(&mut args, &flag)?),
            "--days" => cfg.span_days = value(&mut args, &flag)?,
            "--truth" => truth = Some(value(&mut args, &flag)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let started = Instant::now();
    let stdout = io::stdout().lock();
    let summary =
        generate(&cfg, stdout).map_err(|e| format!("writing the workload failed: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = truth {
        let json = serde_json::to_vec_pretty(&summary.truth_json()).map_err(|e| e.to_string())?;
        let mut f =
            std::fs::File::create(&path).map_err(|e| format!("cannot create {path}: {e}"))?;
        f.write_all(&json)
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    eprintln!(
        "gen_workload: {} lines, {:.1} MB, {} transcripts, {} visitors in {:.2} s ({:.0} lines/s)",
        summary.lines,
        summary.bytes as f64 / 1e6,
        summary.transcripts,
        summary.visitors.len(),
        secs,
        summary.lines as f64 / secs.max(1e-9)
    );
    Ok(())
}
