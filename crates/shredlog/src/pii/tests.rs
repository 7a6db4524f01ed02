//! Cross-detector tests and property tests.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

fn redact(text: &str) -> String {
    Detector::default().redact(text, PLACEHOLDER)
}

#[test]
fn kind_codes_round_trip() {
    for (i, k) in PiiKind::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(k.code()), i + 1);
        assert_eq!(PiiKind::from_code(k.code()), Some(k));
    }
    assert_eq!(PiiKind::from_code(0), None);
    assert_eq!(PiiKind::from_code(9), None);
    assert_eq!(PiiKind::ObfuscatedEmail.name(), "obfuscated-email");
    assert_eq!(PiiKind::PaymentCard.to_string(), "payment-card");
}

#[test]
fn redacts_every_kind_in_one_line() {
    let text = "Ann (ann@example.com, ann at example dot org) rang from +44 20 7946 0958 \
                via 203.0.113.9:443 and [2001:db8::7]:8080";
    assert_eq!(
        redact(text),
        "Ann (<redacted>, <redacted>) rang from <redacted> via <redacted> and <redacted>"
    );
    let kinds: Vec<PiiKind> = Detector::default()
        .find(text)
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            PiiKind::Email,
            PiiKind::ObfuscatedEmail,
            PiiKind::Phone,
            PiiKind::Ipv4,
            PiiKind::Ipv6
        ]
    );
}

#[test]
fn messy_chat_lines() {
    let cases = [
        (
            "我的邮箱是ann@example.com，电话是+86 138 0013 8000。",
            "我的邮箱是<redacted>，电话是<redacted>。",
        ),
        (
            "連絡先：090-1234-5678（携帯）",
            "連絡先：<redacted>（携帯）",
        ),
        (
            "電話\u{3000}０３\u{3000}１２３４\u{3000}５６７８です",
            "電話\u{3000}<redacted>です",
        ),
        (
            "Tel.\u{a0}+49\u{a0}(0)\u{a0}30\u{a0}1234567",
            "Tel.\u{a0}<redacted>",
        ),
        (
            "My number is 07700 900 123, my wife's is 07700 900 456",
            "My number is <redacted>, my wife's is <redacted>",
        ),
        (
            "(+34) 612 345 678 o +34 91 123 45 67",
            "<redacted> o <redacted>",
        ),
        ("<mailto:O'Brien@Example.IE>", "<mailto:<redacted>>"),
        (
            "ivan@пример.рф / ivan@example.xn--p1ai",
            "<redacted> / <redacted>",
        ),
        ("IPv6:fe80::a00:27ff:fe4e:66a1%enp0s3", "IPv6:<redacted>"),
    ];
    for (text, want) in cases {
        assert_eq!(redact(text), want, "in {text:?}");
    }
}

#[test]
fn no_false_alarms_on_look_alikes() {
    for text in [
        "Meeting 10:30-11:45 tomorrow",
        "Order 123-456-7890",
        "Tracking number: 9400 1000 0000 0000 0000 00",
        "ISBN 978-0-13-110362-7",
        "Windows 10.0.19045",
        "on 15/03/2024 at 14:30",
        "Price: $1,299.99 (was $1,499.00)",
        "Temperature 21.5°C, humidity 45%",
        "See https://github.com/org/repo/releases/tag/v2.10.3",
        "Install node 18.17.1 and npm 9.6.7",
        "Mein Geburtstag ist am 12.05.1985",
        "The meeting is on 2024-03-15 from 09:00 to 17:30",
        "invoice no. 2024-000123",
        "thanks @ann.lee and @john",
        "IMG_20240315_123456.jpg",
        "std::vector<int> v;",
        "population 12 345 678",
        "sign up at example.com",
        "2024年3月15日 14:30",
        "550e8400-e29b-41d4-a716-446655440000",
    ] {
        assert_eq!(redact(text), text);
    }
}

#[test]
fn repeats_of_a_detected_value_are_redacted_too() {
    // The second copy is glued to a word, so on its own it would not be found.
    let text = "call 030 1234567, ref X030 1234567";
    assert_eq!(redact(text), "call <redacted>, ref X<redacted>");
}

#[test]
fn placeholder_is_never_detected() {
    let d = Detector::new(&DetectorConfig {
        custom: vec![CustomPattern {
            name: "word".into(),
            regex: "red[a-z]+".into(),
        }],
        ..DetectorConfig::default()
    })
    .unwrap();
    assert!(d.find(PLACEHOLDER).is_empty());
    assert_eq!(
        d.redact("reddish <redacted>", PLACEHOLDER),
        "<redacted> <redacted>"
    );
    let once = d.redact("<redacted>::1 and x@<redacted>", PLACEHOLDER);
    assert_eq!(d.redact(&once, PLACEHOLDER), once);
}

