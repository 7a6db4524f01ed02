//! Phone numbers, international and national.
//!
//! The scanner cuts the text into *runs*: digit groups joined by phone
//! separators (spaces of any width, `-`, `.`, `/`, brackets, a leading `+`),
//! in ASCII, full-width or other digit scripts. A run may hold several numbers
//! ("+49 30 1234567 +49 40 7654321"), so it is partitioned at its spaces by a
//! small dynamic programme that keeps the partition covering the most digits
//! with valid numbers.
//!
//! A number is valid when
//! - it starts with `+` or `00` and a real country calling code, and its
//!   national part has a length that country's numbering plan allows
//!   (tables from libphonenumber's metadata, see `tables.rs`); a `(0)` or a
//!   stray trunk `0` after the code is allowed; or
//! - it has a national shape of the covered countries (NANP, trunk-`0` plans of
//!   Europe, the UK, Brazil, India, Japan, China, Australia, Korea; the 9-digit
//!   plans of Spain, Poland, Portugal, Czechia; mobile ranges of China, India,
//!   Italy, Brazil), and nothing around it says it is something else: a date,
//!   an ISBN, a price or quantity, an order/tracking/invoice number, a version,
//!   part of a file name, URL or identifier.

use super::tables::COUNTRY_CODES;
use std::sync::OnceLock;

use super::text::{
    Keywords, char_at, char_before, digit_value, is_inline_space, is_word, lower, window_after,
    window_before,
};
use super::{PiiKind, Span};

/// Most digits a run may hold before it is treated as data, not phone numbers.
const MAX_RUN_DIGITS: usize = 40;
/// Most groups one number may span.
const MAX_GROUPS_PER_NUMBER: usize = 8;
/// Fewest digits of a number: country code and national number of `+CC …`
/// (the shortest plans have 4 national digits: "+98 9601", "+690 3101").
const MIN_DIGITS_PLUS: usize = 6;
/// Fewest digits of a number without '+'.
const MIN_DIGITS: usize = 7;

#[derive(Clone, Copy, Default, Debug)]
struct Sep {
    space: bool,
    dash: bool,
    dot: bool,
    slash: bool,
    open: bool,
    close: bool,
    plus: bool,
}

impl Sep {
    fn punct_count(self) -> usize {
        usize::from(self.dash) + usize::from(self.dot) + usize::from(self.slash)
    }
}

#[derive(Clone, Copy, Debug)]
struct Group {
    /// Byte offset after the last digit.
    end: usize,
    /// First non-space byte of the separator before this group (or `start`).
    lead_start: usize,
    /// Index of the first digit in the run's digit buffer.
    first: usize,
    /// Number of digits.
    len: usize,
    /// Separator before this group (the lead, for the first group).
    sep: Sep,
}

enum SepKind {
    Space,
    Dash,
    Dot,
    Slash,
    Open,
    Close,
    Plus,
}

fn sep_kind(c: char) -> Option<SepKind> {
    Some(match c {
        '-' | '‐' | '‑' | '‒' | '–' | '−' | '－' | 'ー' | '～' => SepKind::Dash,
        '.' | '．' | '·' => SepKind::Dot,
        '/' | '／' => SepKind::Slash,
        '(' | '（' | '[' => SepKind::Open,
        ')' | '）' | ']' => SepKind::Close,
        '+' | '＋' => SepKind::Plus,
        c if is_inline_space(c) => SepKind::Space,
        _ => return None,
    })
}

/// Finds phone numbers.
pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let mut pos = 0;
    let mut digits: Vec<u8> = Vec::with_capacity(32);
    let mut groups: Vec<Group> = Vec::with_capacity(8);
    let bytes = text.as_bytes();
    while pos < text.len() {
        // Fast path: ASCII bytes that cannot start a number.
        match bytes.get(pos) {
            Some(&b) if cannot_start(b) => {
                pos = skip_non_starts(bytes, pos + 1);
                continue;
            }
            None => break,
            _ => {}
        }
        let Some(c) = char_at(text, pos) else { break };
        let starts = digit_value(c).is_some() || matches!(c, '+' | '＋' | '(' | '（');
        if !starts {
            pos += c.len_utf8();
            continue;
        }
        digits.clear();
        groups.clear();
        let run_end = scan_run(text, pos, &mut digits, &mut groups);
        let Some(last) = groups.last() else {
            pos += c.len_utf8();
            continue;
        };
        let next = last.end.max(pos + c.len_utf8());
        partition(text, &digits, &groups, out);
        pos = next.max(run_end.min(next));
    }
}

/// An ASCII byte other than a digit, '+' or '(': no number starts there.
fn cannot_start(b: u8) -> bool {
    b.is_ascii() & !b.is_ascii_digit() & (b != b'+') & (b != b'(')
}

/// Bytes that [`skip_non_starts`] checks at once.
const SKIP_CHUNK: usize = 16;

/// The first position from `pos` on whose byte is not [`cannot_start`] (or
/// the end): whole chunks at a time, checked branch-free so that it compiles
/// to vector code, then byte by byte.
fn skip_non_starts(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(chunk) = bytes.get(pos..pos + SKIP_CHUNK) {
        if !chunk.iter().fold(true, |all, &b| all & cannot_start(b)) {
            break;
        }
        pos += SKIP_CHUNK;
    }
    while bytes.get(pos).is_some_and(|&b| cannot_start(b)) {
        pos += 1;
    }
    pos
}

/// Reads one run starting at `pos`; fills `digits` and `groups`; returns the
/// byte offset where scanning stopped.
fn scan_run(text: &str, pos: usize, digits: &mut Vec<u8>, groups: &mut Vec<Group>) -> usize {
    let mut p = pos;
    loop {
        // Separator (or lead) before the next group.
        let sep_begin = p;
        let mut sep = Sep::default();
        let mut n = 0;
        let mut lead_start = None;
        let mut ok = true;
        while let Some(c) = char_at(text, p) {
            if digit_value(c).is_some() {
                break;
            }
            let Some(kind) = sep_kind(c) else {
                ok = false;
                break;
            };
            match kind {
                SepKind::Space => sep.space = true,
                SepKind::Dash => {
                    ok &= !sep.dash;
                    sep.dash = true;
                }
                SepKind::Dot => {
                    ok &= !sep.dot;
                    sep.dot = true;
                }
                SepKind::Slash => {
                    ok &= !sep.slash;
                    sep.slash = true;
                }
                SepKind::Open => {
                    ok &= !sep.open;
                    sep.open = true;
                }
                SepKind::Close => {
                    ok &= !sep.close;
                    sep.close = true;
                }
                SepKind::Plus => {
                    // '+' starts a number: only first, or after a space or '('.
                    ok &= !sep.plus && (groups.is_empty() || sep.space || sep.open);
                    sep.plus = true;
                }
            }
            if matches!(kind, SepKind::Open | SepKind::Plus) && lead_start.is_none() {
                lead_start = Some(p);
            }
            n += 1;
            p += c.len_utf8();
            if !ok || n > 4 || sep.punct_count() > 1 {
                ok = false;
                break;
            }
        }
        let next_is_digit = char_at(text, p).and_then(digit_value).is_some();
        if !ok || !next_is_digit || (groups.is_empty() && sep.space) {
            return sep_begin;
        }
        // The digits of the group.
        let start = p;
        let first = digits.len();
        while let Some(d) = char_at(text, p).and_then(|c| digit_value(c).map(|d| (d, c))) {
            digits.push(d.0);
            p += d.1.len_utf8();
        }
        if digits.len() > MAX_RUN_DIGITS {
            groups.clear();
            return p;
        }
        groups.push(Group {
            end: p,
            lead_start: lead_start.unwrap_or(start),
            first,
            len: digits.len() - first,
            sep,
        });
    }
}

