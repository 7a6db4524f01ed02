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

/// What tells a file apart from any other, and from itself before a
/// change: its device, inode and status-change time. A write, a truncation,
/// a rename onto its name (a new inode), a copy over it or a change of its
/// attributes all change one of them; a program cannot set the change time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub ctime: i64,
    pub ctime_nsec: u32,
}

impl Stamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            ctime: m.ctime(),
            ctime_nsec: u32::try_from(m.ctime_nsec()).unwrap_or(u32::MAX),
        }
    }
}
