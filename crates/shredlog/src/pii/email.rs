//! Plain email addresses (obfuscated ones are in `obfuscated.rs`).
//!
//! Addresses are found by scanning outwards from each `@` (or full-width
//! `＠`): left over the local part, right over the domain. This is linear, needs
//! no look-around and handles the boundaries that regex word boundaries get
//! wrong (CJK text glued to the address, quotes and brackets around it).

use super::text::{char_at, char_before, char_len, is_unspaced_script, is_word};
use super::{PiiKind, Span};

/// Longest local part we accept (RFC 5321 allows 64 octets; be generous).
const MAX_LOCAL_CHARS: usize = 128;
/// Longest domain we accept (RFC 1035: 253).
const MAX_DOMAIN_BYTES: usize = 255;

/// Characters of an unquoted local part besides letters and digits. RFC 5322
/// also allows `/ = ? & #`, but in chat these nearly always belong to a URL
/// or query string around the address, so they end it.
fn is_local_punct(c: char) -> bool {
    matches!(
        c,
        '.' | '_' | '+' | '-' | '\'' | '!' | '$' | '%' | '*' | '^' | '`' | '{' | '|' | '}' | '~'
    )
}

/// Finds plain email addresses.
pub(super) fn find_plain(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'@' || b == 0xEF))
    {
        let at = i + off;
        let at_len = match char_at(text, at) {
            Some('@') => 1,
            Some('＠') => '＠'.len_utf8(),
            _ => {
                i = at + 1;
                continue;
            }
        };
        i = at + at_len;
        let Some(start) = local_start(text, at) else {
            continue;
        };
        let Some(end) = domain_end(text, at + at_len) else {
            continue;
        };
        // "_ann@example.com_": markdown emphasis, not part of the local part.
        let start = if text.get(start..=start) == Some("_")
            && text.get(end..=end) == Some("_")
            && text.get(start + 1..at).is_some_and(|l| !l.is_empty())
        {
            start + 1
        } else {
            start
        };
        if is_excluded(text, start, at, end) {
            continue;
        }
        out.push(Span {
            start,
            end,
            kind: PiiKind::Email,
        });
        i = end;
    }
}

/// Start of the local part that ends at `at`, if it is a plausible one.
fn local_start(text: &str, at: usize) -> Option<usize> {
    let before = text.get(..at)?;
    // Quoted local part: "john doe"@example.com
    if before.ends_with('"') {
        let inner = before.get(..before.len() - 1)?;
        let open = inner.rfind('"')?;
        let quoted = inner.get(open + 1..)?;
        if quoted.is_empty() || quoted.len() > 64 || quoted.contains(['\n', '\r']) {
            return None;
        }
        return char_before(text, open)
            .is_none_or(|c| !is_word(c))
            .then_some(open);
    }
    let mut start = at;
    let mut count = 0;
    let mut saw_ascii = false;
    for (pos, c) in before.char_indices().rev() {
        let ok = c.is_ascii_alphanumeric() || is_local_punct(c) || c.is_alphanumeric();
        if !ok || count >= MAX_LOCAL_CHARS {
            break;
        }
        // ASCII address glued onto CJK text: the CJK text is not part of it.
        if saw_ascii && is_unspaced_script(c) {
            break;
        }
        saw_ascii |= c.is_ascii();
        start = pos;
        count += 1;
    }
    // Leading punctuation is quoting or list syntax, not address.
    let local = text.get(start..at)?;
    let trimmed = local.trim_start_matches(|c: char| is_local_punct(c) && c != '_');
    let start = at - trimmed.len();
    if trimmed.is_empty() || !trimmed.chars().any(char::is_alphanumeric) {
        return None;
    }
    if count >= MAX_LOCAL_CHARS && char_before(text, start).is_some_and(is_word) {
        return None;
    }
    Some(start)
}