/// What stands just before a run of digit groups.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lead {
    /// A boundary: the start of the text, a space, punctuation, markup.
    Free,
    /// A phone label, perhaps glued on and perhaps behind `=`, `#`, `:` or
    /// markup: "tel=", "ph#", "WhatsApp: **", "Handy", "电话：".
    Label,
    /// A word that names a number without saying which kind, right before
    /// it: "number: ", "Nummer ", "número", "번호#".
    WeakLabel,
    /// Glued to a word, an identifier, a price or a path.
    Glued,
}

/// Markdown emphasis, quotes and brackets that may wrap a number.
fn is_markup(c: char) -> bool {
    matches!(
        c,
        '*' | '_'
            | '`'
            | '~'
            | '"'
            | '\''
            | '“'
            | '”'
            | '„'
            | '‘'
            | '’'
            | '«'
            | '»'
            | '「'
            | '『'
            | '【'
            | '['
            | '('
            | '<'
            | '（'
    )
}

/// What may stand between a label and its number besides markup and spaces.
fn is_label_sep(c: char) -> bool {
    matches!(
        c,
        '=' | '#' | ':' | '：' | '.' | '-' | '/' | '>' | '~' | '№' | ')' | ']' | '）' | '|'
    )
}

/// Labels that name a phone number (lower case), when they end right before
/// it (up to six characters of separators, spaces and markup apart).
const LABEL_WORDS: &[&str] = &[
    "tel",
    "tel.",
    "tél",
    "tél.",
    "tele",
    "telf",
    "tfno",
    "tlf",
    "tlf.",
    "tlfn",
    "fon",
    "fone",
    "phone",
    "ph",
    "ph.",
    "phn",
    "mob",
    "mob.",
    "mobile",
    "mobil",
    "mobiel",
    "móvil",
    "movil",
    "cell",
    "cel",
    "cel.",
    "cellphone",
    "cellular",
    "celular",
    "cellulare",
    "handy",
    "whatsapp",
    "whats",
    "wa",
    "wa.me",
    "wapp",
    "zap",
    "viber",
    "sms",
    "fax",
    "call",
    "ring",
    "dial",
    "hotline",
    "contact",
    "kontakt",
    "contacto",
    "contatto",
    "telefon",
    "telefono",
    "teléfono",
    "telefone",
    "telefoon",
    "telephone",
    "téléphone",
    "telefonnummer",
    "handynummer",
    "rufnummer",
    "mobilnummer",
    "telnr",
    "tel.nr",
    "tel.nr.",
    "telefonnr",
    "portable",
    "gsm",
    "тел",
    "тел.",
    "телефон",
    "моб",
    "моб.",
    "電話",
    "电话",
    "手机",
    "手機",
    "携帯",
    "ケータイ",
    "전화",
    "연락처",
    "휴대폰",
    "打",
    "拨",
    "τηλ",
    "τηλ.",
    "טל",
    "טלפון",
    "هاتف",
    "جوال",
    "โทร",
    "sđt",
    "đt",
    "☎",
    "☎\u{fe0f}",
    "📞",
    "📱",
    "℡",
];

/// Words that may stand between a label and its number ("number is").
const COPULAS: &[&str] = &[
    "is", "es", "è", "é", "e", "ist", "est", "jest", "är", "er", "was", "war", "era", "eh",
];

/// Labels that name a number without saying which kind: the number is not
/// glued to a word, but this is no phone label.
const WEAK_LABEL_WORDS: &[&str] = &[
    "number",
    "numero",
    "número",
    "numéro",
    "nummer",
    "numer",
    "номер",
    "番号",
    "号码",
    "號碼",
    "번호",
];

/// Which label of [`LABEL_WORDS`] (or else [`WEAK_LABEL_WORDS`]) ends at
/// `p`, after skipping back over separators, spaces and markup.
fn label_before(text: &str, p: usize) -> Option<Lead> {
    let skip_seps = |mut q: usize| {
        for _ in 0..6 {
            match char_before(text, q) {
                Some(c) if is_label_sep(c) || is_markup(c) || is_inline_space(c) => {
                    q -= c.len_utf8();
                }
                _ => break,
            }
        }
        q
    };
    let mut q = skip_seps(p);
    // "my number is …", "il mio numero è …", "meine Nummer ist …": one
    // copula between the label and the number.
    if q < p {
        let tail = window_before(text, q, 6);
        if let Some(copula) = COPULAS.iter().find(|w| {
            tail.strip_suffix(**w)
                .is_some_and(|head| head.ends_with(is_inline_space))
        }) {
            q = skip_seps(q - copula.len());
        }
    }
    // Every label ends in a letter, a '.', or a non-ASCII character.
    let window = window_before(text, q, 24);
    let last = window.bytes().next_back()?;
    if last.is_ascii() && !last.is_ascii_alphabetic() && last != b'.' {
        return None;
    }
    let window = lower(window);
    let window = window.as_str();
    let ends_in = |w: &&str| {
        window.strip_suffix(*w).is_some_and(|head| {
            !w.starts_with(|c: char| c.is_ascii_alphabetic())
                || head.chars().next_back().is_none_or(|c| !is_word(c))
        })
    };
    let (strong, weak) = labels_ending_in(window.bytes().next_back()?);
    if strong.iter().any(ends_in) {
        Some(Lead::Label)
    } else if weak.iter().any(ends_in) {
        Some(Lead::WeakLabel)
    } else {
        None
    }
}

/// [`LABEL_WORDS`] and [`WEAK_LABEL_WORDS`] that end in byte `last`.
fn labels_ending_in(last: u8) -> (&'static [&'static str], &'static [&'static str]) {
    type Buckets = Vec<(Vec<&'static str>, Vec<&'static str>)>;
    static BY_LAST: OnceLock<Buckets> = OnceLock::new();
    let buckets = BY_LAST.get_or_init(|| {
        let mut b: Buckets = vec![(Vec::new(), Vec::new()); 256];
        for w in LABEL_WORDS {
            if let Some(slot) = w
                .bytes()
                .next_back()
                .and_then(|l| b.get_mut(usize::from(l)))
            {
                slot.0.push(w);
            }
        }
        for w in WEAK_LABEL_WORDS {
            if let Some(slot) = w
                .bytes()
                .next_back()
                .and_then(|l| b.get_mut(usize::from(l)))
            {
                slot.1.push(w);
            }
        }
        b
    });
    buckets
        .get(usize::from(last))
        .map_or((&[], &[]), |(s, w)| (s.as_slice(), w.as_slice()))
}

/// Classifies what precedes a run starting at `start` (its first group's lead).
fn lead_of(text: &str, start: usize) -> Lead {
    // Markdown emphasis, quotes and brackets around the number are transparent.
    let mut p = start;
    for _ in 0..3 {
        match char_before(text, p) {
            Some(c) if is_markup(c) => p -= c.len_utf8(),
            _ => break,
        }
    }
    if let Some(lead) = label_before(text, p) {
        return lead;
    }
    if start_boundary_ok(text, p) {
        return Lead::Free;
    }
    // A '+' starts a number whatever word or label is glued before it; not
    // after a digit or a '+' ("5+4930…", "C++").
    let plus = text
        .get(start..)
        .is_some_and(|r| r.trim_start_matches(['(', '（']).starts_with(['+', '＋']));
    let prev = char_before(text, p);
    if plus && prev.is_some_and(|c| !c.is_ascii_digit() && c != '+' && c != '＋') {
        return Lead::Free;
    }
    Lead::Glued
}

