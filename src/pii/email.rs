//! Email addresses, plain and obfuscated.
//!
//! Plain addresses are found by scanning outwards from each `@` (or full-width
//! `＠`): left over the local part, right over the domain. This is linear, needs
//! no look-around and handles the boundaries that regex word boundaries get
//! wrong (CJK text glued to the address, quotes and brackets around it).
//!
//! Obfuscated addresses ("ann at example dot com", "ann [at] example [dot] com",
//! "ann(at)example.de", "ann arroba example punto es") use one regular
//! expression and are checked afterwards.

use std::sync::OnceLock;

use regex::Regex;

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
            // The domain must not run on into a word (e.g. "a@b.com_x").
            let end = e;
            if char_at(text, end).is_some_and(|c| is_word(c) || c == '_' || c == '@') {
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
    if first_label.len() <= 4
        && first_label.ends_with(['x', 'X'])
        && first_label
            .trim_end_matches(['x', 'X'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
    {
        return true;
    }
    // SSH remotes: git@github.com:org/repo.git
    if local == "git" && text.get(end..).is_some_and(|r| r.starts_with(':')) {
        return true;
    }
    false
}

// ---------------------------------------------------------------------------
// Obfuscated addresses

/// Generic top-level domains accepted in obfuscated addresses (any two-letter
/// country code and any `xn--` label are accepted too). Stricter than for plain
/// addresses, because "at"/"dot" words also occur in ordinary sentences.
const GENERIC_TLDS: &[&str] = &[
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "name",
    "pro",
    "app",
    "dev",
    "shop",
    "online",
    "site",
    "xyz",
    "club",
    "tech",
    "store",
    "blog",
    "cloud",
    "email",
    "museum",
    "aero",
    "coop",
    "jobs",
    "mobi",
    "travel",
    "asia",
    "cat",
    "tel",
    "page",
    "live",
    "life",
    "world",
    "space",
    "website",
    "agency",
    "company",
    "digital",
    "media",
    "network",
    "solutions",
    "services",
    "systems",
    "group",
    "team",
    "mail",
    "art",
    "design",
    "studio",
    "berlin",
    "paris",
    "london",
    "nyc",
    "tokyo",
    "bayern",
    "wien",
    "swiss",
    "gmbh",
    "ltd",
    "inc",
];

fn is_known_tld(tld: &str) -> bool {
    let lower = tld.to_ascii_lowercase();
    if lower.starts_with("xn--") {
        return is_tld(&lower);
    }
    (lower.len() == 2 && lower.chars().all(|c| c.is_ascii_alphabetic()))
        || GENERIC_TLDS.contains(&lower.as_str())
        || (!lower.is_ascii() && is_tld(tld))
}

const AT_WORDS: &str = r"at|arobase|arroba|chiocciola|ma[lł]pa|apenstaartje|klammeraffe|ät";
const DOT_WORDS: &str = r"dot|punkt|point|punto|ponto|kropka|punt|piste|tecka|tečka";

fn obfuscated_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        // Letters of scripts written with spaces, digits and a few punctuation marks.
        let w = r"[\w&&[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}_]]";
        let local_atom = format!(r"(?:{w}|[_%+\-'])+");
        let label = format!(r"(?:{w}|-)+");
        let open = r"[\[\(\{<«]";
        let close = r"[\]\)\}>»]";
        let dot = format!(
            r"(?:\s*{open}\s*(?:{DOT_WORDS}|\.)\s*{close}\s*|\s+(?:{DOT_WORDS})\s+|\.|\s*\.\s*)"
        );
        let at = format!(
            r"(?:\s*{open}\s*(?:{AT_WORDS}|@)\s*{close}\s*|\s+(?:{AT_WORDS})\s+|\s+@\s*|\s*@\s+|@)"
        );
        let pattern = format!(
            r"(?i)(?P<local>{local_atom}(?:{dot}{local_atom})*)(?P<at>{at})(?P<domain>{label}(?:{dot}{label})+)"
        );
        Regex::new(&pattern).ok()
    })
    .as_ref()
}

