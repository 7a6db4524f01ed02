//! The server against hostile or careless clients: request heads that never
//! end, floods of connections, URIs and headers too large, bodies that do not
//! say they are JSON, `/metrics` across tenants, `--insecure-no-auth` on a
//! public address; and the dry runs of the API.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use support::*;

/// Reads until the server closes the connection (or the 30 s read timeout
/// fails the test); what it sent.
fn read_until_closed(c: &mut TcpStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

fn half_sent(s: &Server) -> TcpStream {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    c
}

#[test]
fn a_request_head_that_never_ends_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &["--header-read-timeout", "1s"]);
    let mut c = half_sent(&s);
    // Closed by the server, without an answer.
    assert_eq!(read_until_closed(&mut c), b"");
    // So is an idle kept-alive connection after its first answer.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let out = String::from_utf8(read_until_closed(&mut c)).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with(r#"{"status":"ok"}"#),
        "{out}"
    );
}

#[test]
fn a_flood_of_half_sent_requests_does_not_starve_healthz() {
    let dir = tempfile::tempdir().unwrap();
    // A long head timeout: only the connection cap can help here.
    let s = start_with_tokens(
        dir.path(),
        &[
            "--max-connections",
            "4",
            "--header-read-timeout",
            "120s",
            "--request-timeout",
            "120s",
        ],
    );
    let mut flood: Vec<TcpStream> = (0..12).map(|_| half_sent(&s)).collect();
    // Each newcomer closed the oldest idle one; /healthz gets in and out.
    let r = s.request("GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok"}"#));
    // The oldest half-sent connections were closed to make room.
    for c in flood.iter_mut().take(8) {
        assert_eq!(read_until_closed(c), b"");
    }
    drop(flood);

    // Connections busy with a request are not closed: with all four busy
    // (bodies announced and not sent), a newcomer is told 503 at once.
    let auth = format!("Authorization: Bearer {ADMIN}\r\n");
    let busy: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            let head = format!(
                "POST /v1/messages HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
            );
            c.write_all(head.as_bytes()).unwrap();
            // "100 Continue" comes once the handler reads the body: from
            // then on the request is in progress.
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 100"), "{:?}", String::from_utf8_lossy(&buf[..n]));
            c
        })
        .collect();
    let r = s.request("GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.code().as_str()), (503, "overloaded"), "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(busy);
}

#[test]
fn answers_hyper_writes_itself_have_json_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    for (request, status, code) in [
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)),
            414,
            "uri_too_long",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "b".repeat(500_000)
            ),
            431,
            "headers_too_large",
        ),
        ("NOT HTTP AT ALL\r\n\r\n".to_owned(), 400, "bad_request"),
    ] {
        let r = parse(&s.raw(request.as_bytes()));
        assert_eq!((r.status, r.code().as_str()), (status, code), "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("content-length").unwrap(),
            r.body.len().to_string()
        );
    }
    // And every other answer has one too (the router's 405, 404, 401).
    let r = s.request(
        "PATCH",
        "/v1/messages",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    );
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
}

