//! Dry runs: what a key-destroying operation would do, computed from the
//! index and the policy without writing a byte, so that a person can see it
//! before saying yes (`--dry-run`, the server's `dry_run`, the dashboard's
//! confirmation pages). Each operation and its preview share one plan
//! function (`erase.rs`, `delete.rs`, `retention.rs`), so the two cannot
//! disagree.

/// What a privacy operation would do if it ran now: the counts its audit
/// entry would carry, and what would stop or limit it. Computed without
/// writing anything; a store opened read-only can answer it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Preview {
    /// The operation, as its audit entry would name it: `erasure`,
    /// `delete-visitor`, `delete-transcript` or `retention`.
    pub op: String,
    /// The subject, as its audit entry would name it: `visitor:<random id>`,
    /// `transcript:<id>` or `store`.
    pub subject: String,
    /// Transcripts it would act on.
    pub transcripts: u64,
    /// Keys it would destroy (as the audit entry counts them).
    pub keys_destroyed: u64,
    /// Transcripts a legal hold covers: retention leaves them alone; a
    /// deletion (and an erasure, with `holds_block_erasure`) is refused.
    pub held: u64,
    /// Whether the operation would be refused with [`crate::Error::LegalHold`].
    pub refused_by_hold: bool,
    /// Whether the visitor's processing is restricted (an erasure or a
    /// deletion of the visitor ends the restriction).
    pub restricted: bool,
    /// What its audit entry's `detail` would say (retention: the cutoff and
    /// the mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
