//! shredlog: an embedded storage engine for chat transcripts whose personal
//! data can be made unrecoverable on request (crypto-shredding).
//!
//! Every transcript gets two random keys. When a message is written, the
//! personal data in it (emails, phones, IP addresses typed in the text, whole
//! form values, the visitor's details, uploaded files) is cut out and sealed
//! under the transcript's *PII key*; the rest of the message is sealed under its
//! *content key*. Destroying the PII key in the keyring, in place, erases the
//! personal data at once while the conversation stays readable, with
//! `<redacted>` where the data was.
//!
//! ```
//! use shredlog::{Store, Options, interchange};
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default())?;
//! let line = r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03.120Z","from":"visitor","visitor":{"email":"ann@example.com","name":"Ann"},"kind":"text","text":"I am at 203.0.113.9"}"#;
//! store.append(&interchange::parse_line(line)?)?;
//! let back = store.transcript("t-1")?;
//! assert_eq!(interchange::to_line(&back[0]), line);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is not:
//! - not a general key-value store: the data model is transcripts of messages;
//! - not distributed or replicated: one process opens a store directory at a time;
//! - not a guard against copies made outside the live files (backups, file-system
//!   snapshots, SSD remapping) or against someone who reads the process's memory;
//! - it can only shred what it recognised as personal data when it was written
//!   (see docs/PII.md and the rewrite path).
//! - not yet small in memory for huge stores: record locations are on disk
//!   (docs/FORMAT.md §7a), but each transcript and visitor costs some hundreds
//!   of bytes of memory, and open reads the whole keyring.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backup;
mod codec;
mod config;
mod email;
mod error;
pub mod export;
#[cfg(feature = "failpoints")]
#[doc(hidden)]
pub mod failpoint;
#[cfg(not(feature = "failpoints"))]
#[path = "failpoint_off.rs"]
mod failpoint;
mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod index;
pub mod interchange;
mod keyring;
mod message;
mod ops;
pub mod pii;
mod policy;
mod record;
mod screen;
mod seal;
mod secret;
mod segment;
mod shred;
mod split;
mod store;

pub use config::{Config, Durability, KeyEncryptionKey, Options};
pub use email::normalize_email;
pub use error::{Error, Result};
pub use index::SegmentUsage;
pub use keyring::rekey::{RekeyReport, rekey};
pub use message::{Body, FileUpload, Message, REDACTED, Sender, Timestamp, Visitor};
pub use ops::{
    ConsentEvent, ConsentState, ExportedMessage, HoldTarget, Preview, Rectification, VisitorExport,
};
pub use policy::{Hold, RetentionPolicy};
pub use shred::AuditEntry;
pub use store::{
    Appended, CompactOptions, CompactReport, RecoveryReport, Stats, Store, TranscriptInfo,
    VerifyReport,
};
