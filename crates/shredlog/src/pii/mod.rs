//! Detection and redaction of personal data in chat text.
//!
//! The store can only shred what it recognised as personal data when a message
//! was written, so this module decides how much an erasure really erases. It
//! finds, in any mix of scripts:
//!
//! - **email addresses** ([`PiiKind::Email`]): what RFC 5321/5322 allows and
//!   people type — plus-addressing, subdomains, upper case, an apostrophe or
//!   Unicode letters in the local part, a quoted local part, internationalised
//!   domains (`пример.рф`, `example.xn--p1ai`), address literals, the full-width
//!   `＠`; quotes, brackets, `mailto:` and CJK text around them are not part of
//!   the span;
//! - **obfuscated email addresses** ([`PiiKind::ObfuscatedEmail`]):
//!   "ann at example dot com", "ann \[at\] example \[dot\] com", "ann(at)example.de",
//!   "ann -at- example -dot- com", "ann_at_example_dot_com", "ann(@)example(.)com",
//!   "juan arroba correo punto es", …, reported as their own kind;
//! - **phone numbers** ([`PiiKind::Phone`]): international (`+CC` or `00CC`,
//!   validated against each country's national-number lengths from
//!   libphonenumber's metadata) and national formats of the EU, the UK,
//!   US/Canada, Brazil, India, Japan, China and others, with spaces of any width,
//!   dashes, dots, slashes, brackets, `(0)`, full-width digits and extensions;
//!   any national number right after a phone label, glued or not ("tel=…",
//!   "ph#…", "WhatsApp: **…**", "Handy0151…");
//! - **IP addresses** ([`PiiKind::Ipv4`], [`PiiKind::Ipv6`]): IPv4 with port or
//!   prefix length; IPv6 full, compressed, IPv4-mapped, with zone id, in brackets
//!   with port; ranges ("192.168.0.10-192.168.0.99"); every IPv6 candidate is
//!   confirmed by `std::net` parsing, IPv4 octets are range-checked;
//! - optionally (off by default) **payment card numbers** (Luhn),
//!   **IBANs** (mod-97) and operator-defined **custom patterns**.
//!
//! Look-alikes that chat is full of are *not* reported: dates and times, prices
//! and quantities, version strings, order/tracking/invoice numbers (by the words
//! before them), ISBNs, file names, URLs without personal data, @mentions.
//!
//! Every detection rule change bumps [`RULES_VERSION`], which the store records
//! with what it redacted.
//!
//! ```
//! use shredlog::pii::{Detector, PiiKind};
//!
//! let detector = Detector::default();
//! let text = "Mail ann.lee+chat@example.com or call +44 (0)20 7946 0958, ip 2001:db8::1";
//! let kinds: Vec<PiiKind> = detector.find(text).iter().map(|s| s.kind).collect();
//! assert_eq!(kinds, [PiiKind::Email, PiiKind::Phone, PiiKind::Ipv6]);
//! assert_eq!(
//!     detector.redact(text, "<redacted>"),
//!     "Mail <redacted> or call <redacted>, ip <redacted>"
//! );
//! // Version strings, dates and order numbers stay.
//! let text = "v2.10.3 released 2024-03-15, order #4711-0815";
//! assert!(detector.find(text).is_empty());
//! ```
//!
//! # Known limits
//!
//! - National numbers are recognised by shape and context, not by the caller's
//!   locale: a bare 8-digit number is only a phone when a phone word ("tel",
//!   "call", "電話", …) is close before it; numbers of countries outside the
//!   covered national formats are found when written with `+CC`.
//! - A number right after words like "order", "invoice", "tracking", "ISBN",
//!   "IBAN" is taken for that, unless a phone word is closer.
//! - Obfuscated addresses with a plain "at" and real dots ("ann at example.com")
//!   need an address-like local part (`.`, `_`, `+` or a digit), a mail
//!   provider's domain or a mail word before them, so that "sign up at
//!   example.com" is left alone.
//! - Names, postal addresses and free-text identifiers are out of scope.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod cards;
mod email;
mod ip;
mod obfuscated;
mod phone;
mod tables;
mod text;