/// The run must not be glued to a word, an identifier, a price or a path.
fn start_boundary_ok(text: &str, start: usize) -> bool {
    let Some(prev) = char_before(text, start) else {
        return true;
    };
    if is_word(prev) {
        return false;
    }
    match prev {
        '_' | '=' | '\\' | '#' | '@' | '&' | '?' | '%' | '~' | '$' | '€' | '£' | '¥' | '₹'
        | '₩' | '₽' | '₺' | '¢' | '+' | '*' | '^' | '№' => false,
        '.' | '-' | '/' | ':' | ',' => {
            // "AB-0301234567", "v1.0301234567", "path/0301234567"
            let before = char_before(text, start - prev.len_utf8());
            match prev {
                ':' | ',' => before.is_none_or(|c| !c.is_ascii_digit()),
                '/' => before.is_none_or(|c| !is_word(c) && c != '/'),
                _ => before.is_none_or(|c| !is_word(c)),
            }
        }
        _ => true,
    }
}

/// Chooses the numbers in a run: a partition at spaces that covers the most
/// digits with valid numbers (ties: fewer numbers).
///
/// When the run is glued to a word on its left ([`Lead::Glued`]), no number
/// may start at its first group, and later ones must start with `+`, `(` or a
/// trunk `0`. After a phone label ([`Lead::Label`]) the first number needs
/// less of a shape.
fn partition(text: &str, digits: &[u8], groups: &[Group], out: &mut Vec<Span>) {
    let n = groups.len();
    // A number has at least 7 digits, or 6 with '+' ("+98 9601").
    if n == 0 || digits.len() < MIN_DIGITS_PLUS || looks_like_data(digits, groups) {
        return;
    }
    let lead = lead_of(text, groups.first().map_or(0, |g| g.lead_start));
    let first_ok = lead != Lead::Glued;
    let can_split = |k: usize| -> bool {
        k == 0
            || k == n
            || groups
                .get(k)
                .is_some_and(|g| g.sep.space || g.sep.plus || g.sep.slash)
    };
    // best[k] = (digits covered, -numbers) for groups[..k]; choice[k] = start of last number.
    // A run has at most MAX_RUN_DIGITS groups (each has a digit).
    let mut best = [(0usize, 0isize); MAX_RUN_DIGITS + 1];
    let mut choice: [Option<(usize, usize)>; MAX_RUN_DIGITS + 1] = [None; MAX_RUN_DIGITS + 1];
    // The words before a number starting at group a, read once per a.
    let mut before: [Option<BeforeWords>; MAX_RUN_DIGITS + 1] = [None; MAX_RUN_DIGITS + 1];
    for k in 1..=n {
        let mut here = best.get(k - 1).copied().unwrap_or((0, 0));
        let mut pick = None;
        if can_split(k) {
            let lo = k.saturating_sub(MAX_GROUPS_PER_NUMBER);
            for a in (lo..k).rev() {
                if !can_split(a) {
                    continue;
                }
                // After a '/' without spaces ("1992/05/21 - …", "030/1234567"), a
                // new number starts with '+', '(' or a group of 3 digits or more.
                if a > 0
                    && groups.get(a).is_some_and(|g| {
                        g.sep.slash && !g.sep.space && !g.sep.plus && !g.sep.open && g.len < 3
                    })
                {
                    continue;
                }
                if !first_ok {
                    let Some(g) = groups.get(a) else { continue };
                    let strong = g.sep.plus || g.sep.open || digits.get(g.first) == Some(&0);
                    if a == 0 || !strong {
                        continue;
                    }
                }
                let Some(before) = before.get_mut(a) else {
                    continue;
                };
                let label = if a == 0 { lead } else { Lead::Free };
                let Some(end) = validate(text, digits, groups, (a, k - 1), label, before) else {
                    continue;
                };
                let covered: usize = groups
                    .get(a..k)
                    .map_or(0, |g| g.iter().map(|g| g.len).sum());
                let prev = best.get(a).copied().unwrap_or((0, 0));
                let cand = (prev.0 + covered, prev.1 - 1);
                if cand > here {
                    here = cand;
                    pick = Some((a, end));
                }
            }
        }
        if let Some(b) = best.get_mut(k) {
            *b = here;
        }
        if let Some(c) = choice.get_mut(k) {
            *c = pick;
        }
    }
    // Walk back through the choices.
    let mut k = n;
    let first_found = out.len();
    while k > 0 {
        match choice.get(k).copied().flatten() {
            Some((a, end)) => {
                if let Some(g) = groups.get(a) {
                    out.push(Span {
                        start: g.lead_start,
                        end,
                        kind: PiiKind::Phone,
                    });
                }
                k = a;
            }
            None => k -= 1,
        }
    }
    if let Some(found) = out.get_mut(first_found..) {
        found.reverse();
    }
}

/// Long runs of equal groups without '+' are card, tracking or account
/// numbers, also with a shorter last group ("9418 8945 8385 8793 7668 42").
fn looks_like_data(digits: &[u8], groups: &[Group]) -> bool {
    let has_plus = groups.iter().any(|g| g.sep.plus);
    let first_len = groups.first().map_or(0, |g| g.len);
    let last_len = groups.last().map_or(0, |g| g.len);
    let body = groups.get(..groups.len().saturating_sub(1)).unwrap_or(&[]);
    !has_plus
        && digits.len() >= 16
        && groups.len() >= 4
        && first_len >= 3
        && body.iter().all(|g| g.len == first_len)
        && last_len <= first_len
}

/// Validates groups `a..=b` as one number; returns the span end. `label`:
/// what stands right before it ([`Lead::Label`]: a phone label,
/// [`Lead::WeakLabel`]: "number" or the like). `before` caches what the
/// words before group `a` say.
fn validate(
    text: &str,
    digits: &[u8],
    groups: &[Group],
    (a, b): (usize, usize),
    label: Lead,
    before: &mut Option<BeforeWords>,
) -> Option<usize> {
    let labelled = label == Lead::Label;
    let ga = groups.get(a)?;
    let gb = groups.get(b)?;
    let d = digits.get(ga.first..gb.first + gb.len)?;
    let min = if ga.sep.plus {
        MIN_DIGITS_PLUS
    } else {
        MIN_DIGITS
    };
    if !(min..=17).contains(&d.len()) {
        return None;
    }
    let sub = groups.get(a..=b)?;
    // A '+' starts a number; it cannot sit inside one.
    if sub.iter().skip(1).any(|g| g.sep.plus) {
        return None;
    }
    // Parentheses: count opens and closes inside the number.
    let mut depth: i32 = 0;
    for (i, g) in sub.iter().enumerate() {
        if g.sep.close && i > 0 {
            depth -= 1;
        }
        if g.sep.open {
            depth += 1;
        }
        // "(+44 (0)20 7946 0958)": a bracket inside a bracketed number.
        if !(0..=2).contains(&depth) {
            return None;
        }
    }
    let mut end = gb.end;
    // "(+64 3 234 4139, ext. 34)": the extension before the closing bracket.
    let mut ext_in_brackets = None;
    if depth > 1 {
        return None;
    }
    if depth == 1 {
        match char_at(text, end) {
            Some(c @ (')' | '）')) => end += c.len_utf8(),
            _ => {
                let ext_end = extension(text, end);
                match char_at(text, ext_end) {
                    Some(c @ (')' | '）')) if ext_end > end => {
                        ext_in_brackets = Some(ext_end + c.len_utf8());
                    }
                    _ => return None,
                }
            }
        }
    }
    // A ')' before the first group that opened nothing is no part of the number.
    if ga.sep.close && !ga.sep.open && a == 0 {
        return None;
    }
    if !end_boundary_ok(text, ext_in_brackets.unwrap_or(end)) {
        return None;
    }
    let has_parens = sub.iter().any(|g| g.sep.open);
    if !ga.sep.plus && !labelled && is_dotted_quad(d, sub) {
        return None;
    }
    let ok = if ga.sep.plus {
        international(d) || international_without_paren_zero(d, sub)
    } else {
        let shape = if d.starts_with(&[0, 0]) && d.get(2).is_some_and(|&x| x != 0) {
            Shape::from(d.get(2..).is_some_and(international), false)
        } else {
            national(d, sub, has_parens)
        };
        // The context is only worth reading for a plausible shape.
        let mut ctx = || national_context(text, ga.lead_start, end, before);
        match shape {
            Shape::Yes => ctx() != Ctx::Negative,
            Shape::WithPhoneWord if labelled || label == Lead::WeakLabel => ctx() != Ctx::Negative,
            Shape::WithPhoneWord => matches!(ctx(), Ctx::Positive | Ctx::Weak),
            // Any grouping of a plausible length is a phone number right after
            // a phone label, or with a phone word (not just "number") nearby.
            Shape::No if labelled => loose_shape(d, sub, true) && ctx() != Ctx::Negative,
            // "number: 1800.123.456", "neue Nummer: 3101432", "번호#320 1234";
            // "no. 12345678" and "number of users: 12345678" stay.
            Shape::No if label == Lead::WeakLabel => {
                loose_shape(d, sub, false) && ctx() != Ctx::Negative
            }
            Shape::No => loose_shape(d, sub, false) && ctx() == Ctx::Positive,
        }
    };
    if !ok || money_or_unit(text, ga.lead_start, end) {
        return None;
    }
    Some(ext_in_brackets.unwrap_or_else(|| extension(text, end)))
}