/// Local parts that are ordinary words before "at" ("look at example dot com").
const STOP_LOCALS: &[&str] = &[
    "me",
    "us",
    "you",
    "him",
    "her",
    "them",
    "it",
    "up",
    "in",
    "look",
    "here",
    "there",
    "home",
    "work",
    "school",
    "that",
    "this",
    "one",
    "least",
    "all",
    "once",
    "last",
    "first",
    "best",
    "night",
    "noon",
    "times",
    "is",
    "are",
    "was",
    "be",
    "available",
    "found",
    "located",
    "online",
    "live",
    "sale",
    "shop",
    "buy",
    "sign",
    "stay",
    "arrive",
    "arrived",
    "arriving",
    "meet",
    "see",
    "find",
    "visit",
    "visited",
    "bought",
    "ordered",
    "order",
    "price",
    "priced",
    "now",
    "hosted",
    "based",
    "listed",
    "posted",
    "started",
    "started",
    "him",
    "jobs",
    "job",
    "staff",
    "and",
    "or",
    "the",
    "a",
    "an",
    "to",
    "go",
    "went",
    "directly",
    "only",
    "also",
    "please",
];

/// Finds obfuscated email addresses.
pub(super) fn find_obfuscated(text: &str, out: &mut Vec<Span>) {
    if !might_be_obfuscated(text) || !may_accept(text) {
        return;
    }
    let Some(re) = obfuscated_regex() else {
        return;
    };
    let mut pos = 0;
    while pos <= text.len() {
        // The DFA finds where a match is; only then resolve its groups.
        let Some(m) = re.find_at(text, pos) else {
            break;
        };
        // Without spaces or brackets the "at" is a bare '@' and the domain
        // is not obfuscated: a plain address, which `check_obfuscated`
        // refuses. Skip resolving the groups (the local part ends at the
        // first '@', which neither it nor the domain can contain).
        if !m.as_str().contains(|c: char| {
            c.is_whitespace()
                || matches!(c, '[' | '(' | '{' | '<' | '«' | ']' | ')' | '}' | '>' | '»')
        }) {
            let local_str = m.as_str().split('@').next().unwrap_or("");
            pos = m.start() + retry_skip(local_str);
            continue;
        }
        let Some(caps) = text
            .get(..m.end())
            .and_then(|h| re.captures_at(h, m.start()))
        else {
            break;
        };
        let (Some(whole), Some(local), Some(at), Some(domain)) = (
            caps.get(0),
            caps.name("local"),
            caps.name("at"),
            caps.name("domain"),
        ) else {
            break;
        };
        match check_obfuscated(
            text,
            local.as_str(),
            at.as_str(),
            domain.as_str(),
            whole.start(),
        ) {
            Some(end_trim) => {
                let end = whole.end() - end_trim;
                out.push(Span {
                    start: whole.start(),
                    end,
                    kind: PiiKind::ObfuscatedEmail,
                });
                pos = end;
            }
            None => {
                pos = whole.start() + retry_skip(local.as_str());
            }
        }
    }
}

/// Where to try again after a refused match with local part `local_str`: after
/// the next non-word character of the local part (a start inside a word is
/// refused anyway), else at the "at". Keeps the search linear.
fn retry_skip(local_str: &str) -> usize {
    let skip = local_str
        .char_indices()
        .find(|&(_, c)| !is_word(c))
        .map_or(local_str.len(), |(i, c)| i + c.len_utf8());
    let first = local_str.chars().next().map_or(1, char::len_utf8);
    skip.max(first)
}

/// Cheap pre-check: an obfuscated address needs an `@`, or an "at" word
/// standing alone (" at ", "(at)", "[AT]"), or one of the other languages'
/// at-words.
fn might_be_obfuscated(text: &str) -> bool {
    let b = text.as_bytes();
    if b.contains(&b'@') {
        return true;
    }
    let alone = |i: usize| b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
    let at_word = b.windows(2).enumerate().any(|(i, w)| {
        matches!(w, [b'a' | b'A', b't' | b'T']) && (i == 0 || alone(i - 1)) && alone(i + 2)
    });
    at_word || has_other_at_word(text)
}

