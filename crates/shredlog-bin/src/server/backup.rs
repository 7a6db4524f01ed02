//! Backups from the server (docs/BACKUP.md): `POST /v1/backup` takes a
//! backup point of the caller's tenant now; with `[backup] interval` in the
//! configuration file every tenant is backed up on that schedule; and every
//! `journal-interval` the erasures logged since are recorded in each
//! tenant's erasure journal at the destination, so that the destination
//! learns of an erasure within seconds, not at the next backup.
//!
//! Each tenant's backups go to `TO/tenants/NAME`. Backup jobs run on their
//! own threads (the S3 client runs its own I/O runtime), one at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use shredlog::Store;
use shredlog::backup::{BackupKey, BackupOptions, Keep, Versioning};

use super::app::AppState;
use super::auth::Principal;
use super::error::ApiError;
use crate::config::DurationValue;

/// The `[backup]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct BackupSettings {
    /// Destination: a directory or `s3://bucket/prefix`.
    pub to: String,
    /// File holding the backup key (else `SHREDLOG_BACKUP_KEY`).
    pub key_file: Option<std::path::PathBuf>,
    /// Back every tenant up this often (e.g. `24h`). Default: never (use
    /// the route).
    pub interval: Option<DurationValue>,
    /// Retention of the points after each backup (`30d` or a count).
    pub keep: Option<String>,
    /// How often erasures are recorded at the destination. Default: 10s.
    pub journal_interval: Option<DurationValue>,
}

/// Backups as configured.
pub(crate) struct Backups {
    to: String,
    key: BackupKey,
    keep: Option<Keep>,
    pub(super) interval: Option<Duration>,
    pub(super) journal_interval: Duration,
    /// One backup job at a time.
    busy: Mutex<()>,
}

impl Backups {
    /// Reads the `[backup]` table: refuses a destination without a key.
    pub(crate) fn from_settings(s: &BackupSettings) -> Result<Backups> {
        let key = crate::cli::backup::backup_key(s.key_file.as_deref())
            .context("[backup] needs a backup key (key-file, or SHREDLOG_BACKUP_KEY)")?;
        let keep = s.keep.as_deref().map(str::parse::<Keep>).transpose()?;
        let interval = match &s.interval {
            Some(d) => Some(d.get("backup.interval")?).filter(|d| !d.is_zero()),
            None => None,
        };
        let journal_interval = match &s.journal_interval {
            Some(d) => d.get("backup.journal-interval")?,
            None => Duration::from_secs(10),
        };
        // Fail at start-up, not at the first backup, on a bad destination.
        shredlog_backup::open_target(&s.to)?;
        Ok(Backups {
            to: s.to.trim_end_matches('/').to_owned(),
            key,
            keep,
            interval,
            journal_interval: journal_interval.max(Duration::from_secs(1)),
            busy: Mutex::new(()),
        })
    }

    fn dest(&self, tenant: &str) -> String {
        format!("{}/tenants/{tenant}", self.to)
    }

    /// Takes a backup of one tenant's store (blocking).
    fn run(&self, tenant: &str, store: &Store) -> shredlog::Result<serde_json::Value> {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let target = shredlog_backup::open_target(&self.dest(tenant))?;
        let r = store.backup(
            &*target,
            &self.key,
            &BackupOptions::keeping(self.keep.clone()),
        )?;
        if r.versioning == Versioning::On {
            tracing::warn!(
                tenant,
                "the backup bucket keeps old versions: deleted keyring copies stay as old versions (docs/BACKUP.md)"
            );
        }
        Ok(serde_json::json!({
            "point": r.point, "bytes": r.bytes, "uploaded": r.uploaded,
            "objects_uploaded": r.objects_uploaded, "objects_reused": r.objects_reused,
            "journal_records": r.journal_records,
            "points_deleted": r.pruned.map(|p| p.points).unwrap_or_default(),
        }))
    }

    fn sync_journal(&self, tenant: &str, store: &Store) -> shredlog::Result<usize> {
        let target = shredlog_backup::open_target(&self.dest(tenant))?;
        store.sync_backup_journal(&*target)
    }
}

/// Runs `f` on a thread of its own (not a runtime thread: the S3 client
/// blocks on its own runtime) and awaits it.
async fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}

/// `POST /v1/backup`: a backup point of the caller's tenant, now.
pub(super) async fn backup_now(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let Some(backups) = app.backup.clone() else {
        return Err(ApiError::bad_request(
            "backup_not_configured",
            "no backup destination is configured: add a [backup] table (to, key-file) to the server's configuration file",
        ));
    };
    let store = app.tenants.get(&p.tenant).await?;
    let tenant = p.tenant.clone();
    let r = on_thread(move || backups.run(&tenant, &store))
        .await
        .ok_or_else(ApiError::internal)?;
    match r {
        Ok(v) => Ok(super::handlers::json_ok(&v)),
        Err(e) => {
            tracing::error!(tenant = %p.tenant, error = %e, "backup failed");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backup_failed",
                e.to_string(),
            ))
        }
    }
}

/// The schedule: every tenant backed up every `interval`.
pub(super) async fn backup_loop(app: AppState, backups: Arc<Backups>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // not at start-up
    loop {
        tick.tick().await;
        for name in app.tenants.on_disk() {
            if app.is_shutting_down() {
                return;
            }
            let Ok(store) = app.tenants.get(&name).await else {
                tracing::error!(tenant = %name, "scheduled backup: cannot open the store");
                continue;
            };
            let b = Arc::clone(&backups);
            let tenant = name.clone();
            match on_thread(move || b.run(&tenant, &store)).await {
                Some(Ok(r)) => {
                    tracing::info!(tenant = %name, point = %r["point"], "scheduled backup")
                }
                Some(Err(e)) => {
                    tracing::error!(tenant = %name, error = %e, "scheduled backup failed")
                }
                None => tracing::error!(tenant = %name, "scheduled backup failed"),
            }
        }
    }
}

/// Records new erasures in every open tenant's journal at the destination.
pub(super) async fn journal_loop(app: AppState, backups: Arc<Backups>) {
    let mut tick = tokio::time::interval(backups.journal_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for name in app.tenants.on_disk() {
            if app.is_shutting_down() {
                return;
            }
            let Ok(store) = app.tenants.get(&name).await else {
                continue;
            };
            let b = Arc::clone(&backups);
            let tenant = name.clone();
            match on_thread(move || b.sync_journal(&tenant, &store)).await {
                Some(Ok(0)) | None => {}
                Some(Ok(n)) => {
                    tracing::info!(tenant = %name, records = n, "erasures recorded at the backup destination")
                }
                Some(Err(e)) => {
                    tracing::warn!(tenant = %name, error = %e, "cannot record erasures at the backup destination")
                }
            }
        }
    }
}