#[test]
fn optional_detectors_are_off_by_default() {
    let text = "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00";
    assert_eq!(redact(text), text);
    let all = Detector::new(&DetectorConfig {
        payment_cards: true,
        ibans: true,
        ..DetectorConfig::default()
    })
    .unwrap();
    let kinds: Vec<PiiKind> = all.find(text).iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [PiiKind::PaymentCard, PiiKind::Iban]);
}

#[test]
fn detectors_can_be_switched_off() {
    let d = Detector::new(&DetectorConfig {
        emails: false,
        obfuscated_emails: false,
        phones: false,
        ips: false,
        ..DetectorConfig::default()
    })
    .unwrap();
    assert!(
        d.find("ann@example.com +44 20 7946 0958 10.0.0.1 ann at example dot com")
            .is_empty()
    );
}

#[test]
fn custom_patterns_and_errors() {
    let ok = Detector::new(&DetectorConfig {
        custom: vec![CustomPattern {
            name: "visitor".into(),
            regex: r"\bv-\d{5}\b".into(),
        }],
        ..DetectorConfig::default()
    })
    .unwrap();
    assert_eq!(
        ok.redact("id v-88172 here", PLACEHOLDER),
        "id <redacted> here"
    );
    for (name, regex) in [
        ("bad", "(unclosed"),
        ("empty", "a*"),
        ("", "x"),
        ("huge", r"\w{1000}{1000}"),
    ] {
        let err = Detector::new(&DetectorConfig {
            custom: vec![CustomPattern {
                name: name.into(),
                regex: regex.into(),
            }],
            ..DetectorConfig::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("invalid"), "{msg}");
        assert!(
            !msg.contains(regex) || regex.is_empty(),
            "error echoes the pattern: {msg}"
        );
    }
}

#[test]
fn config_reads_kebab_case_and_rejects_unknown_keys() {
    let c: DetectorConfig = serde_json::from_str(
        r#"{"payment-cards": true, "obfuscated-emails": false,
            "custom": [{"name": "ticket", "regex": "T-\\d+"}]}"#,
    )
    .unwrap();
    assert!(c.payment_cards && !c.obfuscated_emails && c.emails && c.phones && c.ips && !c.ibans);
    assert_eq!(c.custom.len(), 1);
    assert!(serde_json::from_str::<DetectorConfig>(r#"{"cards": true}"#).is_err());
    let d = Detector::new(&c).unwrap();
    assert!(d.config().payment_cards);
}

#[test]
fn detector_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Detector>();
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    /// Text made of the pieces personal data and its look-alikes are made of.
    fn chat_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<redacted>".to_owned()),
            Just("@".to_owned()),
            Just(" at ".to_owned()),
            Just(" dot ".to_owned()),
            Just("[at]".to_owned()),
            Just("::".to_owned()),
            Just("+".to_owned()),
            Just("(0)".to_owned()),
            Just("ext".to_owned()),
            "[0-9]{1,5}",
            "[0-9a-f]{1,4}",
            "[a-zA-Z]{1,6}",
            "[ .:\\-/()\\[\\]%#_'\"]",
            "[\u{a0}\u{3000}\u{ff10}-\u{ff19}电话ー]",
            "\\PC{1,3}",
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    /// 2000 cases, or `PROPTEST_CASES` for a longer run.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn properties_hold_on_chat_like_text(text in chat_like()) {
            fuzz_redactor(text.as_bytes());
        }

        #[test]
        fn properties_hold_on_any_text(text in "\\PC{0,80}") {
            fuzz_redactor(text.as_bytes());
        }

        #[test]
        fn properties_hold_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            fuzz_redactor(&bytes);
        }

        #[test]
        fn char_at_and_before_on_any_text(text in "\\PC{0,40}") {
            for i in 0..=text.len() + 1 {
                prop_assert_eq!(
                    text::char_at(&text, i),
                    text.get(i..).and_then(|r| r.chars().next())
                );
                prop_assert_eq!(
                    text::char_before(&text, i),
                    text.get(..i).and_then(|r| r.chars().next_back())
                );
            }
        }

        #[test]
        fn spans_are_well_formed(text in chat_like()) {
            let spans = Detector::default().find(&text);
            for w in spans.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
            for s in &spans {
                prop_assert!(s.start < s.end && s.end <= text.len());
                prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            }
        }
    }
}