fn is_open(c: char) -> bool {
    matches!(c, '[' | '(' | '{' | '<' | '«')
}

fn is_close(c: char) -> bool {
    matches!(c, ']' | ')' | '}' | '>' | '»')
}

/// The at-words of the regular expression, lower case.
const REGEX_AT_WORDS: &[&str] = &[
    "at",
    "arobase",
    "arroba",
    "chiocciola",
    "malpa",
    "małpa",
    "apenstaartje",
    "klammeraffe",
    "ät",
];

/// Whether `c` may match the lower-case letter `x` in a case-insensitive
/// regular expression (simple case folding; may say yes too often).
fn may_fold(c: char, x: char) -> bool {
    c == x || c.to_lowercase().next() == Some(x) || (c == 'ſ' && x == 's')
}

/// A necessary condition for [`find_obfuscated`] to accept a match, much
/// cheaper than running the regular expression over lines that cannot hold
/// one (most lines with a plain address or the word "at").
///
/// Every accepted match has an "at" — an `@` or an at-word — followed by a
/// domain whose first label holds a letter; and a bare `@` (no space or
/// bracket next to it) needs a domain with a spaced or bracketed dot.
fn may_accept(text: &str) -> bool {
    let mut prev = None;
    for (i, c) in text.char_indices() {
        let prev = prev.replace(c);
        if c == '@' {
            let next = char_at(text, i + 1);
            let spaced = prev.is_some_and(|p| p.is_whitespace() || is_open(p))
                || next.is_some_and(|n| n.is_whitespace() || is_close(n));
            let ok = if spaced {
                first_label_has_letter(text, after_at(text, i + 1))
            } else {
                obfuscated_domain_after(text, i + 1)
            };
            if ok {
                return true;
            }
        } else if c.is_alphabetic() && prev.is_some_and(|p| p.is_whitespace() || is_open(p)) {
            // A whole word between spaces or brackets that may be an at-word.
            let word_end = text
                .get(i..)
                .unwrap_or("")
                .char_indices()
                .find(|&(_, c)| !c.is_alphabetic())
                .map_or(text.len(), |(j, _)| i + j);
            let followed =
                char_at(text, word_end).is_some_and(|n| n.is_whitespace() || is_close(n));
            if !followed {
                continue;
            }
            let word = text.get(i..word_end).unwrap_or("");
            let at_word = REGEX_AT_WORDS.iter().any(|w| {
                word.chars().count() == w.chars().count()
                    && word.chars().zip(w.chars()).all(|(c, x)| may_fold(c, x))
            });
            if at_word && first_label_has_letter(text, after_at(text, word_end)) {
                return true;
            }
        }
    }
    false
}

/// Where the domain starts after an at-sign or at-word that ends at `i`:
/// after spaces, and a closing bracket and spaces.
fn after_at(text: &str, i: usize) -> usize {
    let skip_spaces = |i: usize| {
        text.get(i..)
            .unwrap_or("")
            .char_indices()
            .find(|&(_, c)| !c.is_whitespace())
            .map_or(text.len(), |(j, _)| i + j)
    };
    let i = skip_spaces(i);
    match char_at(text, i) {
        Some(c) if is_close(c) => skip_spaces(i + c.len_utf8()),
        _ => i,
    }
}

/// Whether the characters from `i` up to a space, bracket, dot or at-sign
/// (which hold the domain's first label) include a letter.
fn first_label_has_letter(text: &str, i: usize) -> bool {
    text.get(i..)
        .unwrap_or("")
        .chars()
        .take_while(|&c| !(c.is_whitespace() || is_open(c) || is_close(c) || c == '.' || c == '@'))
        .any(char::is_alphabetic)
}