use std::sync::Arc;

use regex::Regex;

/// Version of the detection rules. Bumped whenever the output of
/// [`Detector::find`] can change for some input; the store records it with
/// every redacted record.
pub const RULES_VERSION: u16 = 3;

/// The placeholder that [`Detector::find`] never reports as personal data and
/// that [`Detector::redact`] is idempotent for.
pub const PLACEHOLDER: &str = "<redacted>";

/// The kind of a detected span. The numeric [`PiiKind::code`] is stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PiiKind {
    /// An email address.
    Email,
    /// An email address written to dodge harvesters ("ann at example dot com").
    ObfuscatedEmail,
    /// A phone number.
    Phone,
    /// An IPv4 address (with port or prefix length when written).
    Ipv4,
    /// An IPv6 address (with zone id, brackets and port when written).
    Ipv6,
    /// A payment card number (Luhn-valid).
    PaymentCard,
    /// An IBAN (mod-97-valid).
    Iban,
    /// A match of an operator-defined pattern.
    Custom,
}

impl PiiKind {
    const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::ObfuscatedEmail,
        PiiKind::Phone,
        PiiKind::Ipv4,
        PiiKind::Ipv6,
        PiiKind::PaymentCard,
        PiiKind::Iban,
        PiiKind::Custom,
    ];

    /// Stable on-disk code, `1..=8` in declaration order.
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

    /// The kind with on-disk `code`, if any.
    pub fn from_code(code: u8) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Stable lower-case name: `email`, `obfuscated-email`, `phone`, `ipv4`,
    /// `ipv6`, `payment-card`, `iban`, `custom`.
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

impl std::fmt::Display for PiiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A detected piece of personal data: byte offsets `start..end` into the text,
/// on char boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// What was found.
    pub kind: PiiKind,
}

/// Which detectors run. The same struct is read from the store's TOML/JSON
/// configuration (kebab-case keys; unknown keys are an error).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct DetectorConfig {
    /// Plain email addresses. Default: `true`.
    pub emails: bool,
    /// Obfuscated email addresses ("ann at example dot com"). Default: `true`.
    pub obfuscated_emails: bool,
    /// Phone numbers. Default: `true`.
    pub phones: bool,
    /// IPv4 and IPv6 addresses. Default: `true`.
    pub ips: bool,
    /// Payment card numbers (Luhn-checked). Default: `false`.
    pub payment_cards: bool,
    /// IBANs (mod-97-checked). Default: `false`.
    pub ibans: bool,
    /// Operator-defined patterns, reported as [`PiiKind::Custom`]. Default: none.
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

/// An operator-defined pattern (syntax of the `regex` crate; no look-around or
/// back-references; matching is linear in the text length).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomPattern {
    /// A name for error messages and audit logs.
    pub name: String,
    /// The regular expression.
    pub regex: String,
}

/// Errors building a [`Detector`]. Messages name the configuration entry and
/// never repeat user text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    /// A custom pattern could not be compiled; fix or remove it in the configuration.
    #[error("custom pii pattern {name:?} is invalid: {reason}")]
    InvalidPattern {
        /// The pattern's configured name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Largest compiled size of one custom pattern.
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;
/// Rounds of [`Detector::redact`] before it gives up looking for detections
/// that redaction created at the seams.
const MAX_REDACT_ROUNDS: usize = 8;

#[derive(Debug)]
struct Inner {
    config: DetectorConfig,
    custom: Vec<Regex>,
}

/// The personal-data detector. Cheap to clone and share between threads.
#[derive(Clone, Debug)]
pub struct Detector {
    inner: Arc<Inner>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            inner: Arc::new(Inner {
                config: DetectorConfig::default(),
                custom: Vec::new(),
            }),
        }
    }
}

