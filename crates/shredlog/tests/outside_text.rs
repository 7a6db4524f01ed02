//! Personal data cannot enter where erasure does not reach (issue 13): the
//! references of privacy operations, hold and restriction references,
//! transcript ids and message ids are refused when they hold an email, a
//! phone number or an IP address, with one sentence naming the field and
//! the kind and nothing written; emails compare in one canonical form; and
//! after an erasure no byte of any file holds the visitor's strings.

mod common;

use shredlog::{
    Body, Error, HoldTarget, Message, Options, Rectification, Sender, Store, Timestamp, Visitor,
};

fn msg(transcript: &str, id: Option<&str>, email: &str, text: &str) -> Message {
    Message {
        transcript: transcript.into(),
        id: id.map(Into::into),
        ts: Timestamp::from_unix_millis(1_700_000_000_000),
        from: Some(Sender::Visitor),
        visitor: Some(Visitor {
            email: email.into(),
            name: Some("Ann Lee".into()),
            phone: Some("+44 20 7946 0958".into()),
            id: None,
            ip: Some("203.0.113.9".into()),
        }),
        body: Body::Text(text.into()),
    }
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    common::dir_bytes(dir)
}

/// The files where references are kept: the audit log and the policy file,
/// as (name, length, checksum) so that a failure prints little.
fn reference_files(dir: &std::path::Path) -> Vec<(String, usize, u32)> {
    files(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with("audit.log") || n.ends_with("policy.json"))
        .map(|(n, b)| (n, b.len(), crc32fast::hash(&b)))
        .collect()
}

/// One privacy operation, run for its error.
type Op<'a> = Box<dyn Fn() -> Result<(), Error> + 'a>;

/// Every privacy operation refuses a reference with personal data before it
/// writes a byte, with the same sentence.
#[test]
fn references_with_personal_data_are_refused_by_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store
        .append_batch(&[msg("t-1", Some("m-1"), "ann@example.com", "hello")])
        .unwrap();
    store
        .append_batch(&[msg("t-2", None, "bob@example.com", "hi")])
        .unwrap();
    let before = reference_files(dir.path());
    let audit_before = store.audit_log().unwrap().len();
    let email = "ann@example.com";
    for (reference, kind) in [
        ("request from s.guerin@courriel.example", "an email address"),
        ("call back +44 20 7946 0958", "a phone number"),
        ("blocked 203.0.113.9", "an IP address"),
        (
            "mail ann at example dot com",
            "an email address (written out)",
        ),
    ] {
        let ops: Vec<(&str, Op<'_>)> = vec![
            (
                "redact",
                Box::new(|| store.redact_visitor(email, reference).map(drop)),
            ),
            (
                "delete visitor",
                Box::new(|| store.delete_visitor(email, reference).map(drop)),
            ),
            (
                "delete transcript",
                Box::new(|| store.delete_transcript("t-1", reference).map(drop)),
            ),
            (
                "retention",
                Box::new(|| {
                    store
                        .apply_retention(1, false, i64::MAX / 4, reference)
                        .map(drop)
                }),
            ),
            (
                "hold visitor",
                Box::new(|| {
                    store
                        .place_hold(HoldTarget::Email(email), reference)
                        .map(drop)
                }),
            ),
            (
                "hold transcript",
                Box::new(|| {
                    store
                        .place_hold(HoldTarget::Transcript("t-1"), reference)
                        .map(drop)
                }),
            ),
            (
                "release hold",
                Box::new(|| {
                    store
                        .release_hold(HoldTarget::Transcript("t-1"), reference)
                        .map(drop)
                }),
            ),
            (
                "restrict",
                Box::new(|| store.restrict_visitor(email, reference).map(drop)),
            ),
            (
                "lift restriction",
                Box::new(|| store.lift_restriction(email, reference).map(drop)),
            ),
            (
                "rectify",
                Box::new(|| {
                    store
                        .rectify_visitor(
                            email,
                            &Rectification::new(None, Some("Ann B. Lee".into()), None),
                            reference,
                        )
                        .map(drop)
                }),
            ),
            (
                "rewrite",
                Box::new(|| store.rewrite_transcript("t-1", &[], reference).map(drop)),
            ),
            (
                "rewrite stale",
                Box::new(|| store.rewrite_stale(reference).map(drop)),
            ),
            (
                "retention policy",
                Box::new(|| store.run_retention_policy(reference).map(drop)),
            ),
        ];
        for (name, op) in ops {
            let err = op().expect_err(name);
            assert!(matches!(err, Error::PersonalData { .. }), "{name}: {err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "the reference contains {kind}; use a ticket number or another reference that names no person"
                ),
                "{name}"
            );
        }
    }
    // Length and control characters: the same limits as the server.
    for bad in [
        "x".repeat(5000),
        "ok\u{1b}[2J".to_owned(),
        "two\nlines".to_owned(),
    ] {
        let err = store.redact_visitor(email, &bad).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }
    assert_eq!(store.audit_log().unwrap().len(), audit_before);
    assert_eq!(store.holds().len(), 0);
    assert_eq!(
        reference_files(dir.path()),
        before,
        "a refused operation writes nothing"
    );
}