/// Whether the domain after a bare `@` (starting at `i`) may contain a dot
/// written with spaces or brackets ("ann@example dot com",
/// "ann@example[.]com", "ann@example. com"). The labels and plain dots
/// before it are no spaces, brackets or at-signs; what ends them must be a
/// space or an opening bracket, and after spaces there must be a dot, a
/// bracket or a dot word — or the space came after a dot.
fn obfuscated_domain_after(text: &str, i: usize) -> bool {
    let rest = text.get(i..).unwrap_or("");
    let Some((stop, s)) = rest
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || is_open(c) || is_close(c) || c == '@')
    else {
        return false;
    };
    if is_open(s) {
        return true;
    }
    if !s.is_whitespace() {
        return false;
    }
    let after_dot = rest.get(..stop).is_some_and(|r| r.ends_with('.'));
    let Some(t) = rest
        .get(stop..)
        .unwrap_or("")
        .chars()
        .find(|c| !c.is_whitespace())
    else {
        return false;
    };
    after_dot || t == '.' || is_open(t) || ['d', 'p', 'k', 't'].iter().any(|&x| may_fold(t, x))
}

/// At-words of other languages (lower case), with their first letter.
const OTHER_AT_WORDS: &[(char, &str)] = &[
    ('a', "arobase"),
    ('a', "arroba"),
    ('c', "chiocciola"),
    ('m', "małpa"),
    ('m', "malpa"),
    ('a', "apenstaartje"),
    ('k', "klammeraffe"),
    ('ä', "ät"),
];

/// Whether `text.to_lowercase()` contains one of [`OTHER_AT_WORDS`], without
/// lower-casing the whole text. (Lower-casing works char by char, apart from
/// the final sigma, which no at-word contains; and no at-word starts inside a
/// char's lower case, such as the dot of "İ" → "i̇".)
fn has_other_at_word(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Quick look for a place where one may start (see below).
    let pair = |b: u8, n: u8| {
        matches!(
            (b | 0x20, n | 0x20),
            (b'a', b'r' | b'p') | (b'c', b'h') | (b'm', b'a') | (b'k', b'l')
        ) || b == 0xC3
            || b == 0xE2
    };
    let last = bytes.last().is_some_and(|&b| b == 0xC3 || b == 0xE2);
    if !last
        && !bytes.windows(2).any(|w| match *w {
            [b, n] => pair(b, n),
            _ => false,
        })
    {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        // Only these bytes start a char whose lower case starts like an
        // at-word: A C M K a c m k, Ä ä (0xC3 ..), the Kelvin sign (0xE2 ..);
        // after an ASCII letter, the second letter (r h a p l) can only be ASCII.
        let second = bytes.get(i + 1).map_or(0, |&n| n | 0x20);
        let ascii_start = matches!(
            (b | 0x20, second),
            (b'a', b'r' | b'p') | (b'c', b'h') | (b'm', b'a') | (b'k', b'l')
        );
        if !ascii_start && b != 0xC3 && b != 0xE2 {
            continue;
        }
        let Some(c) = char_at(text, i) else {
            continue;
        };
        let first = if c.is_ascii() {
            c.to_ascii_lowercase()
        } else {
            c.to_lowercase().next().unwrap_or(c)
        };
        let rest = text.get(i..).unwrap_or("");
        for &(_, w) in OTHER_AT_WORDS.iter().filter(|&&(f, _)| f == first) {
            // Where the text is ASCII, lower-casing is byte by byte.
            if let Some(prefix) = rest.as_bytes().get(..w.len())
                && prefix.is_ascii()
            {
                if prefix.eq_ignore_ascii_case(w.as_bytes()) {
                    return true;
                }
                continue;
            }
            let mut lowered = rest.chars().flat_map(char::to_lowercase);
            if w.chars().all(|x| lowered.next() == Some(x)) {
                return true;
            }
        }
    }
    false
}

