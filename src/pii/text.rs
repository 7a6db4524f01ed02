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
    text.get(..i)?.chars().next_back()
}

/// The character that starts at byte `i`.
pub(super) fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
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

/// A set of lower-case keywords, indexed by first byte for fast look-up in
/// the short windows of text around a candidate.
pub(super) struct Keywords {
    by_first: Vec<Vec<&'static str>>,
}

impl Keywords {
    pub(super) fn new(list: &[&'static str]) -> Keywords {
        let mut by_first: Vec<Vec<&'static str>> = vec![Vec::new(); 256];
        for kw in list {
            if let Some(bucket) = kw
                .bytes()
                .next()
                .and_then(|b| by_first.get_mut(usize::from(b)))
            {
                bucket.push(kw);
            }
        }
        Keywords { by_first }
    }

    /// The byte position just after the last keyword in `hay` (already
    /// lower-cased) that starts on a word boundary (and, with `whole`, also
    /// ends on one), or `None`. Keywords that do not start with an ASCII letter
    /// (CJK words, currency signs) match anywhere.
    pub(super) fn last_in(&self, hay: &str, whole: bool) -> Option<usize> {
        let bytes = hay.as_bytes();
        let mut best = None;
        for (pos, &b) in bytes.iter().enumerate() {
            let Some(bucket) = self.by_first.get(usize::from(b)) else {
                continue;
            };
            if bucket.is_empty() || !hay.is_char_boundary(pos) {
                continue;
            }
            let rest = bytes.get(pos..).unwrap_or(&[]);
            for kw in bucket {
                if !rest.starts_with(kw.as_bytes()) {
                    continue;
                }
                let starts_word =
                    !b.is_ascii_alphabetic() || char_before(hay, pos).is_none_or(|c| !is_word(c));
                let end = pos + kw.len();
                let ends_word = !whole || char_at(hay, end).is_none_or(|c| !is_word(c));
                if starts_word && ends_word {
                    best = Some(end);
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
    }
}
