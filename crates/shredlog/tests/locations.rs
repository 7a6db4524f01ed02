//! Record-location files (`NNNNNNNNNNNN.idx`, docs/FORMAT.md §7a): written
//! for sealed segments, used at open instead of a scan, and never trusted
//! when stale or damaged — rebuilt from the segment, or reported.

mod common;

use std::path::{Path, PathBuf};

use common::{dir_bytes, many_segments, personal_strings, populate, tiny_segments};
use shredlog::{CompactOptions, Error, Message, Options, Store};

fn small_segments() -> Options {
    Options {
        segment_size: 16 << 10,
        ..Options::default()
    }
}

fn idx_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    out.sort();
    out
}

fn seg_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count()
}

/// Every transcript reads back as appended, and every visitor lists them.
fn assert_reads(store: &Store, all: &[Message]) {
    let mut ids: Vec<&str> = all.iter().map(|m| m.transcript.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let want: Vec<&Message> = all.iter().filter(|m| m.transcript == id).collect();
        let got = store.transcript(id).unwrap();
        assert_eq!(got.len(), want.len(), "{id}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{id}");
        }
    }
}

/// A read-only open reads every transcript right, verifies, and writes
/// nothing; returns what it found at open.
fn read_only_reads_and_writes_nothing(
    dir: &Path,
    all: &[Message],
    what: &str,
) -> shredlog::RecoveryReport {
    let before = dir_bytes(dir);
    let ro = Store::open(
        dir,
        Options {
            read_only: true,
            ..small_segments()
        },
    )
    .unwrap();
    let report = ro.recovery_report().clone();
    assert_reads(&ro, all);
    assert!(ro.verify().unwrap().is_ok(), "{what}");
    drop(ro);
    assert!(dir_bytes(dir) == before, "{what}: a read-only open wrote");
    report
}

/// The messages of every transcript but `id`.
fn without(all: &[Message], id: &str) -> Vec<Message> {
    all.iter().filter(|m| m.transcript != id).cloned().collect()
}

fn build() -> (tempfile::TempDir, Vec<Message>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let all = populate(&store, 4, 24, 8);
    store.close().unwrap();
    (dir, all)
}

#[test]
fn sealed_segments_get_location_files_and_open_scans_only_the_last_segment() {
    let (dir, all) = build();
    let segs = seg_count(dir.path());
    assert!(segs >= 3, "{segs} segments");
    assert_eq!(
        idx_files(dir.path()).len(),
        segs - 1,
        "one per sealed segment"
    );
    // Without the checkpoint, only the last segment is scanned.
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let scanned = store.recovery_report().records_scanned;
    assert!(
        scanned > 0 && scanned < all.len() as u64,
        "{scanned} scanned"
    );
    assert_reads(&store, &all);
    assert!(store.verify().unwrap().is_ok());
    // With it, nothing.
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().records_scanned, 0);
    assert_reads(&store, &all);
}

#[test]
fn missing_cut_flipped_or_stale_location_files_are_rebuilt_from_the_segment() {
    let (dir, all) = build();
    let files = idx_files(dir.path());
    let good: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    type Damage = fn(&Path, &[u8]);
    // (A flipped block inside a file whose header is sound is found when it
    // is read: `a_damaged_block_is_reported_never_read_and_rebuilt_once_removed`.)
    let damages: [(&str, Damage); 4] = [
        ("missing", |p, _| std::fs::remove_file(p).unwrap()),
        ("cut", |p, b| {
            std::fs::write(p, &b[..b.len() - 100]).unwrap()
        }),
        ("header flipped", |p, b| {
            let mut b = b.to_vec();
            b[20] ^= 1;
            std::fs::write(p, b).unwrap();
        }),
        ("emptied", |p, _| std::fs::write(p, b"").unwrap()),
    ];
    for (what, damage) in damages {
        for (f, bytes) in files.iter().zip(&good) {
            damage(f, bytes);
        }
        read_only_reads_and_writes_nothing(dir.path(), &all, what);
        // A writing open rebuilds them, byte for byte.
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert_reads(&store, &all);
        drop(store);
        for (f, bytes) in files.iter().zip(&good) {
            assert!(
                std::fs::read(f).unwrap() == *bytes,
                "{what}: {f:?} not rebuilt"
            );
        }
    }
    // Stale: a location file of another generation of the segment (from
    // before a compaction rewrote it) is not used.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let first = files.first().unwrap().clone();
    let old = std::fs::read(&first).unwrap();
    store.delete_transcript("t-0", "x").unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    let new = std::fs::read(&first).unwrap();
    assert!(new != old, "compaction rewrote the location file");
    store.close().unwrap();
    std::fs::write(&first, &old).unwrap();
    // Its segment is unchanged since the checkpoint: open leaves it and its
    // location file unopened, and the first read finds the file stale and
    // rebuilds it from the segment.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().records_scanned, 0);
    assert!(store.recovery_report().segments_unopened > 0);
    let rest = without(&all, "t-0");
    assert_reads(&store, &rest);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    assert!(std::fs::read(&first).unwrap() == new, "stale file rebuilt");
}

