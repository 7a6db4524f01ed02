//! Obfuscated email addresses: "ann at example dot com", "ann [at] example
//! [dot] com", "ann(at)example.de", "ann -at- example -dot- com",
//! "ann_at_example_dot_com", "ann (@) example (.) com", "juan arroba correo
//! punto es", …
//!
//! An *at token* is an at-word (`at`, `arroba`, `arobase`, …) or `@`, and a
//! *dot token* a dot-word (`dot`, `punto`, `punkt`, …) or `.`; either may be
//! *decorated*: wrapped on both sides in one or two of the brackets (any
//! width) `( ) [ ] { } < > « » 【 】` or `- _ * # / | ~`, with or without spaces.
//! A plain at-word or dot-word must stand between spaces. One regular
//! expression finds candidates; [`check`] decides.

use std::sync::OnceLock;

use regex::Regex;

use super::email::is_tld;
use super::text::{Keywords, char_at, char_before, is_word, lower, window_before};
use super::{PiiKind, Span};

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

/// Two-letter TLDs that are also file extensions: after an at token that
/// looks like part of an identifier (`look_at_me.py`), with real dots, they
/// are file names.
const FILE_EXTENSIONS: &[&str] = &[
    "py", "rs", "md", "js", "ts", "go", "sh", "rb", "cc", "cs", "db", "gz", "xz", "so", "ps", "mk",
    "ml", "hs", "kt", "jl", "rc", "in", "am", "ac", "pm",
];

const AT_WORDS: &str = r"at|arobase|arroba|chiocciola|ma[lł]pa|apenstaartje|klammeraffe|ät";
const DOT_WORDS: &str = r"dot|punkt|point|punto|ponto|kropka|punt|piste|tecka|tečka|period";

/// The characters that decorate an at or dot token (see the module docs).
const DECOR: &str = r"[\[\](){}<>«»（）［］｛｝＜＞【】\-_*#/|~]";

/// Whether `c` is one of [`DECOR`].
pub(super) fn is_decor(c: char) -> bool {
    is_open(c)
        || is_close(c)
        || matches!(
            c,
            '-' | '_' | '*' | '#' | '/' | '|' | '~' | '（' | '）' | '［' | '］' | '｛' | '｝'
        )
}

fn is_open(c: char) -> bool {
    matches!(c, '[' | '(' | '{' | '<' | '«' | '【' | '＜')
}

fn is_close(c: char) -> bool {
    matches!(c, ']' | ')' | '}' | '>' | '»' | '】' | '＞')
}

struct Regexes {
    /// A whole candidate: local part, at token, domain.
    find: Regex,
    /// One dot token (to split a domain into labels).
    dot: Regex,
}

fn regexes() -> Option<&'static Regexes> {
    static RE: OnceLock<Option<Regexes>> = OnceLock::new();
    RE.get_or_init(|| {
        // Letters of scripts written with spaces, digits and a few punctuation marks.
        let w = r"[\w&&[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}_]]";
        let local_atom = format!(r"(?:{w}|[_%+\-'])+");
        let label = format!(r"(?:{w}|-)+");
        let decorated = |words: &str| format!(r"\s*{DECOR}{{1,2}}\s*(?:{words})\s*{DECOR}{{1,2}}\s*");
        let dot = format!(
            r"(?:{}|\s+(?:{DOT_WORDS})\s+|\s*\.\s*)",
            decorated(&format!(r"{DOT_WORDS}|\."))
        );
        let at = format!(
            r"(?:{}|\s+(?:{AT_WORDS})\s+|\s*[@＠]\s*)",
            decorated(&format!(r"{AT_WORDS}|[@＠]"))
        );
        let find = format!(
            r"(?i)(?P<local>{local_atom}(?:{dot}{local_atom})*)(?P<at>{at})(?P<domain>{label}(?:{dot}{label})+)"
        );
        Some(Regexes {
            find: Regex::new(&find).ok()?,
            dot: Regex::new(&format!("(?i){dot}")).ok()?,
        })
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
    "reply",
    "details",
    "info",
    "more",
    "apply",
    "register",
    "registered",
    "signup",
    "deals",
    "tickets",
    "out",
    "good",
    "great",
    "we're",
    "i'm",
    "you're",
    "they're",
    "he's",
    "she's",
    "it's",
];

/// Words before an address that say it is one ("email", "contact", …): with
/// them, "ann at example.com" (plain "at", real dots) is an address.
const MAIL_CUES: &[&str] = &[
    "mail",
    "e-mail",
    "email",
    "correo",
    "courriel",
    "posta",
    "poczta",
    "contact",
    "kontakt",
    "contatto",
    "contacto",
    "write",
    "schreib",
    "écri",
    "escr",
    "scriv",
    "napisz",
    "邮箱",
    "郵箱",
    "邮件",
    "メール",
    "이메일",
    "почт",
];

/// Mail providers: "ann at gmail.com" is an address.
const MAIL_PROVIDERS: &[&str] = &[
    "gmail",
    "googlemail",
    "yahoo",
    "hotmail",
    "outlook",
    "live",
    "msn",
    "gmx",
    "web",
    "posteo",
    "proton",
    "protonmail",
    "icloud",
    "me",
    "aol",
    "yandex",
    "qq",
    "163",
    "126",
    "naver",
    "daum",
    "t-online",
    "orange",
    "free",
    "laposte",
    "libero",
    "wp",
    "o2",
    "onet",
    "interia",
    "seznam",
    "mailbox",
    "fastmail",
    "zoho",
    "tutanota",
    "hey",
];

/// Finds obfuscated email addresses.
pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    if may_hold_address(text) {
        find_matches(text, out);
    }
}