/// Validates a regex match; returns how many bytes to trim from its end.
fn check_obfuscated(
    text: &str,
    local: &str,
    at: &str,
    domain: &str,
    start: usize,
) -> Option<usize> {
    let at_trim = at.trim();
    let at_plain_word = at_trim.chars().all(char::is_alphabetic);
    let at_is_symbol = at_trim == "@";
    let dot_obfuscated = |s: &str| {
        s.contains([' ', '[', '(', '{', '<', '«', '\u{a0}']) || s.chars().any(char::is_whitespace)
    };
    let domain_obf = dot_obfuscated(domain);
    let local_obf = dot_obfuscated(local);
    // A plain address is the plain detector's job.
    if at_is_symbol && !at.chars().any(char::is_whitespace) && !domain_obf {
        return None;
    }
    // Must not start inside a word.
    if char_before(text, start).is_some_and(|c| is_word(c) || c == '@' || c == '.') {
        return None;
    }
    // Split the domain into labels on any dot form and check the TLD.
    let labels = split_obfuscated_labels(domain);
    let tld = labels.last()?;
    if !is_known_tld(tld) || labels.len() < 2 {
        return None;
    }
    // "10.39.24.png": numbers, not a host name.
    if !labels.first()?.chars().any(char::is_alphabetic) {
        return None;
    }
    // "word @handle.name" is a mention: a spaced '@' needs spaces on both sides.
    if at_is_symbol && !domain_obf {
        let spaced_left = at.starts_with(char::is_whitespace);
        let spaced_right = at.ends_with(char::is_whitespace);
        if !(spaced_left && spaced_right) {
            return None;
        }
    }
    let local_lower = local.to_lowercase();
    if at_plain_word {
        if STOP_LOCALS.contains(&local_lower.as_str()) {
            return None;
        }
        // "sign up at example.com" is a URL, not an address: with a plain
        // "at", require an obfuscated dot too, or an address-like local part.
        let addressy_local =
            local.contains(['.', '_', '+']) || local.chars().any(|c| c.is_ascii_digit());
        if !domain_obf && !addressy_local {
            return None;
        }
        if local_obf && !domain_obf {
            return None;
        }
    }
    // Dot words inside the local part only count when the domain uses them too.
    let _ = local_obf;
    // The match must not run on into a word.
    Some(0).filter(|_| {
        let end = start + local.len() + at.len() + domain.len();
        char_at(text, end).is_none_or(|c| !is_word(c))
    })
}

