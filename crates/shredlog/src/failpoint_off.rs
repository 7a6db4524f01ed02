//! Failpoints compiled out: without the `failpoints` feature (every build but
//! the tests') the sites cost nothing and `SHREDLOG_FAILPOINTS` and
//! `SHREDLOG_SYNC_LOG` are ignored.

use std::io;

#[inline(always)]
pub(crate) fn check(_name: &str) -> io::Result<()> {
    Ok(())
}

#[inline(always)]
pub(crate) fn synced(_path: &std::path::Path, _file: &std::fs::File) {}

#[inline(always)]
pub(crate) fn synced_len(_path: &std::path::Path, _len: u64) {}