/// Runs the regular expression over `text` and keeps the matches [`check`]
/// accepts.
fn find_matches(text: &str, out: &mut Vec<Span>) {
    let Some(re) = regexes() else {
        return;
    };
    let mut pos = 0;
    while pos <= text.len() {
        // The DFA finds where a match is; only then resolve its groups.
        let Some(m) = re.find.find_at(text, pos) else {
            break;
        };
        // Without spaces or decoration the "at" is a bare '@' and the domain
        // is not obfuscated: a plain address, which `check` refuses. Skip
        // resolving the groups (the local part ends at the first '@', which
        // neither it nor the domain can contain).
        if !m
            .as_str()
            .contains(|c: char| c.is_whitespace() || is_decor(c))
        {
            let local_str = m.as_str().split(['@', '＠']).next().unwrap_or("");
            pos = m.start() + retry_skip(local_str);
            continue;
        }
        let Some(caps) = text
            .get(..m.end())
            .and_then(|h| re.find.captures_at(h, m.start()))
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
        let parts = Parts {
            local: local.as_str(),
            at: at.as_str(),
            domain: domain.as_str(),
            start: whole.start(),
            domain_start: domain.start(),
        };
        match check(text, &parts, &re.dot) {
            Some(end) => {
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
/// standing alone (" at ", "(at)", "-at-", "[AT]"), or one of the other
/// languages' at-words.
fn might_be_obfuscated(text: &str) -> bool {
    let b = text.as_bytes();
    if b.contains(&b'@') || text.contains('＠') {
        return true;
    }
    let alone = |i: usize| b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
    let at_word = b.windows(2).enumerate().any(|(i, w)| {
        matches!(w, [b'a' | b'A', b't' | b'T']) && (i == 0 || alone(i - 1)) && alone(i + 2)
    });
    at_word || has_other_at_word(text)
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
    if c.is_ascii() {
        // The lower case of an ASCII char is one ASCII char.
        return c == x || c.to_ascii_lowercase() == x;
    }
    c == x || c.to_lowercase().next() == Some(x) || (c == 'ſ' && x == 's')
}

/// A space or a decoration character: what may stand next to an at token.
fn is_gap(c: char) -> bool {
    c.is_whitespace() || is_decor(c)
}

/// The cheap pre-checks of [`find`]: `might_be_obfuscated(text)` and that
/// some at token passes [`first_at_token`], from one pass over the bytes for
/// most texts.
fn may_hold_address(text: &str) -> bool {
    match first_at_token(text) {
        None => false,
        // An '@' is in the text; or "at" stands between spaces or
        // decoration, so neither byte next to it is an ASCII letter or digit.
        // Either way `might_be_obfuscated` holds.
        Some(AtToken::Sign | AtToken::At) => true,
        Some(AtToken::OtherWord) => might_be_obfuscated(text),
    }
}

/// The kind of at token [`first_at_token`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtToken {
    /// `@` or `＠`.
    Sign,
    /// The word "at", in any letter case.
    At,
    /// Another word that may match an at-word of the regular expression.
    OtherWord,
}

/// The first letters of [`REGEX_AT_WORDS`].
const AT_WORD_FIRSTS: [char; 5] = ['a', 'c', 'm', 'k', 'ä'];

/// `is_gap` of each ASCII char.
#[allow(clippy::indexing_slicing)] // constant evaluation checks the bounds
const ASCII_GAP: [bool; 128] = {
    let mut t = [false; 128];
    let gaps = b"\t\n\x0B\x0C\r []{}()<>-_*#/|~";
    let mut i = 0;
    while i < gaps.len() {
        t[gaps[i] as usize] = true;
        i += 1;
    }
    t
};

/// A byte that [`first_at_token`] must look at closely.
const STOP: u8 = 2;

/// The byte scan of [`first_at_token`] as a table: for state 0 (the char
/// before is no gap) and state 1 (it is a gap, `256 +` the byte), the next
/// state, or [`STOP`] for an '@', any non-ASCII byte, and after a gap an ASCII
/// letter that may start an at-word (`a c m k` in either case).
#[allow(clippy::indexing_slicing)] // constant evaluation checks the bounds
const SCAN: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut b = 0;
    while b < 256 {
        let (after_other, after_gap) = if b >= 0x80 || b == b'@' as usize {
            (STOP, STOP)
        } else if matches!(b as u8 | 0x20, b'a' | b'c' | b'm' | b'k')
            && (b as u8).is_ascii_alphabetic()
        {
            (0, STOP)
        } else if ASCII_GAP[b] {
            (1, 1)
        } else {
            (0, 0)
        };
        t[b] = after_other;
        t[256 + b] = after_gap;
        b += 1;
    }
    t
};

/// A necessary condition for [`find`] to accept a match, much cheaper than
/// running the regular expression over lines that cannot hold one (most
/// lines with a plain address or the word "at"): the first at token that
/// passes it, if any.
///
/// Every accepted match has an "at" — an `@` or an at-word — followed by a
/// domain whose first label holds a letter; an at-word stands between spaces
/// or decoration; and a bare `@` (no space or decoration next to it) needs a
/// domain with a spaced or decorated dot.
fn first_at_token(text: &str) -> Option<AtToken> {
    let bytes = text.as_bytes();
    let mut i = 0;
    // 1 when the char before `i` is a gap (there is none before the first).
    let mut state = 0u8;
    while i < bytes.len() {
        // Skip to the next byte where the scan below may stop: past whole
        // chunks, then past the plain bytes of a chunk (after which the char
        // before is an ASCII one).
        let window = i
            .checked_sub(1)
            .and_then(|from| bytes.get(from..i + CHUNK + 1))
            .and_then(|w| w.try_into().ok());
        if let Some(window) = window {
            let plain = match chunk_stops(window) {
                0 => CHUNK,
                stops => stops.trailing_zeros() as usize / 8,
            };
            if plain > 0 {
                i += plain;
                let last = bytes.get(i - 1).map_or(0, |&l| usize::from(l));
                state = u8::from(ASCII_GAP.get(last).copied().unwrap_or(false));
                continue;
            }
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        // Fast path for ASCII: only an '@' or a word after a gap whose first
        // letter may fold to an at-word's need a closer look.
        let next = SCAN
            .get(usize::from(state & 1) << 8 | usize::from(b))
            .copied()
            .unwrap_or(STOP);
        if next != STOP {
            state = next;
            i += 1;
            continue;
        }
        let after_gap = state == 1;
        let Some(c) = char_at(text, i) else {
            break;
        };
        let next_i = i + c.len_utf8();
        if c == '@' || c == '＠' {
            let next = char_at(text, next_i);
            let spaced = after_gap || next.is_some_and(is_gap);
            let ok = if spaced {
                first_label_has_letter(text, after_at(text, next_i))
            } else {
                obfuscated_domain_after(text, next_i)
            };
            if ok {
                return Some(AtToken::Sign);
            }
        } else if after_gap
            && c.is_alphabetic()
            && AT_WORD_FIRSTS.iter().any(|&x| may_fold(c, x))
            && let Some(token) = at_word_at(text, i)
        {
            return Some(token);
        }
        state = u8::from(is_gap(c));
        i = next_i;
    }
    None
}

/// Bytes that [`first_at_token`] checks at once.
const CHUNK: usize = 16;

/// Byte `k` (little-endian) not zero where byte `k + 1` of `window` (neither
/// the first nor the last) may stop the byte scan of [`first_at_token`] with a
/// token: a non-ASCII byte, '@', or a letter that may start an at-word after
/// anything but an ASCII letter (so perhaps a gap), unless it is followed by
/// an ASCII char that folds to none of the second letters of the at-words it
/// may start (`at`/`ar…`/`ap…`, `ch…`, `ma…`, `kl…`). Branch-free, so that it
/// compiles to vector code.
fn chunk_stops(window: &[u8; CHUNK + 2]) -> u128 {
    let prev = window.get(..CHUNK).unwrap_or_default();
    let cur = window.get(1..=CHUNK).unwrap_or_default();
    let next = window.get(2..).unwrap_or_default();
    let mut stops = [0u8; CHUNK];
    for (stop_k, ((&p, &b), &n)) in stops.iter_mut().zip(prev.iter().zip(cur).zip(next)) {
        let (l, m) = (b | 0x20, n | 0x20);
        let pair = (l == b'a') & ((m == b't') | (m == b'r') | (m == b'p'))
            | (l == b'c') & (m == b'h')
            | (l == b'm') & (m == b'a')
            | (l == b'k') & (m == b'l');
        let after_letter = (p | 0x20).wrapping_sub(b'a') < 26;
        let word_start = (pair | (n >= 0x80)) & !after_letter;
        *stop_k = u8::from((b >= 0x80) | (b == b'@') | word_start);
    }
    u128::from_le_bytes(stops)
}

/// Whether the word starting at `i` (after a gap) is a whole word between
/// gaps that may be an at-word, followed by a domain whose first label holds
/// a letter.
fn at_word_at(text: &str, i: usize) -> Option<AtToken> {
    let word_end = text
        .get(i..)
        .unwrap_or("")
        .char_indices()
        .find(|&(_, c)| !c.is_alphabetic())
        .map_or(text.len(), |(j, _)| i + j);
    if !char_at(text, word_end).is_some_and(is_gap) {
        return None;
    }
    let word = text.get(i..word_end).unwrap_or("");
    let at_word = REGEX_AT_WORDS.iter().any(|w| {
        let (mut a, mut b) = (word.chars(), w.chars());
        loop {
            match (a.next(), b.next()) {
                (None, None) => break true,
                (Some(c), Some(x)) if may_fold(c, x) => {}
                _ => break false,
            }
        }
    });
    if !(at_word
        && first_label_has_letter(text, after_at(text, word_end))
        && dot_may_follow(text, word_end))
    {
        return None;
    }
    Some(if word.eq_ignore_ascii_case("at") {
        AtToken::At
    } else {
        AtToken::OtherWord
    })
}

/// How far [`dot_may_follow`] looks before it gives up and says yes.
const DOT_LOOK_AHEAD: usize = 256;

/// Whether the regular expression may match a domain right after the at
/// group of an at-word that ends at `end` (a necessary condition, most of the
/// time much cheaper than the regular expression).
///
/// The at group ends in spaces and decoration, and the domain (`label (dot
/// label)+`) follows at once: a first label of word chars and '-', then a dot
/// token, which starts with a space, decoration or '.', and after spaces and
/// decoration holds a '.' or a dot word, then (after more spaces and
/// decoration) a label. So after the spaces and decoration that follow the
/// at-word, a run of label chars must reach, at one of its spaces or
/// decoration chars or where it ends, spaces and decoration followed by a
/// letter that may start a dot word, or by a '.' and, after spaces and
/// decoration, a label char. (With a '-' among the spaces and decoration, the
/// first label may be made of hyphens there and the dot token start right
/// after them.) Label chars are over-approximated by ASCII letters, digits,
/// '-' and '_', and any non-ASCII char but a space.
fn dot_may_follow(text: &str, end: usize) -> bool {
    let may_label = |c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_' || !(c.is_ascii() || c.is_whitespace())
    };
    // Whether spaces and decoration from `q` lead to a dot word, or to a '.'
    // that spaces and decoration lead on from to a label.
    let dot_next = |q: usize| {
        let mut dot = false;
        for (j, c) in text.get(q..).unwrap_or("").char_indices() {
            if j > DOT_LOOK_AHEAD {
                return true;
            }
            if dot {
                if may_label(c) || !is_gap(c) {
                    return may_label(c);
                }
            } else if c == '.' {
                dot = true;
            } else if !is_gap(c) {
                return ['d', 'p', 'k', 't'].iter().any(|&x| may_fold(c, x));
            }
        }
        false
    };
    let e = after_at(text, end);
    if text.get(end..e).is_some_and(|g| g.contains('-')) && dot_next(e) {
        return true;
    }
    let rest = text.get(e..).unwrap_or("");
    let mut chars = rest.char_indices();
    if !chars.next().is_some_and(|(_, c)| may_label(c)) {
        return false;
    }
    for (j, c) in chars {
        if j > DOT_LOOK_AHEAD {
            return true;
        }
        if !may_label(c) || is_gap(c) {
            if dot_next(e + j) {
                return true;
            }
            if !may_label(c) {
                return false;
            }
        }
    }
    // The text ends inside the first label: no dot token.
    false
}

/// Where the domain starts after an at-sign or at-word that ends at `i`:
/// after spaces and decoration.
fn after_at(text: &str, i: usize) -> usize {
    text.get(i..)
        .unwrap_or("")
        .char_indices()
        .find(|&(_, c)| !is_gap(c))
        .map_or(text.len(), |(j, _)| i + j)
}

/// Whether the characters from `i` up to a space, decoration, dot or at-sign
/// (which hold the domain's first label) include a letter.
fn first_label_has_letter(text: &str, i: usize) -> bool {
    text.get(i..)
        .unwrap_or("")
        .chars()
        .take_while(|&c| !(c.is_whitespace() || is_open(c) || is_close(c) || c == '.' || c == '@'))
        .any(char::is_alphabetic)
}

/// Whether the domain after a bare `@` (starting at `i`) may contain a dot
/// written with spaces or decoration ("ann@example dot com",
/// "ann@example[.]com", "ann@example. com", "ann@example-dot-com"). The labels
/// and plain dots before it hold no spaces, decoration or at-signs; where
/// they end there must be decoration followed by a dot or a dot word's first
/// letter, an opening bracket, or spaces followed by a dot, a bracket or a
/// dot word — or the space came after a dot.
fn obfuscated_domain_after(text: &str, i: usize) -> bool {
    let rest = text.get(i..).unwrap_or("");
    let dot_start = |c: char| c == '.' || ['d', 'p', 'k', 't'].iter().any(|&x| may_fold(c, x));
    let stops = rest
        .char_indices()
        .filter(|&(_, c)| c.is_whitespace() || is_decor(c) || c == '@' || c == '＠');
    for (stop, s) in stops {
        if is_open(s) || matches!(s, '（' | '［' | '｛') {
            return true;
        }
        if is_decor(s) {
            // "-dot-", "_dot_", "#dot#", "*.*": decoration, then the dot token.
            let after = rest.get(stop..).unwrap_or("").chars().find(|&c| !is_gap(c));
            if after.is_some_and(dot_start) {
                return true;
            }
            continue;
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
        return after_dot || is_decor(t) || dot_start(t);
    }
    false
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

/// The groups of one regex match.
struct Parts<'a> {
    local: &'a str,
    at: &'a str,
    domain: &'a str,
    /// Byte offset of the match (and of the local part) in the text.
    start: usize,
    /// Byte offset of the domain in the text.
    domain_start: usize,
}

/// Validates a regex match; returns where the address ends (a trailing
/// sentence such as ". Thanks" is no part of it).
fn check(text: &str, p: &Parts<'_>, dot: &Regex) -> Option<usize> {
    let at_trim = p.at.trim();
    let at_core = at_trim.trim_matches(is_decor).trim();
    let at_decorated = at_core.len() < at_trim.len();
    // Only the English "at" is also an everyday word; "arroba", "małpa", …
    // are not.
    let at_plain_word = !at_decorated && at_trim.eq_ignore_ascii_case("at");
    // "ann AT example.com": an at-word in capitals is written to be noticed.
    let at_shouted =
        at_plain_word && at_trim.chars().count() >= 2 && at_trim.chars().all(char::is_uppercase);
    let at_is_symbol = matches!(at_core, "@" | "＠");
    // Decoration that could be part of an identifier ("look_at_me.py").
    let at_identifier_like = at_decorated
        && at_trim
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    // Must not start inside a word, nor after a mid-word "'", "-", "+" ("we're").
    let before = char_before(text, p.start);
    if before.is_some_and(|c| is_word(c) || c == '@' || c == '.') {
        return None;
    }
    if before.is_some_and(|c| matches!(c, '\'' | '’' | '-' | '+' | '%'))
        && char_before(text, p.start - before.map_or(0, char::len_utf8)).is_some_and(is_word)
    {
        return None;
    }
    // Labels (byte ranges in the domain) and whether each dot before them is
    // obfuscated.
    let mut labels: Vec<(usize, usize, bool)> = Vec::new();
    let mut from = 0;
    let mut obfuscated_dot = false;
    for m in dot.find_iter(p.domain) {
        labels.push((from, m.start(), obfuscated_dot));
        // "checkout. Is there …": a full stop and a new sentence end it.
        let sentence_end = m.as_str().starts_with('.')
            && m.as_str().ends_with(char::is_whitespace)
            && p.domain
                .get(m.end()..)
                .and_then(|r| r.chars().next())
                .is_some_and(char::is_uppercase);
        if sentence_end {
            from = p.domain.len();
            break;
        }
        obfuscated_dot = m.as_str() != ".";
        from = m.end();
    }
    if from < p.domain.len() || labels.is_empty() {
        labels.push((from, p.domain.len(), obfuscated_dot));
    }
    // The longest run of labels that ends in a known TLD.
    let label = |&(s, e, _): &(usize, usize, bool)| p.domain.get(s..e).unwrap_or("");
    let keep = (2..=labels.len())
        .rev()
        .find(|&k| labels.get(k - 1).map(label).is_some_and(is_known_tld))?;
    let labels = labels.get(..keep)?;
    if labels.iter().any(|l| label(l).is_empty()) {
        return None;
    }
    // "10.39.24.png": numbers, not a host name.
    let first = labels.first().map(label)?;
    if !first.chars().any(char::is_alphabetic) {
        return None;
    }
    let tld = labels.last().map(label)?.to_ascii_lowercase();
    // "use [at] and [dot] to hide emails": a function word is no host name.
    if labels.len() == 2 && FUNCTION_WORDS.contains(&first.to_lowercase().as_str()) {
        return None;
    }
    let domain_obf = labels.iter().any(|l| l.2);
    let end = p.domain_start + labels.last()?.1;
    // The address must not run on into a word.
    if char_at(text, end).is_some_and(is_word) {
        return None;
    }
    // A plain address is the plain detector's job.
    if at_is_symbol && !at_decorated && !p.at.chars().any(char::is_whitespace) && !domain_obf {
        return None;
    }
    // "word @handle.name" is a mention: a spaced '@' needs spaces on both sides.
    if at_is_symbol && !at_decorated && !domain_obf {
        let spaced_left = p.at.starts_with(char::is_whitespace);
        let spaced_right = p.at.ends_with(char::is_whitespace);
        if !(spaced_left && spaced_right) {
            return None;
        }
    }
    if at_identifier_like && !domain_obf && FILE_EXTENSIONS.contains(&tld.as_str()) {
        return None;
    }
    let local_lower = p.local.to_lowercase();
    if at_plain_word {
        // "£8.00 at checkout": a local part has a letter.
        if STOP_LOCALS.contains(&local_lower.as_str()) || !p.local.chars().any(char::is_alphabetic)
        {
            return None;
        }
        // "sign up at example.com" is a URL, not an address: with a plain
        // "at", require an obfuscated dot too, or an address-like local part,
        // a mail provider's domain, or a mail word before it.
        let addressy_local =
            p.local.contains(['.', '_', '+']) || p.local.chars().any(|c| c.is_ascii_digit());
        let local_obf = dot.find_iter(p.local).any(|m| m.as_str() != ".");
        if local_obf && !domain_obf {
            return None;
        }
        if !domain_obf
            && !at_shouted
            && !addressy_local
            && !MAIL_PROVIDERS.contains(&first.to_ascii_lowercase().as_str())
            && !mail_cue_before(text, p.start)
        {
            return None;
        }
    }
    Some(end)
}

/// Words that are no second-level domain ("use [at] and [dot] to …").
const FUNCTION_WORDS: &[&str] = &[
    "and", "or", "the", "to", "of", "in", "on", "for", "with", "is", "are", "und", "oder", "et",
    "ou",
];

/// Whether a mail word ("email", "contact", "邮箱", …) ends in the 40 bytes
/// before `start`.
fn mail_cue_before(text: &str, start: usize) -> bool {
    static CUES: OnceLock<Keywords> = OnceLock::new();
    let cues = CUES.get_or_init(|| Keywords::new(MAIL_CUES));
    cues.last_in(lower(window_before(text, start, 40)).as_str(), false)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`find`] as it was before [`first_at_token`], with the pre-checks of
    /// then.
    fn reference_find(text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        if might_be_obfuscated(text) && may_accept(text) {
            find_matches(text, &mut out);
        }
        out
    }

    /// Whether the pre-checks are no weaker than those of [`reference_find`]
    /// (they only refuse more texts) and [`find`] finds the same.
    fn agrees_with_reference(text: &str) -> Result<(), String> {
        if first_at_token(text).is_some() && !may_accept(text) {
            return Err(format!("at token in {text:?} the reference refused"));
        }
        if may_hold_address(text) && !(might_be_obfuscated(text) && may_accept(text)) {
            return Err(format!("pre-check passed {text:?}"));
        }
        let mut got = Vec::new();
        find(text, &mut got);
        let want = reference_find(text);
        if got != want {
            return Err(format!("{text:?}: {got:?} != {want:?}"));
        }
        Ok(())
    }

    /// The pre-check as it was before [`first_at_token`].
    fn may_accept(text: &str) -> bool {
        let mut prev = None;
        for (i, c) in text.char_indices() {
            let prev = prev.replace(c);
            if c == '@' || c == '＠' {
                let next = char_at(text, i + c.len_utf8());
                let spaced = prev.is_some_and(is_gap) || next.is_some_and(is_gap);
                let ok = if spaced {
                    first_label_has_letter(text, after_at(text, i + c.len_utf8()))
                } else {
                    obfuscated_domain_after(text, i + c.len_utf8())
                };
                if ok {
                    return true;
                }
            } else if c.is_alphabetic() && prev.is_some_and(is_gap) {
                // A whole word between spaces or decoration that may be an at-word.
                let word_end = text
                    .get(i..)
                    .unwrap_or("")
                    .char_indices()
                    .find(|&(_, c)| !c.is_alphabetic())
                    .map_or(text.len(), |(j, _)| i + j);
                if !char_at(text, word_end).is_some_and(is_gap) {
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

    fn obf(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find(text, &mut v);
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
    #[allow(clippy::unwrap_used)]
    fn decoration_set_matches_the_regex() {
        let re = Regex::new(&format!("^{DECOR}$")).unwrap();
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let matched = re.is_match(c.encode_utf8(&mut [0; 4]));
            assert_eq!(matched, is_decor(c), "{c:?}");
        }
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
            "ann-at-example-dot-com",
            "ann_at_example_dot_com",
            "ann#at#example#dot#com",
            "ann@example-dot-com",
            "ann@example#dot#com",
            "ann@example_._com",
            "ann（at）example（dot）com",
            "ann ＠ example.com",
        ] {
            assert!(may_accept(text), "{text:?}");
            assert!(first_at_token(text).is_some(), "{text:?}");
        }
        for text in [
            "mail ann@example.com now",
            "reach me at +45 32 14 20 80",
            "you can reach me at 11961249316 after 5pm",
            "até Python 3.12.3",
            "ann@example.com, see you",
            "ann@my-company.com",
        ] {
            assert!(!may_accept(text), "{text:?}");
            assert!(first_at_token(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn may_fold_ascii_path_is_the_general_one() {
        let general = |c: char, x: char| {
            c == x || c.to_lowercase().next() == Some(x) || (c == 'ſ' && x == 's')
        };
        let letters = REGEX_AT_WORDS
            .iter()
            .flat_map(|w| w.chars())
            .chain(['d', 'p', 'k', 't', 'A', '@']);
        for x in letters {
            for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
                assert_eq!(may_fold(c, x), general(c, x), "{c:?} ~ {x:?}");
            }
        }
    }

    #[test]
    fn ascii_gap_table_is_is_gap() {
        for b in 0..128u8 {
            assert_eq!(
                ASCII_GAP.get(usize::from(b)).copied(),
                Some(is_gap(char::from(b))),
                "{b:#x}"
            );
        }
        for b in 0..=255u8 {
            for after_gap in [false, true] {
                let c = char::from(b);
                let slow = !b.is_ascii()
                    || b == b'@'
                    || (after_gap
                        && c.is_alphabetic()
                        && AT_WORD_FIRSTS.iter().any(|&x| may_fold(c, x)));
                let want = if slow { STOP } else { u8::from(is_gap(c)) };
                let got = SCAN.get(usize::from(after_gap) * 256 + usize::from(b));
                assert_eq!(got, Some(&want), "{b:#x} {after_gap}");
            }
        }
        let mut firsts: Vec<char> = REGEX_AT_WORDS
            .iter()
            .filter_map(|w| w.chars().next())
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        let mut want = AT_WORD_FIRSTS.to_vec();
        want.sort_unstable();
        assert_eq!(firsts, want);
    }

    #[test]
    fn find_agrees_with_its_reference_at_every_offset() {
        let tokens = [
            "ann at example dot com",
            "ann AT x.de",
            "x (at) y (dot) de",
            "ann@example dot com",
            "ann @ example.com",
            "ann@example.com",
            "juan arroba correo punto es",
            "juan ARROBA correo.es",
            "p apenstaartje x.nl",
            "a chiocciola x.it",
            "a małpa x.pl",
            "a MALPA x.pl",
            "a klammeraffe x.de",
            "a \u{212a}lammeraffe x.de",
            "a ät x.de",
            "a ÄT x.de",
            "a arobaſe x.fr",
            "a chİocciola x.it",
            "a ＠ x.com",
            "are you at home",
            "make a change at checkout",
            "mail: a at b.com",
            "at",
            "at x",
            "é at x.de",
            "Ärger at x.de",
            "ann at example-dot-com",
            "ann at - . com",
            "ann at -.com",
            "ann at --- dot com",
            "ann_at_example_dot_com",
            "ann at example period com",
            "ann at example (dot) com",
            "ann at example . com",
            "ann at example .com",
            "ann AT example TEČKA cz",
            "ann at example\u{a0}.\u{a0}com",
            "ann at exa_mple.com",
            "ann at exa_mple_dot_com",
            "ann at 例え.jp",
            "ann at пример.рф",
            "ann at пример точка рф",
            "at the time",
            "at all. I",
            "ann at example (.) com",
            "ann at example【dot】com",
            "ann at example（dot）com",
        ];
        let fillers = ["", "x", "a", "at", " ", "-", "é", "abc def ", "Kalamata "];
        for token in tokens {
            for filler in fillers {
                for n in 0..24 {
                    for tail in ["", " ", "."] {
                        let text = format!("{}{token}{tail}", filler.repeat(n));
                        let checked = agrees_with_reference(&text);
                        assert!(checked.is_ok(), "{checked:?}");
                    }
                }
            }
        }
    }

    /// Pieces of text around at tokens, for comparing the pre-checks with
    /// their reference.
    fn at_soup() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            prop::sample::select(vec![
                " ",
                "  ",
                "\u{a0}",
                "\u{3000}",
                "\t",
                "\n",
                "@",
                "＠",
                "at",
                "AT",
                "aT",
                "ät",
                "ÄT",
                "arroba",
                "ARROBA",
                "arobase",
                "arobaſe",
                "chiocciola",
                "chİocciola",
                "małpa",
                "MAŁPA",
                "malpa",
                "klammeraffe",
                "\u{212a}lammeraffe",
                "apenstaartje",
                "dot",
                "DOT",
                "punkt",
                "point",
                "tečka",
                "TEČKA",
                "period",
                "kropka",
                "-dot-",
                "_dot_",
                "(dot)",
                "(.)",
                "dinner",
                "the",
                ".",
                ". ",
                " . ",
                "[.]",
                "(",
                ")",
                "[",
                "]",
                "{",
                "}",
                "<",
                ">",
                "«",
                "»",
                "【",
                "】",
                "（",
                "）",
                "［",
                "］",
                "＜",
                "＞",
                "-",
                "_",
                "*",
                "#",
                "/",
                "|",
                "~",
                "ann",
                "example",
                "com",
                "de",
                "1",
                "42",
                "é",
                "日本",
                "İ",
                "ſ",
                "Σ",
                "'",
                ",",
                "Ã",
                "â",
                "K",
                "a",
                "t",
                "c",
                "m",
                "k",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z]{1,6}",
            "\\PC{1,3}",
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(4000),
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn find_agrees_with_its_reference(text in at_soup()) {
            let checked = agrees_with_reference(&text);
            proptest::prop_assert!(checked.is_ok(), "{:?}", checked);
        }

        #[test]
        fn find_agrees_with_its_reference_on_long_text(
            pieces in proptest::collection::vec(at_soup(), 1..6),
            filler in "[a-z ]{0,40}",
        ) {
            // Longer texts, so that the chunks `first_at_token` skips hold
            // at tokens at every offset.
            let checked = agrees_with_reference(&pieces.join(&filler));
            proptest::prop_assert!(checked.is_ok(), "{:?}", checked);
        }

        #[test]
        fn find_agrees_with_its_reference_on_any_text(text in "\\PC{0,60}") {
            let checked = agrees_with_reference(&text);
            proptest::prop_assert!(checked.is_ok(), "{:?}", checked);
        }
    }

    #[test]
    fn regexes_compile() {
        assert!(regexes().is_some());
    }

    #[test]
    fn positive() {
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
            ("ann -at- example -dot- com", "ann -at- example -dot- com"),
            ("ann_at_example_dot_com", "ann_at_example_dot_com"),
            (
                "ann.lee-at-example-dot-co-dot-uk",
                "ann.lee-at-example-dot-co-dot-uk",
            ),
            (
                "j#at#mail#dot#example#dot#fr",
                "j#at#mail#dot#example#dot#fr",
            ),
            ("ann *at* example (DOT) net", "ann *at* example (DOT) net"),
            ("ann / at / example *dot* io", "ann / at / example *dot* io"),
            ("ann(@)example(.)com", "ann(@)example(.)com"),
            (
                "ann [ at ] example [ . ] com",
                "ann [ at ] example [ . ] com",
            ),
            ("ann（at）example（dot）com", "ann（at）example（dot）com"),
            ("ann at example period com", "ann at example period com"),
            ("ann at example dot com. Thanks", "ann at example dot com"),
            (
                "mail ann [at] example [dot] de. Bis dann",
                "ann [at] example [dot] de",
            ),
            ("email: ann at example.com", "ann at example.com"),
            ("ann at gmail.com", "ann at gmail.com"),
            ("ann AT example.com", "ann AT example.com"),
            ("a arroba mail (dot) net", "a arroba mail (dot) net"),
        ];
        for (text, want) in cases {
            assert_eq!(obf(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn negative() {
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
            "run look_at_me.py",
            "use [at] and [dot] to hide emails",
            "see created-at-utc.rs",
            "details at example.com",
            "we're at example.com now",
            "a_b@example.com",
            "first-last@my-company.com",
            "orders over £8.00 at checkout. Is there anything else?",
            "we ship at noon. Is that ok",
            "LOOK AT EXAMPLE.COM",
        ] {
            assert!(obf(text).is_empty(), "{text:?} -> {:?}", obf(text));
        }
    }
}
