//! `backup`, `restore` and `rekey` (docs/BACKUP.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use shredlog::backup::{self, BackupKey, BackupOptions, Keep, Point, Versioning};
use shredlog::{KeyEncryptionKey, Timestamp};

use super::Access;
use crate::config::Settings;

/// Where the backup key comes from.
#[derive(Args, Debug, Clone)]
pub(crate) struct BackupKeyArgs {
    /// File holding the backup key (64 hex digits or 32 raw bytes); or set
    /// SHREDLOG_BACKUP_KEY to the 64 hex digits.
    #[arg(long, value_name = "FILE")]
    backup_key_file: Option<PathBuf>,
}

impl BackupKeyArgs {
    pub(crate) fn key(&self) -> Result<BackupKey> {
        backup_key(self.backup_key_file.as_deref())
    }
}

/// The backup key from a file, or from `SHREDLOG_BACKUP_KEY`.
pub(crate) fn backup_key(file: Option<&std::path::Path>) -> Result<BackupKey> {
    if let Some(f) = file {
        return Ok(BackupKey::from_file(f)?);
    }
    match std::env::var("SHREDLOG_BACKUP_KEY") {
        Ok(hex) => Ok(BackupKey::from_hex(&hex).context("SHREDLOG_BACKUP_KEY")?),
        Err(_) => bail!(
            "a backup needs a backup key: give --backup-key-file FILE or set SHREDLOG_BACKUP_KEY to 64 hex digits (e.g. `openssl rand -hex 32`); the keyring copy in a backup is sealed under it, and without it a backup would hold every key in the clear"
        ),
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BackupArgs {
    #[command(subcommand)]
    action: Option<BackupAction>,
    /// Destination: a directory or s3://bucket/prefix (endpoint and
    /// credentials from AWS_* variables).
    #[arg(long, value_name = "DEST", required_unless_present = "list")]
    to: Option<String>,
    /// List the backup points at --from instead (needs no key).
    #[arg(long, requires = "from")]
    list: bool,
    /// Where to list from.
    #[arg(long, value_name = "SRC")]
    from: Option<String>,
    /// After the backup, delete points older than an age (`30d`) or beyond
    /// a count (`7`), and what only they needed.
    #[arg(long, value_name = "AGE|N")]
    keep: Option<String>,
    #[command(flatten)]
    key: BackupKeyArgs,
}

#[derive(Subcommand, Debug)]
enum BackupAction {
    /// Rewrite the keyring copies of every point at SRC with the keys
    /// erased since (from the erasure journal) wiped; the old copies are
    /// deleted.
    ApplyErasures {
        #[arg(long, value_name = "SRC")]
        from: String,
        #[command(flatten)]
        key: BackupKeyArgs,
    },
    /// Delete the points --keep does not keep, and what only they needed.
    Prune {
        #[arg(long, value_name = "SRC")]
        from: String,
        #[arg(long, value_name = "AGE|N")]
        keep: String,
    },
    /// Re-seal every point at SRC under a new backup key.
    RotateKey {
        #[arg(long, value_name = "SRC")]
        from: String,
        #[command(flatten)]
        key: BackupKeyArgs,
        /// File holding the new backup key.
        #[arg(long, value_name = "FILE")]
        new_backup_key_file: PathBuf,
    },
    /// Record the erasures logged since the last backup in the erasure
    /// journal at DEST (needs no key).
    SyncJournal {
        #[arg(long, value_name = "DEST")]
        to: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct RestoreArgs {
    /// The backup destination to restore from.
    #[arg(long, value_name = "SRC")]
    from: String,
    /// `latest`, `oldest` or a point id (see `backup --list`).
    #[arg(long, default_value = "latest", value_name = "ID")]
    point: String,
    #[command(flatten)]
    key: BackupKeyArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RekeyArgs {
    /// The new key-encryption key (64 hex digits or 32 raw bytes). The
    /// current one is --key-file / SHREDLOG_KEK (none: the keyring is in
    /// plaintext and gets wrapped).
    #[arg(long, value_name = "FILE", required_unless_present = "unwrap")]
    new_key_file: Option<PathBuf>,
    /// Unwrap: leave the keyring in plaintext.
    #[arg(long, conflicts_with = "new_key_file")]
    unwrap: bool,
}

fn warn_versioning(v: Versioning) {
    if v == Versioning::On {
        eprintln!(
            "shredlog: warning: the bucket keeps old versions of objects: replaced and deleted keyring copies stay as old versions until a lifecycle rule expires them (docs/BACKUP.md, \"Versioning and retention locks\")"
        );
    }
}

pub(crate) fn backup(settings: &Settings, args: &BackupArgs) -> Result<ExitCode> {
    match &args.action {
        Some(BackupAction::ApplyErasures { from, key }) => {
            let target = shredlog_backup::open_target(from)?;
            let kek = settings.options().kek;
            let r = backup::apply_erasures(&*target, &key.key()?, kek.as_ref())
                .context("cannot apply the erasures to the backups")?;
            warn_versioning(r.versioning);
            println!(
                "{}",
                serde_json::json!({"points-rewritten": r.points, "slots-wiped": r.slots_wiped, "through-audit-entry": r.through})
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(BackupAction::Prune { from, keep }) => {
            let target = shredlog_backup::open_target(from)?;
            let keep: Keep = keep.parse()?;
            let r = backup::prune(&*target, &keep, Timestamp::now().unix_millis())?;
            println!(
                "{}",
                serde_json::json!({"points-deleted": r.points, "objects-deleted": r.objects})
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(BackupAction::RotateKey {
            from,
            key,
            new_backup_key_file,
        }) => {
            let target = shredlog_backup::open_target(from)?;
            let new = BackupKey::from_file(new_backup_key_file)?;
            let n = backup::rotate_backup_key(&*target, &key.key()?, &new)
                .context("cannot rotate the backup key")?;
            println!("{}", serde_json::json!({"points-resealed": n}));
            return Ok(ExitCode::SUCCESS);
        }
        Some(BackupAction::SyncJournal { to }) => {
            let target = shredlog_backup::open_target(to)?;
            let store = super::open(settings, Access::Read)?;
            let n = store.sync_backup_journal(&*target)?;
            println!("{}", serde_json::json!({"journal-records": n}));
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if args.list {
        let from = args.from.as_deref().unwrap_or_default();
        let target = shredlog_backup::open_target(from)?;
        for p in backup::list_points(&*target)? {
            println!(
                "{}",
                serde_json::json!({"point": p.id, "created": p.created.as_str(), "audit-entries": p.audit_seq, "erasures-applied-through": p.erasures_applied, "bytes": p.bytes})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let to = args.to.as_deref().unwrap_or_default();
    let key = args.key.key()?;
    let keep = args.keep.as_deref().map(str::parse::<Keep>).transpose()?;
    let target = shredlog_backup::open_target(to)?;
    // Read-only: a backup writes no byte of the store.
    let store = super::open(settings, Access::Read)?;
    let r = store
        .backup(&*target, &key, &BackupOptions::keeping(keep))
        .with_context(|| format!("cannot back up to {}", target.describe()))?;
    warn_versioning(r.versioning);
    println!(
        "{}",
        serde_json::json!({
            "point": r.point, "bytes": r.bytes, "uploaded": r.uploaded,
            "objects-uploaded": r.objects_uploaded, "objects-reused": r.objects_reused,
            "journal-records": r.journal_records,
            "points-deleted": r.pruned.map(|p| p.points).unwrap_or_default(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// The backup destination of the store the command works on, from the
/// configuration file's `[backup] to`: for a server tenant's store
/// (`DATA/tenants/NAME`) `TO/tenants/NAME`, where the server backs it up;
/// for any other store `TO` itself.
pub(crate) fn configured_destination(settings: &Settings) -> Option<String> {
    let to = settings.file.backup.as_ref()?.to.trim_end_matches('/');
    let data = &settings.data;
    let tenant = data
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "tenants"))
        .and_then(|_| data.file_name())
        .and_then(|n| n.to_str());
    Some(match tenant {
        Some(name) => format!("{to}/tenants/{name}"),
        None => to.to_owned(),
    })
}

/// After an operation that destroyed keys: records it in the erasure
/// journal at the configured backup destination at once, so that a restore
/// from there re-applies it (docs/BACKUP.md). Without a `[backup]` table,
/// the next `backup` (or `backup sync-journal`) records it.
pub(crate) fn record_erasures(settings: &Settings, store: &shredlog::Store) -> Result<()> {
    let Some(dest) = configured_destination(settings) else {
        return Ok(());
    };
    let recorded = shredlog_backup::open_target(&dest)
        .map_err(anyhow::Error::from)
        .and_then(|target| Ok(store.sync_backup_journal(&*target)?));
    let n = recorded.with_context(|| {
        format!(
            "the operation is done, but the erasure journal at {dest} could not be updated: \
             run `shredlog backup sync-journal --to {dest}` before restoring from there"
        )
    })?;
    eprintln!("shredlog: {n} erasure record(s) added to the backup journal at {dest}");
    Ok(())
}

pub(crate) fn restore(settings: &Settings, args: &RestoreArgs) -> Result<ExitCode> {
    let target = shredlog_backup::open_target(&args.from)?;
    let point: Point = args.point.parse()?;
    let key = args.key.key()?;
    let r = backup::restore(&*target, &key, &point, &settings.data, settings.options())
        .with_context(|| format!("cannot restore from {}", target.describe()))?;
    println!(
        "{}",
        serde_json::json!({"point": r.point, "bytes": r.bytes, "erasures-applied": r.erasures_applied, "slots-wiped": r.slots_wiped})
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rekey(settings: &Settings, args: &RekeyArgs) -> Result<ExitCode> {
    let old = settings.options().kek;
    let new = match &args.new_key_file {
        Some(f) => Some(KeyEncryptionKey::from_file(f)?),
        None => None,
    };
    let r = shredlog::rekey(&settings.data, old.as_ref(), new.as_ref())
        .with_context(|| format!("cannot rekey the store at {}", settings.data.display()))?;
    println!(
        "{}",
        serde_json::json!({"slots": r.slots, "was-wrapped": r.was_wrapped, "wrapped": r.wrapped})
    );
    Ok(ExitCode::SUCCESS)
}
