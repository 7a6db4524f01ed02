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
    Ok(listing(dir)?.0)
}

/// The names of the entries of a directory, as [`names`], and the inode
/// number of each (in the same order), which the listing gives without a
/// system call per entry.
pub(crate) fn listing(dir: &Path) -> Result<(Vec<String>, Vec<u64>)> {
    use std::os::unix::fs::DirEntryExt;
    let (mut names, mut inodes) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let ino = entry.ino();
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
            inodes.push(ino);
        }
    }
    Ok((names, inodes))
}

/// Where the hole that runs to the end of `file` (`size` bytes long) starts,
/// looked for from byte `from` on: every byte from there to `size` reads as
/// zero, without having to be read. `size` when the file ends in data, or
/// when its file system does not tell holes from data (then everything
/// counts as data, which is never wrong).
///
/// A hole is what the file system reports as one (`SEEK_HOLE`): a range no
/// write has reached, through the page cache or on the device. It reports
/// data wherever a byte may be anything but zero, so a range it calls a hole
/// holds nothing, whatever was written, synced or lost before.
pub(crate) fn zeros_from(file: &File, from: u64, size: u64) -> u64 {
    /// Data and holes looked through before giving up (a file whose tail
    /// alternates more often than this is read instead).
    const PROBES: usize = 16;
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{SeekFrom, seek};
        let mut at = from;
        for _ in 0..PROBES {
            if at >= size {
                return size;
            }
            let Ok(hole) = seek(file, SeekFrom::Hole(at)) else {
                return size;
            };
            if hole >= size {
                return size;
            }
            match seek(file, SeekFrom::Data(hole)) {
                // No data from the hole on: it runs to the end.
                Err(rustix::io::Errno::NXIO) => return hole,
                Ok(data) if data > hole => at = data,
                _ => return size,
            }
        }
        size
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, from, PROBES);
        size
    }
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
/// (Open compares a sealed segment's device and inode only, which the
/// directory's listing gives: shredlog never changes such a file in place.)
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn zeros_from_finds_the_hole_at_the_end_and_never_a_written_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        const MIB: u64 = 1 << 20;
        file.write_all_at(&[7u8; 4096], 0).unwrap();
        file.set_len(4 * MIB).unwrap();
        let size = 4 * MIB;
        // Right after the written block (every file system a store is
        // tested on tells holes apart: ext4, xfs, btrfs, tmpfs).
        assert_eq!(zeros_from(&file, 0, size), 4096);
        assert_eq!(zeros_from(&file, 8192, size), 8192);
        // A byte written into the hole (not synced): data from there on.
        file.write_all_at(&[1], 3 * MIB + 10).unwrap();
        let z = zeros_from(&file, 0, size);
        assert!(z > 3 * MIB + 10, "{z}");
        // Never a written byte inside what it calls zeros.
        let mut buf = vec![0u8; (size - z) as usize];
        file.read_exact_at(&mut buf, z).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        // Zeros written (not a hole): counted as data.
        file.write_all_at(&vec![0u8; MIB as usize], 3 * MIB)
            .unwrap();
        let z = zeros_from(&file, 0, size);
        assert_eq!(z, size);
        // Looked for from past the end: the end.
        assert_eq!(zeros_from(&file, size, size), size);
    }
}
