//! `shredlog import`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use shredlog::{Error, Message, Store, interchange};

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// Interchange file (JSON lines), or `-` for stdin.
    file: PathBuf,
    /// Lines per commit: each commit is one durable write (one sync with
    /// `--durability immediate`).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

/// Reports progress: a bar on a terminal, else a line at most every second.
/// Every figure it prints counts only lines that are durably stored.
struct Progress {
    bar: Option<ProgressBar>,
    last: Instant,
}

impl Progress {
    fn new(total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total.unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            last: Instant::now(),
        }
    }

    fn stored(&mut self, bytes: u64, line: u64, messages: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{messages} messages stored"));
            }
            None => {
                if self.last.elapsed() >= Duration::from_secs(1) {
                    self.last = Instant::now();
                    eprintln!("shredlog: import: stored through line {line} ({messages} messages)");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub(crate) fn run(settings: &crate::config::Settings, args: &ImportArgs) -> Result<ExitCode> {
    let (reader, total): (Box<dyn BufRead>, Option<u64>) = if args.file.as_os_str() == "-" {
        (
            Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
        )
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 20, f)), len)
    };
    let store = super::open(settings, super::Access::Create)?;
    let started = Instant::now();
    let mut progress = Progress::new(total);
    let result = import(&store, reader, args.batch as usize, &mut progress);
    progress.finish();
    let summary = result?;
    store.close().context("closing the store")?;
    let secs = started.elapsed().as_secs_f64();
    let already = if summary.already_stored > 0 {
        format!(
            "; {} were already stored and were not stored again",
            summary.already_stored
        )
    } else {
        String::new()
    };
    writeln!(
        super::out::stdout(),
        "imported {} messages ({} lines) in {:.2} s ({:.0} messages/s){already}",
        summary.messages,
        summary.lines,
        secs,
        summary.messages as f64 / secs.max(1e-9)
    )?;
    Ok(ExitCode::SUCCESS)
}

struct Summary {
    lines: u64,
    messages: u64,
    already_stored: u64,
}

/// Messages of a batch stored, and not stored again.
#[derive(Default)]
struct Committed {
    stored: u64,
    already_stored: u64,
}

impl std::ops::AddAssign for Committed {
    fn add_assign(&mut self, other: Committed) {
        self.stored += other.stored;
        self.already_stored += other.already_stored;
    }
}

fn import(
    store: &Store,
    mut reader: Box<dyn BufRead>,
    batch_size: usize,
    progress: &mut Progress,
) -> Result<Summary> {
    let mut batch = Batch::with_capacity(batch_size);
    let mut raw = Vec::new();
    let mut lineno = 0u64;
    let mut bytes = 0u64;
    let mut done = Committed::default();
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .context("reading the input")?;
        if n == 0 {
            break;
        }
        lineno += 1;
        bytes += n as u64;
        let parsed = std::str::from_utf8(&raw)
            .map_err(|_| Error::Invalid("not valid UTF-8".into()))
            .and_then(|line| {
                let line = line.trim();
                if line.is_empty() {
                    Ok(None)
                } else {
                    interchange::parse_line(line).map(Some)
                }
            });
        match parsed {
            Ok(None) => {}
            Ok(Some(msg)) => batch.push(lineno, msg),
            Err(e) => {
                commit(store, &mut batch, &mut done)?;
                return Err(rejected(&done, lineno, &e));
            }
        }
        if batch.len() >= batch_size {
            commit(store, &mut batch, &mut done)?;
            progress.stored(bytes, lineno, done.stored);
        }
    }
    commit(store, &mut batch, &mut done)?;
    progress.stored(bytes, lineno, done.stored);
    Ok(Summary {
        lines: lineno,
        messages: done.stored,
        already_stored: done.already_stored,
    })
}

/// Messages read but not yet stored, with their line numbers.
struct Batch {
    msgs: Vec<Message>,
    lines: Vec<u64>,
}

/// Why a commit stopped the import.
enum Stop {
    /// Message at `line` broke a rule: nothing of its batch was stored but
    /// the messages before it (`stored`).
    Rejected {
        line: u64,
        error: Error,
        stored: Committed,
    },
    /// Storing failed (I/O, a limit): nothing after the last reported line
    /// is guaranteed stored.
    Failed(anyhow::Error),
}

/// Commits the batch, counting what was stored into `done`; a stop becomes
/// the import's error.
fn commit(store: &Store, batch: &mut Batch, done: &mut Committed) -> Result<()> {
    match batch.commit(store) {
        Ok(c) => {
            *done += c;
            Ok(())
        }
        Err(Stop::Rejected {
            line,
            error,
            stored,
        }) => {
            *done += stored;
            Err(rejected(done, line, &error))
        }
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// The error naming the line that stopped the import.
fn rejected(done: &Committed, line: u64, e: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "line {line}: {e}; the {} messages before it are stored",
        done.stored + done.already_stored
    )
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            msgs: Vec::with_capacity(n),
            lines: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, line: u64, msg: Message) {
        self.msgs.push(msg);
        self.lines.push(line);
    }

    fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Appends the batch durably (all or none) and empties it. If a message
    /// breaks a rule, the ones before it are stored and its line is named.
    fn commit(&mut self, store: &Store) -> Result<Committed, Stop> {
        if self.msgs.is_empty() {
            return Ok(Committed::default());
        }
        let counted = |a: shredlog::Appended| Committed {
            stored: a.stored as u64,
            already_stored: a.already_stored as u64,
        };
        let failed = |e: Error| {
            Stop::Failed(anyhow::Error::new(e).context(
                "storing messages failed; nothing after the last reported line is guaranteed stored",
            ))
        };
        let r = store.append_batch(&self.msgs);
        let lines = std::mem::take(&mut self.lines);
        let mut msgs = std::mem::take(&mut self.msgs);
        match r {
            Ok(a) => Ok(counted(a)),
            Err(Error::InMessage { index, error }) => {
                let line = lines.get(index).copied().unwrap_or(0);
                msgs.truncate(index);
                let stored = if msgs.is_empty() {
                    Committed::default()
                } else {
                    counted(store.append_batch(&msgs).map_err(failed)?)
                };
                Err(Stop::Rejected {
                    line,
                    error: *error,
                    stored,
                })
            }
            Err(e) => Err(failed(e)),
        }
    }
}