impl Detector {
    /// Builds a detector.
    ///
    /// # Errors
    ///
    /// [`PiiError::InvalidPattern`] when a custom pattern has an empty name,
    /// does not compile, is too large, or matches the empty string.
    ///
    /// ```
    /// use shredlog::pii::{CustomPattern, Detector, DetectorConfig, PiiKind};
    ///
    /// let config = DetectorConfig {
    ///     custom: vec![CustomPattern { name: "visitor-id".into(), regex: r"\bv-\d{5}\b".into() }],
    ///     ..DetectorConfig::default()
    /// };
    /// let detector = Detector::new(&config)?;
    /// assert_eq!(detector.find("I am v-88172")[0].kind, PiiKind::Custom);
    /// # Ok::<(), shredlog::pii::PiiError>(())
    /// ```
    pub fn new(config: &DetectorConfig) -> Result<Detector, PiiError> {
        let mut custom = Vec::with_capacity(config.custom.len());
        for pattern in &config.custom {
            let invalid = |reason: &str| PiiError::InvalidPattern {
                name: pattern.name.clone(),
                reason: reason.to_owned(),
            };
            if pattern.name.trim().is_empty() {
                return Err(invalid("the name is empty"));
            }
            let re = regex::RegexBuilder::new(&pattern.regex)
                .size_limit(CUSTOM_SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => invalid("the compiled pattern is too large"),
                    _ => invalid("the regular expression does not parse"),
                })?;
            if re.is_match("") {
                return Err(invalid("the pattern matches the empty string"));
            }
            custom.push(re);
        }
        Ok(Detector {
            inner: Arc::new(Inner {
                config: config.clone(),
                custom,
            }),
        })
    }

    /// The configuration this detector was built from.
    pub fn config(&self) -> &DetectorConfig {
        &self.inner.config
    }

    /// Finds personal data in `text`. Spans are sorted, non-overlapping, on char
    /// boundaries and inside `text`. Once a value is detected, every other
    /// occurrence of the same value in `text` is reported too. Nothing that
    /// overlaps the [`PLACEHOLDER`] is reported.
    pub fn find(&self, text: &str) -> Vec<Span> {
        let config = &self.inner.config;
        let mut spans = Vec::new();
        // Most chat lines hold none of the characters the detectors need;
        // one pass over the bytes tells which detectors can find anything.
        let census = Census::of(text.as_bytes());
        if config.emails && census.at_sign {
            email::find_plain(text, &mut spans);
        }
        if config.obfuscated_emails {
            obfuscated::find(text, &mut spans);
        }
        if config.ips {
            if census.ascii_digits >= 4 && census.dots >= 3 {
                ip::find_ipv4(text, &mut spans);
            }
            if census.ascii_digits >= 1 && census.colons >= 2 {
                ip::find_ipv6(text, &mut spans);
            }
        }
        if config.payment_cards && census.ascii_digits >= 13 {
            cards::find_cards(text, &mut spans);
        }
        if config.ibans && census.ascii_digits >= 2 {
            cards::find_ibans(text, &mut spans);
        }
        if config.phones && census.ascii_digits + census.other_digits >= 6 {
            phone::find(text, &mut spans);
        }
        for re in &self.inner.custom {
            spans.extend(re.find_iter(text).filter(|m| !m.is_empty()).map(|m| Span {
                start: m.start(),
                end: m.end(),
                kind: PiiKind::Custom,
            }));
        }
        if spans.is_empty() {
            return spans;
        }
        spans.retain(|s| s.start < s.end && text.get(s.start..s.end).is_some());
        drop_placeholder_overlaps(text, &mut spans);
        add_repeats(text, &mut spans);
        merge(&mut spans);
        spans
    }

    /// Returns `text` with every detected span replaced by `placeholder`.
    ///
    /// If replacing creates a new detection where a placeholder meets the text
    /// around it, that is redacted too (a few rounds at most), so that with the
    /// [`PLACEHOLDER`] `redact(redact(x)) == redact(x)`.
    pub fn redact(&self, text: &str, placeholder: &str) -> String {
        let mut current = replace_spans(text, &self.find(text), placeholder);
        for _ in 1..MAX_REDACT_ROUNDS {
            let spans = self.find(&current);
            if spans.is_empty() {
                break;
            }
            current = replace_spans(&current, &spans, placeholder);
        }
        current
    }
}