/// The first entry block (the records of some transcripts of segment 1),
/// and the last summary block (their counts and times): open reads neither
/// (the index's run knows which transcripts segment 1 holds).
#[test]
fn a_damaged_block_is_reported_never_read_and_rebuilt_once_removed() {
    for at in [Place::FirstEntryBlock, Place::LastSummaryBlock] {
        damaged_block(at);
    }
}

#[derive(Clone, Copy, Debug)]
enum Place {
    FirstEntryBlock,
    LastSummaryBlock,
}

fn damaged_block(place: Place) {
    let (dir, all) = build();
    let first = idx_files(dir.path()).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = match place {
        Place::FirstEntryBlock => 4096 + 3,
        Place::LastSummaryBlock => bytes.len() - 4096 + 17,
    };
    bytes[at] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let mut errors = 0;
    for id in (0..24).map(|t| format!("t-{t}")) {
        match store.transcript(&id) {
            Ok(got) => {
                let want: Vec<Message> =
                    all.iter().filter(|m| m.transcript == id).cloned().collect();
                assert_eq!(got, want, "{id}");
            }
            Err(Error::Corrupt { path, .. }) => {
                assert_eq!(path, first);
                errors += 1;
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
    assert!(
        errors > 0,
        "{place:?}: the damaged block was read without an error"
    );
    let report = store.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("000000000001.idx")),
        "{:?}",
        report.problems
    );
    drop(store);
    // Salvage trusts no location file: it reads every transcript.
    let salvage = Store::open(
        dir.path(),
        Options {
            salvage: true,
            ..small_segments()
        },
    )
    .unwrap();
    assert_reads(&salvage, &all);
    drop(salvage);
    std::fs::remove_file(&first).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_reads(&store, &all);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn location_files_hold_no_personal_data_and_erasures_leave_none_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 4, 24, 8);
    store
        .redact_visitor(&common::visitor(1).email, "request")
        .unwrap();
    store
        .delete_visitor(&common::visitor(2).email, "request")
        .unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    store.close().unwrap();
    for f in idx_files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for v in 0..4 {
            for s in personal_strings(v) {
                assert!(!common::contains(&bytes, s.as_bytes()), "{f:?} holds {s}");
            }
        }
    }
}

#[test]
fn location_files_of_removed_segments_and_leftover_temporaries_go_at_open() {
    let (dir, all) = build();
    std::fs::write(dir.path().join("000000000999.idx"), b"stale").unwrap();
    std::fs::write(dir.path().join("000000000001.idx.tmp"), b"cut").unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_reads(&store, &all);
    drop(store);
    assert!(!dir.path().join("000000000999.idx").exists());
    assert!(!dir.path().join("000000000001.idx.tmp").exists());
}

/// The number of transcripts a version-6 checkpoint lists records of
/// (docs/FORMAT.md §7.2: after the 24-byte frame, the segments of 20 bytes
/// and the dead-byte entries of 25, each list after its u32 count).
fn checkpoint_transcripts(dir: &Path) -> u32 {
    let bytes = std::fs::read(dir.join("index.ckpt")).unwrap();
    assert_eq!(bytes[8..12], 6u32.to_le_bytes(), "checkpoint version");
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut at = 24;
    at += 4 + 20 * u32_at(at) as usize;
    at += 4 + 25 * u32_at(at) as usize;
    u32_at(at)
}

