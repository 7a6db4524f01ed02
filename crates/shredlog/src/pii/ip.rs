//! IPv4 and IPv6 addresses: IPv6 candidates are confirmed by `std::net`
//! parsing, IPv4 octets are checked for range (leading zeros allowed).
//!
//! Candidates are maximal runs of address characters; boundaries are checked by
//! hand (the `regex` crate has no look-around). A run that is longer than an
//! address (`1.2.3.4.5`, an OID, a version with five parts) is not cut into a
//! shorter address. A port (`:8080`), a prefix length (`/24`), an IPv6 zone id
//! (`%eth0`) and the brackets of `[2001:db8::1]:443` belong to the span.

use std::net::Ipv6Addr;

use std::sync::OnceLock;

use super::text::{Keywords, char_at, char_before, is_word, lower, window_before};
use super::{PiiKind, Span};

/// Words right before a dotted quad that make it a version, not an address.
const VERSION_WORDS: &[&str] = &[
    "version",
    "ver.",
    "ver ",
    "build",
    "release",
    "firmware",
    "versión",
    "versione",
    "versão",
    "wersja",
    "versie",
    "バージョン",
    "版本",
    "v.",
    "rev",
    "sdk",
    "api level",
    // Numbered sections of documents: "look at section 4.2.1.3".
    "section",
    "sect.",
    "sec.",
    "§",
    "chapter",
    "chap.",
    "kapitel",
    "abschnitt",
    "chapitre",
    "capítulo",
    "capitolo",
    "hoofdstuk",
    "rozdział",
    "clause",
    "paragraph",
    "para.",
];

/// Letters glued before a dotted quad that make it a version ("v1.2.3.4",
/// "build10.0.0.1"); other letters are a label glued on ("ip10.0.0.1").
const VERSION_MARKERS: &[&str] = &[
    "v", "ver", "version", "r", "rev", "rc", "b", "beta", "alpha", "build", "release", "p", "sp",
    "u", "update", "fw", "firmware", "kernel",
];

/// Finds IPv4 addresses.
pub(super) fn find_ipv4(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    // Where the last address found ends: a range may continue from there.
    let mut last_end = None;
    while i < bytes.len() {
        let Some(&b) = bytes.get(i) else { break };
        if !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        // Maximal run of digits and single dots ("a..b" is a range of two).
        let start = i;
        let mut end = i;
        while let Some(&b) = bytes.get(end) {
            if !(b.is_ascii_digit() || b == b'.' && bytes.get(end + 1) != Some(&b'.')) {
                break;
            }
            end += 1;
        }
        i = end.max(start + 1);
        // Sentence punctuation after the address.
        let mut run_end = end;
        while run_end > start && bytes.get(run_end - 1) == Some(&b'.') {
            run_end -= 1;
        }
        let after_range = last_end.is_some_and(|e| is_range_sep(text.get(e..start).unwrap_or("")));
        if let Some(span_end) = check_ipv4(text, start, run_end, after_range) {
            out.push(Span {
                start,
                end: span_end,
                kind: PiiKind::Ipv4,
            });
            i = i.max(span_end);
            last_end = Some(span_end);
        }
    }
}

/// What joins the two ends of an address range: "a-b", "a..b", "a–b", "a~b".
fn is_range_sep(s: &str) -> bool {
    matches!(s, "-" | ".." | "..." | "–" | "—" | "~" | "‐" | "−")
}

/// The four parts of a dotted quad (leading zeros accepted), if `run` is one.
fn quad(run: &str) -> Option<[u16; 4]> {
    let mut parts = [0u16; 4];
    let mut n = 0;
    for part in run.split('.') {
        let slot = parts.get_mut(n)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Leading zeros ("010.000.000.001") are written in the wild; std
        // rejects them, so the value is checked here.
        *slot = part
            .bytes()
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        if *slot > 255 {
            return None;
        }
        n += 1;
    }
    (n == 4).then_some(parts)
}

/// Whether a dotted quad starts at `at` (after a range separator).
fn quad_at(text: &str, at: usize) -> bool {
    let run = text.get(at..).unwrap_or("");
    let len = run
        .bytes()
        .take_while(|&b| b.is_ascii_digit() || b == b'.')
        .count();
    run.get(..len)
        .is_some_and(|r| quad(r.trim_end_matches('.')).is_some())
}

