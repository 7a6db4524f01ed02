//! Character classes and small text helpers shared by the detectors.
//!
//! Chat text mixes scripts, so "word boundary" here means: the neighbouring
//! character is not a letter or digit of a script that separates its words with
//! spaces. A Chinese or Japanese character right next to an address is a boundary.

/// The decimal value of a digit in ASCII, full-width, Arabic-Indic, Eastern
/// Arabic-Indic or Devanagari form.
pub(super) fn digit_value(c: char) -> Option<u8> {
    let base = match c {
        '0'..='9' => 0x30,
        '\u{FF10}'..='\u{FF19}' => 0xFF10,
        '\u{0660}'..='\u{0669}' => 0x0660,
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{0966}'..='\u{096F}' => 0x0966,
        _ => return None,
    };
    u8::try_from(u32::from(c) - base).ok()
}

/// Scripts written without spaces between words (CJK, kana, Hangul, Thai and
/// neighbours), plus CJK punctuation and the full-width forms block.
pub(super) fn is_unspaced_script(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x2E80..=0x2FDF    // CJK radicals
        | 0x3000..=0x30FF    // CJK punctuation, Hiragana, Katakana
        | 0x3100..=0x31FF    // Bopomofo, Hangul compatibility, Katakana ext.
        | 0x3200..=0x9FFF    // enclosed CJK, CJK ext. A, unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF00..=0xFF0F    // full-width punctuation (not digits or letters)
        | 0xFF1A..=0xFF20
        | 0xFF3B..=0xFF40
        | 0xFF5B..=0xFFEF
        | 0x20000..=0x3134F) // CJK ext. B and later
}

/// A letter or digit that glues onto its neighbours (so is no boundary).
pub(super) fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced_script(c)
}

/// True when `c` is a space of any width that can sit inside one line
/// (ASCII space, no-break, narrow no-break, thin, ideographic, ...), or a
/// zero-width space/joiner that copy-paste leaves behind.
pub(super) fn is_inline_space(c: char) -> bool {
    match c {
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => false,
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' => true,
        _ => c.is_whitespace(),
    }
}

/// The character that ends just before byte `i`.
pub(super) fn char_before(text: &str, i: usize) -> Option<char> {
    match i.checked_sub(1).and_then(|j| text.as_bytes().get(j)) {
        // No continuation byte follows an ASCII one: `i` is a char boundary.
        Some(&b) if b.is_ascii() => Some(char::from(b)),
        _ => text.get(..i)?.chars().next_back(),
    }
}

/// The character that starts at byte `i`.
pub(super) fn char_at(text: &str, i: usize) -> Option<char> {
    match text.as_bytes().get(i) {
        // An ASCII byte is a whole char.
        Some(&b) if b.is_ascii() => Some(char::from(b)),
        _ => text.get(i..)?.chars().next(),
    }
}

/// Up to `max` bytes of `text` that end at byte `i`, cut on a char boundary.
pub(super) fn window_before(text: &str, i: usize, max: usize) -> &str {
    let mut start = i.saturating_sub(max);
    while start < i && !text.is_char_boundary(start) {
        start += 1;
    }
    text.get(start..i).unwrap_or("")
}

/// Up to `max` bytes of `text` that start at byte `i`, cut on a char boundary.
pub(super) fn window_after(text: &str, i: usize, max: usize) -> &str {
    let mut end = i.saturating_add(max).min(text.len());
    while end > i && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(i..end).unwrap_or("")
}

/// Room for a lower-cased context window (windows are at most 40 bytes; a
/// char's lower case is at most 3 times as long in UTF-8).
const LOWER_BUF: usize = 128;

/// A lower-cased copy of a short piece of text: the text itself when it has
/// nothing to lower-case, else on the stack (or, rarely, on the heap); see
/// [`lower`].
pub(super) enum Lower<'a> {
    Same(&'a str),
    Stack([u8; LOWER_BUF], usize),
    Heap(String),
}

impl Lower<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Lower::Same(s) => s,
            Lower::Stack(buf, len) => {
                std::str::from_utf8(buf.get(..*len).unwrap_or(&[])).unwrap_or("")
            }
            Lower::Heap(s) => s,
        }
    }
}