/// The number must not run on into a word, a file extension, a path, a unit.
fn end_boundary_ok(text: &str, end: usize) -> bool {
    let Some(next) = char_at(text, end) else {
        return true;
    };
    // ",ext=12", ";ext=12", ", ext. 12": an extension follows.
    if matches!(next, ',' | ';') && extension(text, end) > end {
        return true;
    }
    if is_word(next) {
        // "…0143x204" / "…0143ext.12" are extensions; anything else glues.
        let rest = lower(window_after(text, end, 12));
        let rest = rest.as_str();
        return rest.starts_with("ext")
            || rest.starts_with('x')
                && rest
                    .get(1..2)
                    .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
    }
    match next {
        // A '_' closes markdown emphasis ("_0301234567_ ") or glues ("…_v2").
        '_' => {
            let after = text.get(end..).unwrap_or("").trim_start_matches('_');
            after.chars().next().is_none_or(|c| !is_word(c))
        }
        '@' | '%' | '€' | '$' | '£' | '¥' | '₹' | '°' | '=' | '\\' | '™' | '®' => false,
        '.' | '-' | '/' | ':' | ',' => {
            char_at(text, end + next.len_utf8()).is_none_or(|c| !is_word(c) && c != '_')
        }
        _ => true,
    }
}

/// `+CC …` (digits after the '+' or '00').
fn international(d: &[u8]) -> bool {
    let mut cc: u16 = 0;
    for (i, &x) in d.iter().take(3).enumerate() {
        cc = cc * 10 + u16::from(x);
        if cc == 0 {
            return false;
        }
        let Ok(idx) = COUNTRY_CODES.binary_search_by_key(&cc, |&(c, _, _)| c) else {
            continue;
        };
        let Some(&(_, mask, trunk0)) = COUNTRY_CODES.get(idx) else {
            return false;
        };
        let nsn = d.get(i + 1..).unwrap_or(&[]);
        // Any length the plan allows, the short ones of small territories and
        // special services too ("+678 22123", "+47 02000", "+31 14020"); no
        // national number is all zeros.
        // NANP: 10 digits, or Canada's 7-digit "310-xxxx" service numbers.
        let nanp_ok = |len: usize| len == 10 || (len == 7 && nsn.starts_with(&[3, 1, 0]));
        let fits = |len: usize| {
            (4..32).contains(&len) && mask & (1u32 << len) != 0 && (cc != 1 || nanp_ok(len))
        };
        if nsn.iter().all(|&x| x == 0) {
            return false;
        }
        if fits(nsn.len()) && !(cc == 1 && nsn.first() == Some(&1)) {
            return true;
        }
        // "+44 (0)20 …" or "+49 030 …": the trunk prefix typed anyway.
        return trunk0 && nsn.first() == Some(&0) && fits(nsn.len() - 1);
    }
    false
}

/// "+297 (0)521 2330": a `(0)` written after the country code, also where the
/// plan has no trunk prefix '0', is no part of the number.
fn international_without_paren_zero(d: &[u8], sub: &[Group]) -> bool {
    let base = sub.first().map_or(0, |g| g.first);
    let Some((i, g)) = sub
        .iter()
        .enumerate()
        .skip(1)
        .take(2)
        .find(|(_, g)| g.sep.open && g.len == 1 && d.get(g.first - base) == Some(&0))
    else {
        return false;
    };
    if !sub.get(i + 1).is_some_and(|next| next.sep.close) {
        return false;
    }
    let zero = g.first - base;
    let mut rest = [0u8; 17];
    let mut len = 0;
    for (j, &x) in d.iter().enumerate() {
        if j != zero
            && let Some(slot) = rest.get_mut(len)
        {
            *slot = x;
            len += 1;
        }
    }
    rest.get(..len).is_some_and(international)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    /// A phone word is near (and closer than any other-kind word).
    Positive,
    /// Only a word like "number" or "no." is near.
    Weak,
    Negative,
    Neutral,
}

/// Words before a number that say it is a phone number (prefixes).
const PHONE_WORDS: &[&str] = &[
    "telef",
    "teléf",
    "teleph",
    "téléph",
    "rufen",
    "rufnummer",
    "contatt",
    "contato",
    "звон",
    "позвон",
    "전화",
    "연락",
    "휴대",
    "拨打",
    "致电",
    "打电话",
    "打给",
    "phone",
    "call",
    "ring",
    "mobil",
    "mob.",
    "cellphone",
    "whatsapp",
    "sms",
    "text me",
    "fax",
    "handy",
    "anruf",
    "ruf ",
    "erreichbar",
    "portable",
    "appel",
    "joindre",
    "móvil",
    "llam",
    "contact",
    "celular",
    "ligue",
    "ligar",
    "liga ",
    "whats",
    "zap",
    "chiam",
    "cellulare",
    "bel ",
    "bereikbaar",
    "komórk",
    "zadzwoń",
    "dzwoń",
    "kontakt",
    "reach",
    "dial",
    "hotline",
    "電話",
    "携帯",
    "电话",
    "手机",
    "联系",
    "連絡",
    "फोन",
    "फ़ोन",
    "tlf",
    "puhelin",
    "телефон",
    "numero di telefono",
    "número de teléfono",
    "numéro de téléphone",
    // Verb forms and other scripts: "Llámanos", "belt u mij", "soita",
    // "hubungi", "arayın", "gọi", …
    "llám",
    "marca al",
    "bellen",
    "belt ",
    "gebeld",
    "zavol",
    "volejte",
    "soita",
    "ringe",
    "telep",
    "hubungi",
    "aray",
    "điện thoại",
    "gọi",
    "τηλ",
    "טלפון",
    "התקשר",
    "هاتف",
    "اتصل",
    "جوال",
    "โทร",
    "कॉल",
];

/// Short words before a number that say it is a phone number (whole words,
/// so that "telemetry", "Telegram", "cellar" and "dialog" are not).
const PHONE_WHOLE_WORDS: &[&str] = &["tel", "tél", "cell", "dial", "mob", "ph"];

/// Words that name a number without saying which kind ("my number is …").
/// They count as phone words only when no other-kind word is near.
const WEAK_PHONE_WORDS: &[&str] = &[
    "number",
    "nummer",
    "numéro",
    "número",
    "numero",
    "numer",
    "num",
    "no",
    "nr",
    "n°",
    "nº",
    "номер",
    "番号",
    "号码",
    "號碼",
    "번호",
];

