//! Export (GDPR Art. 15 and 20): everything held about one visitor. Works on
//! restricted visitors.

use std::sync::Arc;

use crate::error::Result;
use crate::index::TranscriptEntry;
use crate::message::{Message, Visitor};
use crate::store::{Hashing, MessageFacts, Store};

/// One message in an export, with the facts a data subject is owed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportedMessage {
    /// The message (with `<redacted>` where data was destroyed).
    pub message: Message,
    /// Position within its transcript, from 0.
    pub seq: u32,
    /// File size in bytes, for file uploads.
    pub file_size: Option<u64>,
    /// SHA-256 of the file (hex), while it is held.
    pub file_sha256: Option<String>,
}

/// Everything held about one visitor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorExport {
    /// The visitor's details as most recently given.
    pub visitor: Option<Visitor>,
    /// Transcripts, oldest first, each with its messages in order.
    pub transcripts: Vec<(String, Vec<ExportedMessage>)>,
}

impl Store {
    /// Everything held about a visitor (Art. 15 and 20). Works on restricted
    /// visitors.
    ///
    /// # Errors
    /// [`crate::Error::VisitorNotFound`], [`crate::Error::Corrupt`].
    pub fn export(&self, email: &str) -> Result<VisitorExport> {
        let vid = self.vid_of(email)?;
        // Oldest first, by caller id where two start at once; the ids are
        // read with the keys (the index holds only their hashes).
        let entries: Vec<(Arc<str>, TranscriptEntry)> = {
            let index = self.engine.index.read();
            let mut v = Vec::new();
            for (t, e) in index.listing(&vid)? {
                let id = self.engine.keys.get(&t)?.caller_id;
                v.push((e.first_ts(), id, t.into_owned()));
            }
            v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            v.into_iter().map(|(_, id, t)| (id, t)).collect()
        };
        let mut out = VisitorExport::default();
        let mut latest: Option<(i64, Visitor)> = None;
        for (id, t) in &entries {
            let msgs: Vec<ExportedMessage> = self
                .read_entry(&t.tid, Hashing::Files)?
                .into_iter()
                .map(|(message, f): (Message, MessageFacts)| {
                    if let Some(v) = &message.visitor
                        && latest
                            .as_ref()
                            .is_none_or(|(ms, _)| *ms <= message.ts.unix_millis())
                    {
                        latest = Some((message.ts.unix_millis(), v.clone()));
                    }
                    ExportedMessage {
                        seq: f.seq,
                        file_size: f.file_size,
                        file_sha256: f
                            .file_sha256
                            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
                        message,
                    }
                })
                .collect();
            out.transcripts.push((id.to_string(), msgs));
        }
        out.visitor = latest.map(|(_, v)| v);
        Ok(out)
    }
}
