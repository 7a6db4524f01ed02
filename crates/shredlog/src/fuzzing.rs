//! Fuzz entry points. Each takes arbitrary bytes, must never panic except to
//! report a broken invariant, and is run both by cargo-fuzz (`fuzz/`) and by
//! `cargo test` over the checked-in corpora (`tests/fuzz_corpus.rs`).

use std::path::Path;
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::interchange;
use crate::keyring::cells::FIRST_CELL;
use crate::keyring::{Keyring, SLOT_SIZE};
use crate::seal::Key;

/// Record decoding: never panics; what decodes re-encodes to the same bytes.
pub fn record(data: &[u8]) {
    crate::record::fuzz_decode(data);
}

/// Sealed messages: opening arbitrary bytes never panics; what is sealed
/// opens to the same plaintexts.
pub fn sealed(data: &[u8]) {
    crate::record::fuzz_sealed(data);
}

/// Segment recovery over arbitrary bytes (as if they were a segment file):
/// never panics; records found lie within the data, in order, without overlap;
/// a torn tail is only reported where scanning stopped.
pub fn segment(data: &[u8]) {
    use crate::segment::{SEGMENT_HEADER, ScanRules, SegmentHeader};
    let path = Path::new("fuzz.seg");
    let headers = [
        SegmentHeader {
            version: 2,
            generation: 1,
        },
        SegmentHeader {
            version: 1,
            generation: 0,
        },
    ];
    let acknowledged = data.len() as u64 / 2;
    for header in headers {
        for (last, salvage, acknowledged) in [
            (true, false, 0),
            (true, true, 0),
            (false, true, 0),
            (true, false, acknowledged),
        ] {
            let rules = ScanRules {
                id: 1,
                header,
                last,
                salvage,
                acknowledged,
            };
            let mut prev_end = SEGMENT_HEADER;
            let result = crate::segment::scan(path, data, SEGMENT_HEADER, rules, |off, size, _| {
                assert!(off >= prev_end, "records overlap or go backwards");
                prev_end = off + size as u64;
                assert!(prev_end <= data.len() as u64, "record past the end");
            });
            if let Ok(scan) = result {
                assert!(scan.end <= data.len().max(SEGMENT_HEADER as usize) as u64);
                assert!(scan.data_end <= scan.end);
                if let Some(t) = scan.torn_at {
                    assert_eq!(t, scan.end);
                    assert!(last && t >= acknowledged, "a torn tail where none may be");
                }
                if scan.footer.is_some() {
                    assert_eq!(scan.end, data.len() as u64, "a footer before the end");
                }
                if !salvage {
                    // Nothing acknowledged is missing from a scan that passed.
                    assert!(scan.footer.is_some() || scan.data_end >= acknowledged);
                }
            }
        }
    }
}

/// Keyring slot parsing: never panics; a slot that decodes re-encodes to a
/// slot that decodes to the same value.
pub fn keyring_slot(data: &[u8]) {
    static RINGS: OnceLock<Option<Mutex<[Keyring; 2]>>> = OnceLock::new();
    let rings = RINGS.get_or_init(|| {
        let open = |kek: Option<Key>| -> Option<Keyring> {
            let dir = std::env::temp_dir().join(format!(
                "shredlog-fuzz-{}-{}",
                std::process::id(),
                kek.is_some()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).ok()?;
            let mode = crate::keyring::OpenMode {
                create: true,
                read_only: false,
                salvage: false,
            };
            let kr = Keyring::open(&dir, kek.as_ref(), mode, |_, _| {})
                .ok()
                .map(|l| l.keyring);
            // Only decoding is exercised: the file is not needed after open.
            let _ = std::fs::remove_dir_all(&dir);
            kr
        };
        Some(Mutex::new([
            open(None)?,
            open(Some(Key::from_bytes([7; 32])))?,
        ]))
    });
    let Some(rings) = rings else { return };
    let rings = rings.lock();
    let kr = &rings[usize::from(data.first().is_some_and(|b| b & 1 == 1))];
    // The bytes from a sector's first cell to its end, as a read gets them.
    let bytes = &data[..data.len().min(SLOT_SIZE)];
    if let Ok(Some(decoded)) = kr.decode_slot(FIRST_CELL, bytes) {
        let again = kr.encode_for_test(FIRST_CELL, &decoded);
        assert_eq!(
            kr.decode_slot(FIRST_CELL, &again).ok().flatten(),
            Some(decoded)
        );
    }
}

/// Interchange parsing: never panics; a line that parses writes back to a line
/// that parses to the same message; errors never echo the input.
pub fn interchange_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match interchange::parse_line(text) {
        Ok(msg) => {
            let line = interchange::to_line(&msg);
            let again = interchange::parse_line(&line);
            assert_eq!(
                again.ok().as_ref(),
                Some(&msg),
                "write-back does not parse to the same message"
            );
        }
        Err(e) => {
            let shown = e.to_string();
            // A long distinctive input string must not appear in the error.
            for word in text.split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.') {
                if word.len() >= 12 && word.contains('@') {
                    assert!(!shown.contains(word), "error echoes input");
                }
            }
        }
    }
}

/// The PII redactor: never panics, idempotent, output holds no detected span.
pub fn redactor(data: &[u8]) {
    crate::pii::fuzz_redactor(data);
}
