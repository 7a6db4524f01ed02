//! The visitor's email address in its one canonical form.
//!
//! Every place that compares emails (the directory, lookups, erasure,
//! export, rectification) goes through [`normalize_email`], so that one
//! address written several ways is one visitor: surrounding space and a
//! `mailto:` prefix removed, Unicode in NFC, the local part lower-cased, the
//! domain without its trailing dot and in its ASCII (IDNA) form. A string
//! that is not an email address is refused rather than stored as one.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// Longest local part, in bytes (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;
/// Longest address in canonical form, in bytes (RFC 5321 path limit less
/// the angle brackets).
const MAX_ADDRESS: usize = 254;

/// The canonical form of an email address, used for every comparison: the
/// same address however it was written.
///
/// - surrounding whitespace and a `mailto:` prefix (any case) are removed;
/// - the text is put in Unicode NFC, and the local part lower-cased;
/// - the domain loses a trailing dot and is converted to its ASCII form
///   (IDNA: `bücher.example` becomes `xn--bcher-kva.example`), lower-case.
///
/// # Errors
/// [`Error::Invalid`] when the text is not an email address: not exactly
/// one `@`, an empty or over-long part, spaces, control characters or
/// `<>()[]\,;:"` in the local part, or a domain that is not a valid domain
/// name with at least two labels. The message never repeats the text.
///
/// ```
/// use shredlog::normalize_email;
/// let one = normalize_email("ann@example.com")?;
/// assert_eq!(normalize_email(" MAILTO:Ann@EXAMPLE.com. ")?, one);
/// assert_eq!(normalize_email("jos\u{e9}@b\u{fc}cher.example")?, "jos\u{e9}@xn--bcher-kva.example");
/// assert_eq!(normalize_email("jose\u{301}@B\u{dc}CHER.example")?, "jos\u{e9}@xn--bcher-kva.example");
/// assert!(normalize_email("not an address").is_err());
/// # Ok::<(), shredlog::Error>(())
/// ```
pub fn normalize_email(email: &str) -> Result<String> {
    canonical(email).map(Cow::into_owned)
}

/// [`normalize_email`] without a copy when the text is in canonical form
/// already (plain ASCII, lower-case: the common case).
pub(crate) fn canonical(email: &str) -> Result<Cow<'_, str>> {
    if is_plain_canonical(email) {
        return Ok(Cow::Borrowed(email));
    }
    // ASCII with capitals, the way addresses are often typed: when its
    // lower-case form is plain, that is what the full path gives (NFC and
    // IDNA change nothing else in ASCII), except for a domain label with
    // `--` in its third and fourth places, which IDNA refuses.
    if email.is_ascii() {
        let lower = email.to_ascii_lowercase();
        let idna_hyphens = lower
            .split_once('@')
            .is_some_and(|(_, d)| d.split('.').any(|l| l.get(2..4) == Some("--")));
        if !idna_hyphens && is_plain_canonical(&lower) {
            return Ok(Cow::Owned(lower));
        }
    }
    let bad = |why: &str| {
        Error::invalid(format!(
            "the visitor's email is not an email address: {why}"
        ))
    };
    let mut s = email.trim();
    if s.len() >= 7 && s.is_char_boundary(7) && s[..7].eq_ignore_ascii_case("mailto:") {
        s = s[7..].trim_start();
    }
    let s: String = s.nfc().collect();
    let Some((local, domain)) = s.split_once('@') else {
        return Err(bad("it has no @"));
    };
    if domain.contains('@') {
        return Err(bad("it has more than one @"));
    }
    if local.is_empty() {
        return Err(bad("nothing before the @"));
    }
    if local.len() > MAX_LOCAL {
        return Err(bad("the part before the @ is longer than 64 bytes"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
    {
        return Err(bad(
            "the part before the @ holds a space, a control character or one of <>()[]\\,;:\"",
        ));
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(bad("nothing after the @"));
    }
    let domain = idna::domain_to_ascii_strict(domain)
        .map_err(|_| bad("the part after the @ is not a domain name"))?;
    if !domain.contains('.') {
        return Err(bad(
            "the domain has a single label (expected NAME@DOMAIN.TLD)",
        ));
    }
    let local: String = local.to_lowercase().nfc().collect();
    let out = format!("{local}@{domain}");
    if out.len() > MAX_ADDRESS {
        return Err(bad("it is longer than 254 bytes"));
    }
    Ok(Cow::Owned(out))
}

/// The bytes a plain canonical local part may hold: printable ASCII but
/// capitals and `<>()[]\,;:"@`.
const PLAIN_LOCAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = !(b as u8).is_ascii_uppercase();
        b += 1;
    }
    let refused = b"<>()[]\\,;:\"@";
    let mut i = 0;
    while i < refused.len() {
        t[refused[i] as usize] = false;
        i += 1;
    }
    t
};

/// The bytes a plain domain label may hold: lower-case letters, digits and
/// `-`.
const PLAIN_DOMAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
        b += 1;
    }
    t
};

