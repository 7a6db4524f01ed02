//! Replays the evaluation corpora (and a few hostile inputs) through
//! `fuzz_redactor`, the property check that the cargo-fuzz target runs.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

fn replay(corpus: &str) {
    for line in corpus.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        shredlog::pii::fuzz_redactor(v["text"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn corpus_lines_keep_the_redactor_properties() {
    replay(include_str!("pii_corpus/corpus.jsonl"));
}

#[test]
fn heldout_lines_keep_the_redactor_properties() {
    replay(include_str!("pii_heldout/heldout.jsonl"));
}

#[test]
fn hostile_inputs_keep_the_redactor_properties() {
    let long_local = format!("{}@example.com", "a".repeat(10_000));
    let many_ats = "a@".repeat(5_000);
    let digits = "1 ".repeat(5_000);
    let colons = ":1".repeat(5_000);
    let at_words = "x at ".repeat(2_000) + "y dot com";
    let decorated = "x-at-".repeat(2_000) + "y-dot-com";
    let labels = "tel=".repeat(2_000) + "0301234567";
    let ranges = "10.0.0.1-".repeat(2_000) + "10.0.0.2";
    let markup = "**".repeat(3_000) + "+4930123456" + &"_".repeat(3_000);
    let dotted = "1.".repeat(5_000);
    let copulas = "number is ".repeat(2_000) + "1234567";
    let nested = "(+44 (0)".repeat(2_000) + "20 7946 0958)";
    let short_plans = "+678 1 ".repeat(3_000);
    let extensions = "+49 30 1234567".to_owned() + &",ext=1".repeat(3_000);
    for input in [
        long_local.as_str(),
        many_ats.as_str(),
        digits.as_str(),
        colons.as_str(),
        at_words.as_str(),
        decorated.as_str(),
        labels.as_str(),
        ranges.as_str(),
        markup.as_str(),
        dotted.as_str(),
        copulas.as_str(),
        nested.as_str(),
        short_plans.as_str(),
        extensions.as_str(),
        "<redacted><redacted>::1@<redacted>",
        "\u{feff}\u{200b}+\u{200b}4\u{200b}4",
        "tel=<redacted>x900",
        "ann (at) <redacted> (dot) com. Thanks",
    ] {
        shredlog::pii::fuzz_redactor(input.as_bytes());
    }
    shredlog::pii::fuzz_redactor(&[0xff, 0xfe, b'@', 0xc3, b'a', b'.', b'd', b'e']);
}
