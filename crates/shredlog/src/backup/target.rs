//! Where backups go: a [`Target`] stores named objects. [`DirTarget`] is a
//! directory; the `shredlog-backup` crate adds S3-compatible object stores,
//! so that this crate needs no HTTP client.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether the destination keeps old versions of replaced or deleted objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Versioning {
    /// Replaced and deleted objects are gone.
    Off,
    /// The destination keeps old versions: a deleted keyring copy is not gone.
    On,
    /// The destination cannot tell.
    Unknown,
}

/// A backup destination: named objects (names are `/`-separated paths of
/// ASCII letters, digits, `-`, `.` and `_`, never personal data).
///
/// A `put` must be atomic: a reader sees the whole new object or the old
/// one (or none), never a part.
pub trait Target: Send + Sync {
    /// The destination, for messages (e.g. `s3://bucket/prefix`, never
    /// credentials).
    fn describe(&self) -> String;
    /// Stores an object, replacing any of that name, durably.
    ///
    /// # Errors
    /// [`Error::Target`] naming the object.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Reads an object; `None` if there is none of that name.
    ///
    /// # Errors
    /// [`Error::Target`] naming the object.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// The names of the objects whose name starts with `prefix`, sorted.
    ///
    /// # Errors
    /// [`Error::Target`].
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Deletes an object (nothing if there is none).
    ///
    /// # Errors
    /// [`Error::Target`] naming the object.
    fn delete(&self, name: &str) -> Result<()>;
    /// Whether the destination keeps old versions of objects.
    ///
    /// # Errors
    /// [`Error::Target`] if asking failed.
    fn versioning(&self) -> Result<Versioning> {
        Ok(Versioning::Unknown)
    }
}

/// A directory as a backup destination: one file per object, written to a
/// temporary file, synced and renamed into place.
#[derive(Clone, Debug)]
pub struct DirTarget {
    root: PathBuf,
}

impl DirTarget {
    /// A destination in `root` (created when first written to).
    pub fn new(root: impl Into<PathBuf>) -> DirTarget {
        DirTarget { root: root.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            });
        if !ok {
            return Err(target_error(name, "not a valid object name"));
        }
        Ok(self.root.join(name))
    }
}

fn target_error(object: &str, reason: impl std::fmt::Display) -> Error {
    Error::Target {
        object: object.to_owned(),
        reason: reason.to_string(),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(name)?;
        let parent = path.parent().unwrap_or(&self.root).to_owned();
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&parent)?;
            let suffix: [u8; 8] = crate::seal::random_array().map_err(std::io::Error::other)?;
            let tmp = parent.join(format!(
                ".{}.{}.tmp",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("object"),
                crate::backup::hex_bytes(&suffix)
            ));
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let done = f.write_all(bytes).and_then(|()| f.sync_all());
            if let Err(e) = done.and_then(|()| std::fs::rename(&tmp, &path)) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            sync_dir(&parent)
        };
        write().map_err(|e| target_error(name, format!("cannot write {}: {e}", path.display())))
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(name)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(target_error(name, format!("cannot read: {e}"))),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut todo = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = todo.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(target_error(prefix, format!("cannot list: {e}"))),
            };
            for entry in entries {
                let entry = entry.map_err(|e| target_error(prefix, format!("cannot list: {e}")))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue; // temporary files of writes in progress
                }
                let full = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let kind = entry
                    .file_type()
                    .map_err(|e| target_error(&full, format!("cannot list: {e}")))?;
                if kind.is_dir() {
                    if prefix.starts_with(&format!("{full}/")) || full.starts_with(prefix) {
                        todo.push((entry.path(), full));
                    }
                } else if full.starts_with(prefix) {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(target_error(name, format!("cannot delete: {e}"))),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent).map_err(|e| target_error(name, format!("cannot delete: {e}")))?;
        }
        Ok(())
    }

    fn versioning(&self) -> Result<Versioning> {
        Ok(Versioning::Off)
    }
}