#[test]
fn close_seals_an_active_segment_of_256_kib_or_more_and_keeps_a_small_one() {
    let dir = tempfile::tempdir().unwrap();
    let seg1 = dir.path().join("000000000001.seg");
    let seg1_len = || std::fs::metadata(&seg1).unwrap().len();
    // A little: the segment stays active, its records in the checkpoint.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut all = populate(&store, 3, 6, 5);
    store.close().unwrap();
    assert_eq!(seg_count(dir.path()), 1);
    assert!(idx_files(dir.path()).is_empty());
    assert_eq!(checkpoint_transcripts(dir.path()), 6);

    // Sessions that each add a little: every close below 256 KiB keeps the
    // segment active; the first close at 256 KiB or more seals it (a roll:
    // its location file, the next segment started).
    let mut t = 6;
    let mut kept = Vec::new();
    loop {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for _ in 0..5 {
            let id = format!("big-{t}");
            let batch: Vec<Message> = (0..20)
                .map(|i| common::message(t % 40, &id, i, 1_700_000_000_000 + (t * 100 + i) as i64))
                .collect();
            store.append_batch(&batch).unwrap();
            all.extend(batch);
            t += 1;
        }
        store.close().unwrap();
        if seg_count(dir.path()) > 1 {
            break;
        }
        let len = seg1_len();
        assert!(len < 256 << 10, "a segment of {len} bytes was kept active");
        assert!(idx_files(dir.path()).is_empty());
        kept.push(len);
    }
    assert!(
        kept.len() >= 3 && kept.last().is_some_and(|&l| l > 200 << 10),
        "the sessions before the seal: {kept:?}"
    );
    assert_eq!(seg_count(dir.path()), 2);
    assert_eq!(
        idx_files(dir.path()).len(),
        1,
        "the sealed segment's location file"
    );
    assert!(seg1_len() >= 256 << 10);
    assert_eq!(
        std::fs::metadata(dir.path().join("000000000002.seg"))
            .unwrap()
            .len(),
        32
    );
    assert_eq!(checkpoint_transcripts(dir.path()), 0);

    // The next open loads nothing from the checkpoint, scans nothing, and
    // reads every message; a reopen with nothing new keeps the segments.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let report = store.recovery_report();
    assert!(report.checkpoint_used);
    assert_eq!(report.records_scanned, 0);
    assert_reads(&store, &all);
    store.close().unwrap();
    assert_eq!(seg_count(dir.path()), 2);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_reads(&store, &all);
    assert!(!store.recovery_report().found_damage());
}

/// Open lists the segments of a store of many on two threads (when no
/// checkpoint lets it leave them unopened: after a crash, or a store of an
/// older version): each half's damage is still found, the first damaged
/// segment named, and a location file that is not the segment's is rebuilt
/// from either half.
#[test]
fn a_store_of_many_segments_names_its_first_damaged_segment_and_rebuilds_its_location_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let all = populate(&store, 8, 200, 8);
    store.close().unwrap();
    let segs = seg_count(dir.path());
    assert!(segs >= 20, "{segs} segments");
    let seg = |id: usize| dir.path().join(format!("{id:012}.seg"));
    let (early, late) = (3, segs - 3);
    // Without the checkpoint every segment is listed at open.
    let no_checkpoint = || match std::fs::remove_file(dir.path().join("index.ckpt")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
        _ => {}
    };

    // A flipped header byte in each half: open names the earlier segment,
    // then, once that one is whole again, the later one.
    let originals: Vec<Vec<u8>> = [early, late]
        .iter()
        .map(|&id| std::fs::read(seg(id)).unwrap())
        .collect();
    for (&id, bytes) in [early, late].iter().zip(&originals) {
        let mut bad = bytes.clone();
        bad[0] ^= 0x01;
        std::fs::write(seg(id), bad).unwrap();
    }
    for (k, &id) in [early, late].iter().enumerate() {
        no_checkpoint();
        match Store::open(dir.path(), small_segments()) {
            Err(Error::Corrupt { path, .. }) => assert_eq!(path, seg(id), "step {k}"),
            Err(e) => panic!(
                "step {k}: expected corruption in {}, got {e}",
                seg(id).display()
            ),
            Ok(_) => panic!("step {k}: opened with {} damaged", seg(id).display()),
        }
        std::fs::write(seg(id), &originals[k]).unwrap();
    }

    // A location file of another segment in each half: both rebuilt.
    let idx = |id: usize| dir.path().join(format!("{id:012}.idx"));
    std::fs::copy(idx(early + 1), idx(early)).unwrap();
    std::fs::copy(idx(late - 1), idx(late)).unwrap();
    no_checkpoint();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let report = store.recovery_report();
    assert!(!report.found_damage(), "{report:?}");
    assert_eq!(report.segments_unopened, 0, "every segment listed");
    assert!(report.records_scanned > 0, "the two segments were scanned");
    assert_reads(&store, &all);
    assert!(store.verify().unwrap().is_ok());
    store.close().unwrap();
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    assert!(read(idx(early)) != read(idx(early + 1)), "rebuilt");
    assert!(read(idx(late)) != read(idx(late - 1)), "rebuilt");
    no_checkpoint();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(!store.recovery_report().found_damage());
    assert_reads(&store, &all);
}