/// Checks a run of digits and dots; returns the span end (with port or
/// prefix). `after_range`: it is the second end of a range whose first end
/// was accepted.
fn check_ipv4(text: &str, start: usize, end: usize, after_range: bool) -> Option<usize> {
    quad(text.get(start..end)?)?;
    if !after_range && !left_context_ok(text, start) {
        return None;
    }
    let mut span_end = end;
    // Optional port or prefix length.
    if let Some(sep @ (':' | '/')) = char_at(text, end) {
        let digits = text
            .get(end + 1..)
            .unwrap_or("")
            .bytes()
            .take_while(u8::is_ascii_digit)
            .take(6)
            .fold((0usize, 0u32), |(n, v), b| {
                (n + 1, v * 10 + u32::from(b - b'0'))
            });
        let limit = if sep == ':' { 65_535 } else { 32 };
        if (1..=5).contains(&digits.0) && digits.1 <= limit {
            span_end = end + 1 + digits.0;
            // A port range: "10.0.0.1:8000-8080".
            if sep == ':' && char_at(text, span_end) == Some('-') {
                let to = text
                    .get(span_end + 1..)
                    .unwrap_or("")
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .count();
                let value_ok = text
                    .get(span_end + 1..span_end + 1 + to)
                    .and_then(|t| t.parse::<u32>().ok())
                    .is_some_and(|v| v <= 65_535);
                if (1..=5).contains(&to) && value_ok {
                    span_end += 1 + to;
                }
            }
        }
    }
    // Right boundary.
    match char_at(text, span_end) {
        Some(c) if is_word(c) || c == '_' => None,
        Some(c @ ('.' | ':' | '-'))
            if char_at(text, span_end + 1).is_some_and(|c| c.is_ascii_digit()) =>
        {
            // "-p 127.0.0.1:8080:80" (a port mapping), "10.0.0.1/24:8080".
            if c == ':' && span_end > end {
                return Some(span_end);
            }
            if c == '-' && quad_at(text, span_end + 1) {
                // "a-b": a range; b is checked on its own.
                return Some(span_end);
            }
            if c == '.' && text.get(span_end..).is_some_and(|r| r.starts_with("..")) {
                return Some(span_end);
            }
            if c == '-' {
                // "192.168.1.10-20": a range of the last part.
                let tail = text
                    .get(span_end + 1..)
                    .unwrap_or("")
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .count();
                let tail_end = span_end + 1 + tail;
                let after = char_at(text, tail_end);
                let value_ok = text
                    .get(span_end + 1..tail_end)
                    .and_then(|t| t.parse::<u16>().ok())
                    .is_some_and(|v| v <= 255);
                if (1..=3).contains(&tail)
                    && value_ok
                    && after.is_none_or(|c| !is_word(c) && c != '.' && c != '_' && c != '-')
                {
                    return Some(tail_end);
                }
            }
            None
        }
        _ => Some(span_end),
    }
}

/// Left boundary and context: not glued to a number, a sign, a version
/// marker or a product token, not right after a version word.
fn left_context_ok(text: &str, start: usize) -> bool {
    if let Some(c) = char_before(text, start) {
        if is_word(c) {
            // Letters glued on: a label ("ip10.0.0.1") unless a version marker.
            let head = text.get(..start).unwrap_or("");
            let word_start = head
                .char_indices()
                .rev()
                .take_while(|&(_, c)| c.is_alphabetic())
                .last()
                .map_or(start, |(i, _)| i);
            let word = lower(head.get(word_start..).unwrap_or(""));
            let glued_to_other =
                char_before(text, word_start).is_some_and(|c| is_word(c) || c == '.');
            if word.as_str().is_empty()
                || glued_to_other
                || VERSION_MARKERS.contains(&word.as_str())
            {
                return false;
            }
        }
        if matches!(c, '.' | '-' | '+' | '_' | '$' | '€' | '£' | '¥' | '#') {
            return false;
        }
        if c == '/' && char_before(text, start - 1).is_some_and(is_word) {
            // "Chrome/120.0.6099.109": a product token, not an address.
            return false;
        }
    }
    let lowered = lower(window_before(text, start, 24));
    let lower = lowered.as_str();
    static WORDS: OnceLock<Keywords> = OnceLock::new();
    let words = WORDS.get_or_init(|| Keywords::new(VERSION_WORDS));
    if let Some(kw_end) = words.last_in(lower, false) {
        // Only when the keyword is right before the number (at most 3 chars apart).
        if lower.len().saturating_sub(kw_end) <= 3 {
            return false;
        }
    }
    true
}