/// Whether `email` is its own canonical form, checked without allocating:
/// printable ASCII without capitals, one `@`, a local part without the
/// characters refused, a domain of letters, digits and inner hyphens in two
/// or more labels, no label starting with `xn--` (which IDNA must check).
pub(crate) fn is_plain_canonical(email: &str) -> bool {
    // Every lookup in the directory asks this of the address and of each
    // entry in the sector it reads: a byte is checked by one table lookup.
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL
        && local.bytes().all(|b| PLAIN_LOCAL[usize::from(b)]);
    if !local_ok || email.len() > MAX_ADDRESS || local.eq_ignore_ascii_case("mailto") {
        return false;
    }
    let mut labels = 0;
    for label in domain.split('.') {
        labels += 1;
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && !label.starts_with("xn--")
            && label.bytes().all(|b| PLAIN_DOMAIN[usize::from(b)]);
        if !ok {
            return false;
        }
    }
    // An all-numeric last label is not a domain name IDNA accepts as one.
    labels >= 2
        && !domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        normalize_email(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn one_address_many_spellings() {
        let want = "ann.lee@example.com";
        for s in [
            "ann.lee@example.com",
            "Ann.Lee@EXAMPLE.com",
            "  ann.lee@example.com\t",
            "ann.lee@example.com.",
            "mailto:ann.lee@example.com",
            "MAILTO: Ann.Lee@Example.Com.",
        ] {
            assert_eq!(c(s), want, "{s:?}");
        }
        // NFC and NFD spellings, Unicode domain and its ASCII form.
        let nfc = c("ren\u{e9}@caf\u{e9}.example");
        assert_eq!(nfc, "ren\u{e9}@xn--caf-dma.example");
        assert_eq!(c("rene\u{301}@cafe\u{301}.example"), nfc);
        assert_eq!(c("REN\u{c9}@xn--caf-dma.example"), nfc);
        assert_eq!(c("用户@例子.广告"), "用户@xn--fsqu00a.xn--4rr70v");
    }

    #[test]
    fn the_byte_tables_say_what_their_rules_say() {
        for b in 0..=255u8 {
            let local =
                b.is_ascii_graphic() && !b.is_ascii_uppercase() && !b"<>()[]\\,;:\"@".contains(&b);
            assert_eq!(PLAIN_LOCAL[usize::from(b)], local, "{b}");
            let domain = b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
            assert_eq!(PLAIN_DOMAIN[usize::from(b)], domain, "{b}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_one() {
        for s in [
            "a@b.co",
            "x.y+tag@mail.example.org",
            "a@b-c.example",
            "a@1.example",
            "a@b.123",
            "a@-b.example",
            "a@xn--caf-dma.example",
            "a@xn--zz.example",
            "mailto@example.com",
            "a@b",
            "a..b@c.example",
        ] {
            if is_plain_canonical(s) {
                let full = {
                    // The slow path, forced.
                    let s = format!(" {s}");
                    canonical(&s).map(Cow::into_owned)
                };
                assert_eq!(full.as_deref().ok(), Some(s), "{s}");
            }
        }
        assert!(is_plain_canonical("a@b.co"));
        assert!(!is_plain_canonical("A@b.co"));
        assert!(!is_plain_canonical("a@b.co."));
    }

    /// ASCII addresses with capitals take a shorter path; it gives what the
    /// full one gives (forced by a leading space), the same address or the
    /// same refusal, over addresses made from a small alphabet that hits
    /// the edge cases (hyphens, `xn--`, digits, dots, `mailto`).
    #[test]
    fn the_ascii_path_agrees_with_the_full_one() {
        let parts = [
            "A",
            "b",
            "Z9",
            "-",
            "--",
            "Xn--",
            "xN--Caf-dma",
            "1",
            "23",
            ".",
            "..",
            "+t",
            "_",
            "MailTo",
            "Ab--cd",
            "aB-",
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut checked = 0;
        for _ in 0..20_000 {
            let (l, d1, d2) = (next(3) + 1, next(3) + 1, next(2) + 1);
            let mut word =
                |k: usize| -> String { (0..k).map(|_| parts[next(parts.len())]).collect() };
            let (l, d1, d2) = (word(l), word(d1), word(d2));
            let s = format!("{l}@{d1}.{d2}");
            let fast = canonical(&s)
                .map(Cow::into_owned)
                .map_err(|e| e.to_string());
            let full = canonical(&format!(" {s}"))
                .map(Cow::into_owned)
                .map_err(|e| e.to_string());
            assert_eq!(fast.is_ok(), full.is_ok(), "{s:?}: {fast:?} / {full:?}");
            if let (Ok(a), Ok(b)) = (&fast, &full) {
                assert_eq!(a, b, "{s:?}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "only {checked} addresses were valid");
        assert_eq!(c("Ann.Lee@Example.COM"), "ann.lee@example.com");
        assert!(
            normalize_email("a@Ab--cd.example").is_err(),
            "IDNA's hyphen rule"
        );
    }

    #[test]
    fn what_is_not_an_address_is_refused_without_echo() {
        for s in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "ann@b@example.com",
            "ann lee@example.com",
            "ann@example",
            "ann@exa mple.com",
            "ann@-example.com",
            "ann@example..com",
            "<ann@example.com>",
            "ann\u{7}@example.com",
            "mailto:",
        ] {
            let err = normalize_email(s).expect_err(s).to_string();
            assert!(err.contains("not an email address"), "{s:?}: {err}");
            if s.trim().len() > 3 {
                assert!(!err.contains(s.trim()), "{err} echoes {s:?}");
            }
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(normalize_email(&long_local).is_err());
        let long = format!("a@{}.example", "b.".repeat(130));
        assert!(normalize_email(&long).is_err());
    }
}
