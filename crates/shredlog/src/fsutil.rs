//! Small file-system helpers.

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    crate::failpoint::check("dir.sync").at(dir)?;
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// The names of the entries of a directory (those that are UTF-8: every
/// file shredlog writes has such a name), in no particular order.
pub(crate) fn names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        if let Ok(name) = entry.at(dir)?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        crate::failpoint::check("atomic.write").at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        crate::failpoint::check("atomic.sync").at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    crate::failpoint::check("atomic.rename").at(&dst)?;
    std::fs::rename(&tmp, &dst).at(&dst)?;
    sync_dir(dir)
}