/// Words before a number that say it is something else (prefixes).
const OTHER_PREFIXES: &[&str] = &[
    "order",
    "tracking",
    "track",
    "parcel",
    "shipment",
    "invoice",
    "receipt",
    "ticket",
    "booking",
    "reservation",
    "confirmation",
    "account",
    "isbn",
    "issn",
    "serial",
    "iban",
    "siret",
    "siren",
    "cnpj",
    "flight",
    "vuelo",
    "bestell",
    "rechnung",
    "kundennummer",
    "kundennr",
    "auftrag",
    "sendung",
    "artikel",
    "vertrag",
    "commande",
    "facture",
    "colis",
    "suivi",
    "dossier",
    "pedido",
    "factura",
    "envío",
    "seguimiento",
    "localizador",
    "ordine",
    "fattura",
    "spedizion",
    "pratica",
    "bestelling",
    "factuur",
    "zending",
    "zamówieni",
    "zamowieni",
    "faktur",
    "przesyłk",
    "paczk",
    "注文",
    "订单",
    "訂單",
    "单号",
    "單號",
    "快递",
    "运单",
    "追跡",
    "伝票",
    "発注",
    "請求",
    "发票",
    "票号",
    "航班",
    "version",
    "firmware",
    "release",
    "barcode",
    "coupon",
    "voucher",
    "password",
    "passwort",
    "policy",
    "claim",
    "patient",
    "student",
    "employee",
    "badge",
    "série",
    "matricul",
    "licen",
    "kennzeichen",
    "chapter",
    "kapitel",
    "postal",
    "postcode",
    "pincode",
    "amount",
    "betrag",
    "preis",
    "prix",
    "precio",
    "preço",
    "prezzo",
    "kosten",
    "summe",
    "referenc",
    "referenz",
    "référence",
    "riferimento",
    "protocol",
    "membership",
    "loyalty",
    "transaction",
    "transakt",
    "payment",
    "paiement",
    "pago",
    "pagamento",
    "zahlung",
    "bank",
    "konto",
    "compte",
    "cuenta",
    "conto",
    "rekening",
    "¥",
    "€",
    "$",
    "£",
    "₹",
];

/// Short words before a number that say it is something else (whole words).
const OTHER_WORDS: &[&str] = &[
    "id", "ref", "sku", "imei", "bic", "vat", "tax", "ust", "nif", "cpf", "pnr", "ean", "upc",
    "code", "pin", "otp", "isin", "lot", "batch", "model", "part", "page", "seite", "zip", "plz",
    "usps", "ups", "dhl", "fedex", "dpd", "gls", "tnt", "cep", "cap", "price", "total", "cost",
    "rs", "inr", "usd", "eur", "gbp", "jpy", "brl", "chf", "pln", "sek", "nok", "dkk", "rmb",
    "cny", "build", "ver", "serie", "item", "art", "case", "編號", "编号",
];

/// The keyword sets, built once.
struct ContextWords {
    /// Phone words, weak phone words, other-kind prefixes, other-kind
    /// words and whole phone words, in one index (sets 0 to 4).
    before: Keywords,
    /// Phone words and whole phone words (sets 0 and 1).
    phone: Keywords,
}

fn context_words() -> &'static ContextWords {
    static WORDS: OnceLock<ContextWords> = OnceLock::new();
    WORDS.get_or_init(|| ContextWords {
        before: Keywords::sets(&[
            (PHONE_WORDS, false),
            (WEAK_PHONE_WORDS, true),
            (OTHER_PREFIXES, false),
            (OTHER_WORDS, true),
            (PHONE_WHOLE_WORDS, true),
        ]),
        phone: Keywords::sets(&[(PHONE_WORDS, false), (PHONE_WHOLE_WORDS, true)]),
    })
}

/// Where the last phone word, weak phone word, other-kind prefix,
/// other-kind word and whole phone word end in the window before a number.
type BeforeWords = [Option<usize>; 5];

/// What the words around a number (40 bytes before, 24 after) say it is.
/// `before` caches the look at the words before `start`.
fn national_context(text: &str, start: usize, end: usize, before: &mut Option<BeforeWords>) -> Ctx {
    let words = context_words();
    let [pos, weak, other_prefix, other_word, pos_whole] = *before.get_or_insert_with(|| {
        words
            .before
            .last_in_each(lower(window_before(text, start, 40)).as_str())
    });
    let pos = pos.max(pos_whole);
    let neg = other_prefix.max(other_word);
    match (pos, neg) {
        (Some(p), Some(n)) if n > p => return Ctx::Negative,
        (Some(_), _) => return Ctx::Positive,
        (None, Some(_)) => return Ctx::Negative,
        (None, None) => {}
    }
    if weak.is_some() {
        return Ctx::Weak;
    }
    let after = lower(window_after(text, end, 24));
    if words
        .phone
        .last_in_each(after.as_str())
        .iter()
        .any(Option::is_some)
    {
        return Ctx::Positive;
    }
    Ctx::Neutral
}

/// What a national-format candidate needs from its context to be a phone number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// Not a phone number, whatever the context.
    No,
    /// A phone number unless words around it say it is something else.
    Yes,
    /// A phone number only with a phone word around it.
    WithPhoneWord,
}

impl Shape {
    fn from(plain: bool, with_word: bool) -> Shape {
        if plain {
            Shape::Yes
        } else if with_word {
            Shape::WithPhoneWord
        } else {
            Shape::No
        }
    }
}

/// National formats (no '+' or '00'): the shape of the digits and groups.
fn national(d: &[u8], sub: &[Group], has_parens: bool) -> Shape {
    // A dotted run with a one-digit group inside is a version or a section
    // ("131.0.4546.186", "4.2.1.3"), not a number.
    if sub.len() >= 3 && sub.iter().skip(1).any(|g| g.len == 1 && g.sep.dot) {
        return Shape::No;
    }
    let shape = national_shape(d, sub, has_parens);
    // Only groups of one or two digits, no trunk '0': a list of small numbers
    // ("10 20 30 40 50 60", "4 8 15 16 23 42") unless a phone word says otherwise.
    if shape == Shape::Yes
        && sub.len() >= 3
        && d.first() != Some(&0)
        && sub.iter().all(|g| g.len <= 2)
    {
        return Shape::WithPhoneWord;
    }
    shape
}

