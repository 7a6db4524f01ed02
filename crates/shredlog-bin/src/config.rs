//! The command's configuration: one TOML file (`--config FILE`, or
//! `SHREDLOG_CONFIG`) for every subcommand, overridden by flags and their
//! environment variables, over the built-in defaults.
//!
//! ```toml
//! data = "/var/lib/shredlog"        # the store directory
//! listen = "127.0.0.1:7878"         # server keys: see `shredlog serve --help`
//! token-file = "/etc/shredlog/tokens"
//! max-message-bytes = "12MiB"       # the store's limit (also `[store]`)
//!
//! [store]                           # shredlog::Options
//! durability = "immediate"
//! segment-size = 67108864
//! max-dead-age-ms = 86400000
//!
//! [pii]                             # the detector (docs/PII.md)
//! payment-cards = true
//! [[pii.custom]]
//! name = "customer-number"
//! regex = 'CN-\d{8}'
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use shredlog::pii::{CustomPattern, DetectorConfig};
use shredlog::{Config, Durability, KeyEncryptionKey, Options};

/// The default store directory.
pub(crate) const DEFAULT_DATA: &str = "./shredlog-data";

/// The TOML file: the store's configuration (`[store]`, `[pii]`) and the
/// server's keys (at the top level).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    pub data: Option<PathBuf>,
    /// The store's message limit, also settable in `[store]` (the server's
    /// documented key).
    pub max_message_bytes: Option<SizeValue>,
    pub store: Option<Options>,
    pub pii: Option<DetectorConfig>,
    // The server's own keys (`server::config`).
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub max_body_bytes: Option<SizeValue>,
    pub max_file_bytes: Option<SizeValue>,
    pub request_timeout: Option<DurationValue>,
    pub max_concurrent_requests: Option<usize>,
    pub max_connections: Option<usize>,
    pub secure_cookies: Option<bool>,
    pub header_read_timeout: Option<DurationValue>,
    pub retention_interval: Option<DurationValue>,
    pub shutdown_grace: Option<DurationValue>,
    /// Backups (docs/BACKUP.md): destination, key, schedule.
    pub backup: Option<crate::server::backup::BackupSettings>,
}

/// A size in the file: bytes as an integer, or a string like `"32MiB"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// A duration in the file: seconds as an integer, or a string like `"30s"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DurationValue {
    Secs(u64),
    Text(String),
}

impl SizeValue {
    pub(crate) fn get(&self, key: &str) -> Result<u64> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(s) => parse_size(s).map_err(|e| anyhow::anyhow!("`{key}`: {e}")),
        }
    }
}

impl DurationValue {
    pub(crate) fn get(&self, key: &str) -> Result<Duration> {
        match self {
            DurationValue::Secs(n) => Ok(Duration::from_secs(*n)),
            DurationValue::Text(s) => {
                parse_duration(s).map_err(|e| anyhow::anyhow!("`{key}`: {e}"))
            }
        }
    }
}

/// The server's log line format (`log-format`, `--log-format`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// What the flags say about the store (each `None` when not given).
#[derive(Debug, Default)]
pub(crate) struct StoreFlags {
    pub data: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub durability: Option<Durability>,
    pub segment_size: Option<u64>,
    pub max_message_bytes: Option<u64>,
    pub detect: Option<Vec<String>>,
    pub pii_patterns: Vec<String>,
    pub salvage: bool,
}

/// The resolved configuration of a command.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The store directory.
    pub data: PathBuf,
    /// The store's configuration (flags applied).
    pub config: Config,
    /// The file as read (the server reads its own keys from it).
    pub file: FileConfig,
}

impl Settings {
    /// Resolves flags over the file over the defaults.
    pub(crate) fn resolve(flags: &StoreFlags) -> Result<Settings> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut config = Config {
            store: file.store.clone().unwrap_or_default(),
            pii: file.pii.clone().unwrap_or_default(),
        };
        let store_sets_limit = file
            .store
            .as_ref()
            .is_some_and(|s| s.max_message_bytes != Options::default().max_message_bytes);
        if let Some(v) = &file.max_message_bytes {
            if store_sets_limit {
                bail!("max-message-bytes is set both at the top level and in [store]; keep one");
            }
            config.store.max_message_bytes = size_usize(v.get("max-message-bytes")?)?;
        }
        if let Some(d) = flags.durability {
            config.store.durability = d;
        }
        if let Some(n) = flags.segment_size {
            config.store.segment_size = n;
        }
        if let Some(n) = flags.max_message_bytes {
            config.store.max_message_bytes = size_usize(n)?;
        }
        config.store.salvage |= flags.salvage;
        if let Some(kinds) = &flags.detect {
            config.pii = detector_of(kinds, config.pii)?;
        }
        for p in &flags.pii_patterns {
            let Some((name, regex)) = p.split_once('=') else {
                bail!("--pii-pattern takes NAME=REGEX");
            };
            config.pii.custom.push(CustomPattern {
                name: name.trim().to_owned(),
                regex: regex.to_owned(),
            });
        }
        if let Some(path) = &flags.key_file {
            config.store.kek = Some(KeyEncryptionKey::from_file(path)?);
        } else if let Ok(hex) = std::env::var("SHREDLOG_KEK") {
            config.store.kek = Some(KeyEncryptionKey::from_hex(&hex).context("SHREDLOG_KEK")?);
        }
        let data = flags
            .data
            .clone()
            .or_else(|| file.data.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        Ok(Settings { data, config, file })
    }