fn split_obfuscated_labels(domain: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut cur = String::new();
    let lower = domain.to_lowercase();
    let mut words = lower
        .split(|c: char| c.is_whitespace() || "[](){}<>«».".contains(c))
        .filter(|w| !w.is_empty())
        .peekable();
    let dot_words: Vec<&str> = DOT_WORDS.split('|').collect();
    while let Some(w) = words.next() {
        if dot_words.contains(&w) && !cur.is_empty() && words.peek().is_some() {
            labels.push(std::mem::take(&mut cur));
        } else {
            if !cur.is_empty() {
                labels.push(std::mem::take(&mut cur));
            }
            cur.push_str(w);
        }
    }
    if !cur.is_empty() {
        labels.push(cur);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_plain(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    fn obf(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_obfuscated(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    #[test]
    fn at_word_first_letters() {
        // `has_other_at_word` only looks at chars starting with these bytes.
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let first = c.to_lowercase().next().unwrap_or(c);
            if OTHER_AT_WORDS.iter().any(|&(f, _)| f == first) {
                let b = c.to_string().bytes().next().unwrap_or_default();
                assert!(
                    matches!(b | 0x20, b'a' | b'c' | b'm' | b'k') || b == 0xC3 || b == 0xE2,
                    "{c:?}"
                );
            }
        }
        for &(f, w) in OTHER_AT_WORDS {
            assert!(w.starts_with(f));
        }
        // The second letters of the ASCII-initial words have no non-ASCII
        // upper case.
        for c in (0x80..=0x10_FFFF).filter_map(char::from_u32) {
            let lower: String = c.to_lowercase().collect();
            for x in ['r', 'p', 'h', 'a', 'l'] {
                assert!(!lower.starts_with(x), "{c:?}");
            }
        }
        assert!(has_other_at_word("Écris à marie ARROBA exemple"));
        assert!(has_other_at_word("\u{212A}LAMMERAFFE"));
        assert!(has_other_at_word("ann ÄT example"));
        assert!(!has_other_at_word("at malp a"));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn may_fold_covers_case_insensitive_matching() {
        let mut letters: Vec<char> = REGEX_AT_WORDS.iter().flat_map(|w| w.chars()).collect();
        letters.extend(['d', 'p', 'k', 't']);
        letters.sort_unstable();
        letters.dedup();
        for x in letters {
            let re = Regex::new(&format!("(?i)^{x}$")).unwrap();
            for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
                if c.is_alphabetic() && re.is_match(c.encode_utf8(&mut [0; 4])) {
                    assert!(may_fold(c, x), "{c:?} ~ {x:?}");
                }
            }
            // Only letters fold to letters.
            for c in ['1', ' ', '@', '.', '-', '_', '\u{307}'] {
                assert!(!re.is_match(c.encode_utf8(&mut [0; 4])));
            }
        }
        let words = DOT_WORDS.split('|').chain(AT_WORDS.split('|'));
        for w in words {
            let spelled = w.replace("[lł]", "l");
            assert!(
                spelled == "ma[lł]pa"
                    || REGEX_AT_WORDS.contains(&spelled.as_str())
                    || DOT_WORDS.contains(&spelled),
                "{w}"
            );
        }
        assert!(
            DOT_WORDS
                .split('|')
                .all(|w| w.starts_with(['d', 'p', 'k', 't']))
        );
    }

    #[test]
    fn pre_check_keeps_candidates() {
        for text in [
            "ann at example dot com",
            "ann [at] example [dot] com",
            "ann(at)example(dot)de",
            "ann @ example.com",
            "ann@example dot com",
            "ann@example. com",
            "ann@example [.] com",
            "ann@example . com",
            "ann@example\u{a0}DOT com",
            "juan ARROBA correo punto es",
            "ann \u{212A}lammeraffe example punkt de",
            "ann (at) example.de",
        ] {
            assert!(may_accept(text), "{text:?}");
        }
        for text in [
            "mail ann@example.com now",
            "reach me at +45 32 14 20 80",
            "you can reach me at 11961249316 after 5pm",
            "até Python 3.12.3",
            "ann@example.com, see you",
        ] {
            assert!(!may_accept(text), "{text:?}");
        }
    }

    #[test]
    fn regex_compiles() {
        assert!(obfuscated_regex().is_some());
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

    #[test]
    fn obfuscated_positive() {
        let cases = [
            (
                "write to ann at example dot com please",
                "ann at example dot com",
            ),
            ("ann [at] example [dot] com", "ann [at] example [dot] com"),
            ("ann(at)example(dot)de", "ann(at)example(dot)de"),
            ("kontakt: info(at)firma.de", "info(at)firma.de"),
            ("ann.lee at example.com", "ann.lee at example.com"),
            (
                "ann AT example DOT co DOT uk",
                "ann AT example DOT co DOT uk",
            ),
            ("ann @ example.com", "ann @ example.com"),
            ("juan arroba correo punto es", "juan arroba correo punto es"),
            (
                "marie arobase exemple point fr",
                "marie arobase exemple point fr",
            ),
            ("ann {at} example {dot} org", "ann {at} example {dot} org"),
            ("ann@example dot com", "ann@example dot com"),
        ];
        for (text, want) in cases {
            assert_eq!(obf(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn obfuscated_negative() {
        for text in [
            "custa @john.doe",
            "Screenshot 2024-06-19 at 10.39.24.png",
            "ann at example dot png",
            "sign up at example.com",
            "look at this dot com bubble",
            "we meet at noon",
            "available at shop.example.com today",
            "ann@example.com",
            "see you at 5 dot 30",
            "I am at home dot",
        ] {
            assert!(obf(text).is_empty(), "{text:?} -> {:?}", obf(text));
        }
    }
}
