//! The redo log: what a privacy operation destroys, as a typed [`Intent`]
//! carried by its audit entry ([`log`]), carried out on the keyring, the key
//! cache and the index ([`apply`]), and finished at open when a crash cut it
//! short ([`redo`]); what the whole log destroyed, held against what is
//! still there ([`residue`]).

pub(crate) mod apply;
pub(crate) mod intent;
pub(crate) mod log;
pub(crate) mod redo;
pub(crate) mod residue;

pub(crate) use apply::{InMemory, Owner, Shredder, Wipe, WipeUnwiped};
pub(crate) use intent::Intent;
pub use log::AuditEntry;
pub(crate) use log::{AUDIT_FILE, AuditLog, AuditMarks, AuditMode};
