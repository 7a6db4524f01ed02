//! Failpoints: named places in the I/O path where tests make the store fail.
//!
//! Disabled (one relaxed atomic load) unless a test arms one with [`arm`] or the
//! environment variable `SHREDLOG_FAILPOINTS` names some, as
//! `name=action[,name=action]` where action is `error` (return EIO), `enospc`,
//! `abort` (kill the process on the spot, like a power cut for the process) or
//! `error@N` / `abort@N` (act on the N-th hit only, counting from 1).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

static ENABLED: AtomicBool = AtomicBool::new(false);
static POINTS: Mutex<Option<HashMap<String, Point>>> = Mutex::new(None);
static ENV_LOADED: std::sync::Once = std::sync::Once::new();

/// What an armed failpoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fail with EIO.
    Error,
    /// Fail with ENOSPC.
    NoSpace,
    /// Abort the process immediately.
    Abort,
}

#[derive(Clone, Copy, Debug)]
struct Point {
    action: Action,
    /// Act on this hit (1-based); 0 = every hit.
    on_hit: u64,
    hits: u64,
}

/// Arms a failpoint: `on_hit` = 0 acts on every hit, N on the N-th hit only.
#[doc(hidden)]
pub fn arm(name: &str, action: Action, on_hit: u64) {
    let mut points = POINTS.lock();
    points.get_or_insert_with(HashMap::new).insert(
        name.to_owned(),
        Point {
            action,
            on_hit,
            hits: 0,
        },
    );
    ENABLED.store(true, Ordering::SeqCst);
}

/// Disarms every failpoint.
#[doc(hidden)]
pub fn disarm_all() {
    *POINTS.lock() = None;
    ENABLED.store(false, Ordering::SeqCst);
}

fn load_env() {
    ENV_LOADED.call_once(|| {
        let Ok(spec) = std::env::var("SHREDLOG_FAILPOINTS") else {
            return;
        };
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let Some((name, act)) = item.split_once('=') else {
                continue;
            };
            let (act, n) = match act.split_once('@') {
                Some((a, n)) => (a, n.parse().unwrap_or(0)),
                None => (act, 0),
            };
            let action = match act {
                "error" => Action::Error,
                "enospc" => Action::NoSpace,
                "abort" => Action::Abort,
                _ => continue,
            };
            arm(name, action, n);
        }
    });
}

/// Called at each failpoint site.
pub(crate) fn check(name: &str) -> io::Result<()> {
    load_env();
    if !ENABLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let action = {
        let mut points = POINTS.lock();
        let Some(p) = points.as_mut().and_then(|m| m.get_mut(name)) else {
            return Ok(());
        };
        p.hits += 1;
        if p.on_hit != 0 && p.hits != p.on_hit {
            return Ok(());
        }
        p.action
    };
    match action {
        Action::Error => Err(io::Error::from_raw_os_error(5)),
        Action::NoSpace => Err(io::Error::from_raw_os_error(28)),
        Action::Abort => std::process::abort(),
    }
}

/// Sync journal for power-loss tests: when `SHREDLOG_SYNC_LOG` names a file,
/// every successful sync appends `path<TAB>length` to it, and each keyring sync
/// also snapshots the keyring to `keyring.synced` (written to a temporary file
/// and renamed, so that a kill never leaves half a snapshot). A test can then
/// model a power cut after a kill: cut every file back to what was synced.
static SYNC_LOG: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();

/// The sync journal, if `SHREDLOG_SYNC_LOG` names one.
fn journal() -> Option<&'static Mutex<std::fs::File>> {
    SYNC_LOG
        .get_or_init(|| {
            let path = std::env::var_os("SHREDLOG_SYNC_LOG")?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
                .map(Mutex::new)
        })
        .as_ref()
}

/// Records a successful sync of `file` (see the sync journal above).
pub(crate) fn synced(path: &std::path::Path, file: &std::fs::File) {
    let Some(log) = journal() else { return };
    let Ok(meta) = file.metadata() else { return };
    if path.file_name().is_some_and(|n| n == "keyring") {
        let snap = path.with_file_name("keyring.synced");
        let tmp = path.with_file_name("keyring.synced.tmp");
        if std::fs::copy(path, &tmp).is_ok() {
            let _ = std::fs::rename(&tmp, &snap);
        }
    }
    log_synced(log, path, meta.len());
}

/// Records a successful sync of the first `len` bytes of a file whose length
/// runs past its data (a segment's preallocated zeros): only `len` bytes are
/// known durable.
pub(crate) fn synced_len(path: &std::path::Path, len: u64) {
    if let Some(log) = journal() {
        log_synced(log, path, len);
    }
}

fn log_synced(log: &Mutex<std::fs::File>, path: &std::path::Path, len: u64) {
    use std::io::Write;
    let _ = writeln!(log.lock(), "{}\t{}", path.display(), len);
}
