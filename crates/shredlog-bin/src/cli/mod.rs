//! Command-line parsing and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use shredlog::{Durability, Store};

use crate::config::{Settings, StoreFlags, parse_size};

pub(crate) mod backup;
mod export;
mod import;
mod out;
mod privacy;
mod read;
mod text;

/// shredlog: chat transcripts with crypto-shredding of personal data.
#[derive(Parser, Debug)]
#[command(name = "shredlog", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Store directory (or `data = "..."` in the config file).
    /// [default: ./shredlog-data]
    #[arg(long, global = true, env = "SHREDLOG_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// TOML file configuring the store (`[store]`), the personal-data
    /// detector (`[pii]`) and the server (top-level keys); flags beat it.
    /// See docs/SERVER.md and docs/PII.md.
    #[arg(long, global = true, env = "SHREDLOG_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// File holding the key-encryption key that wraps the keyring (64 hex
    /// digits or 32 raw bytes). Alternatively set SHREDLOG_KEK to 64 hex digits.
    #[arg(long, global = true, env = "SHREDLOG_KEY_FILE", value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// When writes are acknowledged: `immediate` (synced before returning) or
    /// `batched` (synced every --sync-interval-ms; a crash may lose the last
    /// interval's acknowledged writes). [default: immediate]
    #[arg(long, global = true, value_enum)]
    durability: Option<DurabilityArg>,
    /// Longest time between syncs with `--durability batched`, in
    /// milliseconds. [default: 100]
    #[arg(long, global = true, value_name = "MS")]
    sync_interval_ms: Option<u64>,
    /// Roll segment files at this size, e.g. `64MiB`. [default: 32MiB]
    #[arg(long, global = true, value_parser = parse_size, value_name = "SIZE")]
    segment_size: Option<u64>,
    /// Largest message (all its fields, file bytes included; the server
    /// measures its interchange JSON line), e.g. `12MiB`. [default: 64MiB]
    #[arg(long, global = true, env = "SHREDLOG_MAX_MESSAGE_BYTES", value_parser = parse_size, value_name = "SIZE")]
    max_message_bytes: Option<u64>,
    /// The personal-data kinds to detect, comma-separated, replacing the
    /// configured set: email, obfuscated-email, phone, ip, payment-card, iban.
    /// [default: email,obfuscated-email,phone,ip]
    #[arg(long, global = true, value_delimiter = ',', value_name = "KINDS")]
    detect: Option<Vec<String>>,
    /// An extra personal-data pattern, NAME=REGEX (repeatable); matches are
    /// redacted like the built-in kinds.
    #[arg(long = "pii-pattern", global = true, value_name = "NAME=REGEX")]
    pii_patterns: Vec<String>,
    /// Open a damaged store read-only, skipping and reporting damaged records.
    #[arg(long, global = true)]
    salvage: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum DurabilityArg {
    Immediate,
    Batched,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Append the lines of an interchange file (`-` for stdin).
    Import(import::ImportArgs),
    /// Print one transcript as interchange JSON lines.
    Show {
        /// The transcript id.
        transcript: String,
    },
    /// List a visitor's transcripts, newest first.
    Transcripts(read::TranscriptsArgs),
    /// Write everything held about a visitor to stdout.
    Export(export::ExportArgs),
    /// Erasure request: redact everything personal of a visitor; prints the
    /// erasure report as JSON.
    Redact(privacy::RedactArgs),
    /// Delete a transcript or everything of a visitor outright.
    Delete(privacy::DeleteArgs),
    /// Redact (or delete) transcripts whose latest message is older than a
    /// period; honours legal holds.
    Retention(privacy::RetentionArgs),
    /// A visitor's consent state and history, as JSON.
    Consent {
        /// The visitor's email.
        #[arg(long)]
        email: String,
    },
    /// Place or release a legal hold (exempts from retention and deletion).
    Hold(privacy::HoldArgs),
    /// Restrict a visitor's data (Art. 18) or lift the restriction.
    Restrict(privacy::RestrictArgs),
    /// Re-redact by rewrite: one transcript (optionally with extra literal
    /// spans the rules missed), or every transcript written under older rules.
    Rewrite(privacy::RewriteArgs),
    /// Reclaim space: rewrite segments without their dead records, so that
    /// shredded ciphertext leaves the disk; progress on stderr.
    Compact {
        /// Limit compaction I/O to this many MiB per second.
        #[arg(long)]
        max_mib_per_sec: Option<u64>,
    },
    /// Rectification (Art. 16): correct a visitor's email, name or phone; the
    /// old values are destroyed, not left behind.
    Rectify(privacy::RectifyArgs),
    /// Print the audit log (JSON lines).
    Audit,
    /// Destroy again the keys that an erasure, deletion, retention run or
    /// rewrite in the audit log destroyed and that the store still holds
    /// (what `verify` reports as left behind); prints each audit entry it
    /// logs (JSON lines), nothing when nothing is left.
    Reapply(privacy::ReapplyArgs),
    /// Check every record and key; exit status 0 only if the store is sound.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sizes, counts and garbage.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Filter: read lines on stdin, write each with its personal data replaced
    /// by `<redacted>` (the same rules the store uses).
    RedactText,
    /// Run the HTTP server (JSON over HTTP, one store per tenant under
    /// DATA/tenants/NAME); see docs/SERVER.md.
    Serve(crate::server::ServeArgs),
    /// Hot, incremental backup to a directory or s3://bucket/prefix; or
    /// --list the points, or apply-erasures / prune / rotate-key /
    /// sync-journal (docs/BACKUP.md).
    Backup(backup::BackupArgs),
    /// Restore a backup point into --data (a new, empty directory),
    /// re-applying every erasure made after the point.
    Restore(backup::RestoreArgs),
    /// Wrap the keyring under a key-encryption key, rotate it, or unwrap
    /// (crash-safe, in place; the store must not be open).
    Rekey(backup::RekeyArgs),
}

