//! The HTTP server, tested from outside: the real `shredlog serve` binary on
//! an ephemeral loopback port, a real HTTP client (ureq).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789abcdef";
const WRITER: &str = "writer-token-0123456789abcdef";

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

struct Resp {
    status: u16,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `code` of a JSON error.
    fn code(&self) -> String {
        assert!(
            self.content_type.starts_with("application/json"),
            "error without JSON: {} {}",
            self.status,
            self.body
        );
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Starts `shredlog serve` with `args` and `envs` (no other SHREDLOG_*
/// variables) and waits for its "listening on" line.
fn start(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    try_start(data, args, envs)
        .unwrap_or_else(|(status, log)| panic!("the server did not start ({status:?}): {log}"))
}

fn command(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shredlog"));
    cmd.arg("serve").arg("--data").arg(data);
    if !args
        .iter()
        .any(|a| a.starts_with("--listen") || a.starts_with("--config"))
        && !envs.iter().any(|(k, _)| *k == "SHREDLOG_LISTEN")
    {
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

// The child is waited for in `Server::drop` or `Server::terminate`.
#[allow(clippy::zombie_processes)]
fn try_start(
    data: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Result<Server, (Option<ExitStatus>, String)> {
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
            let status = child.wait().ok();
            return Err((status, std::fs::read_to_string(&log).unwrap_or_default()));
        }
        if let Some(addr) = line.trim().strip_prefix("shredlog: listening on ") {
            return Ok(Server {
                child,
                base: addr.to_owned(),
                log,
            });
        }
    }
}

impl Server {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        self.call_with(method, path, token, body, &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        let mut r = agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            r = r.set(k, v);
        }
        // JSON bodies say so (the server answers 415 otherwise).
        if body.is_some()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            r = r.set("Content-Type", "application/json");
        }
        let res = match body {
            Some(b) => r.send_string(b),
            None => r.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        Resp {
            status: resp.status(),
            content_type: resp.content_type().to_owned(),
            body: resp.into_string().unwrap(),
        }
    }

    /// Sends `request` as is on a new connection; the whole answer.
    fn raw(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&out).contains("}") {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(token), Some(&body.to_string()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// SIGTERM, then the exit status (within 20 s).
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
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

fn token_file(dir: &Path, lines: &str) -> PathBuf {
    let p = dir.join("tokens");
    std::fs::write(&p, lines).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

fn text_line(transcript: &str, email: Option<&str>, text: &str) -> Value {
    let mut v = json!({"transcript": transcript, "ts": "2024-05-02T10:15:03.120Z",
        "from": "visitor", "kind": "text", "text": text});
    if let Some(e) = email {
        v["visitor"] = json!({"email": e, "name": "Ann Lee", "phone": "+44 20 7946 0958"});
    }
    v
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Files under `dir` that hold `needle`, compared ASCII-case-insensitively.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let needle = needle.to_ascii_lowercase().into_bytes();
    files(dir)
        .into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap().to_ascii_lowercase();
            bytes.windows(needle.len()).any(|w| w == needle.as_slice())
        })
        .collect()
}

#[test]
fn refuses_to_start_without_a_token_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Err((status, log)) = try_start(&data, &[], &[]) else {
        panic!("started without any token");
    };
    assert!(!status.unwrap().success());
    assert!(log.contains("--insecure-no-auth"), "{log}");

    // A weak token is refused, naming the line but not the token.
    let tokens = token_file(dir.path(), "admin short-secret\n");
    let Err((_, log)) = try_start(&data, &["--token-file", tokens.to_str().unwrap()], &[]) else {
        panic!("started with a short token");
    };
    assert!(
        log.contains("line 1") && !log.contains("short-secret"),
        "{log}"
    );

    // A tenant name that would escape the data directory is refused.
    let tokens = token_file(dir.path(), &format!("admin {ADMIN} ../../etc\n"));
    assert!(try_start(&data, &["--token-file", tokens.to_str().unwrap()], &[]).is_err());

    // Explicitly insecure: every request is an admin of the default tenant.
    let s = start(&data, &["--insecure-no-auth"], &[]);
    let r = s.call("GET", "/v1/stats", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(s.log().contains("authentication is OFF"));
}

#[test]
fn auth_roles_and_the_openapi_document_match_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = token_file(
        dir.path(),
        &format!("# roles\nadmin {ADMIN}\nwriter {WRITER} default\n"),
    );
    let s = start(
        &dir.path().join("data"),
        &["--token-file", tokens.to_str().unwrap()],
        &[],
    );
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    let doc = s.call("GET", "/v1/openapi.json", Some(WRITER), None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.3");

    // The routes the issue asks for are all there.
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/v1/messages"),
        ("get", "/v1/transcripts/{id}"),
        ("delete", "/v1/transcripts/{id}"),
        ("post", "/v1/transcripts/{id}/rewrite"),
        ("post", "/v1/visitors/lookup"),
        ("post", "/v1/visitors/export"),
        ("post", "/v1/visitors/erase"),
        ("post", "/v1/visitors/delete"),
        ("post", "/v1/visitors/consent"),
        ("post", "/v1/visitors/restrict"),
        ("post", "/v1/visitors/lift-restriction"),
        ("post", "/v1/visitors/rectify"),
        ("get", "/v1/retention"),
        ("put", "/v1/retention"),
        ("post", "/v1/retention/run"),
        ("get", "/v1/holds"),
        ("post", "/v1/holds"),
        ("post", "/v1/holds/release"),
        ("post", "/v1/compact"),
        ("get", "/v1/stats"),
        ("get", "/v1/audit"),
        ("get", "/metrics"),
        ("get", "/readyz"),
        ("get", "/healthz"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }

    // Every documented operation exists in the router, answers as documented,
    // and enforces its role.
    let mut operations = 0;
    for (path, ops) in paths {
        let url = path.replace("{id}", "no-such-transcript");
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let method = method.to_ascii_uppercase();
            let role = op["x-shredlog-role"].as_str().unwrap();
            let documented = |status: u16| {
                op["responses"].get(status.to_string()).is_some()
                    || (status >= 400 && op["responses"].get("default").is_some())
            };
            if role == "none" {
                let r = s.call(&method, &url, None, None);
                assert_eq!(r.status, 200, "{method} {path}");
                continue;
            }
            // No token, a wrong token: 401 with a JSON error.
            let r = s.call(&method, &url, None, None);
            assert_eq!(
                (r.status, r.code().as_str()),
                (401, "unauthorized"),
                "{method} {path}"
            );
            let r = s.call(&method, &url, Some("not-a-valid-token-at-all"), None);
            assert_eq!(r.status, 401, "{method} {path}");
            // The writer token: 403 on admin routes.
            let r = s.call(&method, &url, Some(WRITER), None);
            if role == "admin" {
                assert_eq!(
                    (r.status, r.code().as_str()),
                    (403, "forbidden"),
                    "{method} {path}"
                );
            } else {
                assert!(
                    ![401, 403, 405].contains(&r.status),
                    "{method} {path}: {}",
                    r.body
                );
            }
            // The admin token: routed (no 404 `not_found`, no 405), and a
            // documented status.
            let r = s.call(&method, &url, Some(ADMIN), None);
            assert!(
                ![401, 403, 405].contains(&r.status),
                "{method} {path}: {}",
                r.body
            );
            if r.status >= 400 {
                assert_ne!(r.code(), "not_found", "{method} {path} is not routed");
            }
            assert!(
                documented(r.status),
                "{method} {path}: undocumented {}",
                r.status
            );
        }
    }
    assert!(operations >= 28, "{operations}");

    // What is not documented is not routed.
    let r = s.call("GET", "/v1/nothing-here", Some(ADMIN), None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = s.call("GET", "/v1/nothing-here", None, None);
    assert_eq!(r.status, 401);
    let r = s.call("PATCH", "/v1/messages", Some(ADMIN), None);
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    // Bearer scheme is case-insensitive; other schemes are refused.
    let r = s.call_with(
        "GET",
        "/v1/stats",
        None,
        None,
        &[("Authorization", &format!("bearer {ADMIN}"))],
    );
    assert_eq!(r.status, 200);
    let r = s.call_with(
        "GET",
        "/v1/stats",
        None,
        None,
        &[("Authorization", &format!("Basic {ADMIN}"))],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn erasure_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let ann = "Ann.Lee@example.com";
    let bob = "bob.stone@example.org";

    // A batch as a JSON array, and NDJSON.
    let batch = json!([
        text_line("tq-ann-1", Some(ann), "hi, my other address is ann@work.example"),
        {"transcript": "tq-ann-1", "ts": "2024-05-02T10:16:00Z", "from": "visitor", "kind": "form",
         "form": {"email": ann, "company": "Lee & Co"}},
        {"transcript": "tq-ann-1", "ts": "2024-05-02T10:17:00Z", "from": "visitor", "kind": "file",
         "file": {"name": "passport.png", "mime": "image/png", "data": "aGVsbG8="}},
        {"transcript": "tq-ann-1", "ts": "2024-05-02T10:18:00Z", "from": "system", "kind": "consent",
         "consent": {"granted": true, "prompt": "May we keep this chat?"}},
        text_line("tq-bob-1", Some(bob), "hello from bob"),
    ]);
    let r = s.post("/v1/messages", ADMIN, &batch);
    assert_eq!(
        (r.status, r.json()["appended"].as_u64()),
        (200, Some(5)),
        "{}",
        r.body
    );
    let nd = format!(
        "{}\n{}\n",
        text_line("tq-ann-2", Some(ann), "second chat"),
        json!({"transcript": "tq-ann-2", "ts": "2024-05-03T09:00:00Z", "from": "operator", "kind": "text", "text": "welcome back"})
    );
    let r = s.call_with(
        "POST",
        "/v1/messages",
        Some(ADMIN),
        Some(&nd),
        &[("Content-Type", "application/x-ndjson")],
    );
    assert_eq!(r.json()["appended"], 2, "{}", r.body);

    // Read back, look up, consent, export.
    let t = s
        .call("GET", "/v1/transcripts/tq-ann-1", Some(ADMIN), None)
        .json();
    assert_eq!(t["messages"].as_array().unwrap().len(), 4);
    assert_eq!(t["messages"][0]["visitor"]["email"], ann);
    let nd = s.call_with(
        "GET",
        "/v1/transcripts/tq-ann-2",
        Some(ADMIN),
        None,
        &[("Accept", "application/x-ndjson")],
    );
    assert_eq!(
        (nd.content_type.as_str(), nd.body.lines().count()),
        ("application/x-ndjson", 2)
    );
    let list = s
        .post(
            "/v1/visitors/lookup",
            ADMIN,
            &json!({"email": " ANN.lee@EXAMPLE.com"}),
        )
        .json();
    let ids: Vec<&str> = list["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transcript"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tq-ann-2", "tq-ann-1"], "newest first");
    let c = s
        .post("/v1/visitors/consent", ADMIN, &json!({"email": ann}))
        .json();
    assert_eq!(c["current"], true);
    let ex = s.post("/v1/visitors/export", ADMIN, &json!({"email": ann}));
    assert_eq!(ex.status, 200);
    assert_eq!(ex.content_type, "application/x-ndjson");
    assert_eq!(ex.body.lines().count(), 6);
    let csv = s.post(
        "/v1/visitors/export",
        ADMIN,
        &json!({"email": ann, "format": "csv"}),
    );
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(csv.body.starts_with("visitor_email,"));
    assert_eq!(csv.body.lines().count(), 7);

    // Legal hold blocks deletion; restriction blocks reads.
    let r = s.post(
        "/v1/holds",
        ADMIN,
        &json!({"transcript": "tq-ann-2", "reference": "case-7"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call(
        "DELETE",
        "/v1/transcripts/tq-ann-2?reference=T-9",
        Some(ADMIN),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (409, "legal_hold"));
    assert_eq!(
        s.call("GET", "/v1/holds", Some(ADMIN), None).json()["holds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.post(
        "/v1/holds/release",
        ADMIN,
        &json!({"transcript": "tq-ann-2"}),
    );
    let r = s.post(
        "/v1/visitors/restrict",
        ADMIN,
        &json!({"email": ann, "reference": "T-8"}),
    );
    assert_eq!(r.status, 200);
    let r = s.call("GET", "/v1/transcripts/tq-ann-1", Some(ADMIN), None);
    assert_eq!((r.status, r.code().as_str()), (423, "restricted"));
    s.post(
        "/v1/visitors/lift-restriction",
        ADMIN,
        &json!({"email": ann}),
    );

    // The erasure request and its report.
    let r = s.post(
        "/v1/visitors/erase",
        ADMIN,
        &json!({"email": ann, "reference": "DSR-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["op"], "erasure");
    assert_eq!(report["transcripts"], 2);
    assert_eq!(report["reference"], "DSR-1");
    assert!(report["subject"].as_str().unwrap().starts_with("visitor:"));
    assert!(!r.body.to_ascii_lowercase().contains("ann"), "{}", r.body);

    // Afterwards: nothing to find, redacted reads, no email anywhere on disk.
    let list = s
        .post("/v1/visitors/lookup", ADMIN, &json!({"email": ann}))
        .json();
    assert_eq!(list["transcripts"], json!([]));
    let r = s.post("/v1/visitors/export", ADMIN, &json!({"email": ann}));
    assert_eq!((r.status, r.code().as_str()), (404, "visitor_not_found"));
    let t = s
        .call("GET", "/v1/transcripts/tq-ann-1", Some(ADMIN), None)
        .json();
    assert_eq!(t["messages"][0]["visitor"]["email"], "<redacted>");
    assert_eq!(
        t["messages"][0]["text"],
        "hi, my other address is <redacted>"
    );
    let tenant = data.join("tenants/default");
    for needle in [ann, "ann@work.example", "7946 0958", "passport.png"] {
        assert_eq!(
            files_holding(&tenant, needle),
            Vec::<PathBuf>::new(),
            "{needle}"
        );
    }
    let audit = s.call("GET", "/v1/audit", Some(ADMIN), None).json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "erasure")
    );

    // Retention: policy, on-demand run.
    let r = s.call(
        "PUT",
        "/v1/retention",
        Some(ADMIN),
        Some(r#"{"older_than":"1d"}"#),
    );
    assert_eq!(
        r.json()["policy"]["older_than_ms"],
        86_400_000,
        "{}",
        r.body
    );
    let r = s.call("POST", "/v1/retention/run", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["report"]["op"], "retention");
    let t = s
        .call("GET", "/v1/transcripts/tq-bob-1", Some(ADMIN), None)
        .json();
    assert_eq!(t["messages"][0]["visitor"]["email"], "<redacted>");
    assert!(files_holding(&tenant, bob).is_empty());

    let metrics = s.call("GET", "/metrics", Some(ADMIN), None);
    assert!(metrics.content_type.starts_with("text/plain"));
    for want in [
        "shredlog_erasures_total{tenant=\"default\"} 1",
        "shredlog_retention_runs_total{tenant=\"default\",trigger=\"request\"} 1",
        "shredlog_http_requests_total{tenant=\"default\",route=\"/v1/visitors/erase\",method=\"POST\",status=\"200\"} 1",
        "shredlog_store_dead_bytes{tenant=\"default\"}",
    ] {
        assert!(
            metrics.body.contains(want),
            "{want} not in\n{}",
            metrics.body
        );
    }

    // The access log names route templates, never emails or transcript ids.
    let log = s.log();
    assert!(log.contains("route=\"/v1/transcripts/{id}\""), "{log}");
    for secret in [
        "ann.lee",
        "Ann.Lee",
        "bob.stone",
        "tq-ann",
        "tq-bob",
        "DSR-1",
        ADMIN,
    ] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
}

#[test]
fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = "admin-a-0123456789abcdef";
    let b = "admin-b-0123456789abcdef";
    let bw = "writer-b-0123456789abcdef";
    let tokens = token_file(
        dir.path(),
        &format!("admin {a} acme\nadmin {b} globex\nwriter {bw} globex\n"),
    );
    let s = start(
        &data,
        &[
            "--token-file",
            tokens.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[],
    );
    let email = "carol@example.net";
    let r = s.post(
        "/v1/messages",
        a,
        &text_line("same-id", Some(email), "acme chat"),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // The other tenant sees nothing of it, and can reuse the id.
    let r = s.call("GET", "/v1/transcripts/same-id", Some(bw), None);
    assert_eq!((r.status, r.code().as_str()), (404, "transcript_not_found"));
    let list = s
        .post("/v1/visitors/lookup", bw, &json!({"email": email}))
        .json();
    assert_eq!(list["transcripts"], json!([]));
    let r = s.post("/v1/visitors/erase", b, &json!({"email": email}));
    assert_eq!((r.status, r.code().as_str()), (404, "visitor_not_found"));
    let r = s.post(
        "/v1/messages",
        bw,
        &text_line("same-id", Some("dan@example.net"), "globex chat"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = s
        .call("GET", "/v1/transcripts/same-id", Some(a), None)
        .json();
    assert_eq!(t["messages"][0]["text"], "acme chat");
    let t = s
        .call("GET", "/v1/transcripts/same-id", Some(bw), None)
        .json();
    assert_eq!(t["messages"][0]["text"], "globex chat");
    // The writer of globex may not erase.
    let r = s.post(
        "/v1/visitors/erase",
        bw,
        &json!({"email": "dan@example.net"}),
    );
    assert_eq!(r.status, 403);

    // One directory per tenant, opened on first use only.
    let mut names: Vec<String> = std::fs::read_dir(data.join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["acme", "globex"]);

    // JSON logs, one object a line.
    let log = s.log();
    let access: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    assert!(access.len() >= 8, "{log}");
    assert!(
        access
            .iter()
            .all(|v| v["route"].is_string() && v["request_id"].is_string())
    );
    assert!(!log.contains("carol") && !log.contains("same-id"));
}

#[test]
fn limits_malformed_json_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shredlog.toml");
    let tokens = token_file(dir.path(), &format!("admin {ADMIN}\n"));
    std::fs::write(
        &config,
        format!(
            "token-file = {:?}\nmax-body-bytes = \"64KiB\"\nmax-message-bytes = \"16KiB\"\nmax-file-bytes = 1024\nrequest-timeout = \"20s\"\n",
            tokens.to_str().unwrap()
        ),
    )
    .unwrap();
    // Listen address from the environment, the rest from the file.
    let s = start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[("SHREDLOG_LISTEN", "127.0.0.1:0")],
    );
    let post = |body: &str| s.call("POST", "/v1/messages", Some(ADMIN), Some(body));

    // A body announced over the limit is refused before it is sent (a raw
    // request: the server answers without reading the 10 MiB).
    let head = s.raw(&format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 << 20
    ));
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("\"code\":\"body_too_large\""), "{head}");
    let r = post(&text_line("t", Some("e@example.com"), &"y".repeat(20 << 10)).to_string());
    assert_eq!((r.status, r.code().as_str()), (413, "message_too_large"));
    let file = json!({"transcript": "t", "ts": "2024-05-02T10:15:03Z", "visitor": {"email": "e@example.com"},
        "kind": "file", "file": {"name": "a.bin", "mime": "application/octet-stream", "data": "QUFB".repeat(700)}});
    let r = post(&file.to_string());
    assert_eq!((r.status, r.code().as_str()), (413, "file_too_large"));

    let r = post(r#"{"transcript": "t", "ts": "#);
    assert_eq!((r.status, r.code().as_str()), (400, "malformed_json"));
    let r = post("[]");
    assert_eq!((r.status, r.code().as_str()), (400, "empty_batch"));
    let r = post(
        r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","colour":"red"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_message"));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`")
    );
    // A batch is refused whole: the valid first message is not stored.
    let r = post(
        &json!([text_line("t-ok", Some("e@example.com"), "fine"), {"transcript": "t-ok"}])
            .to_string(),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_message"));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("message 1:")
    );
    let r = s.call("GET", "/v1/transcripts/t-ok", Some(ADMIN), None);
    assert_eq!(r.status, 404);

    // Bodies that do not fit the schema, without echoing values.
    let r = s.call(
        "POST",
        "/v1/visitors/lookup",
        Some(ADMIN),
        Some(r#"{"email": 5}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_body"));
    let r = s.call(
        "POST",
        "/v1/visitors/erase",
        Some(ADMIN),
        Some(r#"{"email":"x@example.com","reference":"x","ann@example.com":1}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_body"));
    assert!(!r.body.contains("ann@"), "{}", r.body);
    let r = s.call("POST", "/v1/visitors/erase", Some(ADMIN), Some("{}"));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("missing field `email`")
    );
    let r = s.call(
        "POST",
        "/v1/visitors/lookup",
        Some(ADMIN),
        Some(r#"{"email":"x@example.com","from":"yesterday"}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid"));
    let r = s.call("GET", "/v1/audit?after=minus-one", Some(ADMIN), None);
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_query"));
    let r = s.call("GET", "/v1/transcripts/%FF%FE", Some(ADMIN), None);
    assert_eq!(r.status, 400);
    assert!(r.content_type.starts_with("application/json"));
}

/// A client thread appending 5-message batches to `t-durable` until a request
/// fails; returns how many messages were acknowledged.
fn appender(base: String) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let mut acked = 0u64;
        for i in 0..100_000 {
            let batch: Vec<Value> = (0..5)
                .map(|j| json!({"transcript": "t-durable", "ts": "2024-05-02T10:15:04Z", "from": "operator", "kind": "text", "text": format!("m{i}-{j}")}))
                .collect();
            let res = agent
                .post(&format!("{base}/v1/messages"))
                .set("Authorization", &format!("Bearer {ADMIN}"))
                .set("Content-Type", "application/json")
                .send_string(&Value::Array(batch).to_string());
            match res {
                Ok(r) if r.status() == 200 => acked += 5,
                _ => break,
            }
        }
        acked
    })
}

#[test]
fn graceful_shutdown_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let first = text_line("t-durable", Some("erin@example.com"), "first");
    assert_eq!(s.post("/v1/messages", ADMIN, &first).status, 200);

    // A client appends in a loop while the server is told to stop.
    let writer = appender(s.base.clone());
    std::thread::sleep(Duration::from_millis(400));
    let (status, log) = s.terminate();
    let acked = writer.join().unwrap();
    assert!(status.success(), "exit status {status:?}:\n{log}");
    assert!(
        log.contains("SIGTERM") && log.contains("store closed") && log.contains("stopped cleanly"),
        "{log}"
    );
    assert!(acked > 0, "no append was acknowledged before the signal");

    // Restart on the same data: every acknowledged message is there.
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let t = s
        .call("GET", "/v1/transcripts/t-durable", Some(ADMIN), None)
        .json();
    let n = t["messages"].as_array().unwrap().len() as u64;
    assert!(n > acked, "{n} messages stored, {acked} + 1 acknowledged");
    let (status, _) = s.terminate();
    assert!(status.success());
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let first = text_line("t-durable", Some("frank@example.com"), "first");
    assert_eq!(s.post("/v1/messages", ADMIN, &first).status, 200);
    let writer = appender(s.base.clone());
    std::thread::sleep(Duration::from_millis(400));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let acked = writer.join().unwrap();
    assert!(acked > 0);

    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let t = s
        .call("GET", "/v1/transcripts/t-durable", Some(ADMIN), None)
        .json();
    let n = t["messages"].as_array().unwrap().len() as u64;
    assert!(n > acked, "{n} messages stored, {acked} + 1 acknowledged");
}

/// A batch retried after its answer was lost (a time-out, a dropped
/// connection) stores nothing twice when its messages carry ids.
#[test]
fn an_append_retried_with_message_ids_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = "admin-0123456789abcdef0123";
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", token)]);
    let mut batch = Vec::new();
    for i in 0..3 {
        let mut line = text_line("t-retry", (i == 0).then_some("eve@example.org"), "hello");
        line["id"] = json!(format!("msg-{i}"));
        batch.push(line);
    }
    let body = Value::Array(batch);
    let first = s.post("/v1/messages", token, &body);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.json(),
        json!({"appended": 3, "stored": 3, "already_stored": 0})
    );
    let again = s.post("/v1/messages", token, &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.json(),
        json!({"appended": 3, "stored": 0, "already_stored": 3})
    );
    let t = s
        .call("GET", "/v1/transcripts/t-retry", Some(token), None)
        .json();
    let messages = t["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2]["id"], "msg-2", "ids come back");
}

/// Personal data cannot enter where erasure does not reach (issue 13): a
/// reference, a hold reference or a transcript id with an email, a phone
/// number or an IP address is refused with 400 `personal_data` and one
/// sentence that does not repeat it; nothing of it reaches any file.
#[test]
fn personal_data_in_references_and_ids_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let r = s.post(
        "/v1/messages",
        ADMIN,
        &text_line("t-1", Some("ann@example.com"), "hello"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let leaks = [
        "request from s.guerin@courriel.example",
        "call +44 20 7946 0958",
        "from 198.51.100.23",
    ];
    for reference in leaks {
        for (path, body) in [
            (
                "/v1/visitors/erase",
                json!({"email": "ann@example.com", "reference": reference}),
            ),
            (
                "/v1/visitors/restrict",
                json!({"email": "ann@example.com", "reference": reference}),
            ),
            (
                "/v1/holds",
                json!({"transcript": "t-1", "reference": reference}),
            ),
            (
                "/v1/transcripts/t-1/rewrite",
                json!({"reference": reference}),
            ),
        ] {
            let r = s.post(path, ADMIN, &body);
            assert_eq!(
                (r.status, r.code().as_str()),
                (400, "personal_data"),
                "{path}: {}",
                r.body
            );
            let message = r.json()["message"].as_str().unwrap().to_owned();
            assert!(message.starts_with("the reference contains "), "{message}");
            assert!(
                message.ends_with("use a ticket number or another reference that names no person")
            );
        }
    }
    let r = s.call(
        "DELETE",
        "/v1/transcripts/t-1?reference=mail%20ann%40example.com",
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "personal_data"),
        "{}",
        r.body
    );
    let r = s.post(
        "/v1/visitors/erase",
        ADMIN,
        &json!({"email": "ann@example.com", "reference": "x".repeat(300)}),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid"),
        "{}",
        r.body
    );
    // Ids.
    let r = s.post(
        "/v1/messages",
        ADMIN,
        &text_line("chat-bob@example.org", Some("bob@example.org"), "hello"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "personal_data"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("bob@"), "{}", r.body);
    // A valid erasure still works, and no file holds what was refused.
    let r = s.post(
        "/v1/visitors/erase",
        ADMIN,
        &json!({"email": "ann@example.com", "reference": "DSAR-17"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for needle in [
        "s.guerin",
        "7946 0958",
        "198.51.100.23",
        "bob@example.org",
        "ann@example.com",
    ] {
        assert!(
            files_holding(&data, needle).is_empty(),
            "{needle} in a file"
        );
    }
}

/// Read-only routes change no byte of any file of the store (issue 12): a
/// snapshot of every file before and after calling each of them.
#[test]
fn read_only_routes_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = start(&data, &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let batch = json!([
        text_line(
            "t-1",
            Some("ann@example.com"),
            "hello, call me on +44 20 7946 0958"
        ),
        text_line("t-2", Some("bob@example.org"), "hi"),
    ]);
    assert_eq!(s.post("/v1/messages", ADMIN, &batch).status, 200);
    let r = s.post(
        "/v1/visitors/erase",
        ADMIN,
        &json!({"email": "bob@example.org", "reference": "T-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let snapshot = || -> Vec<(PathBuf, Vec<u8>)> {
        files(&data)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    };
    let before = snapshot();
    assert!(!before.is_empty());
    for (method, path, body) in [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        ("GET", "/v1/openapi.json", None),
        ("GET", "/v1/transcripts/t-1", None),
        ("GET", "/v1/transcripts/t-2", None),
        ("GET", "/v1/transcripts/t-missing", None),
        (
            "POST",
            "/v1/visitors/lookup",
            Some(r#"{"email":"ann@example.com"}"#),
        ),
        (
            "POST",
            "/v1/visitors/lookup",
            Some(r#"{"email":"bob@example.org"}"#),
        ),
        (
            "POST",
            "/v1/visitors/consent",
            Some(r#"{"email":"ann@example.com"}"#),
        ),
        (
            "POST",
            "/v1/visitors/export",
            Some(r#"{"email":"ann@example.com","format":"json"}"#),
        ),
        (
            "POST",
            "/v1/visitors/export",
            Some(r#"{"email":"ann@example.com","format":"csv"}"#),
        ),
        ("GET", "/v1/holds", None),
        ("GET", "/v1/retention", None),
        ("POST", "/v1/verify", None),
        ("GET", "/v1/stats", None),
        ("GET", "/v1/audit", None),
    ] {
        let r = s.call(method, path, Some(ADMIN), body);
        assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.body);
        assert!(snapshot() == before, "{method} {path} changed a file");
    }
}

/// A batch refused by a rule the store checks names the message (issue 16).
#[test]
fn a_refused_batch_names_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("data"), &[], &[("SHREDLOG_TOKEN", ADMIN)]);
    let batch = json!([
        text_line("t-1", Some("ann@example.com"), "hello"),
        text_line("t-2", Some("bob@example.org"), "hi"),
        text_line(
            "t-1",
            Some("someone.else@example.org"),
            "not the same visitor"
        ),
    ]);
    let r = s.post("/v1/messages", ADMIN, &batch);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_message"),
        "{}",
        r.body
    );
    let m = r.json()["message"].as_str().unwrap().to_owned();
    assert!(m.starts_with("message 2: "), "{m}");
    assert!(!m.contains("someone.else"), "{m}");
    let batch = json!([
        text_line("t-3", Some("cy@example.org"), "hello"),
        text_line("chat-cy@example.org", Some("cy@example.org"), "hello"),
    ]);
    let r = s.post("/v1/messages", ADMIN, &batch);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "personal_data"),
        "{}",
        r.body
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("message 1: the transcript id contains")
    );
    // Nothing of either batch was stored.
    let r = s.call("GET", "/v1/transcripts/t-3", Some(ADMIN), None);
    assert_eq!(r.status, 404);
}
