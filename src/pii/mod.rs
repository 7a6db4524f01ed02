//! Detection of personal data in text (interim rules; replaced by the full
//! detector of issue 6 behind the same interface).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use regex::Regex;

/// Version of the detection rules; recorded with every transcript.
pub const RULES_VERSION: u16 = 1;

/// What kind of personal data a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PiiKind {
    /// An email address.
    Email,
    /// An email address written with "at"/"dot" words.
    ObfuscatedEmail,
    /// A phone number.
    Phone,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A payment card number.
    PaymentCard,
    /// An IBAN.
    Iban,
    /// An operator-defined pattern.
    Custom,
}

impl PiiKind {
    /// Stable on-disk code.
    pub fn code(self) -> u8 {
        match self {
            PiiKind::Email => 1,
            PiiKind::ObfuscatedEmail => 2,
            PiiKind::Phone => 3,
            PiiKind::Ipv4 => 4,
            PiiKind::Ipv6 => 5,
            PiiKind::PaymentCard => 6,
            PiiKind::Iban => 7,
            PiiKind::Custom => 8,
        }
    }

    /// Inverse of [`PiiKind::code`].
    pub fn from_code(code: u8) -> Option<PiiKind> {
        Some(match code {
            1 => PiiKind::Email,
            2 => PiiKind::ObfuscatedEmail,
            3 => PiiKind::Phone,
            4 => PiiKind::Ipv4,
            5 => PiiKind::Ipv6,
            6 => PiiKind::PaymentCard,
            7 => PiiKind::Iban,
            8 => PiiKind::Custom,
            _ => return None,
        })
    }

    /// Name used in reports and configuration.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::ObfuscatedEmail => "obfuscated-email",
            PiiKind::Phone => "phone",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::PaymentCard => "payment-card",
            PiiKind::Iban => "iban",
            PiiKind::Custom => "custom",
        }
    }
}

/// A detected span: byte offsets into the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: PiiKind,
}

/// Which detectors run.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct DetectorConfig {
    /// Detect email addresses. Default: true.
    pub emails: bool,
    /// Detect "ann at example dot com". Default: true.
    pub obfuscated_emails: bool,
    /// Detect phone numbers. Default: true.
    pub phones: bool,
    /// Detect IP addresses. Default: true.
    pub ips: bool,
    /// Detect payment card numbers. Default: false.
    pub payment_cards: bool,
    /// Detect IBANs. Default: false.
    pub ibans: bool,
    /// Operator-defined patterns. Default: none.
    pub custom: Vec<CustomPattern>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            emails: true,
            obfuscated_emails: true,
            phones: true,
            ips: true,
            payment_cards: false,
            ibans: false,
            custom: Vec::new(),
        }
    }
}

/// An operator-defined pattern.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomPattern {
    /// Name for reports.
    pub name: String,
    /// A `regex` crate pattern.
    pub regex: String,
}

/// Errors building a detector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    /// A custom pattern does not compile.
    #[error("custom pattern `{name}` is not a valid regex: {reason}")]
    InvalidPattern {
        /// The pattern's name.
        name: String,
        /// Why it failed.
        reason: String,
    },
}

/// The detector; cheap to clone and share.
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

struct Inner {
    config: DetectorConfig,
    email: Regex,
    phone: Regex,
    ipv4: Regex,
    ipv6: Regex,
    custom: Vec<Regex>,
}

impl Default for Detector {
    fn default() -> Self {
        #[expect(clippy::expect_used, reason = "the built-in patterns are constants")]
        Detector::new(&DetectorConfig::default()).expect("built-in patterns compile")
    }
}

impl Detector {
    /// Builds a detector.
    ///
    /// # Errors
    /// [`PiiError::InvalidPattern`] if a custom pattern does not compile.
    pub fn new(config: &DetectorConfig) -> Result<Detector, PiiError> {
        let builtin = |p: &str| {
            Regex::new(p).map_err(|e| PiiError::InvalidPattern {
                name: "built-in".into(),
                reason: e.to_string(),
            })
        };
        let mut custom = Vec::new();
        for c in &config.custom {
            custom.push(Regex::new(&c.regex).map_err(|e| PiiError::InvalidPattern {
                name: c.name.clone(),
                reason: e.to_string(),
            })?);
        }
        Ok(Detector {
            inner: Arc::new(Inner {
                config: config.clone(),
                email: builtin(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")?,
                phone: builtin(r"\+?\(?\d[\d ().-]{6,}\d")?,
                ipv4: builtin(r"\d{1,3}(?:\.\d{1,3}){3}")?,
                ipv6: builtin(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+")?,
                custom,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectorConfig {
        &self.inner.config
    }

    /// Finds personal data; spans are sorted and do not overlap.
    pub fn find(&self, text: &str) -> Vec<Span> {
        let i = &self.inner;
        let mut spans: Vec<Span> = Vec::new();
        if i.config.emails {
            spans.extend(i.email.find_iter(text).map(|m| Span {
                start: m.start(),
                end: m.end(),
                kind: PiiKind::Email,
            }));
        }
        if i.config.ips {
            for m in i.ipv4.find_iter(text) {
                if m.as_str().parse::<Ipv4Addr>().is_ok() {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        kind: PiiKind::Ipv4,
                    });
                }
            }
            for m in i.ipv6.find_iter(text) {
                if m.as_str().matches(':').count() >= 2 && m.as_str().parse::<Ipv6Addr>().is_ok() {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        kind: PiiKind::Ipv6,
                    });
                }
            }
        }
        if i.config.phones {
            for m in i.phone.find_iter(text) {
                let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
                if (8..=15).contains(&digits) {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        kind: PiiKind::Phone,
                    });
                }
            }
        }
        for re in &i.custom {
            spans.extend(re.find_iter(text).filter(|m| !m.is_empty()).map(|m| Span {
                start: m.start(),
                end: m.end(),
                kind: PiiKind::Custom,
            }));
        }
        spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut out: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match out.last_mut() {
                Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                _ => out.push(s),
            }
        }
        out
    }

    /// Replaces every detected span with `placeholder`.
    pub fn redact(&self, text: &str, placeholder: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for s in self.find(text) {
            out.push_str(text.get(pos..s.start).unwrap_or_default());
            out.push_str(placeholder);
            pos = s.end;
        }
        out.push_str(text.get(pos..).unwrap_or_default());
        out
    }
}

/// Fuzz entry point: checks the detector's properties on arbitrary bytes.
#[doc(hidden)]
pub fn fuzz_redactor(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let d = Detector::default();
    let spans = d.find(&text);
    let mut prev = 0;
    for s in &spans {
        assert!(
            s.start >= prev && s.start < s.end && s.end <= text.len(),
            "bad span"
        );
        assert!(
            text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
            "span not on char boundary"
        );
        prev = s.end;
    }
    let once = d.redact(&text, "<redacted>");
    let twice = d.redact(&once, "<redacted>");
    assert_eq!(once, twice, "redaction is not idempotent");
}
