//! The server's shared state: what every request handler is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::auth::TokenTable;
use super::config::Limits;
use super::{dashboard, metrics, tenants};

/// Shared state of the server.
pub(crate) struct App {
    pub(super) tenants: tenants::Tenants,
    pub(super) metrics: metrics::Metrics,
    pub(super) limits: Limits,
    /// `None`: authentication is off (`--insecure-no-auth`).
    pub(super) tokens: Option<TokenTable>,
    pub(super) shutting_down: AtomicBool,
    pub(super) permits: tokio::sync::Semaphore,
    pub(super) started: Instant,
    pub(super) retention_interval: Option<Duration>,
    /// Sessions and jobs of the data-management page.
    pub(super) dashboard: dashboard::State,
    /// The `[backup]` configuration, if any.
    pub(super) backup: Option<Arc<super::backup::Backups>>,
}

pub(crate) type AppState = Arc<App>;

impl App {
    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