/// After a close, open leaves every sealed segment (and its location file)
/// unopened: the checkpoint's file stamps say they are the files it
/// recorded. Each is opened and checked at its first read, so a segment
/// damaged after open is reported then, naming the file, and never read.
#[test]
fn open_leaves_sealed_segments_unopened_and_checks_each_at_its_first_read() {
    let (dir, all) = build();
    let segs = seg_count(dir.path());
    let seg = |id: usize| dir.path().join(format!("{id:012}.seg"));

    // Read-only: unopened too, reads right, writes nothing.
    let report = read_only_reads_and_writes_nothing(dir.path(), &all, "read-only");
    assert_eq!(report.segments_unopened, segs as u64 - 1);

    let store = Store::open(dir.path(), small_segments()).unwrap();
    let report = store.recovery_report();
    assert!(report.checkpoint_used);
    assert_eq!(report.records_scanned, 0);
    assert_eq!(report.segments_unopened, segs as u64 - 1);
    // Damaged after open: segment 1's header flipped, segment 2 cut short.
    let (one, two) = (
        std::fs::read(seg(1)).unwrap(),
        std::fs::read(seg(2)).unwrap(),
    );
    let mut flipped = one.clone();
    flipped[4] ^= 0x01;
    std::fs::write(seg(1), &flipped).unwrap();
    std::fs::write(seg(2), &two[..two.len() - 10]).unwrap();
    let mut ids: Vec<&str> = all.iter().map(|m| m.transcript.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut named = std::collections::BTreeSet::new();
    for id in &ids {
        match store.transcript(id) {
            Ok(got) => {
                let want: Vec<Message> = all
                    .iter()
                    .filter(|m| m.transcript == *id)
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{id} read wrong");
            }
            Err(Error::Corrupt { path, offset, .. }) => {
                assert!(path == seg(1) || path == seg(2), "{path:?}");
                if path == seg(1) {
                    assert_eq!(offset, 0);
                }
                named.insert(path);
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
    assert_eq!(named.len(), 2, "both damaged segments reported");
    assert!(!store.verify().unwrap().is_ok());
    // Whole again: the same open reads everything.
    std::fs::write(seg(1), &one).unwrap();
    std::fs::write(seg(2), &two).unwrap();
    assert_reads(&store, &all);
    assert!(store.verify().unwrap().is_ok());
    drop(store);

    // A close of a store that saw no damage records the files as they are
    // (their inodes), and the run covers them all. A file damaged in place
    // since is still left unopened, and its damage is reported at its first
    // read, naming it.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().segments_unopened, segs as u64 - 1);
    drop(store);
    std::fs::write(seg(1), &flipped).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().segments_unopened, segs as u64 - 1);
    let in_one = ids
        .iter()
        .find(|id| {
            matches!(store.transcript(id), Err(Error::Corrupt { path, offset: 0, .. }) if path == seg(1))
        })
        .copied();
    assert!(in_one.is_some(), "segment 1's damage reported at a read");
    drop(store);
    // A file put in its place (another inode: a restored copy, here of the
    // same bytes) is listed by the next open, which would name damage in
    // it; the rest stays unopened.
    replace(&seg(1), &one);
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().segments_unopened, segs as u64 - 2);
    assert_reads(&store, &all);
    drop(store);
    replace(&seg(1), &flipped);
    match Store::open(dir.path(), small_segments()) {
        Err(Error::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (seg(1), 0)),
        Err(e) => panic!("expected corruption in segment 1, got {e}"),
        Ok(_) => panic!("opened with segment 1's header damaged"),
    }
}

/// A sealed segment file that goes missing is lost acknowledged data: open
/// refuses, naming it, and opens again once it is back. A compaction that
/// removes a segment (nothing in it live) first makes the keyring stop
/// naming the index's run, so its absence is no loss.
#[test]
fn a_missing_segment_is_reported_and_a_compacted_away_one_is_not() {
    let (dir, all) = many_segments();
    let tiny = tiny_segments;
    let seg = |id: u64| dir.path().join(format!("{id:012}.seg"));
    let kept = std::fs::read(seg(41)).unwrap();
    std::fs::remove_file(seg(41)).unwrap();
    for options in [
        tiny(),
        Options {
            read_only: true,
            ..tiny()
        },
    ] {
        match Store::open(dir.path(), options) {
            Err(Error::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (seg(41), 0)),
            Err(e) => panic!("expected segment 41 reported missing, got {e}"),
            Ok(_) => panic!("opened with segment 41 missing"),
        }
    }
    std::fs::write(seg(41), &kept).unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    assert_reads(&store, &all);
    // A quarter of the transcripts, written one after the other, deleted:
    // the segments that held only theirs are compacted away, and the store
    // opens as it was left.
    let gone: Vec<&str> = (40..80).map(|t| all[t * 8].transcript.as_str()).collect();
    for t in &gone {
        store.delete_transcript(t, "request").unwrap();
    }
    let report = store.compact(&CompactOptions::everything()).unwrap();
    assert!(report.segments_removed > 0, "{report:?}");
    drop(store);
    let store = Store::open(dir.path(), tiny()).unwrap();
    let live: Vec<Message> = all
        .iter()
        .filter(|m| !gone.contains(&m.transcript.as_str()))
        .cloned()
        .collect();
    assert_reads(&store, &live);
}

/// Puts a new file with `bytes` in `path`'s place (a new inode), as a
/// restore or `cp --remove-destination` does.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Open tells the segment files the checkpoint recorded by their inode
/// numbers in the directory's listing, without a system call per file:
/// each is left unopened, and one put in a file's place is listed.
#[test]
fn open_tells_a_store_of_many_segments_by_the_listing() {
    let (dir, all) = many_segments();
    let tiny = tiny_segments;
    let segs = seg_count(dir.path());
    assert!(segs > 64, "{segs} segments");
    let store = Store::open(dir.path(), tiny()).unwrap();
    let report = store.recovery_report();
    assert!(report.checkpoint_used);
    assert_eq!(report.segments_unopened, segs as u64 - 1);
    assert_reads(&store, &all);
    drop(store);
    let seg = |id: u64| dir.path().join(format!("{id:012}.seg"));
    replace(&seg(40), &std::fs::read(seg(40)).unwrap());
    let store = Store::open(dir.path(), tiny()).unwrap();
    assert_eq!(store.recovery_report().segments_unopened, segs as u64 - 2);
    assert_reads(&store, &all);
}

/// Compaction of a segment open left unopened, whose location file is
/// stale: the location file is rebuilt before the rewritten segment's takes
/// its name, and everything reads the same before and after a reopen.
#[test]
fn a_segment_left_unopened_with_a_stale_location_file_compacts() {
    let (dir, all) = build();
    let idx = |id: usize| dir.path().join(format!("{id:012}.idx"));
    std::fs::copy(idx(2), idx(1)).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().segments_unopened >= 2);
    store.delete_transcript("t-0", "request").unwrap();
    let report = store.compact(&CompactOptions::everything()).unwrap();
    assert!(
        report.segments_rewritten + report.segments_removed > 0,
        "{report:?}"
    );
    let rest = without(&all, "t-0");
    assert_reads(&store, &rest);
    assert!(store.verify().unwrap().is_ok());
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(!store.recovery_report().found_damage());
    assert_reads(&store, &rest);
    assert!(store.verify().unwrap().is_ok());
}

/// A backup checks the segments open left unopened before it copies them:
/// one damaged since open is refused, named, and copied once whole again.
#[test]
fn a_backup_checks_segments_left_unopened() {
    use shredlog::backup::{BackupKey, BackupOptions, DirTarget};
    let (dir, _all) = build();
    let seg1 = dir.path().join("000000000001.seg");
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().segments_unopened > 0);
    let good = std::fs::read(&seg1).unwrap();
    let mut bad = good.clone();
    bad[2] ^= 0x01;
    std::fs::write(&seg1, &bad).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let target = DirTarget::new(backups.path().join("points"));
    let key = BackupKey::from_hex(&"cd".repeat(32)).unwrap();
    match store.backup(&target, &key, &BackupOptions::default()) {
        Err(Error::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (seg1.clone(), 0)),
        Err(e) => panic!("expected corruption in segment 1, got {e}"),
        Ok(_) => panic!("a damaged segment was backed up"),
    }
    std::fs::write(&seg1, &good).unwrap();
    store
        .backup(&target, &key, &BackupOptions::default())
        .unwrap();
}