/// Counts of the bytes the detectors need, from one pass over the text. A
/// detector is skipped when the text cannot hold what it looks for.
#[derive(Default)]
struct Census {
    /// `@`, or a lead byte of the full-width `＠` (U+FF20).
    at_sign: bool,
    ascii_digits: usize,
    /// Lead bytes of the non-ASCII digits `text::digit_value` knows (an
    /// over-count: full-width U+FF10.., Arabic-Indic U+0660.., U+06F0..,
    /// Devanagari U+0966..).
    other_digits: usize,
    dots: usize,
    colons: usize,
}

/// Bits of one counter in the packed census; a chunk of at most
/// `CENSUS_CHUNK` bytes cannot overflow one.
const CENSUS_BITS: u32 = 12;
const CENSUS_CHUNK: usize = (1 << CENSUS_BITS) - 1;
const CENSUS_MASK: u64 = (1 << CENSUS_BITS) - 1;

/// Per byte value, the counters it adds to, packed `CENSUS_BITS` apart:
/// ASCII digits, other digits, dots, colons, at signs.
#[allow(clippy::indexing_slicing)] // constant evaluation checks the bounds
const CENSUS_TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = 1;
        b += 1;
    }
    t[0xD9] = 1 << CENSUS_BITS;
    t[0xDB] = 1 << CENSUS_BITS;
    t[0xE0] = 1 << CENSUS_BITS;
    t[0xEF] = (1 << CENSUS_BITS) | (1 << (4 * CENSUS_BITS));
    t[b'.' as usize] = 1 << (2 * CENSUS_BITS);
    t[b':' as usize] = 1 << (3 * CENSUS_BITS);
    t[b'@' as usize] = 1 << (4 * CENSUS_BITS);
    t
};

impl Census {
    fn of(bytes: &[u8]) -> Census {
        let mut c = Census::default();
        for chunk in bytes.chunks(CENSUS_CHUNK) {
            let packed: u64 = chunk
                .iter()
                .map(|&b| CENSUS_TABLE.get(usize::from(b)).copied().unwrap_or(0))
                .sum();
            let field = |i: u32| {
                usize::try_from((packed >> (i * CENSUS_BITS)) & CENSUS_MASK).unwrap_or(usize::MAX)
            };
            c.ascii_digits += field(0);
            c.other_digits += field(1);
            c.dots += field(2);
            c.colons += field(3);
            c.at_sign |= field(4) > 0;
        }
        c
    }
}

fn replace_spans(text: &str, spans: &[Span], placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        out.push_str(text.get(last..s.start).unwrap_or(""));
        out.push_str(placeholder);
        last = s.end;
    }
    out.push_str(text.get(last..).unwrap_or(""));
    out
}

/// Removes spans that overlap an occurrence of the placeholder.
fn drop_placeholder_overlaps(text: &str, spans: &mut Vec<Span>) {
    if !text.as_bytes().contains(&b'<') || !text.contains(PLACEHOLDER) {
        return;
    }
    let holes: Vec<(usize, usize)> = text
        .match_indices(PLACEHOLDER)
        .map(|(i, p)| (i, i + p.len()))
        .collect();
    spans.retain(|s| !holes.iter().any(|&(a, b)| s.start < b && a < s.end));
}

/// Most work [`add_repeats`] may do (distinct values × text bytes): enough for
/// any chat message, and it keeps a hostile input from going quadratic.
const REPEAT_SEARCH_BUDGET: usize = 1 << 26;