fn national_shape(d: &[u8], sub: &[Group], has_parens: bool) -> Shape {
    let n = d.len();
    if !(7..=12).contains(&n) || is_date(d, sub) || is_isbn(d, sub) {
        return Shape::No;
    }
    let single = sub.len() == 1 && !has_parens;
    let d0 = d.first().copied().unwrap_or(0);
    let d1 = d.get(1).copied().unwrap_or(0);
    let at = |i: usize| d.get(i).copied().unwrap_or(0);
    // Groups of a single digit (other than a leading trunk/country digit or "(0)")
    // are rare in phone numbers and common in lists of numbers.
    let tiny_groups = sub
        .iter()
        .skip(1)
        .filter(|g| g.len == 1 && !(g.sep.open))
        .count();
    if tiny_groups > 1 {
        return Shape::No;
    }
    let nanp10 = |o: usize| (2..=9).contains(&at(o)) && (2..=9).contains(&at(o + 3));
    // Trunk prefix '0' (most of Europe, UK, BR, IN, JP, CN, AU, KR, ...).
    if d0 == 0 {
        return match (d1, n) {
            (0, _) => Shape::No,
            (_, 10..=12) => Shape::Yes,
            (_, 9) => Shape::from(!single, true),
            (_, 8) => Shape::WithPhoneWord,
            _ => Shape::No,
        };
    }
    match n {
        // NANP, Italian and Indian mobiles, Greek, Mexican, … (10 digits, no trunk prefix).
        10 => {
            let lens = || sub.iter().map(|g| g.len);
            if single {
                Shape::from(nanp10(0) || d0 >= 6 || d0 == 3, true)
            } else if d0 == 1 {
                // Brazil: "(11) 2345-6789", "11 2345-6789"
                Shape::from(
                    d1 != 0 && (lens().eq([2, 4, 4]) || lens().eq([2, 8])),
                    false,
                )
            } else {
                Shape::from(sub.iter().all(|g| g.len >= 2 || g.sep.open), false)
            }
        }
        // "1 800 555 0199", Chinese mobiles, Brazilian mobiles "(11) 91234-5678",
        // Russian "8 (495) 123-45-67".
        11 => {
            let nanp = d0 == 1 && nanp10(1) && !single;
            // Chinese mobiles are written whole or 3-4-4.
            let cn = d0 == 1
                && (3..=9).contains(&d1)
                && (single || sub.iter().map(|g| g.len).eq([3, 4, 4]));
            let br = d1 != 0 && at(2) == 9;
            let ru_groups = sub.iter().map(|g| g.len).eq([1, 3, 3, 2, 2]);
            let ru = d0 == 8 && (has_parens || ru_groups);
            Shape::from(nanp || cn || (br && !single) || ru, br || d0 == 8)
        }
        // Spain, Poland, Portugal, Czechia, … (9 digits, no trunk prefix).
        // Written 3-3-3 with spaces it is also how large numbers are written,
        // so then (and undivided) it needs a phone word.
        9 => {
            // "912 345 678" and "254.170.182" (thousands with dots).
            let spaced = |g: &Group| !g.sep.dash && !g.sep.dot && !g.sep.slash;
            let dotted = |g: &Group| g.sep.dot && !g.sep.space && !g.sep.dash && !g.sep.slash;
            let tail = || sub.iter().skip(1);
            let thousands = sub.len() == 3
                && sub.iter().all(|g| g.len == 3)
                && (tail().all(spaced) || tail().all(dotted));
            Shape::from(!(single || thousands), true)
        }
        // Denmark, Norway, Singapore, Hong Kong, … and local numbers: need a phone word.
        7 | 8 => Shape::from(false, !single && sub.iter().all(|g| g.len >= 2)),
        _ => Shape::No,
    }
}

/// A national number of no known shape that is still a phone number next to
/// a phone word or right after "number" (7 to 13 digits, undivided or in
/// groups) or right after a phone label (7 to 15 digits, undivided or in any
/// grouping). Never a list of
/// one-digit groups, a date or an ISBN, never `00…` (that is international).
fn loose_shape(d: &[u8], sub: &[Group], labelled: bool) -> bool {
    let n = d.len();
    let tiny_groups = sub.iter().skip(1).filter(|g| g.len == 1).count();
    if d.starts_with(&[0, 0]) || is_isbn(d, sub) || tiny_groups > 1 {
        return false;
    }
    // After a phone label, "02252037" is a number, "25.02.2037" still a date.
    if labelled {
        return (7..=15).contains(&n) && !(sub.len() > 1 && is_date(d, sub));
    }
    (7..=13).contains(&n) && !is_date(d, sub)
}

/// Four dot-separated groups of up to three digits, each at most 255: an
/// IPv4 address or a version, not a national number.
fn is_dotted_quad(d: &[u8], sub: &[Group]) -> bool {
    let base = sub.first().map_or(0, |g| g.first);
    sub.len() == 4
        && sub.iter().enumerate().all(|(i, g)| {
            let digits = d.get(g.first - base..g.first - base + g.len).unwrap_or(&[]);
            let value = digits.iter().fold(0u32, |acc, &x| {
                acc.saturating_mul(10).saturating_add(u32::from(x))
            });
            (1..=3).contains(&g.len)
                && value <= 255
                && (i == 0 || (g.sep.dot && !g.sep.space && !g.sep.dash && !g.sep.slash))
        })
}

/// `dd.mm.yyyy`, `yyyy-mm-dd`, `mm/dd/yy`, `yyyymmdd` and friends.
fn is_date(d: &[u8], sub: &[Group]) -> bool {
    let num = |s: &[u8]| {
        s.iter().fold(0u32, |acc, &x| {
            acc.saturating_mul(10).saturating_add(u32::from(x))
        })
    };
    let uniform_date_sep = sub
        .iter()
        .skip(1)
        .all(|g| (g.sep.dash || g.sep.dot || g.sep.slash) && !g.sep.open && !g.sep.close);
    let base = sub.first().map_or(0, |f| f.first);
    let part = |i: usize| -> (usize, u32) {
        sub.get(i).map_or((0, 0), |g| {
            let from = g.first - base;
            (g.len, num(d.get(from..from + g.len).unwrap_or(&[])))
        })
    };
    let year = |y: u32, len: usize| (len == 4 && (1900..=2099).contains(&y)) || len == 2;
    let dm = |a: u32, b: u32| (1..=31).contains(&a) && (1..=12).contains(&b);
    if uniform_date_sep && sub.len() == 3 {
        let ((l0, p0), (l1, p1), (l2, p2)) = (part(0), part(1), part(2));
        if l0 <= 2 && l1 <= 2 && year(p2, l2) && (dm(p0, p1) || dm(p1, p0)) {
            return true;
        }
        if l0 == 4 && year(p0, 4) && l1 <= 2 && l2 <= 2 && (dm(p2, p1) || dm(p1, p2)) {
            return true;
        }
    }
    if sub.len() == 1 && d.len() == 8 {
        let y1 = num(d.get(..4).unwrap_or(&[]));
        let m1 = num(d.get(4..6).unwrap_or(&[]));
        let d1 = num(d.get(6..).unwrap_or(&[]));
        if (1900..=2099).contains(&y1) && dm(d1, m1) {
            return true;
        }
        let y2 = num(d.get(4..).unwrap_or(&[]));
        let a = num(d.get(..2).unwrap_or(&[]));
        let b = num(d.get(2..4).unwrap_or(&[]));
        if (1900..=2099).contains(&y2) && (dm(a, b) || dm(b, a)) {
            return true;
        }
    }
    false
}

/// ISBN-13 (978/979 prefix) and hyphenated ISBN-10 with a valid check digit.
fn is_isbn(d: &[u8], sub: &[Group]) -> bool {
    if d.len() == 13 && (d.starts_with(&[9, 7, 8]) || d.starts_with(&[9, 7, 9])) {
        return true;
    }
    if d.len() == 10 && sub.len() == 4 && sub.last().is_some_and(|g| g.len == 1) {
        let sum: u32 = d
            .iter()
            .zip((1..=10u32).rev())
            .map(|(&x, w)| u32::from(x) * w)
            .sum();
        return sum.is_multiple_of(11);
    }
    false
}

/// Prices and quantities: a currency sign or unit right before or after.
fn money_or_unit(text: &str, start: usize, end: usize) -> bool {
    const BEFORE: &[&str] = &[
        "$", "€", "£", "¥", "₹", "₩", "₽", "r$", "rs", "rs.", "usd", "eur", "chf", "円",
    ];
    let before = window_before(text, start, 8).trim_end_matches(is_inline_space);
    // Only these (ASCII) characters end the lower case of a sign or code.
    let may_hit = before.chars().next_back().is_some_and(|c| {
        !c.is_ascii() || matches!(c.to_ascii_lowercase(), '$' | 's' | '.' | 'd' | 'r' | 'f')
    });
    let before = lower(if may_hit { before } else { "" });
    let before = before.as_str();
    let hit = BEFORE.iter().any(|w| {
        before.strip_suffix(w).is_some_and(|head| {
            !w.starts_with(|c: char| c.is_ascii_alphabetic())
                || head.chars().next_back().is_none_or(|c| !c.is_alphabetic())
        })
    });
    if hit {
        return true;
    }
    let after = window_after(text, end, 12);
    let trimmed = after.trim_start_matches(is_inline_space);
    let in_word =
        |c: char| c.is_alphabetic() || matches!(c, '€' | '$' | '£' | '¥' | '%' | '₹' | '²' | '³');
    // Every unit starts with such a character (lower case keeps that).
    if !trimmed.chars().next().is_some_and(in_word) {
        return false;
    }
    let lowered = lower(trimmed);
    let lowered = lowered.as_str();
    let word_len = lowered
        .char_indices()
        .find(|&(_, c)| !in_word(c))
        .map_or(lowered.len(), |(i, _)| i);
    let word = lowered.get(..word_len).unwrap_or("");
    if word
        .chars()
        .next()
        .is_some_and(|c| SINGLE_CHAR_UNITS.contains(&c))
    {
        return true;
    }
    let Some(key) = pack(word.as_bytes()) else {
        return false;
    };
    UNIT_KEYS.contains(&key)
}

