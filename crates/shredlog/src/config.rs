//! Configuration of a store: [`Options`] (how the store runs) and the
//! detector's settings, together one serde document, [`Config`], that the
//! library, the `shredlog` command's flags and the server's TOML file all
//! read. Every field's documentation ends with its default.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pii::DetectorConfig;
use crate::seal::Key;

/// When an append is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum Durability {
    /// Every append returns only after its bytes (and any new keys) are on
    /// stable storage. Concurrent appenders share one sync (group commit).
    Immediate,
    /// Appends return once written to the OS; a background thread syncs at most
    /// every `interval_ms` milliseconds. **Appends acknowledged within the last
    /// interval before a crash or power loss may be lost.**
    Batched {
        /// Longest time between syncs.
        interval_ms: u64,
    },
}

/// Default of [`Options::cache_bytes`].
pub(crate) const DEFAULT_CACHE_BYTES: usize = 16 << 20;

/// Options for [`crate::Store::open`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Options {
    /// When appends are acknowledged. Default: `Immediate`.
    pub durability: Durability,
    /// Segment files are rolled when they would grow past this many bytes.
    /// The locations of the active segment's records are held in memory
    /// until it is sealed (about 40 bytes each), and sealing reads its
    /// records once more to write their location file (about 64 bytes
    /// each), so this bounds part of the memory an ingest needs; a smaller
    /// size means more files. Default: 32 MiB.
    pub segment_size: u64,
    /// Open a damaged store to read what is left: damaged records, keyring
    /// slots and audit lines are skipped and reported (see
    /// [`crate::Store::recovery_report`]) instead of failing the open. A
    /// salvage open is always read-only, so it can never destroy a key or
    /// make an undamaged record unreadable: export what you need and import
    /// it into a new store. Default: false.
    pub salvage: bool,
    /// Largest accepted message: all its fields together, file bytes
    /// included (the server measures its interchange JSON line). The one
    /// message limit of the library, the command and the server.
    /// Default: 64 MiB.
    pub max_message_bytes: usize,
    /// Which personal-data detectors run on message text. In a [`Config`]
    /// document this is its `[pii]` section. Default: emails, obfuscated
    /// emails, phones, IP addresses.
    #[serde(skip)]
    pub detector: DetectorConfig,
    /// Key-encryption key that wraps every keyring slot. Default: none (the
    /// keyring holds data keys and the email directory in plaintext; see
    /// docs/SECURITY.md for what that protects and what not).
    #[serde(skip)]
    pub kek: Option<KeyEncryptionKey>,
    /// Delete-persistence bound: dead bytes (shredded or deleted records) older
    /// than this many milliseconds are physically removed by a background
    /// compaction. Default: none (compact on demand with `Store::compact`).
    pub max_dead_age_ms: Option<u64>,
    /// Limit of the background compaction's I/O, bytes per second. Default: none.
    pub compaction_bytes_per_sec: Option<u64>,
    /// Write an index checkpoint whenever a segment is sealed and at close, so
    /// that open need not scan the log. Default: true.
    pub checkpoint: bool,
    /// Open without writing a byte to any file: recovery only reports what it
    /// would cut, logged erasures cut short are applied in memory, and every
    /// operation that writes fails with [`crate::Error::ReadOnly`]. Takes a
    /// shared lock, so several read-only opens may run at once. Default: false.
    pub read_only: bool,
    /// Transcript generations whose data keys are kept in memory at once.
    /// Keys are read from the keyring when a transcript is read or written
    /// and dropped (zeroised) beyond this many (any one held makes room);
    /// about 200 bytes each. A batch or a read needs the keys of the
    /// transcripts it touches at once, so more only saves keyring reads
    /// (a positioned read of one or two slots each). Default: 8,192
    /// (under 2 MiB).
    pub key_cache_entries: usize,
    /// Bytes of the index kept in memory after lookups read it: half for
    /// 4 KiB blocks of the record-location files and of the index run
    /// (docs/FORMAT.md §7a, §7b), a quarter for the run rows lookups found
    /// (a visitor's slot and listing, a generation's row, a caller id's
    /// generation; tens of bytes each), a quarter for the location-file
    /// summaries and entries transcript reads found. A visitor listed or a
    /// transcript read again then costs no read of those files. They hold
    /// random ids, offsets and times only. Default: 16 MiB.
    pub cache_bytes: usize,
    /// Accept transcript and message ids that contain personal data (an
    /// email, a phone number, an IP address...). Ids are kept outside sealed
    /// records, so **no erasure can remove personal data from them**; by
    /// default such ids are refused with [`crate::Error::PersonalData`].
    /// Turn this on only for ids you know to be opaque but that look like
    /// personal data. Default: false.
    pub allow_unerasable_personal_data_in_ids: bool,
    /// Create the store when the directory holds none. Without it, opening a
    /// directory without a keyring fails with [`crate::Error::NotAStore`].
    /// Default: true (never with `read_only`).
    pub create: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Immediate,
            segment_size: 32 << 20,
            salvage: false,
            max_message_bytes: 64 << 20,
            detector: DetectorConfig::default(),
            kek: None,
            max_dead_age_ms: None,
            compaction_bytes_per_sec: None,
            checkpoint: true,
            read_only: false,
            key_cache_entries: 8_192,
            cache_bytes: DEFAULT_CACHE_BYTES,
            allow_unerasable_personal_data_in_ids: false,
            create: true,
        }
    }
}