#[test]
fn ids_with_personal_data_are_refused_at_append_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for (transcript, id, says) in [
        (
            "chat-ann@example.com",
            None,
            "the transcript id contains an email address",
        ),
        (
            "t-1",
            Some("+44 20 7946 0958"),
            "the message id contains a phone number",
        ),
        (
            "visit-203.0.113.9",
            None,
            "the transcript id contains an IP address",
        ),
    ] {
        let err = store
            .append_batch(&[msg(transcript, id, "ann@example.com", "hello")])
            .unwrap_err();
        assert!(
            matches!(&err, Error::InMessage { index: 0, .. }),
            "the batch error names the message: {err:?}"
        );
        let err = err.without_position();
        assert!(matches!(err, Error::PersonalData { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(says), "{text}");
        assert!(text.ends_with("use a random or sequential id (an erasure cannot reach ids)"));
    }
    assert_eq!(store.stats().unwrap().transcripts, 0);
    drop(store);
    // The option, named for what it costs.
    let store = Store::open(
        dir.path(),
        Options {
            allow_unerasable_personal_data_in_ids: true,
            ..Options::default()
        },
    )
    .unwrap();
    store
        .append_batch(&[msg(
            "chat-ann@example.com",
            None,
            "ann@example.com",
            "hello",
        )])
        .unwrap();
    assert_eq!(store.stats().unwrap().transcripts, 1);
}

/// One address, many spellings: one visitor, found and erased by any of
/// them; something that is not an address is refused as a visitor's email.
#[test]
fn emails_compare_in_one_canonical_form() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let spellings = [
        "rene\u{301}@cafe\u{301}.example", // decomposed
        "Ren\u{e9}@CAF\u{c9}.example.",    // composed, capitals, trailing dot
        "mailto:ren\u{e9}@xn--caf-dma.example",
    ];
    for (i, s) in spellings.iter().enumerate() {
        store
            .append_batch(&[msg(&format!("t-{i}"), None, s, "bonjour")])
            .unwrap();
    }
    assert_eq!(
        store.stats().unwrap().visitors,
        1,
        "three spellings, one visitor"
    );
    for s in spellings {
        assert_eq!(
            store.transcripts_by_email(s, None, None).unwrap().len(),
            3,
            "{s}"
        );
    }
    store
        .redact_visitor("  REN\u{c9}@caf\u{e9}.EXAMPLE ", "T-1")
        .unwrap();
    for s in spellings {
        assert!(
            matches!(store.export(s), Err(Error::VisitorNotFound)),
            "{s}"
        );
    }
    for bad in [
        "ann",
        "ann@",
        "ann@localhost",
        "ann lee@example.com",
        "<ann@example.com>",
    ] {
        let err = store
            .append_batch(&[msg("t-bad", None, bad, "hello")])
            .unwrap_err();
        assert!(
            err.to_string().contains("is not an email address"),
            "{bad}: {err}"
        );
        assert!(
            !err.to_string().contains(bad.trim_matches(['<', '>'])),
            "{err}"
        );
    }
}

/// After an erasure (and compaction), no file holds any of the visitor's
/// strings, in any spelling the visitor was stored under; the audit log
/// holds the reference, which names no one.
#[test]
fn after_erasure_no_file_holds_the_visitors_strings() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let typed = "write to ann.private@mail.example or call 0151 23456789";
    store
        .append_batch(&[
            msg("t-1", Some("m-1"), "Ann.Lee@Example.com", typed),
            msg(
                "t-1",
                Some("m-2"),
                "ann.lee@example.com",
                "my ip is 198.51.100.77",
            ),
        ])
        .unwrap();
    store
        .append_batch(&[msg("t-2", None, "bob@example.com", "unrelated")])
        .unwrap();
    store
        .redact_visitor("ANN.LEE@example.com.", "DSAR-2024-17")
        .unwrap();
    store
        .compact(&shredlog::CompactOptions::everything())
        .unwrap();
    store.close().unwrap();
    let needles = [
        "ann.lee@example.com",
        "Ann.Lee@Example.com",
        "ann.private@mail.example",
        "Ann Lee",
        "+44 20 7946 0958",
        "0151 23456789",
        "203.0.113.9",
        "198.51.100.77",
    ];
    let all = files(dir.path());
    for (name, bytes) in &all {
        for n in needles {
            assert!(!common::contains(bytes, n.as_bytes()), "{n:?} in {name}");
        }
    }
    let audit = &all
        .iter()
        .find(|(n, _)| n.ends_with("audit.log"))
        .unwrap()
        .1;
    assert!(common::contains(audit, b"DSAR-2024-17"));
}