/// Parses the command line and runs it.
///
/// # Errors
/// Whatever the command failed on, as one chain of causes.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let settings = cli.settings()?;
    // Read-only commands change no byte of the store; only `import` and
    // `serve` create one where there is none.
    let read = || open(&settings, Access::Read);
    let write = || open(&settings, Access::Write);
    // Operations that destroy keys, recorded at the configured backup
    // destination once done.
    let erasing = |op: &dyn Fn(&Store) -> Result<ExitCode>| -> Result<ExitCode> {
        let store = write()?;
        let code = op(&store)?;
        backup::record_erasures(&settings, &store)?;
        Ok(code)
    };
    match &cli.command {
        Command::RedactText => text::redact_text(&settings.options()),
        Command::Import(args) => import::run(&settings, args),
        Command::Show { transcript } => read::show(&read()?, transcript),
        Command::Transcripts(args) => read::transcripts(&read()?, args),
        Command::Export(args) => export::export(&read()?, args),
        // A dry run opens the store read-only: it cannot change a byte.
        Command::Redact(args) if args.dry_run => privacy::redact(&read()?, args),
        Command::Redact(args) => erasing(&|s| privacy::redact(s, args)),
        Command::Delete(args) if args.dry_run => privacy::delete(&read()?, args),
        Command::Delete(args) => erasing(&|s| privacy::delete(s, args)),
        Command::Retention(args) if args.dry_run => privacy::retention(&read()?, args),
        Command::Retention(args) => {
            args.check_confirmed()?;
            erasing(&|s| privacy::retention(s, args))
        }
        Command::Consent { email } => privacy::consent(&read()?, email),
        Command::Hold(args) => privacy::hold(&write()?, args),
        Command::Restrict(args) => privacy::restrict(&write()?, args),
        Command::Audit => privacy::audit(&read()?),
        Command::Rectify(args) => erasing(&|s| privacy::rectify(s, args)),
        Command::Compact { max_mib_per_sec } => read::compact(&write()?, *max_mib_per_sec),
        Command::Rewrite(args) => erasing(&|s| privacy::rewrite(s, args)),
        Command::Reapply(args) => erasing(&|s| privacy::reapply(s, args)),
        // Opened read-only in salvage mode, so that it can list every problem.
        Command::Verify { json } => read::verify(&open(&settings, Access::Verify)?, *json),
        Command::Stats { json } => read::stats(&read()?, *json),
        Command::Serve(args) => crate::server::run(&settings, args),
        Command::Backup(args) => backup::backup(&settings, args),
        Command::Restore(args) => backup::restore(&settings, args),
        Command::Rekey(args) => backup::rekey(&settings, args),
    }
}

