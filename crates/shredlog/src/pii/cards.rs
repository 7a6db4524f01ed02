//! Payment card numbers (Luhn) and IBANs (ISO 13616 mod-97). Both are off by
//! default: operators switch them on in [`super::DetectorConfig`].

use super::text::{char_at, char_before, is_word};
use super::{PiiKind, Span};

/// Finds payment card numbers: 13–19 digits, whole or in groups separated by
/// single spaces or dashes, with a card-network prefix and a valid Luhn digit.
pub(super) fn find_cards(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).is_some_and(u8::is_ascii_digit)
            || char_before(text, i)
                .is_some_and(|c| is_word(c) || matches!(c, '.' | '-' | '_' | '+'))
        {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        let mut p = i;
        let mut last_digit_end = i;
        while p < bytes.len() && digits.len() <= 19 {
            match bytes.get(p) {
                Some(b) if b.is_ascii_digit() => {
                    digits.push(b - b'0');
                    p += 1;
                    last_digit_end = p;
                }
                Some(b' ' | b'-')
                    if bytes.get(p + 1).is_some_and(u8::is_ascii_digit) && p > start =>
                {
                    p += 1;
                }
                _ => break,
            }
        }
        i = last_digit_end.max(start + 1);
        if !(13..=19).contains(&digits.len()) {
            continue;
        }
        if char_at(text, last_digit_end).is_some_and(|c| is_word(c) || c == '_') {
            continue;
        }
        let network = matches!(digits.first(), Some(2..=6));
        if network && luhn(&digits) {
            out.push(Span {
                start,
                end: last_digit_end,
                kind: PiiKind::PaymentCard,
            });
        }
    }
}

/// Luhn check digit.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths of the SEPA countries and a few others.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// Finds IBANs: country code, check digits and account, whole or in groups of
/// four separated by single spaces, validated by length and mod-97.
pub(super) fn find_ibans(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        let head = bytes.get(i..i + 4).unwrap_or(&[]);
        let is_head = matches!(head, [a, b, c, d] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() && c.is_ascii_digit() && d.is_ascii_digit());
        if !is_head || char_before(text, i).is_some_and(is_word) {
            i += 1;
            continue;
        }
        let country: String = head
            .iter()
            .take(2)
            .map(|b| char::from(b.to_ascii_uppercase()))
            .collect();
        let want = IBAN_LENGTHS
            .iter()
            .find(|(c, _)| *c == country)
            .map(|&(_, n)| n);
        let Some(want) = want else {
            i += 1;
            continue;
        };
        // Collect alphanumerics, allowing single spaces between them.
        let mut chars: Vec<u8> = Vec::with_capacity(34);
        let mut p = i;
        let mut end = i;
        while chars.len() < want {
            match bytes.get(p) {
                Some(b) if b.is_ascii_alphanumeric() => {
                    chars.push(b.to_ascii_uppercase());
                    p += 1;
                    end = p;
                }
                Some(b' ') if bytes.get(p + 1).is_some_and(u8::is_ascii_alphanumeric) => p += 1,
                _ => break,
            }
        }
        if chars.len() == want
            && !char_at(text, end).is_some_and(|c| is_word(c) || c == '_')
            && mod97(&chars)
        {
            out.push(Span {
                start: i,
                end,
                kind: PiiKind::Iban,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

fn mod97(iban: &[u8]) -> bool {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_cards(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    fn ibans(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        find_ibans(text, &mut v);
        v.iter().filter_map(|s| text.get(s.start..s.end)).collect()
    }

    #[test]
    fn card_numbers() {
        assert_eq!(
            cards("card 4111 1111 1111 1111."),
            vec!["4111 1111 1111 1111"]
        );
        assert_eq!(cards("4111-1111-1111-1111"), vec!["4111-1111-1111-1111"]);
        assert_eq!(cards("5500000000000004"), vec!["5500000000000004"]);
        assert_eq!(cards("amex 3782 822463 10005"), vec!["3782 822463 10005"]);
        assert!(cards("4111 1111 1111 1112").is_empty());
        assert!(cards("1234 5678 9012 3456").is_empty());
        assert!(cards("ID4111111111111111").is_empty());
        assert!(cards("call 030 1234567").is_empty());
    }

    #[test]
    fn iban_numbers() {
        assert_eq!(
            ibans("IBAN DE89 3704 0044 0532 0130 00 bitte"),
            vec!["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            ibans("GB82WEST12345698765432"),
            vec!["GB82WEST12345698765432"]
        );
        assert_eq!(
            ibans("fr14 2004 1010 0505 0001 3m02 606"),
            vec!["fr14 2004 1010 0505 0001 3m02 606"]
        );
        assert!(ibans("DE89 3704 0044 0532 0130 01").is_empty());
        assert!(ibans("XX89 3704 0044").is_empty());
        assert!(ibans("ABDE89370400440532013000").is_empty());
    }
}
