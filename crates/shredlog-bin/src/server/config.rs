//! Server configuration: flags, environment variables and an optional TOML
//! file, resolved in that order of precedence (a flag beats its environment
//! variable, which beats the file, which beats the built-in default).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::config::{DurationValue, LogFormat, Settings, SizeValue, parse_duration, parse_size};

use super::auth::TokenTable;

/// Built-in defaults.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
const DEFAULT_MAX_BODY: u64 = 32 << 20;
const DEFAULT_MAX_FILE: u64 = 8 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONCURRENCY: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 512;
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// `shredlog serve`: the HTTP server (DESIGN §6, docs/SERVER.md).
///
/// Every setting can be given as a flag, as the environment variable named in
/// its help, or as a key of the TOML file given by `--config` (the key is the
/// flag's name without the dashes in front, e.g. `max-body-bytes = "32MiB"`).
/// A flag beats its environment variable, which beats the file. The store
/// options (`--data`, `--key-file`, `--durability`, ...) are the global ones
/// shown by `shredlog --help`; `data` may also be set in the file.
#[derive(Args, Debug, Clone)]
#[command(
    after_long_help = "Authentication: every route but /healthz needs `Authorization: Bearer TOKEN`. \
Tokens come from --token-file (one `ROLE TOKEN [TENANT]` a line; ROLE is `writer` \
(append and read) or `admin` (everything); TENANT defaults to `default`) and/or the \
environment variable SHREDLOG_TOKEN (an admin token of the default tenant). Tokens must \
be at least 16 characters (e.g. `openssl rand -hex 32`). Without any token the server \
refuses to start unless --insecure-no-auth is given.\n\n\
Tenants: each tenant is a separate store in DATA/tenants/NAME, opened on first use.\n\n\
Stop it with SIGTERM or SIGINT (Ctrl-C): it stops accepting, finishes the requests in \
flight, syncs and closes every store, and exits with status 0."
)]
pub(crate) struct ServeArgs {
    /// Address to listen on, HOST:PORT. Loopback by default; port 0 picks a
    /// free port. The bound address is printed on stdout as
    /// `shredlog: listening on http://ADDR`. [default: 127.0.0.1:7878]
    #[arg(long, env = "SHREDLOG_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// File of access tokens, one `ROLE TOKEN [TENANT]` a line (`#` starts a
    /// comment). ROLE: `writer` (append, read, lookup, consent, stats) or
    /// `admin` (everything). TENANT: `[a-z0-9][a-z0-9_-]*`, default `default`.
    /// Keep it readable by the server's user only.
    #[arg(long, env = "SHREDLOG_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Run with no authentication at all: every request acts as an admin of
    /// the default tenant. Only for local experiments; never settable from the
    /// environment or the file.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Log format on stderr: `text` or `json` (one JSON object per line).
    /// [default: text]
    #[arg(long, env = "SHREDLOG_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Largest request body, e.g. `32MiB`, `512KiB` or plain bytes; larger
    /// bodies get 413. [default: 32MiB]
    #[arg(long, env = "SHREDLOG_MAX_BODY_BYTES", value_parser = parse_size, value_name = "SIZE")]
    max_body_bytes: Option<u64>,
    /// Largest uploaded file (decoded bytes); larger ones get 413. [default: 8MiB]
    #[arg(long, env = "SHREDLOG_MAX_FILE_BYTES", value_parser = parse_size, value_name = "SIZE")]
    max_file_bytes: Option<u64>,
    /// Time limit of one request, e.g. `30s`, `2m` (compaction, retention
    /// runs, verify and rewrite-stale are exempt); a request over it gets 503
    /// `timeout`. [default: 30s]
    #[arg(long, env = "SHREDLOG_REQUEST_TIMEOUT", value_parser = parse_duration, value_name = "DURATION")]
    request_timeout: Option<Duration>,
    /// Requests handled at once; more wait (up to the request timeout) and
    /// then get 503 `overloaded`. [default: 64]
    #[arg(long, env = "SHREDLOG_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    max_concurrent_requests: Option<usize>,
    /// Connections held open at once. At the cap, a new connection closes
    /// the oldest one that has no request in progress (idle, or still
    /// sending its request head); if every one is busy, it is answered 503
    /// `overloaded`. [default: 512]
    #[arg(long, env = "SHREDLOG_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Time a client has to send a whole request head (request line and
    /// headers), also between requests on a kept-alive connection; the
    /// connection is closed after it. [default: 10s]
    #[arg(long, env = "SHREDLOG_HEADER_READ_TIMEOUT", value_parser = parse_duration, value_name = "DURATION")]
    header_read_timeout: Option<Duration>,
    /// Mark the dashboard's session cookie `Secure` (send it over HTTPS
    /// only). Set it when a TLS-terminating proxy is in front; the cookie is
    /// also marked `Secure` when a request says `X-Forwarded-Proto: https`.
    /// [default: false]
    #[arg(long, env = "SHREDLOG_SECURE_COOKIES")]
    secure_cookies: bool,
    /// How often the stored retention policy of every tenant is applied in the
    /// background, e.g. `1h`; `0` turns the background run off. [default: 1h]
    #[arg(long, env = "SHREDLOG_RETENTION_INTERVAL", value_parser = parse_duration, value_name = "DURATION")]
    retention_interval: Option<Duration>,
    /// At shutdown, how long to wait for requests in flight before closing the
    /// stores anyway. [default: 30s]
    #[arg(long, env = "SHREDLOG_SHUTDOWN_GRACE", value_parser = parse_duration, value_name = "DURATION")]
    shutdown_grace: Option<Duration>,
}