/// The same string as `s.to_lowercase()`, without allocating for short texts.
pub(super) fn lower(s: &str) -> Lower<'_> {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Lower::Same(s);
        }
        let mut buf = [0; LOWER_BUF];
        if let Some(dst) = buf.get_mut(..s.len()) {
            dst.copy_from_slice(s.as_bytes());
            dst.make_ascii_lowercase();
            return Lower::Stack(buf, s.len());
        }
    } else if !s.contains('Σ') {
        // Char by char equals `str::to_lowercase` except for the final-sigma rule.
        let mut buf = [0; LOWER_BUF];
        let mut len = 0;
        let mut fits = true;
        'chars: for c in s.chars() {
            for l in c.to_lowercase() {
                let Some(dst) = buf.get_mut(len..len + l.len_utf8()) else {
                    fits = false;
                    break 'chars;
                };
                len += l.encode_utf8(dst).len();
            }
        }
        if fits {
            return Lower::Stack(buf, len);
        }
    }
    Lower::Heap(s.to_lowercase())
}

/// A set of lower-case keywords, indexed by first byte for fast look-up in
/// the short windows of text around a candidate. Each keyword belongs to one
/// of up to [`MAX_SETS`] sets, so that one pass over a window answers
/// [`Keywords::last_in`] for every set.
pub(super) struct Keywords {
    /// `(keyword, set, whole)` by first byte, in the order of the lists.
    by_first: Vec<Vec<(&'static [u8], usize, bool)>>,
    /// Bit `b0 * 256 + b1` is set when some keyword starts with bytes `b0 b1`
    /// (for a one-byte keyword `b0`, every `b1`).
    pairs: Vec<u64>,
}

/// Most keyword sets in one [`Keywords`].
pub(super) const MAX_SETS: usize = 5;

impl Keywords {
    pub(super) fn new(list: &[&'static str]) -> Keywords {
        Keywords::sets(&[(list, false)])
    }

    /// Several sets; `whole` says whether that set's keywords must also end
    /// on a word boundary.
    pub(super) fn sets(sets: &[(&[&'static str], bool)]) -> Keywords {
        let mut by_first: Vec<Vec<(&'static [u8], usize, bool)>> = vec![Vec::new(); 256];
        let mut pairs = vec![0u64; 256 * 256 / 64];
        let mut set_pair = |pair: usize| {
            if let Some(word) = pairs.get_mut(pair / 64) {
                *word |= 1 << (pair % 64);
            }
        };
        for (set, &(list, whole)) in sets.iter().enumerate().take(MAX_SETS) {
            for kw in list {
                let bytes = kw.as_bytes();
                let Some(&b0) = bytes.first() else { continue };
                match bytes.get(1) {
                    Some(&b1) => set_pair(usize::from(b0) * 256 + usize::from(b1)),
                    None => (0..256).for_each(|b1| set_pair(usize::from(b0) * 256 + b1)),
                }
                if let Some(bucket) = by_first.get_mut(usize::from(b0)) {
                    bucket.push((bytes, set, whole));
                }
            }
        }
        Keywords { by_first, pairs }
    }

    /// Whether some keyword starts with `b0` followed by `b1` (0 at the end).
    fn may_start(&self, b0: u8, b1: u8) -> bool {
        let pair = usize::from(b0) * 256 + usize::from(b1);
        self.pairs
            .get(pair / 64)
            .is_some_and(|word| word & (1 << (pair % 64)) != 0)
    }

    /// The byte position just after the last keyword in `hay` (already
    /// lower-cased) that starts on a word boundary (and, with `whole`, also
    /// ends on one), or `None`. Keywords that do not start with an ASCII letter
    /// (CJK words, currency signs) match anywhere.
    pub(super) fn last_in(&self, hay: &str, whole: bool) -> Option<usize> {
        let [first, ..] = self.scan(hay, Some(whole));
        first
    }

    /// [`Keywords::last_in`] for every set at once (with each set's own `whole`).
    pub(super) fn last_in_each(&self, hay: &str) -> [Option<usize>; MAX_SETS] {
        self.scan(hay, None)
    }

    fn scan(&self, hay: &str, whole_override: Option<bool>) -> [Option<usize>; MAX_SETS] {
        let bytes = hay.as_bytes();
        let mut best = [None; MAX_SETS];
        let mut prev = 0u8;
        for (pos, &b) in bytes.iter().enumerate() {
            // Inside an ASCII word no keyword starting with a letter counts.
            let mid_word = b.is_ascii_alphabetic() && prev.is_ascii_alphanumeric();
            prev = b;
            if mid_word || !self.may_start(b, bytes.get(pos + 1).copied().unwrap_or(0)) {
                continue;
            }
            let Some(bucket) = self.by_first.get(usize::from(b)) else {
                continue;
            };
            if bucket.is_empty() || !hay.is_char_boundary(pos) {
                continue;
            }
            let rest = bytes.get(pos..).unwrap_or(&[]);
            let mut starts_word = None;
            for &(kw, set, whole) in bucket {
                let hit = rest.len() >= kw.len() && rest.iter().zip(kw).all(|(a, b)| a == b);
                if !hit {
                    continue;
                }
                let starts_word = *starts_word.get_or_insert_with(|| {
                    !b.is_ascii_alphabetic() || char_before(hay, pos).is_none_or(|c| !is_word(c))
                });
                let end = pos + kw.len();
                let ends_word = !whole_override.unwrap_or(whole)
                    || char_at(hay, end).is_none_or(|c| !is_word(c));
                if starts_word
                    && ends_word
                    && let Some(slot) = best.get_mut(set)
                {
                    *slot = Some(end);
                }
            }
        }
        best
    }
}

/// Number of characters in `s` (for length limits measured in characters).
pub(super) fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_in_many_scripts() {
        assert_eq!(digit_value('7'), Some(7));
        assert_eq!(digit_value('７'), Some(7));
        assert_eq!(digit_value('٣'), Some(3));
        assert_eq!(digit_value('۹'), Some(9));
        assert_eq!(digit_value('५'), Some(5));
        assert_eq!(digit_value('a'), None);
    }

    #[test]
    fn boundaries() {
        assert!(!is_word('电'));
        assert!(!is_word('の'));
        assert!(is_word('é'));
        assert!(is_word('ж'));
        assert!(is_inline_space('\u{00A0}'));
        assert!(is_inline_space('\u{3000}'));
        assert!(!is_inline_space('\n'));
    }

    #[test]
    fn windows_cut_on_char_boundaries() {
        let s = "电话号码abc";
        assert_eq!(window_before(s, 12, 5), "码");
        assert_eq!(window_after(s, 0, 4), "电");
        let call = Keywords::new(&["call", "tax", "order", "电话"]);
        assert_eq!(call.last_in("please call me", false), Some(11));
        assert_eq!(call.last_in("recall", false), None);
        assert_eq!(call.last_in("taxi", true), None);
        assert_eq!(call.last_in("tax 1", true), Some(3));
        assert_eq!(call.last_in("请看order 1", true), Some(11));
        assert_eq!(call.last_in("我的电话", false), Some(12));
        let sets = Keywords::sets(&[(&["call"], false), (&["tax", "order"], true)]);
        assert_eq!(
            sets.last_in_each("call tax order1"),
            [Some(4), Some(8), None, None, None]
        );
    }

    #[test]
    fn char_at_and_before_are_the_slow_ones() {
        for s in [
            "",
            "a",
            "ab",
            "é",
            "aé",
            "éa",
            "a电b",
            "😊x",
            "x😊",
            "\u{7f}\u{80}",
        ] {
            for i in 0..=s.len() + 1 {
                assert_eq!(char_at(s, i), s.get(i..).and_then(|r| r.chars().next()));
                assert_eq!(
                    char_before(s, i),
                    s.get(..i).and_then(|r| r.chars().next_back())
                );
            }
        }
    }

    #[test]
    fn lower_is_to_lowercase() {
        for s in [
            "",
            "Tel. +49",
            "ÄT Małpa MAŁPA",
            "ΣΑΣ Σ",
            "İstanbul \u{212A}",
            "電話は",
            &"Ab".repeat(100),
            &"Ǆ".repeat(70),
        ] {
            assert_eq!(lower(s).as_str(), s.to_lowercase(), "{s:?}");
        }
    }
}