/// End of the domain that starts at `from`, if it is a plausible one.
fn domain_end(text: &str, from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    // Address literal: user@[192.0.2.1]
    if let Some(lit) = rest.strip_prefix('[') {
        let close = lit.find(']')?;
        let inner = lit.get(..close)?;
        let inner = inner.strip_prefix("IPv6:").unwrap_or(inner);
        if inner.parse::<std::net::IpAddr>().is_ok() {
            return Some(from + close + 2);
        }
        return None;
    }
    // Collect labels separated by dots.
    let mut labels: Vec<(usize, usize)> = Vec::new(); // byte ranges in text
    let mut label_start = from;
    let mut pos = from;
    let mut label_ascii = true;
    let mut label_len = 0usize;
    let first_non_ascii = rest.chars().next().is_some_and(|c| !c.is_ascii());
    for c in rest.chars() {
        if pos - from > MAX_DOMAIN_BYTES {
            return None;
        }
        if c == '.' || c == '．' {
            if label_len == 0 {
                break;
            }
            labels.push((label_start, pos));
            pos += c.len_utf8();
            label_start = pos;
            label_ascii = true;
            label_len = 0;
            continue;
        }
        let ok = c.is_ascii_alphanumeric() || c == '-' || (c.is_alphanumeric() && !c.is_ascii());
        if !ok {
            break;
        }
        // "ann@example.com谢谢": the CJK text after an ASCII domain is not part of it.
        if is_unspaced_script(c) && !first_non_ascii {
            break;
        }
        if label_len > 0 && label_ascii && is_unspaced_script(c) {
            break;
        }
        label_ascii &= c.is_ascii();
        label_len += 1;
        pos += c.len_utf8();
    }
    if label_len > 0 {
        labels.push((label_start, pos));
    }
    // Drop trailing labels until the last one is a plausible top-level domain.
    while labels.len() >= 2 {
        let &(s, e) = labels.last()?;
        let tld = text.get(s..e)?;
        if is_tld(tld)
            && labels
                .iter()
                .all(|&(s, e)| valid_label(text.get(s..e).unwrap_or("")))
        {
            // The domain must not run on into a word (e.g. "a@b.com_x"); a
            // '_' that closes markdown emphasis ("_a@b.com_ ") is no part of it.
            let end = e;
            let glued = match char_at(text, end) {
                Some('_') => char_at(text, end + 1).is_some_and(|c| is_word(c) || c == '_'),
                Some(c) => is_word(c) || c == '@',
                None => false,
            };
            if glued {
                return None;
            }
            return Some(end);
        }
        labels.pop();
    }
    None
}

fn valid_label(label: &str) -> bool {
    !label.is_empty() && char_len(label) <= 63 && !label.starts_with('-') && !label.ends_with('-')
}

/// A top-level domain: two or more letters (any script), or an IDNA `xn--` label.
pub(super) fn is_tld(tld: &str) -> bool {
    if let Some(puny) = tld
        .strip_prefix("xn--")
        .or_else(|| tld.strip_prefix("XN--"))
    {
        return puny.len() >= 2 && puny.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    }
    let n = char_len(tld);
    (2..=24).contains(&n) && tld.chars().all(char::is_alphabetic)
}

/// Email-shaped strings that are not addresses.
fn is_excluded(text: &str, start: usize, at: usize, end: usize) -> bool {
    let local = text.get(start..at).unwrap_or("");
    let domain = text.get(at..end).unwrap_or("");
    let domain = domain.trim_start_matches(['@', '＠']);
    // Retina image names: icon@2x.png, logo@3x.webp
    let first_label = domain.split(['.', '．']).next().unwrap_or("");
    let scale = first_label.trim_end_matches(['x', 'X']);
    if first_label.len() <= 4
        && first_label.ends_with(['x', 'X'])
        && scale.starts_with(|c: char| c.is_ascii_digit())
        && scale.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return true;
    }
    // SSH remotes: git@github.com:org/repo.git
    if local == "git" && text.get(end..).is_some_and(|r| r.starts_with(':')) {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_plain(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    #[test]
    fn plain_positive() {
        let cases = [
            ("mail ann@example.com now", "ann@example.com"),
            (
                "Ann.Lee+chat@mail.Example.CO.UK.",
                "Ann.Lee+chat@mail.Example.CO.UK",
            ),
            ("<ann@example.com>", "ann@example.com"),
            ("(ann@example.com)", "ann@example.com"),
            ("'ann@example.com'", "ann@example.com"),
            ("\"ann@example.com\",", "ann@example.com"),
            (
                "mailto:ann_lee@example.org?subject=hi",
                "ann_lee@example.org",
            ),
            ("请联系ann@example.com谢谢", "ann@example.com"),
            ("メールはann@example.jpまで", "ann@example.jp"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("ivan@пример.рф", "ivan@пример.рф"),
            ("ivan@example.xn--p1ai", "ivan@example.xn--p1ai"),
            ("josé.garcía@correo.es", "josé.garcía@correo.es"),
            ("用户@例子.广告", "用户@例子.广告"),
            ("ann＠example.com", "ann＠example.com"),
            ("\"john doe\"@example.com", "\"john doe\"@example.com"),
            ("user@[192.0.2.1]", "user@[192.0.2.1]"),
            (
                "x-y.z@sub.domain-name.museum",
                "x-y.z@sub.domain-name.museum",
            ),
            ("email=ann@example.com&x=1", "ann@example.com"),
            ("j@x.co", "j@x.co"),
            ("MAILTO:b@x.co", "b@x.co"),
            ("邮箱j@x.co谢谢", "j@x.co"),
            ("_ann@example.io_", "ann@example.io"),
            ("**ann@example.io**", "ann@example.io"),
        ];
        for (text, want) in cases {
            assert_eq!(emails(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn plain_negative() {
        for text in [
            "@ann see you",
            "hey @ann.lee",
            "icon@2x.png and logo@3x.jpg",
            "a@b.com_x",
            "npm i react@18.2.0",
            "git@github.com:org/repo.git",
            "user@localhost",
            "meet @ 5pm",
            "a@b",
            "price: 5 @ 3.99",
        ] {
            assert!(emails(text).is_empty(), "{text:?} -> {:?}", emails(text));
        }
    }
}
