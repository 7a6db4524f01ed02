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
#[derive(Clone, PartialEq, Eq)]
pub struct Timestamp {
    millis: i64,
    text: TsText,
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timestamp")
            .field("millis", &self.millis)
            .field("text", &self.as_str())
            .finish()
    }
}

/// Bytes of timestamp text kept inside the value: every RFC 3339 form up to
/// nanoseconds with a UTC offset (`2024-05-02T10:15:03.123456789+05:30`).
const TS_INLINE: usize = 35;

/// A timestamp's text: inline (no allocation: reading and listing make
/// timestamps by the thousand), or on the heap when longer.
#[derive(Clone)]
enum TsText {
    Inline { len: u8, bytes: [u8; TS_INLINE] },
    Heap(Box<str>),
}

impl TsText {
    fn new(text: &str) -> TsText {
        let mut bytes = [0u8; TS_INLINE];
        match bytes.get_mut(..text.len()) {
            Some(head) => {
                head.copy_from_slice(text.as_bytes());
                TsText::Inline {
                    len: text.len() as u8,
                    bytes,
                }
            }
            None => TsText::Heap(text.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` whole, so always valid UTF-8.
            TsText::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            TsText::Heap(text) => text,
        }
    }
}

impl PartialEq for TsText {
    fn eq(&self, other: &TsText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TsText {}

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
            text: TsText::new(text),
        })
    }

    /// A timestamp from Unix milliseconds, written as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp {
            millis,
            text: ts_text(millis),
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
        self.text.as_str()
    }

    pub(crate) fn from_parts(millis: i64, text: &str) -> Timestamp {
        Timestamp {
            millis,
            text: TsText::new(text),
        }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unix milliseconds as RFC 3339 UTC with millisecond precision, without
/// allocating for years 0 to 9999.
fn ts_text(millis: i64) -> TsText {
    let nanos = i128::from(millis) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        // Years 0..=9999 fit the fixed layout, written digit by digit
        // (listing formats two of these per transcript; `format!` costs more
        // than the calendar arithmetic).
        Ok(dt) if (0..=9999).contains(&dt.year()) => {
            let mut bytes = [0u8; TS_INLINE];
            let layout = b"0000-00-00T00:00:00.000Z";
            let len = layout.len();
            if let Some(head) = bytes.get_mut(..len) {
                head.copy_from_slice(layout);
            }
            let mut put = |at: usize, width: usize, mut value: u32| {
                for i in (at..at + width).rev() {
                    if let Some(b) = bytes.get_mut(i) {
                        *b = b'0' + (value % 10) as u8;
                    }
                    value /= 10;
                }
            };
            put(0, 4, dt.year().unsigned_abs());
            put(5, 2, u32::from(u8::from(dt.month())));
            put(8, 2, u32::from(dt.day()));
            put(11, 2, u32::from(dt.hour()));
            put(14, 2, u32::from(dt.minute()));
            put(17, 2, u32::from(dt.second()));
            put(20, 3, u32::from(dt.millisecond()));
            TsText::Inline {
                len: len as u8,
                bytes,
            }
        }
        Ok(dt) => TsText::new(&format_with_fmt(dt)),
        Err(_) => TsText::new(&millis.to_string()),
    }
}

/// The layout of [`ts_text`] written with `format!`: for years outside
/// 0..=9999, and the reference its fast path is tested against.
fn format_with_fmt(dt: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// One message of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The caller's transcript id.
    pub transcript: String,
    /// The caller's message id, unique within its transcript (optional). An
    /// append of a message whose id its transcript already holds stores
    /// nothing and reports it as already stored, so retries are safe.
    pub id: Option<String>,
    /// When it was written.
    pub ts: Timestamp,
    /// Who wrote it, when known.
    pub from: Option<Sender>,
    /// The visitor, when the message names them (required on a transcript's first message).
    pub visitor: Option<Visitor>,
    /// What it says.
    pub body: Body,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout as `format!` writes it: the reference for the fast path.
    fn reference(millis: i64) -> String {
        format_with_fmt(
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .expect("in range"),
        )
    }

    #[test]
    fn timestamp_text_round_trips_inline_and_on_the_heap() {
        for text in [
            "2024-05-02T10:15:03.120Z",
            "2024-05-02T10:15:03.123456789+05:30",
            "2024-05-02T10:15:03.123456789123+05:30",
            "2024-05-02T10:15:03Z",
        ] {
            let ts = Timestamp::parse(text).unwrap();
            assert_eq!(ts.as_str(), text);
            assert_eq!(ts.to_string(), text);
            assert!(format!("{ts:?}").contains(text));
            assert_eq!(ts, Timestamp::from_parts(ts.unix_millis(), text));
        }
        // Same instant, different text: not equal (the text is kept).
        let a = Timestamp::parse("2024-05-02T10:15:03Z").unwrap();
        let b = Timestamp::parse("2024-05-02T12:15:03+02:00").unwrap();
        assert_eq!(a.unix_millis(), b.unix_millis());
        assert_ne!(a, b);
        assert!(matches!(
            Timestamp::parse("2024-05-02T10:15:03.123456789123+05:30")
                .unwrap()
                .text,
            TsText::Heap(_)
        ));
    }

    #[test]
    fn formatted_millis_match_the_reference_and_parse_back() {
        // Year 0 and 9999 at their edges, the epoch, leap days, and a spread
        // of values in between (a multiplicative walk, both signs).
        let year_0 = -62_167_219_200_000i64;
        let year_10000 = 253_402_300_800_000i64;
        let mut samples = vec![
            year_0,
            year_10000 - 1,
            0,
            -1,
            1,
            951_782_400_000,   // 2000-02-29
            1_714_644_903_120, // 2024-05-02T10:15:03.120Z
        ];
        let mut x = 1u64;
        for _ in 0..2000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let span = (year_10000 - year_0) as u64;
            samples.push(year_0 + (x % span) as i64);
        }
        for ms in samples {
            let text = ts_text(ms).as_str().to_owned();
            assert_eq!(text, reference(ms), "{ms}");
            assert_eq!(Timestamp::parse(&text).unwrap().unix_millis(), ms, "{text}");
        }
        // Outside what the calendar type holds: the number itself.
        assert_eq!(ts_text(i64::MAX).as_str(), i64::MAX.to_string());
    }
}
