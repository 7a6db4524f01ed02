//! What the server tests of the dashboard, the hardening and the dry runs
//! share: the real `shredlog serve` on an ephemeral loopback port, a plain
//! HTTP client that follows no redirect and keeps cookies by hand.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const ADMIN: &str = "admin-token-acme-0123456789abcdef";
pub const WRITER: &str = "writer-token-acme-0123456789abcdef";
pub const OTHER_ADMIN: &str = "admin-token-globex-0123456789abcdef";

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub addr: String,
    log: PathBuf,
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// The token file of the tests: admin and writer of `acme`, admin of `globex`.
pub fn token_file(dir: &Path) -> PathBuf {
    let p = dir.join("tokens");
    std::fs::write(
        &p,
        format!("admin {ADMIN} acme\nwriter {WRITER} acme\nadmin {OTHER_ADMIN} globex\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

/// `shredlog serve --data DIR ARGS`, with no SHREDLOG_* variable but `envs`.
pub fn command(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shredlog"));
    cmd.arg("serve").arg("--data").arg(data);
    if !args.iter().any(|a| a.starts_with("--listen")) {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SHREDLOG_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied());
    cmd
}

/// Starts the server and waits for its "listening on" line; `Err` with its
/// log if it stopped instead.
// The child is waited for in `Server::drop`.
#[allow(clippy::zombie_processes)]
pub fn try_start(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
    let log = data.with_extension("log");
    let mut child = command(data, args, envs)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn shredlog serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        if let Some(base) = line.trim().strip_prefix("shredlog: listening on ") {
            return Ok(Server {
                child,
                base: base.to_owned(),
                addr: base.trim_start_matches("http://").to_owned(),
                log,
            });
        }
    }
}

pub fn start(data: &Path, args: &[&str]) -> Server {
    try_start(data, args, &[]).unwrap_or_else(|log| panic!("the server did not start: {log}"))
}

/// A server with the tests' tokens under `dir`.
pub fn start_with_tokens(dir: &Path, args: &[&str]) -> Server {
    let tokens = token_file(dir);
    let mut all = vec!["--token-file", tokens.to_str().unwrap()];
    all.extend_from_slice(args);
    start(&dir.join("data"), &all)
}

impl Server {
    /// One request on a new connection; `headers` as given, and
    /// `Content-Length` for the body. Follows no redirect.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        parse(&self.raw(&bytes))
    }

    /// An API call with a bearer token and a JSON body.
    pub fn api(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        let text = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.request(method, path, &headers, text.as_bytes())
    }

    /// Appends interchange lines (NDJSON) with `token`.
    pub fn append(&self, token: &str, lines: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.request(
            "POST",
            "/v1/messages",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-ndjson"),
            ],
            lines.as_bytes(),
        )
    }

    /// Writes `bytes` on a new connection and reads until the server closes it.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut c = TcpStream::connect(&self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses a whole HTTP/1.1 answer (with `Content-Length` or chunked).
pub fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
}

/// Files under `dir` (recursively) holding `needle`, ASCII-case-insensitively.
pub fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, &mut all);
    let needle = needle.to_ascii_lowercase().into_bytes();
    all.into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap().to_ascii_lowercase();
            bytes.windows(needle.len()).any(|w| w == needle.as_slice())
        })
        .collect()
}

/// The sample shipped with the repository.
pub fn sample() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample.jsonl"),
    )
    .unwrap()
}