#[test]
fn json_routes_want_json_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    let line = r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"text","text":"hi"}"#;
    assert_eq!(s.append(ADMIN, line).status, 200);
    let auth = format!("Bearer {ADMIN}");
    // What a cross-site HTML form can send without asking: refused.
    for ct in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let r = s.request(
            "POST",
            "/v1/visitors/erase",
            &[("Authorization", &auth), ("Content-Type", ct)],
            br#"{"email":"ann@example.com"}"#,
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (415, "unsupported_media_type"),
            "{ct}"
        );
        let r = s.request(
            "POST",
            "/v1/messages",
            &[("Authorization", &auth), ("Content-Type", ct)],
            line.as_bytes(),
        );
        assert_eq!(r.status, 415, "{ct}");
    }
    let r = s.request(
        "POST",
        "/v1/visitors/lookup",
        &[("Authorization", &auth)],
        br#"{"email":"ann@example.com"}"#,
    );
    assert_eq!(r.status, 415, "no content type");
    // Nothing was erased.
    let r = s.api(
        "POST",
        "/v1/visitors/lookup",
        ADMIN,
        Some(&json!({"email": "ann@example.com"})),
    );
    assert_eq!(r.json()["transcripts"].as_array().unwrap().len(), 1);
    // An optional body may be empty without a content type.
    let r = s.request("POST", "/v1/compact", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    // JSON with a charset, and JSON lines, are fine.
    let r = s.request(
        "POST",
        "/v1/messages",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        line.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn metrics_show_only_the_callers_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    let line = |email: &str| {
        format!(
            r#"{{"transcript":"t-1","ts":"2024-05-02T10:15:03Z","from":"visitor","visitor":{{"email":"{email}"}},"kind":"text","text":"hi"}}"#
        )
    };
    assert_eq!(s.append(ADMIN, &line("ann@example.com")).status, 200);
    assert_eq!(s.append(OTHER_ADMIN, &line("bob@example.com")).status, 200);
    let r = s.api(
        "POST",
        "/v1/visitors/erase",
        OTHER_ADMIN,
        Some(&json!({"email": "bob@example.com", "reference": "R-1"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // acme's writer: acme's series, nothing named globex, no globex counts.
    let m = s.api("GET", "/metrics", WRITER, None);
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("shredlog_store_transcripts{tenant=\"acme\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("shredlog_erasures_total{tenant=\"acme\"} 0"),
        "{}",
        m.body
    );
    assert!(!m.body.contains("globex"), "{}", m.body);
    assert!(!m.body.contains("/v1/visitors/erase"), "{}", m.body);
    // globex sees its erasure, and nothing of acme.
    let m = s.api("GET", "/metrics", OTHER_ADMIN, None);
    assert!(
        m.body
            .contains("shredlog_erasures_total{tenant=\"globex\"} 1"),
        "{}",
        m.body
    );
    assert!(!m.body.contains("acme"), "{}", m.body);
}

#[test]
fn insecure_no_auth_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = try_start(&data, &["--insecure-no-auth", "--listen", "0.0.0.0:0"], &[])
        .err()
        .expect("started without authentication on every address");
    assert!(log.contains("refused on a non-loopback address"), "{log}");
    let s = start(&data, &["--insecure-no-auth", "--listen", "127.0.0.1:0"]);
    assert_eq!(s.request("GET", "/v1/stats", &[], b"").status, 200);
}

#[test]
fn every_answer_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    for r in [
        s.request("GET", "/healthz", &[], b""),
        s.api("GET", "/v1/stats", ADMIN, None),
        s.request("GET", "/v1/stats", &[], b""),
    ] {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}

#[test]
fn the_api_dry_runs_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    assert_eq!(s.append(ADMIN, &sample()).status, 200);
    let maria = "GOMEZ.MariaJose@example.com";
    let audit_len = || {
        s.api("GET", "/v1/audit", ADMIN, None).json()["entries"]
            .as_array()
            .unwrap()
            .len()
    };

    let p = s
        .api(
            "POST",
            "/v1/visitors/erase",
            ADMIN,
            Some(&json!({"email": maria, "dry_run": true})),
        )
        .json();
    assert_eq!(p["op"], "erasure");
    let erase_n = p["transcripts"].as_u64().unwrap();
    assert!(erase_n >= 2, "{p}");
    let p = s
        .api(
            "POST",
            "/v1/visitors/delete",
            ADMIN,
            Some(&json!({"email": maria, "dry_run": true})),
        )
        .json();
    assert_eq!(
        (p["op"].as_str(), p["transcripts"].as_u64()),
        (Some("delete-visitor"), Some(erase_n))
    );
    let p = s
        .api("DELETE", "/v1/transcripts/t-1001?dry_run=true", ADMIN, None)
        .json();
    assert_eq!(p["op"], "delete-transcript");
    let p = s
        .api(
            "POST",
            "/v1/retention/run",
            ADMIN,
            Some(&json!({"older_than": "1d", "dry_run": true})),
        )
        .json();
    let all = p["preview"]["transcripts"].as_u64().unwrap();
    assert!(all > erase_n, "{p}");
    // No stored policy: nothing to preview.
    let p = s
        .api(
            "POST",
            "/v1/retention/run",
            ADMIN,
            Some(&json!({"dry_run": true})),
        )
        .json();
    assert_eq!(p["preview"], serde_json::Value::Null);
    assert_eq!(audit_len(), 0);
    let r = s.api(
        "POST",
        "/v1/visitors/lookup",
        ADMIN,
        Some(&json!({"email": maria})),
    );
    assert_eq!(
        r.json()["transcripts"].as_array().unwrap().len() as u64,
        erase_n
    );

    // A period of 0 needs confirming, to store and to run.
    for (method, path) in [("PUT", "/v1/retention"), ("POST", "/v1/retention/run")] {
        let r = s.api(method, path, ADMIN, Some(&json!({"older_than": "0d"})));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "confirmation_required"),
            "{path}"
        );
    }
    let r = s.api(
        "PUT",
        "/v1/retention",
        ADMIN,
        Some(&json!({"older_than_ms": 0, "confirm_zero": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let p = s
        .api(
            "POST",
            "/v1/retention/run",
            ADMIN,
            Some(&json!({"dry_run": true})),
        )
        .json();
    assert_eq!(p["preview"]["transcripts"].as_u64(), Some(all));
    assert_eq!(audit_len(), 0);
    // The erasure then does what its dry run said.
    let e = s
        .api(
            "POST",
            "/v1/visitors/erase",
            ADMIN,
            Some(&json!({"email": maria, "reference": "DSR-9"})),
        )
        .json();
    assert_eq!(e["transcripts"].as_u64(), Some(erase_n));
}
