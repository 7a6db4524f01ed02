//! Consent (in the chat box): a visitor's consent state and history, from
//! the consent events in their transcripts. Works on restricted visitors.

use crate::error::Result;
use crate::message::Body;
use crate::store::Store;

/// One consent event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConsentEvent {
    /// When.
    pub ts: String,
    /// Granted (`true`) or withdrawn/refused (`false`).
    pub granted: bool,
    /// The prompt shown.
    pub prompt: String,
    /// The transcript it was given in.
    pub transcript: String,
}

/// A visitor's consent state and history.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConsentState {
    /// The latest answer, if any.
    pub current: Option<bool>,
    /// Every event, oldest first.
    pub history: Vec<ConsentEvent>,
}

impl Store {
    /// The visitor's consent state and history (from consent events in their
    /// transcripts, ordered by time across transcripts). Works on restricted
    /// visitors.
    ///
    /// # Errors
    /// [`crate::Error::VisitorNotFound`], [`crate::Error::Corrupt`].
    pub fn consent(&self, email: &str) -> Result<ConsentState> {
        let export = self.export(email)?;
        let mut events = Vec::new();
        for (id, msgs) in &export.transcripts {
            for m in msgs {
                if let Body::Consent { granted, prompt } = &m.message.body {
                    events.push((
                        m.message.ts.unix_millis(),
                        ConsentEvent {
                            ts: m.message.ts.as_str().to_owned(),
                            granted: *granted,
                            prompt: prompt.clone(),
                            transcript: id.clone(),
                        },
                    ));
                }
            }
        }
        // Transcripts of one visitor overlap in time: the latest answer is the
        // latest by time, not the last of the last transcript.
        events.sort_by_key(|(ms, _)| *ms);
        let history: Vec<ConsentEvent> = events.into_iter().map(|(_, e)| e).collect();
        Ok(ConsentState {
            current: history.last().map(|e| e.granted),
            history,
        })
    }
}