/// Adds every other occurrence of each detected value.
fn add_repeats(text: &str, spans: &mut Vec<Span>) {
    let mut extra = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut budget = REPEAT_SEARCH_BUDGET;
    for s in spans.iter() {
        if budget < text.len() {
            break;
        }
        budget -= text.len();
        let Some(value) = text.get(s.start..s.end) else {
            continue;
        };
        if seen.contains(&value) {
            continue;
        }
        seen.push(value);
        for i in occurrences(text, value) {
            if i != s.start {
                extra.push(Span {
                    start: i,
                    end: i + value.len(),
                    kind: s.kind,
                });
            }
        }
    }
    if !extra.is_empty() {
        spans.extend(extra);
        drop_placeholder_overlaps(text, spans);
    }
}

/// Texts up to this long are searched naively by [`occurrences`].
const SHORT_TEXT: usize = 512;

/// Start offsets of the non-overlapping occurrences of `needle` (not empty) in
/// `hay`, left to right, as `str::match_indices` finds them. For short texts
/// a plain scan, which saves the searcher's set-up cost.
fn occurrences<'a>(hay: &'a str, needle: &'a str) -> Box<dyn Iterator<Item = usize> + 'a> {
    if hay.len() > SHORT_TEXT {
        return Box::new(hay.match_indices(needle).map(|(i, _)| i));
    }
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let mut from = 0;
    Box::new(std::iter::from_fn(move || {
        let (&first, tail) = needle.split_first()?;
        while from + needle.len() <= hay.len() {
            let i = from;
            from += 1;
            if hay.get(i) == Some(&first) && hay.get(i + 1..i + needle.len()) == Some(tail) {
                from = i + needle.len();
                return Some(i);
            }
        }
        None
    }))
}

/// Sorts spans and merges overlapping ones (the longer span's kind wins).
fn merge(spans: &mut Vec<Span>) {
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans.drain(..) {
        match out.last_mut() {
            Some(last) if s.start < last.end => {
                if s.end > last.end {
                    if s.end - s.start > last.end - last.start {
                        last.kind = s.kind;
                    }
                    last.end = s.end;
                }
            }
            _ => out.push(s),
        }
    }
    *spans = out;
}

/// Checks the detector's properties on arbitrary bytes and panics on any
/// violation. Called by the cargo-fuzz target and by tests replaying its corpus.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_redactor(data: &[u8]) {
    use std::sync::OnceLock;
    static DETECTORS: OnceLock<Vec<Detector>> = OnceLock::new();
    let detectors = DETECTORS.get_or_init(|| {
        let all = DetectorConfig {
            payment_cards: true,
            ibans: true,
            ..DetectorConfig::default()
        };
        vec![Detector::default(), Detector::new(&all).unwrap_or_default()]
    });
    let text = String::from_utf8_lossy(data);
    for detector in detectors {
        let spans = detector.find(&text);
        let mut prev_end = 0;
        for s in &spans {
            if s.start >= s.end || s.start < prev_end || s.end > text.len() {
                panic!(
                    "bad span {s:?} after {prev_end} in text of {} bytes",
                    text.len()
                );
            }
            if !text.is_char_boundary(s.start) || !text.is_char_boundary(s.end) {
                panic!("span {s:?} not on char boundaries");
            }
            prev_end = s.end;
        }
        let once = detector.redact(&text, PLACEHOLDER);
        let twice = detector.redact(&once, PLACEHOLDER);
        if once != twice {
            panic!("redaction not idempotent: {once:?} -> {twice:?}");
        }
        for s in &spans {
            let value = text.get(s.start..s.end).unwrap_or("");
            if once.contains(value) {
                panic!(
                    "redacted text still contains detected {:?} {value:?}",
                    s.kind
                );
            }
        }
        if !detector.find(PLACEHOLDER).is_empty() {
            panic!("the placeholder itself is detected");
        }
    }
}

#[cfg(test)]
mod tests;