/// Everything a store can be told, as one serde document: `[store]` is
/// [`Options`], `[pii]` the detector's settings ([`DetectorConfig`]). The
/// server's `--config` TOML file holds it (beside the server's own keys), the
/// command's flags override it, and the library takes it as is.
///
/// ```
/// let config: shredlog::Config = toml_like(r#"{"store": {"segment-size": 1048576}, "pii": {"payment-cards": true}}"#);
/// let options = config.options();
/// assert_eq!(options.segment_size, 1 << 20);
/// assert!(options.detector.payment_cards);
/// # fn toml_like(s: &str) -> shredlog::Config { serde_json::from_str(s).unwrap() }
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// How the store runs. Default: [`Options::default`].
    pub store: Options,
    /// Which personal data the detector finds. Default: emails, obfuscated
    /// emails, phones, IP addresses; no payment cards, IBANs or custom patterns.
    pub pii: DetectorConfig,
}

impl Config {
    /// The store options with the detector's settings in them, ready for
    /// [`crate::Store::open`].
    pub fn options(&self) -> Options {
        let mut o = self.store.clone();
        o.detector = self.pii.clone();
        o
    }
}

/// A 256-bit key-encryption key supplied by the operator.
#[derive(Clone, Debug)]
pub struct KeyEncryptionKey(pub(crate) Key);

impl KeyEncryptionKey {
    /// Parses 64 hexadecimal digits (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`Error::Kek`] if the text is not exactly 32 bytes of hex.
    ///
    /// ```
    /// let kek = shredlog::KeyEncryptionKey::from_hex(&"ab".repeat(32)).unwrap();
    /// assert!(shredlog::KeyEncryptionKey::from_hex("abc").is_err());
    /// # drop(kek);
    /// ```
    pub fn from_hex(text: &str) -> Result<KeyEncryptionKey> {
        let text = text.trim();
        let bad =
            || Error::Kek("a key-encryption key must be 64 hexadecimal digits (32 bytes)".into());
        if text.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        let kek = KeyEncryptionKey(Key::from_bytes(key));
        zeroize::Zeroize::zeroize(&mut key);
        Ok(kek)
    }

    /// Reads a key file: 64 hex digits, or exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::Kek`] if the file cannot be read or holds something else.
    pub fn from_file(path: &Path) -> Result<KeyEncryptionKey> {
        let bytes =
            crate::secret::SecretVec::new(std::fs::read(path).map_err(|e| {
                Error::Kek(format!("cannot read key file {}: {e}", path.display()))
            })?);
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(KeyEncryptionKey(Key::from_bytes(raw)));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::Kek("key file is neither 32 raw bytes nor hex".into()))?;
        KeyEncryptionKey::from_hex(text)
    }
}