fn is_v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Finds IPv6 addresses (full, compressed, IPv4-mapped, with zone id, in brackets).
pub(super) fn find_ipv6(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b':'))
    {
        let colon = i + off;
        let mut start = colon;
        while start > 0 && bytes.get(start - 1).is_some_and(|&b| is_v6_char(b)) {
            start -= 1;
        }
        let mut end = colon;
        while bytes.get(end).is_some_and(|&b| is_v6_char(b)) {
            end += 1;
        }
        i = end.max(colon + 1);
        if let Some(span) = check_ipv6(text, start, end, false) {
            i = i.max(span.end);
            out.push(span);
        }
    }
}

fn check_ipv6(text: &str, mut start: usize, mut end: usize, after_label: bool) -> Option<Span> {
    let bytes = text.as_bytes();
    // Trim punctuation that ends a sentence or a label ("ip:", "fe80::1.").
    while end > start && matches!(bytes.get(end - 1), Some(b'.')) {
        end -= 1;
    }
    if end > start + 1 && bytes.get(end - 1) == Some(&b':') && bytes.get(end - 2) != Some(&b':') {
        end -= 1;
    }
    if bytes.get(start) == Some(&b':') && bytes.get(start + 1) != Some(&b':') {
        start += 1;
    }
    let cand = text.get(start..end)?;
    if cand.len() < 3 || cand.bytes().filter(|&b| b == b':').count() < 2 {
        return None;
    }
    if !cand.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let compressed = cand.contains("::");
    if !compressed
        && cand.bytes().filter(|&b| b == b':').count() < 7 - usize::from(cand.contains('.'))
    {
        return None;
    }
    cand.parse::<Ipv6Addr>().ok()?;
    // Left boundary: a letter glued on means a word like "std::", not an
    // address; but "IPv6:2001:db8::1" is a label and an address.
    // A ':' before the run that follows no address character ends a label
    // ("addr:2001:db8::1").
    let label_colon = char_before(text, start) == Some(':')
        && char_before(text, start - 1).is_some_and(|c| !c.is_ascii_hexdigit() && c != ':');
    if char_before(text, start)
        .is_some_and(|c| is_word(c) || c == '_' || (c == ':' && !after_label && !label_colon))
    {
        let first_colon = cand.find(':')?;
        if cand.get(first_colon..)?.starts_with("::") || first_colon > 4 {
            return None;
        }
        if after_label {
            return None;
        }
        return check_ipv6(text, start + first_colon, end, true);
    }
    let mut span_end = end;
    // Zone id: fe80::1%eth0 (or %25eth0 inside a URL).
    if char_at(text, span_end) == Some('%') {
        let zone_len = text
            .get(span_end + 1..)
            .unwrap_or("")
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        if zone_len > 0 {
            span_end += 1 + zone_len;
        }
    }
    let mut span_start = start;
    // [addr]:port
    if char_before(text, start) == Some('[') && char_at(text, span_end) == Some(']') {
        span_start = start - 1;
        span_end += 1;
        if char_at(text, span_end) == Some(':') {
            let port = text
                .get(span_end + 1..)
                .unwrap_or("")
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if (1..=5).contains(&port) {
                span_end += 1 + port;
            }
        }
    } else if char_at(text, span_end) == Some('/') {
        let prefix = text
            .get(span_end + 1..)
            .unwrap_or("")
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if (1..=3).contains(&prefix) {
            span_end += 1 + prefix;
        }
    }
    if char_at(text, span_end).is_some_and(|c| is_word(c) || c == '_') {
        return None;
    }
    Some(Span {
        start: span_start,
        end: span_end,
        kind: PiiKind::Ipv6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_ipv4(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    fn v6(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_ipv6(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    #[test]
    fn ipv4_positive() {
        let cases = [
            ("my ip is 203.0.113.9.", "203.0.113.9"),
            ("connect to 10.0.0.1:8080 now", "10.0.0.1:8080"),
            ("subnet 192.168.0.0/16", "192.168.0.0/16"),
            ("IP:8.8.8.8", "8.8.8.8"),
            ("地址192.168.1.1谢谢", "192.168.1.1"),
            ("(172.16.254.1)", "172.16.254.1"),
            ("http://192.168.1.1/admin", "192.168.1.1"),
            ("ip=10.1.2.3&x", "10.1.2.3"),
            ("010.000.000.001", "010.000.000.001"),
            ("ip10.0.0.1", "10.0.0.1"),
            ("allow 10.0.0.1:8000-8080", "10.0.0.1:8000-8080"),
            ("range 192.168.1.10-20", "192.168.1.10-20"),
            ("update 10.1.2.3 tonight", "10.1.2.3"),
            ("docker run -p 127.0.0.1:8080:80 app", "127.0.0.1:8080"),
            ("http://41.25.114.10/20:8080/status", "41.25.114.10/20"),
        ];
        for (text, want) in cases {
            assert_eq!(v4(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn ipv4_negative() {
        for text in [
            "version 1.2.3.4",
            "v1.2.3.4",
            "oid 1.3.6.1.4.1",
            "256.1.1.1",
            "1.2.3",
            "Chrome/120.0.6099.109",
            "on 12.03.2024 at 10.30",
            "build 10.0.19045.3803",
            "price 1.299.00",
            "ver 4.4.4.4",
            "build10.0.0.1",
            "versions 4.1.4.1-2.4.3.0",
            "look at section 4.2.1.3",
            "see § 1.2.3.4",
            "v1.2.3.4-v1.2.3.9",
        ] {
            assert!(v4(text).is_empty(), "{text:?} -> {:?}", v4(text));
        }
    }

    #[test]
    fn ipv4_ranges_and_lists() {
        let cases = [
            (
                "192.168.203.249-52.85.14.208",
                vec!["192.168.203.249", "52.85.14.208"],
            ),
            ("pool 10.0.0.1..10.0.0.9", vec!["10.0.0.1", "10.0.0.9"]),
            ("10.0.0.1–10.0.0.9", vec!["10.0.0.1", "10.0.0.9"]),
            ("10.0.0.1~10.0.0.9.", vec!["10.0.0.1", "10.0.0.9"]),
            ("ip=10.0.0.1,10.0.0.2", vec!["10.0.0.1", "10.0.0.2"]),
        ];
        for (text, want) in cases {
            assert_eq!(v4(text), want, "in {text:?}");
        }
    }

    #[test]
    fn ipv6_positive() {
        let cases = [
            (
                "addr 2001:0db8:0000:0000:0000:ff00:0042:8329 ok",
                "2001:0db8:0000:0000:0000:ff00:0042:8329",
            ),
            ("addr 2001:db8::1.", "2001:db8::1"),
            (
                "link fe80::1ff:fe23:4567:890a%eth0 up",
                "fe80::1ff:fe23:4567:890a%eth0",
            ),
            ("mapped ::ffff:192.0.2.128", "::ffff:192.0.2.128"),
            ("loopback ::1", "::1"),
            ("url http://[2001:db8::1]:8080/x", "[2001:db8::1]:8080"),
            (
                "IPv6:2001:DB8:85A3::8A2E:370:7334",
                "2001:DB8:85A3::8A2E:370:7334",
            ),
            ("地址2001:db8::42谢谢", "2001:db8::42"),
            ("net 2001:db8::/32", "2001:db8::/32"),
            ("addr:2001:db8::1", "2001:db8::1"),
        ];
        for (text, want) in cases {
            assert_eq!(v6(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn ipv6_negative() {
        for text in [
            "at 12:30:45",
            "std::vector",
            "mac 00:1a:2b:3c:4d:5e",
            "ratio 1:2:3",
            "abc::def",
            "2024-05-02T10:15:03Z",
            "foo::bar::baz",
            "a::",
        ] {
            assert!(v6(text).is_empty(), "{text:?} -> {:?}", v6(text));
        }
    }
}