/// A short byte string as one integer (its bytes and its length), so that
/// comparing it with many others costs no `memcmp` calls.
#[allow(clippy::indexing_slicing)] // `i < s.len()`
const fn pack(s: &[u8]) -> Option<u128> {
    if s.len() > 15 {
        return None;
    }
    let mut key = (s.len() as u128) << 120;
    let mut i = 0;
    while i < s.len() {
        key |= (s[i] as u128) << (8 * i);
        i += 1;
    }
    Some(key)
}

/// Units after a number that make it a price or quantity (lower case).
const UNITS: &[&str] = &[
    "€",
    "$",
    "£",
    "¥",
    "%",
    "₹",
    "eur",
    "euro",
    "euros",
    "usd",
    "dollars",
    "chf",
    "gbp",
    "pln",
    "zł",
    "zl",
    "kr",
    "sek",
    "nok",
    "dkk",
    "brl",
    "reais",
    "inr",
    "rupees",
    "yen",
    "jpy",
    "km",
    "kg",
    "mb",
    "gb",
    "tb",
    "kb",
    "ms",
    "px",
    "mm",
    "cm",
    "m²",
    "m³",
    "ml",
    "mg",
    "円",
    "元",
    "万",
    "億",
    "亿",
    "人",
    "个",
    "件",
    "年",
    "月",
    "日",
    "回",
    "点",
    "台",
    "枚",
    "views",
    "likes",
    "followers",
    "users",
    "people",
    "downloads",
    "points",
    "pts",
    "bytes",
    "times",
    "calls",
];

/// [`UNITS`] packed.
#[allow(clippy::indexing_slicing)] // constant evaluation checks the bounds
const UNIT_KEYS: [u128; UNITS.len()] = {
    let mut keys = [0; UNITS.len()];
    let mut i = 0;
    while i < UNITS.len() {
        keys[i] = match pack(UNITS[i].as_bytes()) {
            Some(key) => key,
            None => 0, // too long: a test checks there are none
        };
        i += 1;
    }
    keys
};

/// The units that are one non-ASCII character: a word starting with one is a
/// unit ("5万円", "3人").
const SINGLE_CHAR_UNITS: &[char] = &[
    '€', '£', '¥', '₹', '円', '元', '万', '億', '亿', '人', '个', '件', '年', '月', '日', '回',
    '点', '台', '枚',
];

