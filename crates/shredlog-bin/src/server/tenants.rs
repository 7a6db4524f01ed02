//! One store per tenant under `DATA/tenants/NAME`, opened on first use and
//! kept open until shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use shredlog::{Options, Store};

use super::auth::valid_tenant;
use super::error::ApiError;

pub(crate) struct Tenants {
    root: PathBuf,
    options: Options,
    open: tokio::sync::Mutex<BTreeMap<String, Arc<Store>>>,
    closing: AtomicBool,
}

impl Tenants {
    pub(crate) fn new(data: &Path, options: Options) -> Tenants {
        Tenants {
            root: data.join("tenants"),
            options,
            open: tokio::sync::Mutex::new(BTreeMap::new()),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The options every tenant's store is opened with.
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// The tenant's store, opening it on first use.
    pub(crate) async fn get(&self, name: &str) -> Result<Arc<Store>, ApiError> {
        if !valid_tenant(name) {
            // Token tenants are validated when loaded; this is a second fence.
            return Err(ApiError::internal());
        }
        let mut open = self.open.lock().await;
        if let Some(s) = open.get(name) {
            return Ok(Arc::clone(s));
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ));
        }
        let dir = self.root.join(name);
        let options = self.options.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(dir, options))
            .await
            .map_err(|_| ApiError::internal())??;
        log_recovery(name, &store);
        tracing::info!(tenant = name, "store opened");
        let store = Arc::new(store);
        open.insert(name.to_owned(), Arc::clone(&store));
        Ok(store)
    }

    /// The stores open now.
    pub(crate) async fn opened(&self) -> Vec<(String, Arc<Store>)> {
        self.open
            .lock()
            .await
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Tenants that have a directory (whether open or not).
    pub(crate) fn on_disk(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_tenant(n))
            .collect();
        names.sort();
        names
    }

    /// Refuses further opens, waits up to `wait` for every other user of a
    /// store to let go, then closes each (sync and checkpoint).
    pub(crate) async fn close_all(&self, wait: Duration) -> bool {
        self.closing.store(true, Ordering::SeqCst);
        let stores = std::mem::take(&mut *self.open.lock().await);
        let deadline = Instant::now() + wait;
        let mut clean = true;
        for (name, store) in stores {
            while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let result = tokio::task::spawn_blocking(move || match Arc::try_unwrap(store) {
                Ok(store) => store.close().map(|()| true),
                // Still used by a request that outlived the grace period:
                // make everything acknowledged durable; the last user's drop
                // closes it.
                Err(store) => store.sync().map(|()| false),
            })
            .await;
            match result {
                Ok(Ok(true)) => tracing::info!(tenant = %name, "store closed"),
                Ok(Ok(false)) => {
                    tracing::warn!(tenant = %name, "store still in use at shutdown: synced, not closed");
                }
                Ok(Err(e)) => {
                    clean = false;
                    tracing::error!(tenant = %name, error = %e, "closing the store failed");
                }
                Err(_) => {
                    clean = false;
                    tracing::error!(tenant = %name, "closing the store panicked");
                }
            }
        }
        clean
    }
}

fn log_recovery(tenant: &str, store: &Store) {
    let r = store.recovery_report();
    if let Some((path, at, bytes)) = &r.truncated {
        tracing::warn!(
            tenant,
            file = %path.display(),
            offset = at,
            bytes,
            "recovered: cut a torn tail (an unacknowledged write)"
        );
    }
    for (path, off, bytes, why) in &r.skipped {
        tracing::warn!(tenant, file = %path.display(), offset = off, bytes, reason = %why, "salvage: skipped damaged bytes");
    }
    for (slot, off, why) in &r.damaged_slots {
        tracing::warn!(tenant, slot, offset = off, reason = %why, "salvage: ignored a damaged keyring slot");
    }
}