/// Request limits.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub max_body_bytes: u64,
    pub max_message_bytes: u64,
    pub max_file_bytes: u64,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// Connections held open at once.
    pub max_connections: usize,
    /// Time to send a whole request head.
    pub header_read_timeout: Duration,
}

/// The resolved configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub data: PathBuf,
    pub listen: String,
    /// `None` only with `--insecure-no-auth`.
    pub tokens: Option<TokenTable>,
    pub log_format: LogFormat,
    pub limits: Limits,
    /// `None`: no background retention run.
    pub retention_interval: Option<Duration>,
    pub shutdown_grace: Duration,
    /// The dashboard's session cookie is always `Secure`.
    pub secure_cookies: bool,
}

impl Config {
    /// The server's settings: its flags over the file's top-level keys over
    /// the defaults; the message limit is the store's.
    pub(crate) fn resolve(args: &ServeArgs, settings: &Settings) -> Result<Config> {
        let file = &settings.file;
        let data = settings.data.clone();
        let size = |flag: Option<u64>, file: &Option<SizeValue>, key: &str, default: u64| match (
            flag, file,
        ) {
            (Some(v), _) => Ok(v),
            (None, Some(v)) => v.get(key),
            (None, None) => Ok(default),
        };
        let dur = |flag: Option<Duration>,
                   file: &Option<DurationValue>,
                   key: &str,
                   default: Duration| match (flag, file) {
            (Some(v), _) => Ok(v),
            (None, Some(v)) => v.get(key),
            (None, None) => Ok(default),
        };
        let limits = Limits {
            max_body_bytes: size(
                args.max_body_bytes,
                &file.max_body_bytes,
                "max-body-bytes",
                DEFAULT_MAX_BODY,
            )?,
            max_message_bytes: settings.options().max_message_bytes as u64,
            max_file_bytes: size(
                args.max_file_bytes,
                &file.max_file_bytes,
                "max-file-bytes",
                DEFAULT_MAX_FILE,
            )?,
            request_timeout: dur(
                args.request_timeout,
                &file.request_timeout,
                "request-timeout",
                DEFAULT_TIMEOUT,
            )?,
            max_concurrent_requests: args
                .max_concurrent_requests
                .or(file.max_concurrent_requests)
                .unwrap_or(DEFAULT_CONCURRENCY),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            header_read_timeout: dur(
                args.header_read_timeout,
                &file.header_read_timeout,
                "header-read-timeout",
                DEFAULT_HEADER_READ_TIMEOUT,
            )?,
        };
        if limits.max_concurrent_requests == 0 {
            bail!("max-concurrent-requests must be at least 1");
        }
        if limits.max_connections == 0 {
            bail!("max-connections must be at least 1");
        }
        if limits.header_read_timeout.is_zero() {
            bail!("header-read-timeout must be longer than 0");
        }
        if limits.request_timeout.is_zero() {
            bail!("request-timeout must be longer than 0");
        }
        if limits.max_body_bytes == 0 || limits.max_message_bytes == 0 {
            bail!("max-body-bytes and max-message-bytes must be at least 1 byte");
        }
        let retention = dur(
            args.retention_interval,
            &file.retention_interval,
            "retention-interval",
            DEFAULT_RETENTION_INTERVAL,
        )?;
        let token_file = args.token_file.clone().or(file.token_file.clone());
        let mut tokens = TokenTable::default();
        if let Some(path) = &token_file {
            tokens.load_file(path)?;
        }
        if let Ok(token) = std::env::var("SHREDLOG_TOKEN") {
            tokens
                .add_env_token(&token)
                .context("the environment variable SHREDLOG_TOKEN")?;
        }
        let tokens = match (tokens.is_empty(), args.insecure_no_auth) {
            (true, false) => bail!(
                "no access token is configured: give --token-file FILE or set SHREDLOG_TOKEN \
                 (or, for a local experiment only, --insecure-no-auth)"
            ),
            (true, true) => None,
            (false, true) => bail!(
                "--insecure-no-auth was given but tokens are configured too; drop one of them"
            ),
            (false, false) => Some(tokens),
        };
        Ok(Config {
            data,
            listen: args
                .listen
                .clone()
                .or(file.listen.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            tokens,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            limits,
            retention_interval: Some(retention).filter(|d| !d.is_zero()),
            shutdown_grace: dur(
                args.shutdown_grace,
                &file.shutdown_grace,
                "shutdown-grace",
                DEFAULT_SHUTDOWN_GRACE,
            )?,
            secure_cookies: args.secure_cookies || file.secure_cookies.unwrap_or(false),
        })
    }
}