/// Extends the span over an extension: "x204", " x 204", " ext. 12", ";ext=12",
/// " #3", "Durchwahl 5".
fn extension(text: &str, end: usize) -> usize {
    let rest = window_after(text, end, 24);
    // Every extension word starts with one of these (ASCII) characters.
    let first = rest
        .trim_start_matches(|c: char| is_inline_space(c) || c == ',' || c == ';')
        .chars()
        .next();
    if first.is_none_or(|c| {
        c.is_ascii()
            && !matches!(
                c.to_ascii_lowercase(),
                'e' | 'x' | '#' | 'd' | 'p' | 'i' | 'r' | 'w'
            )
    }) {
        return end;
    }
    let lowered = lower(rest);
    let lower = lowered.as_str();
    let trimmed = lower.trim_start_matches(|c: char| is_inline_space(c) || c == ',' || c == ';');
    let skipped = lower.len() - trimmed.len();
    for kw in [
        "extension",
        "ext.",
        "ext",
        "x",
        "#",
        "durchwahl",
        "dw.",
        "poste",
        "int.",
        "ramal",
        "wew.",
        "内線",
    ] {
        let Some(after_kw) = trimmed.strip_prefix(kw) else {
            continue;
        };
        let after_sep = after_kw
            .trim_start_matches(|c: char| is_inline_space(c) || matches!(c, ':' | '.' | '='));
        let digits = after_sep.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=6).contains(&digits) {
            continue;
        }
        let ext_end = end + skipped + kw.len() + (after_kw.len() - after_sep.len()) + digits;
        // Lower-casing can change byte lengths for non-ASCII; only trust ASCII.
        if !rest.is_ascii() && !rest.get(..ext_end - end).is_some_and(str::is_ascii) {
            continue;
        }
        if char_at(text, ext_end).is_some_and(is_word) {
            continue;
        }
        return ext_end;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phones(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    #[test]
    fn international_formats() {
        let cases = [
            ("call +44 20 7946 0958 now", "+44 20 7946 0958"),
            ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
            ("(+44) 20 7946 0958", "(+44) 20 7946 0958"),
            ("+1 (202) 555-0143", "+1 (202) 555-0143"),
            ("+1-202-555-0143 x204", "+1-202-555-0143 x204"),
            ("+1 202.555.0143 ext. 12", "+1 202.555.0143 ext. 12"),
            ("+49 30 1234567", "+49 30 1234567"),
            ("+49 (0)30 1234567", "+49 (0)30 1234567"),
            ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
            ("+33.1.23.45.67.89", "+33.1.23.45.67.89"),
            ("+34 612 34 56 78", "+34 612 34 56 78"),
            ("+39 06 6982 1234", "+39 06 6982 1234"),
            ("+351 912 345 678", "+351 912 345 678"),
            ("+48 512 345 678", "+48 512 345 678"),
            ("+31 20 123 4567", "+31 20 123 4567"),
            ("+55 11 91234-5678", "+55 11 91234-5678"),
            ("+55 (11) 91234-5678", "+55 (11) 91234-5678"),
            ("+91 98765 43210", "+91 98765 43210"),
            ("+81 3-1234-5678", "+81 3-1234-5678"),
            ("+81 90 1234 5678", "+81 90 1234 5678"),
            ("+86 138 1234 5678", "+86 138 1234 5678"),
            ("0049 30 1234567", "0049 30 1234567"),
            ("+4930123456", "+4930123456"),
            ("电话+8613812345678谢谢", "+8613812345678"),
            ("tel:+1-202-555-0143", "+1-202-555-0143"),
            (
                "＋８１ ９０ １２３４ ５６７８",
                "＋８１ ９０ １２３４ ５６７８",
            ),
            (
                "+44\u{a0}20\u{a0}7946\u{a0}0958",
                "+44\u{a0}20\u{a0}7946\u{a0}0958",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(phones(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn national_formats() {
        let cases = [
            ("call me at (202) 555-0143", "(202) 555-0143"),
            ("202-555-0143", "202-555-0143"),
            ("202.555.0143", "202.555.0143"),
            ("2025550143", "2025550143"),
            ("1-800-555-0199", "1-800-555-0199"),
            ("020 7946 0958", "020 7946 0958"),
            ("07700 900123", "07700 900123"),
            ("030 1234567", "030 1234567"),
            ("030/1234567", "030/1234567"),
            ("0151 23456789", "0151 23456789"),
            ("01 23 45 67 89", "01 23 45 67 89"),
            ("06.12.34.56.78", "06.12.34.56.78"),
            ("612 34 56 78", "612 34 56 78"),
            ("91 123 45 67", "91 123 45 67"),
            ("333 123 4567", "333 123 4567"),
            ("06 6982 1234", "06 6982 1234"),
            ("llama al 912 345 678", "912 345 678"),
            ("(11) 91234-5678", "(11) 91234-5678"),
            ("98765 43210", "98765 43210"),
            ("9876543210", "9876543210"),
            ("03-1234-5678", "03-1234-5678"),
            ("090-1234-5678", "090-1234-5678"),
            ("０９０ー１２３４ー５６７８", "０９０ー１２３４ー５６７８"),
            ("電話は03-1234-5678です", "03-1234-5678"),
            ("手机13812345678", "13812345678"),
            ("8 (495) 123-45-67", "8 (495) 123-45-67"),
            ("8 800 555-35-35", "8 800 555-35-35"),
            ("(02) 9876 5432", "(02) 9876 5432"),
            ("tel. 12 34 56 78", "12 34 56 78"),
        ];
        for (text, want) in cases {
            assert_eq!(phones(text), vec![want], "in {text:?}");
        }
    }

    #[test]
    fn labels_glued_markup_and_groupings() {
        let cases = [
            ("tel=901.394.9712x900", "901.394.9712x900"),
            ("ph#+86 10 1189 3973", "+86 10 1189 3973"),
            ("phone#+81 90-1266-4116", "+81 90-1266-4116"),
            ("WhatsApp: **2015778398**", "2015778398"),
            ("Handy0151 23456789", "0151 23456789"),
            ("Tel+4930123456", "+4930123456"),
            ("手机=+92 21 23452202。", "+92 21 23452202"),
            ("Fax.__+64.21.123.9064__", "+64.21.123.9064"),
            ("tel: _0301234567_", "0301234567"),
            ("wa.me/491701234567", "491701234567"),
            ("whatsapp 02252037", "02252037"),
            ("mobile#_091.212.44.78_", "091.212.44.78"),
            ("call 555.0128.9069", "555.0128.9069"),
            ("+1 212 555 0199 x 7677", "+1 212 555 0199 x 7677"),
            ("+1 202 555 0143;ext=12", "+1 202 555 0143;ext=12"),
            ("(+64 3 234 4139, ext. 34)", "(+64 3 234 4139, ext. 34)"),
        ];
        for (text, want) in cases {
            assert_eq!(phones(text), vec![want], "in {text:?}");
        }
        assert_eq!(
            phones("tel=+49 30 1234567,+44 20 7946 0958"),
            vec!["+49 30 1234567", "+44 20 7946 0958"]
        );
        assert_eq!(
            phones("Tel: +49 30 1234567 | Fax: +49 30 1234568"),
            vec!["+49 30 1234567", "+49 30 1234568"]
        );
    }

    #[test]
    fn labels_do_not_make_everything_a_phone() {
        for text in [
            "telemetry 39775493",
            "Telegram 56908453",
            "cellar 58462924",
            "tel 2 3 4 5 6 7 8",
            "call 1-2-3-4-5-6-7",
            "number of users: 12345678",
            "no. 12345678",
            "order number: 0301234567",
            "phone case 820120261",
            "編號3570782614",
            "1992/05/21 - 20090102",
            "85.118.2.116",
            "id=0301234567",
            "ticket#12345678",
        ] {
            assert!(phones(text).is_empty(), "{text:?} -> {:?}", phones(text));
        }
    }

    #[test]
    fn short_plans_extensions_words_and_brackets() {
        let cases = [
            // National numbers of 4-5 digits after a country code.
            ("call me back at +678 30143", "+678 30143"),
            ("tel:+247-40123", "+247-40123"),
            ("+98 9601", "+98 9601"),
            ("00690 3172", "00690 3172"),
            ("手机-+678 81123", "+678 81123"),
            ("(+677) 18123으로 전화주세요", "(+677) 18123"),
            ("tlf:+47 02000", "+47 02000"),
            ("+1 310-1234", "+1 310-1234"),
            // Extensions glued with a comma or semicolon.
            (
                "zadzwoń na +51 1 1234567,ext=6165 jutro",
                "+51 1 1234567,ext=6165",
            ),
            ("tel02-212-3456,ext=5179", "02-212-3456,ext=5179"),
            // Phone verbs, weak labels, copulas, 7 digits near a phone word.
            ("Llámanos al 88 01 59 89.", "88 01 59 89"),
            ("belt u mij op 5123 4567", "5123 4567"),
            ("text me on 8001867 when you land", "8001867"),
            ("neue Nummer: 3101432", "3101432"),
            ("new number: 1800.123.456", "1800.123.456"),
            ("my number is 72009173", "72009173"),
            ("il mio numero è 0800 476", "0800 476"),
            ("번호#320 1234", "320 1234"),
            ("번호71234567", "71234567"),
            // "(0)" after any country code, also inside brackets.
            ("+297 (0)521 2330", "+297 (0)521 2330"),
            ("(+44 (0)20 7946 0958)", "(+44 (0)20 7946 0958)"),
        ];
        for (text, want) in cases {
            assert_eq!(phones(text), vec![want], "in {text:?}");
        }
        for text in [
            "USPS 9418 8945 8385 8793 7668 42",
            "Chrome 131.0.4546.186",
            "4 8 15 16 23 42",
            "10 20 30 40 50 60 70",
            "it was 254.170.182 lol",
            "+50000000 gold",
            "+1234567",
            "called 12 345 678 times",
            "the number of users is 12345678",
        ] {
            assert!(phones(text).is_empty(), "{text:?} -> {:?}", phones(text));
        }
    }

    #[test]
    fn two_numbers_one_space() {
        assert_eq!(
            phones("+49 30 1234567 +49 40 7654321"),
            vec!["+49 30 1234567", "+49 40 7654321"]
        );
        assert_eq!(
            phones("030 1234567 040 7654321"),
            vec!["030 1234567", "040 7654321"]
        );
        assert_eq!(
            phones("202-555-0143 202-555-0199"),
            vec!["202-555-0143", "202-555-0199"]
        );
    }

    #[test]
    fn unit_tables() {
        assert!(UNIT_KEYS.iter().all(|&k| k != 0));
        let single: Vec<char> = UNITS
            .iter()
            .filter(|u| !u.is_ascii() && u.chars().count() == 1)
            .filter_map(|u| u.chars().next())
            .collect();
        assert_eq!(single, SINGLE_CHAR_UNITS);
        assert!(money_or_unit("5 followers", 0, 1));
        assert!(money_or_unit("5万円", 0, 1));
        assert!(money_or_unit("5 EUR", 0, 1));
        assert!(!money_or_unit("5 eurx", 0, 1));
        assert!(money_or_unit("USD 5", 4, 5));
        assert!(!money_or_unit("busd 5", 5, 6));
    }

    #[test]
    fn not_phones() {
        for text in [
            "on 2024-03-15 at 10:30",
            "15.03.2024",
            "03/15/2024",
            "20240315",
            "v2.10.3",
            "version 10.0.19045.3803",
            "Order #12345678",
            "order 302-1234567-1234567",
            "tracking 1Z999AA10123456784",
            "ISBN 978-3-16-148410-0",
            "ISBN 0-306-40615-2",
            "price €1.299.000",
            "1 299 000 €",
            "IMG_20240315_123456.jpg",
            "report-0301234567.pdf",
            "https://example.com/item/0301234567",
            "?id=0301234567",
            "4111 1111 1111 1111",
            "score 3 - 2",
            "1 2 3 4 5 6 7 8 9 10",
            "room 12, floor 3",
            "between 9 and 5",
            "12345",
            "+5 points",
            "+33 points",
            "invoice 2025-0042-17",
            "SKU 4006381333931",
            "total 1 234 567,89",
        ] {
            assert!(phones(text).is_empty(), "{text:?} -> {:?}", phones(text));
        }
    }
}
