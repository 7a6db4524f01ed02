//! What may be kept outside sealed records.
//!
//! An erasure destroys keys; it can only make unreadable what was sealed under
//! them. Text the store keeps outside the PII part of sealed records
//! outlives every erasure: the `reference` of every privacy operation (in
//! `audit.log`, and in `policy.json` for holds and restrictions), the
//! caller's transcript id (in the transcript's keyring slot, which an
//! erasure keeps so the conversation stays readable, in audit subjects and
//! in transcript holds) and message ids (in the content part, which an
//! erasure keeps). So that text is checked before anything is written:
//! personal data in it is refused with one sentence that names the field
//! and the kind, never the text.
//!
//! The check uses the store's detector with the kinds that name a person
//! always on (emails, obfuscated emails, phones, IP addresses), plus the
//! payment cards, IBANs and custom patterns the operator configured.

use crate::error::{Error, Result};
use crate::pii::{Detector, DetectorConfig, PiiKind};

/// Longest reference, in characters (the server's documented limit).
pub(crate) const MAX_REFERENCE_CHARS: usize = 256;
/// Longest message id, in bytes.
pub(crate) const MAX_MESSAGE_ID: usize = 200;

/// A field of free text kept outside sealed records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// The caller's reference of a privacy operation (also the reason of a
    /// hold or a restriction).
    Reference,
    /// The caller's transcript id.
    TranscriptId,
    /// The caller's message id.
    MessageId,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Reference => "reference",
            Field::TranscriptId => "transcript id",
            Field::MessageId => "message id",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Field::Reference => "use a ticket number or another reference that names no person",
            Field::TranscriptId | Field::MessageId => {
                "use a random or sequential id (an erasure cannot reach ids)"
            }
        }
    }
}

/// The checker, built once per store.
pub(crate) struct Screen {
    detector: Detector,
    /// `Options::allow_unerasable_personal_data_in_ids`.
    ids_unchecked: bool,
}

impl Screen {
    /// A screen with the store's detector settings and every kind that names
    /// a person switched on.
    pub(crate) fn new(config: &DetectorConfig, ids_unchecked: bool) -> Result<Screen> {
        let config = DetectorConfig {
            emails: true,
            obfuscated_emails: true,
            phones: true,
            ips: true,
            ..config.clone()
        };
        let detector = Detector::new(&config).map_err(|e| Error::invalid(e.to_string()))?;
        Ok(Screen {
            detector,
            ids_unchecked,
        })
    }

    /// Checks a reference: at most 256 characters, no control characters,
    /// no personal data.
    pub(crate) fn reference(&self, text: &str) -> Result<()> {
        if text.chars().count() > MAX_REFERENCE_CHARS {
            return Err(Error::invalid(format!(
                "the reference is longer than {MAX_REFERENCE_CHARS} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::invalid(
                "the reference contains a control character (a line break, a tab or a terminal escape)",
            ));
        }
        self.no_personal_data(Field::Reference, text)
    }

    /// Checks a caller's transcript or message id for personal data (its
    /// length is checked where it is stored), unless the store allows it.
    pub(crate) fn id(&self, field: Field, id: &str) -> Result<()> {
        if id.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "the {} contains a control character",
                field.name()
            )));
        }
        if field == Field::MessageId && id.len() > MAX_MESSAGE_ID {
            return Err(Error::invalid(format!(
                "the message id is longer than {MAX_MESSAGE_ID} bytes"
            )));
        }
        if self.ids_unchecked {
            return Ok(());
        }
        self.no_personal_data(field, id)
    }

    fn no_personal_data(&self, field: Field, text: &str) -> Result<()> {
        let kind = match self.detector.find(text).first() {
            Some(span) => Some(span.kind),
            // Chat text glues words to addresses in ways the detector must
            // weigh; an id or a reference has no such excuse.
            None => has_dotted_quad(text).then_some(PiiKind::Ipv4),
        };
        match kind {
            None => Ok(()),
            Some(kind) => Err(Error::PersonalData {
                field: field.name(),
                kind: kind_phrase(kind),
                advice: field.advice(),
            }),
        }
    }
}

