//! The public data model: messages, their bodies, senders, visitors, timestamps.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

/// The placeholder that stands where destroyed personal data was.
pub const REDACTED: &str = "<redacted>";

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// The website visitor (the data subject).
    Visitor,
    /// A human operator of the controller.
    Operator,
    /// A bot answering for the controller.
    Bot,
    /// The chat system itself.
    System,
}

impl Sender {
    /// The interchange name: `visitor`, `operator`, `bot` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Visitor => "visitor",
            Sender::Operator => "operator",
            Sender::Bot => "bot",
            Sender::System => "system",
        }
    }

    /// Parses an interchange name.
    pub fn parse(s: &str) -> Option<Sender> {
        Some(match s {
            "visitor" => Sender::Visitor,
            "operator" => Sender::Operator,
            "bot" => Sender::Bot,
            "system" => Sender::System,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Sender::Visitor => 1,
            Sender::Operator => 2,
            Sender::Bot => 3,
            Sender::System => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Sender> {
        Some(match code {
            1 => Sender::Visitor,
            2 => Sender::Operator,
            3 => Sender::Bot,
            4 => Sender::System,
            _ => return None,
        })
    }
}

/// The visitor a transcript belongs to, as named by a message.
///
/// Every field is personal data and is sealed under the transcript's PII key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visitor {
    /// The lookup key; compared case-insensitively after trimming.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Phone number as given.
    pub phone: Option<String>,
    /// The controller's internal visitor id.
    pub id: Option<String>,
    /// The visitor's IP address as given.
    pub ip: Option<String>,
}

/// An uploaded file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileUpload {
    /// File name as uploaded (personal data: sealed under the PII key).
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// The bytes (sealed under the PII key). Empty after redaction.
    pub data: Vec<u8>,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Free text typed in the chat.
    Text(String),
    /// A pre-chat or offline form submission: field name → value.
    Form(BTreeMap<String, String>),
    /// A file the visitor uploaded.
    File(FileUpload),
    /// Consent granted or withdrawn in the chat box, with the prompt shown.
    Consent {
        /// Whether consent was granted (`false`: withdrawn or refused).
        granted: bool,
        /// The prompt text the visitor answered.
        prompt: String,
    },
}

impl Body {
    /// The interchange `kind`: `text`, `form`, `file` or `consent`.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Text(_) => "text",
            Body::Form(_) => "form",
            Body::File(_) => "file",
            Body::Consent { .. } => "consent",
        }
    }
}

/// A point in time: milliseconds since the Unix epoch plus the RFC 3339 text it
/// was given as, so that it reads back exactly as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    millis: i64,
    text: String,
}

impl Timestamp {
    /// Parses an RFC 3339 timestamp such as `2024-05-02T10:15:03.120Z`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the text is not RFC 3339.
    ///
    /// ```
    /// let ts = shredlog::Timestamp::parse("2024-05-02T10:15:03.120Z").unwrap();
    /// assert_eq!(ts.unix_millis(), 1_714_644_903_120);
    /// ```
    pub fn parse(text: &str) -> Result<Timestamp> {
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            Error::invalid("timestamp is not RFC 3339 (e.g. 2024-05-02T10:15:03.120Z)")
        })?;
        let millis = i64::try_from(dt.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| Error::invalid("timestamp out of range"))?;
        Ok(Timestamp {
            millis,
            text: text.to_owned(),
        })
    }

    /// A timestamp from Unix milliseconds, written as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp {
            millis,
            text: format_millis(millis),
        }
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.millis
    }

    /// The RFC 3339 text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn from_parts(millis: i64, text: String) -> Timestamp {
        Timestamp { millis, text }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with millisecond precision.
pub(crate) fn format_millis(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        ),
        Err(_) => millis.to_string(),
    }
}

/// One message of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The caller's transcript id.
    pub transcript: String,
    /// When it was written.
    pub ts: Timestamp,
    /// Who wrote it, when known.
    pub from: Option<Sender>,
    /// The visitor, when the message names them (required on a transcript's first message).
    pub visitor: Option<Visitor>,
    /// What it says.
    pub body: Body,
}

/// Normalises an email for lookup: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