/// How a command opens the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read only: writes no byte, creates nothing.
    Read,
    /// Read only, in salvage mode: for `verify`, which reports all damage.
    Verify,
    /// Writes to an existing store.
    Write,
    /// Writes, creating the store if there is none (`import`, `serve`).
    Create,
}

impl Cli {
    /// The flags over the config file over the defaults.
    fn settings(&self) -> Result<Settings> {
        let durability = match (self.durability, self.sync_interval_ms) {
            (Some(DurabilityArg::Batched), ms) | (None, ms @ Some(_)) => {
                Some(Durability::Batched {
                    interval_ms: ms.unwrap_or(100),
                })
            }
            (Some(DurabilityArg::Immediate), Some(_)) => {
                anyhow::bail!("--sync-interval-ms needs --durability batched")
            }
            (Some(DurabilityArg::Immediate), None) => Some(Durability::Immediate),
            (None, None) => None,
        };
        Settings::resolve(&StoreFlags {
            data: self.data.clone(),
            config: self.config.clone(),
            key_file: self.key_file.clone(),
            durability,
            segment_size: self.segment_size,
            max_message_bytes: self.max_message_bytes,
            detect: self.detect.clone(),
            pii_patterns: self.pii_patterns.clone(),
            salvage: self.salvage,
        })
    }
}

/// Opens the store, reporting what recovery did on stderr.
pub(crate) fn open(settings: &Settings, access: Access) -> Result<Store> {
    let mut options = settings.options();
    options.read_only = matches!(access, Access::Read | Access::Verify);
    options.create = access == Access::Create;
    options.salvage |= access == Access::Verify;
    let data = &settings.data;
    let store = Store::open(data, options)
        .with_context(|| format!("cannot open the store at {}", data.display()))?;
    let r = store.recovery_report();
    if access == Access::Verify {
        // `verify` reports all of it itself.
        return Ok(store);
    }
    if let Some((path, at, bytes)) = &r.truncated {
        if store.is_read_only() {
            eprintln!(
                "shredlog: note: {} ends in {bytes} bytes of a write a crash cut short at offset {at} (never acknowledged; ignored)",
                path.display()
            );
        } else {
            eprintln!(
                "shredlog: recovered: cut {bytes} bytes of a write a crash cut short from {} at offset {at} (never acknowledged)",
                path.display()
            );
        }
    }
    for (path, off, bytes, why) in &r.skipped {
        eprintln!(
            "shredlog: salvage: skipped {bytes} damaged bytes in {} at offset {off}: {why}",
            path.display()
        );
    }
    if r.email_twins > 0 {
        eprintln!(
            "shredlog: note: {} visitors were stored (by an older version) under another spelling of an address another visitor has; each is found only by its own spelling",
            r.email_twins
        );
    }
    for (slot, off, why) in &r.damaged_slots {
        eprintln!(
            "shredlog: salvage: ignored damaged keyring slot {slot} (keyring offset {off}): {why}"
        );
    }
    Ok(store)
}

/// Parses an RFC 3339 timestamp argument into Unix milliseconds.
pub(crate) fn parse_ts(s: &str) -> Result<i64> {
    Ok(shredlog::Timestamp::parse(s)
        .with_context(|| "timestamps are RFC 3339, e.g. 2024-05-02T10:15:03Z".to_string())?
        .unix_millis())
}
