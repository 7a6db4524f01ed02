//! Where a keyring's bytes are read from: its file, or (for a keyring of an
//! older format opened read-only) a copy converted to the current format in
//! memory, so that everything above reads one format and a read-only open
//! writes nothing.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// The bytes slots are read from.
#[derive(Clone)]
pub(crate) enum Source {
    File(Arc<File>),
    /// A whole keyring, converted; wiped when the last reader drops it.
    Image(Arc<Zeroizing<Vec<u8>>>),
}

impl Source {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match self {
            Source::File(f) => f.read_at(buf, offset),
            Source::Image(b) => {
                let at = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let n = buf.len().min(b.len() - at);
                buf[..n].copy_from_slice(&b[at..at + n]);
                Ok(n)
            }
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::File(f) => f.read_exact_at(buf, offset),
            Source::Image(_) => {
                if self.read_at(buf, offset)? == buf.len() {
                    Ok(())
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                }
            }
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> std::io::Result<u64> {
        match self {
            Source::File(f) => Ok(f.metadata()?.len()),
            Source::Image(b) => Ok(b.len() as u64),
        }
    }
}