/// Whether `text` holds four dot-separated numbers of 0..=255 not part of a
/// longer run of digits and dots (an IPv4 address, whatever surrounds it).
fn has_dotted_quad(text: &str) -> bool {
    let b = text.as_bytes();
    let run = |c: u8| c.is_ascii_digit() || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !run(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && run(b[i]) {
            i += 1;
        }
        let parts: Vec<&str> = text[start..i].split('.').collect();
        if parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u16>().is_ok_and(|n| n <= 255))
        {
            return true;
        }
    }
    false
}

fn kind_phrase(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::Email => "an email address",
        PiiKind::ObfuscatedEmail => "an email address (written out)",
        PiiKind::Phone => "a phone number",
        PiiKind::Ipv4 | PiiKind::Ipv6 => "an IP address",
        PiiKind::PaymentCard => "a payment card number",
        PiiKind::Iban => "an IBAN",
        _ => "personal data (an operator-defined pattern)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen() -> Screen {
        Screen::new(&DetectorConfig::default(), false).unwrap()
    }

    #[test]
    fn references_with_personal_data_are_refused_by_kind() {
        let g = screen();
        for (text, kind) in [
            ("request from s.guerin@courriel.example", "an email address"),
            (
                "ticket for ann at example dot com",
                "an email address (written out)",
            ),
            ("called back on +44 20 7946 0958", "a phone number"),
            ("blocked 203.0.113.9", "an IP address"),
        ] {
            let err = g.reference(text).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "the reference contains {kind}; use a ticket number or another reference that names no person"
                )
            );
        }
        for ok in [
            "",
            "T-1",
            "JIRA-4711",
            "DSAR 2024-05-02 #17",
            "GDPR art. 17 request",
        ] {
            g.reference(ok).unwrap();
        }
    }

    #[test]
    fn references_have_the_servers_limits() {
        let g = screen();
        g.reference(&"é".repeat(256)).unwrap();
        assert!(
            g.reference(&"é".repeat(257))
                .unwrap_err()
                .to_string()
                .contains("256")
        );
        for bad in ["a\nb", "a\u{1b}[31mb", "tab\there", "a\u{85}b"] {
            assert!(
                g.reference(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("control character")
            );
        }
    }

    #[test]
    fn ids_with_personal_data_are_refused_unless_allowed() {
        let g = screen();
        for id in [
            "chat-ann@example.com",
            "+44 20 7946 0958",
            "from-203.0.113.9",
            "ip_10.0.0.1_chat",
        ] {
            let err = g.id(Field::TranscriptId, id).unwrap_err().to_string();
            assert!(err.starts_with("the transcript id contains"), "{err}");
            assert!(!err.contains(id));
        }
        let lax = Screen::new(&DetectorConfig::default(), true).unwrap();
        lax.id(Field::TranscriptId, "chat-ann@example.com").unwrap();
        assert!(lax.id(Field::MessageId, "a\u{0}b").is_err());
        assert!(g.id(Field::MessageId, &"m".repeat(201)).is_err());
    }

    /// The ids real chat backends use are accepted.
    #[test]
    fn ordinary_ids_pass() {
        let g = screen();
        for id in [
            "t-1001",
            "3f2b1c9e-5d4a-4b8e-9f1a-0c2d3e4f5a6b",
            "01HZX3J5K7M9P1Q3R5T7V9W1Y3",
            "conv_8f3a2b1c",
            "1700000000000",
            "1700000000000-17",
            "2024-05-02T10:15:03Z-7",
            "chat/2024/05/02/000123",
            "m-000000042",
            "ticket#88172",
            "a1b2c3d4e5f6",
            "session:9f8e7d6c",
            "v2.14.3-build.1187",
            "1.2.3.4.5",
            "10.0.0.256",
        ] {
            assert!(g.id(Field::TranscriptId, id).is_ok(), "{id}");
            assert!(g.id(Field::MessageId, id).is_ok(), "{id}");
        }
    }
}
