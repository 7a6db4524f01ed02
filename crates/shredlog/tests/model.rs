//! Model-based property test: random sequences of appends, reads, erasures,
//! deletions and reopens against a simple in-memory model.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use shredlog::{Body, Error, Message, Options, REDACTED, Store};

#[derive(Clone, Debug)]
enum Op {
    Append { t: u8, text: bool },
    Read { t: u8 },
    List { v: u8 },
    Redact { v: u8 },
    DeleteTranscript { t: u8 },
    Reopen { checkpoint: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, any::<bool>()).prop_map(|(t, text)| Op::Append { t, text }),
        2 => (0u8..6).prop_map(|t| Op::Read { t }),
        1 => (0u8..3).prop_map(|v| Op::List { v }),
        1 => (0u8..3).prop_map(|v| Op::Redact { v }),
        1 => (0u8..6).prop_map(|t| Op::DeleteTranscript { t }),
        1 => any::<bool>().prop_map(|checkpoint| Op::Reopen { checkpoint }),
    ]
}

#[derive(Default, Debug)]
struct ModelTranscript {
    messages: Vec<Message>,
    redacted: bool,
    /// Which visitor "generation" (bumped when the visitor is erased).
    generation: u32,
}

/// What a message reads as once its PII key is gone.
fn redacted(store: &Store, m: &Message) -> Message {
    let mut m = m.clone();
    if let Some(v) = &mut m.visitor {
        v.email = REDACTED.into();
        for f in [&mut v.name, &mut v.phone, &mut v.id, &mut v.ip]
            .into_iter()
            .flatten()
        {
            *f = REDACTED.into();
        }
    }
    m.body = match m.body {
        Body::Text(t) => Body::Text(store.detector().redact(&t, REDACTED)),
        Body::Form(f) => Body::Form(f.into_keys().map(|k| (k, REDACTED.to_string())).collect()),
        Body::File(mut f) => {
            f.name = REDACTED.into();
            f.data.clear();
            Body::File(f)
        }
        Body::Consent { granted, prompt } => Body::Consent {
            granted,
            prompt: store.detector().redact(&prompt, REDACTED),
        },
    };
    m
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let small = || Options {
        segment_size: 4 << 10,
        ..Options::default()
    };
    let mut store = Some(Store::open(dir.path(), small()).unwrap());
    let mut model: BTreeMap<u8, ModelTranscript> = BTreeMap::new();
    let mut visitor_gen = [0u32; 3];
    let mut clock = 1_700_000_000_000i64;
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Append { t, text } => {
                let v = u64::from(t % 3);
                let id = format!("t-{t}");
                let entry = model.entry(t).or_default();
                if entry.messages.is_empty() {
                    entry.generation = visitor_gen[v as usize];
                }
                let i = entry.messages.len() as u64;
                clock += 1000;
                let mut m = common::message(
                    v + 10 * u64::from(entry.generation),
                    &id,
                    if text { i * 7 % 7 } else { i },
                    clock,
                );
                m.visitor = (i == 0).then(|| common::visitor(v + 10 * u64::from(entry.generation)));
                let has_pii = !store
                    .as_ref()
                    .unwrap()
                    .detector()
                    .find(&format!("{:?}", m.body))
                    .is_empty()
                    || m.visitor.is_some()
                    || matches!(m.body, Body::Form(_) | Body::File(_));
                match s.append(&m) {
                    Ok(_) => {
                        assert!(
                            !(entry.redacted && has_pii),
                            "PII appended to a redacted transcript"
                        );
                        entry.messages.push(m);
                    }
                    Err(Error::Invalid(_)) => {
                        assert!(entry.redacted && has_pii, "unexpected refusal")
                    }
                    Err(e) => panic!("append: {e}"),
                }
            }
            Op::Read { t } => {
                let id = format!("t-{t}");
                match (s.transcript(&id), model.get(&t)) {
                    (Ok(got), Some(m)) if !m.messages.is_empty() => {
                        let want: Vec<Message> = if m.redacted {
                            m.messages.iter().map(|x| redacted(s, x)).collect()
                        } else {
                            m.messages.clone()
                        };
                        // Messages appended after the erasure carry no PII and read as written.
                        assert_eq!(got.len(), want.len());
                        for (g, (w, orig)) in got.iter().zip(want.iter().zip(&m.messages)) {
                            assert!(g == w || g == orig, "{id}: {g:?} != {w:?}");
                        }
                    }
                    (Err(Error::TranscriptNotFound), None) => {}
                    (Err(Error::TranscriptNotFound), Some(m)) if m.messages.is_empty() => {}
                    (got, want) => panic!("{id}: store {got:?}, model {want:?}"),
                }
            }
            Op::List { v } => {
                let email =
                    common::visitor(u64::from(v) + 10 * u64::from(visitor_gen[v as usize])).email;
                // Each transcript with its message count and time range
                // (a listing reads them from the index's run).
                let mut got: Vec<(String, usize, i64, i64)> = s
                    .transcripts_by_email(&email, None, None)
                    .unwrap()
                    .into_iter()
                    .map(|t| {
                        (
                            t.id,
                            t.messages,
                            t.first.unix_millis(),
                            t.last.unix_millis(),
                        )
                    })
                    .collect();
                got.sort();
                let mut want: Vec<(String, usize, i64, i64)> = model
                    .iter()
                    .filter(|(t, m)| {
                        **t % 3 == v
                            && !m.messages.is_empty()
                            && !m.redacted
                            && m.generation == visitor_gen[v as usize]
                    })
                    .map(|(t, m)| {
                        let ts = m.messages.iter().map(|x| x.ts.unix_millis());
                        (
                            format!("t-{t}"),
                            m.messages.len(),
                            ts.clone().min().unwrap_or(0),
                            ts.max().unwrap_or(0),
                        )
                    })
                    .collect();
                want.sort();
                assert_eq!(got, want);
            }
            Op::Redact { v } => {
                let email =
                    common::visitor(u64::from(v) + 10 * u64::from(visitor_gen[v as usize])).email;
                let live = model.iter().any(|(t, m)| {
                    *t % 3 == v
                        && !m.messages.is_empty()
                        && !m.redacted
                        && m.generation == visitor_gen[v as usize]
                });
                match s.redact_visitor(&email, "model") {
                    Ok(_) => {
                        assert!(live);
                        for (t, m) in model.iter_mut() {
                            if *t % 3 == v
                                && m.generation == visitor_gen[v as usize]
                                && !m.messages.is_empty()
                            {
                                m.redacted = true;
                            }
                        }
                        visitor_gen[v as usize] += 1;
                    }
                    Err(Error::VisitorNotFound) => assert!(!live),
                    Err(e) => panic!("redact: {e}"),
                }
            }
            Op::DeleteTranscript { t } => {
                let id = format!("t-{t}");
                let exists = model.get(&t).is_some_and(|m| !m.messages.is_empty());
                match s.delete_transcript(&id, "model") {
                    Ok(_) => {
                        assert!(exists);
                        model.remove(&t);
                    }
                    Err(Error::TranscriptNotFound) => assert!(!exists),
                    Err(e) => panic!("delete: {e}"),
                }
            }
            Op::Reopen { checkpoint } => {
                let s = store.take().unwrap();
                if checkpoint {
                    s.close().unwrap();
                } else {
                    drop(s);
                    let _ = std::fs::remove_file(dir.path().join("index.ckpt"));
                }
                store = Some(Store::open(dir.path(), small()).unwrap());
            }
        }
    }
    let s = store.unwrap();
    let report = s.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