    /// The store options these settings describe.
    pub(crate) fn options(&self) -> Options {
        self.config.options()
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        // Name the place, not the line's text (a custom pattern could be
        // anything the operator typed).
        let at = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {column}")
        });
        anyhow::anyhow!(
            "the config file {} is not valid{at}: {}",
            path.display(),
            e.message()
        )
    })
}

fn size_usize(n: u64) -> Result<usize> {
    usize::try_from(n).context("max-message-bytes is too large")
}

/// The detector with exactly `kinds` switched on (custom patterns kept).
fn detector_of(kinds: &[String], base: DetectorConfig) -> Result<DetectorConfig> {
    let mut d = DetectorConfig {
        emails: false,
        obfuscated_emails: false,
        phones: false,
        ips: false,
        payment_cards: false,
        ibans: false,
        ..base
    };
    for k in kinds.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        match k {
            "email" => d.emails = true,
            "obfuscated-email" => d.obfuscated_emails = true,
            "phone" => d.phones = true,
            "ip" => d.ips = true,
            "payment-card" => d.payment_cards = true,
            "iban" => d.ibans = true,
            other => bail!(
                "--detect: unknown kind `{other}`; the kinds are email, obfuscated-email, phone, ip, payment-card, iban"
            ),
        }
    }
    Ok(d)
}

/// Parses `123`, `64KiB`, `16MiB`, `1GiB` (also `KB`/`MB`/`GB`, `K`/`M`/`G`
/// meaning the binary units).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 32MiB, 512KiB or 1048576"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}`: the unit must be one of B, KiB, MiB, GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `1d` (a plain number means seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s, 500ms, 2m, 1h"))?;
    let ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}`: the unit must be one of ms, s, m, h, d")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("1y").is_err());
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("shredlog.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn one_file_for_the_store_the_detector_and_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "data = \"/srv/x\"\nlisten = \"127.0.0.1:1\"\nmax-body-bytes = \"1MiB\"\nmax-message-bytes = \"2MiB\"\n\
             [store]\nsegment-size = 4096\nmax-dead-age-ms = 60000\ndurability = { batched = { interval-ms = 50 } }\n\
             [pii]\npayment-cards = true\nphones = false\n[[pii.custom]]\nname = \"cn\"\nregex = 'CN-\\d{8}'\n",
        );
        let flags = StoreFlags {
            config: Some(path),
            ..StoreFlags::default()
        };
        let s = Settings::resolve(&flags).unwrap();
        assert_eq!(s.data, PathBuf::from("/srv/x"));
        let o = s.options();
        assert_eq!(o.segment_size, 4096);
        assert_eq!(o.max_dead_age_ms, Some(60_000));
        assert_eq!(o.max_message_bytes, 2 << 20);
        assert_eq!(o.durability, Durability::Batched { interval_ms: 50 });
        assert!(o.detector.payment_cards && !o.detector.phones);
        assert_eq!(o.detector.custom.len(), 1);
        assert_eq!(s.file.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(
            s.file.max_body_bytes.as_ref().unwrap().get("x").unwrap(),
            1 << 20
        );
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "data = \"/srv/x\"\n[store]\nsegment-size = 4096\n",
        );
        let flags = StoreFlags {
            config: Some(path),
            data: Some("/elsewhere".into()),
            segment_size: Some(8192),
            detect: Some(vec!["email".into(), "iban".into()]),
            pii_patterns: vec!["ticket=T-\\d+".into()],
            ..StoreFlags::default()
        };
        let s = Settings::resolve(&flags).unwrap();
        assert_eq!(s.data, PathBuf::from("/elsewhere"));
        let o = s.options();
        assert_eq!(o.segment_size, 8192);
        assert!(o.detector.emails && o.detector.ibans && !o.detector.phones);
        assert_eq!(o.detector.custom[0].name, "ticket");
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, says) in [
            ("[pii]\nlasers = true\n", "lasers"),
            ("[store]\nsegment-size = \"big\"\n", "line 2, column 16"),
            ("insecure-no-auth = true\n", "insecure-no-auth"),
            (
                "max-message-bytes = 10\n[store]\nmax-message-bytes = 20\n",
                "both at the top level and in [store]",
            ),
        ] {
            let flags = StoreFlags {
                config: Some(write(dir.path(), text)),
                ..StoreFlags::default()
            };
            let err = format!("{:#}", Settings::resolve(&flags).unwrap_err());
            assert!(err.contains(says), "{text}: {err}");
        }
        let flags = StoreFlags {
            detect: Some(vec!["names".into()]),
            ..StoreFlags::default()
        };
        assert!(Settings::resolve(&flags).is_err());
    }
}
