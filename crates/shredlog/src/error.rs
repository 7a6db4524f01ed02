//! The library's error type.
//!
//! Messages never contain personal data: they name files, offsets, line numbers
//! and field names, never field values.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on the named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes that fail their checksum or do not parse.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged structure within the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A write or sync failed earlier; the data it covered may be lost, so the
    /// store accepts no more writes until it is reopened.
    #[error("a previous I/O error occurred ({0}); the store refuses writes until it is reopened")]
    Poisoned(String),
    /// The request itself is wrong (missing field, bad value, limit exceeded).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Text the store would keep outside sealed records (a reference, a
    /// transcript id, a message id) contains personal data, which no erasure
    /// could reach. The message names the field and the kind, never the text.
    #[error("the {field} contains {kind}; {advice}")]
    PersonalData {
        /// The field: `reference`, `transcript id` or `message id`.
        field: &'static str,
        /// What was found, e.g. `an email address`.
        kind: &'static str,
        /// What to use instead.
        advice: &'static str,
    },
    /// One message of a batch given to [`crate::Store::append_batch`] broke a
    /// rule ([`Error::Invalid`] or [`Error::PersonalData`]): which one
    /// (0-based) and why. Nothing of the batch was stored.
    #[error("message {index}: {error}")]
    InMessage {
        /// The message's position in the batch, from 0.
        index: usize,
        /// What was wrong with it.
        error: Box<Error>,
    },
    /// No transcript with that id exists (or it was deleted).
    #[error("transcript not found")]
    TranscriptNotFound,
    /// No visitor with that email exists (or it was erased).
    #[error("visitor not found")]
    VisitorNotFound,
    /// A legal hold forbids the operation.
    #[error(
        "refused: a legal hold applies (release it first, or for erasure unset holds-block-erasure)"
    )]
    LegalHold,
    /// The visitor's data is restricted (GDPR Art. 18): only export, erasure and
    /// lifting the restriction are allowed.
    #[error("refused: processing of this visitor's data is restricted; lift the restriction first")]
    Restricted,
    /// Another process holds the store directory's lock.
    #[error("the store at {0} is already open in another process")]
    Locked(PathBuf),
    /// The key-encryption key is missing, malformed or does not match the keyring.
    #[error("key-encryption key problem: {0}")]
    Kek(String),
    /// A file was written by a newer or unknown format version.
    #[error("unsupported format version {version} in {path}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// A limit of the on-disk format was reached (e.g. the keyring is full).
    #[error("limit reached: {0}")]
    Limit(String),
    /// The directory holds no store (no keyring) and the operation does not
    /// create one.
    #[error("no shredlog store at {0} (no keyring file); check the --data directory")]
    NotAStore(PathBuf),
    /// The store was opened read-only and the operation would write.
    #[error("the store is open read-only; this operation writes")]
    ReadOnly,
    /// An internal invariant of shredlog does not hold: a bug, not bad input.
    #[error("internal error (a bug in shredlog, please report it): {0}")]
    Internal(String),
    /// A backup destination failed: an object could not be written, read,
    /// listed or deleted.
    #[error("backup destination: {object}: {reason}")]
    Target {
        /// The object (or prefix) the call was made on.
        object: String,
        /// What went wrong.
        reason: String,
    },
    /// A backup is damaged or incomplete: an object is missing, altered, or
    /// does not authenticate under the backup key. Nothing is restored from it.
    #[error("backup object {object} {reason}; refusing to restore from it")]
    BackupDamaged {
        /// The object.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backup key is missing or malformed.
    #[error("backup key problem: {0}")]
    BackupKey(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Shorthand for `Result<T, shredlog::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Error {
        Error::Invalid(reason.into())
    }

    /// Names message `index` of a batch as the cause of an input error
    /// (other errors are not about one message and pass unchanged).
    pub(crate) fn in_message(self, index: usize) -> Error {
        match self {
            Error::Invalid(_) | Error::PersonalData { .. } => Error::InMessage {
                index,
                error: Box::new(self),
            },
            other => other,
        }
    }

    /// The error itself, without the batch position [`Error::InMessage`]
    /// adds.
    pub fn without_position(self) -> Error {
        match self {
            Error::InMessage { error, .. } => *error,
            other => other,
        }
    }
}

/// Adds the file path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
