//! Standard output for a command's results.
//!
//! A closed stdout (the reader went away: `shredlog audit | head -1`) ends the
//! output quietly: the command's work is done, nothing panics, and the exit
//! status stays what the work decided. Any other write error is an error.

use std::io::{self, BufWriter, StdoutLock, Write};

/// Buffered stdout that swallows `BrokenPipe` (see the module doc).
pub(crate) struct Out {
    inner: BufWriter<StdoutLock<'static>>,
    closed: bool,
}

/// Standard output, locked and buffered.
pub(crate) fn stdout() -> Out {
    Out {
        inner: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        closed: false,
    }
}

impl Out {
    /// Whether the reader went away (later output is dropped).
    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    fn absorb<T>(&mut self, r: io::Result<T>, ok: T) -> io::Result<T> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(ok)
            }
            r => r,
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.absorb(r, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.absorb(r, ())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
