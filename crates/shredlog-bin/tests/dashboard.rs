//! The dashboard over plain HTTP (no browser): sessions and their cookie,
//! form tokens and cross-site posts, the pages' headers, roles and tenants,
//! no personal data in any URL or log line, escaping. The browser test
//! (`tests/browser.rs`) drives the same pages in Chromium.

mod support;

use serde_json::json;
use support::*;

/// A signed-in browser, by hand: its session cookie and form token.
struct Session<'a> {
    s: &'a Server,
    cookie: String,
    csrf: String,
}

fn set_cookies(r: &Resp) -> Vec<&str> {
    r.headers_named("set-cookie")
}

/// The value of cookie `name` in a `Set-Cookie` of `r`.
fn cookie_of(r: &Resp, name: &str) -> Option<String> {
    set_cookies(r)
        .into_iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// `name="_csrf" value="…"` (or another hidden field) of a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs).unwrap().into_bytes()
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn sign_in<'a>(s: &'a Server, token: &str) -> Session<'a> {
    let page = s.request("GET", "/signin", &[], b"");
    assert_eq!(page.status, 200);
    let pre = cookie_of(&page, "shredlog_signin").expect("the sign-in form's cookie");
    let token_field = hidden(&page.body, "_signin");
    let r = s.request(
        "POST",
        "/signin",
        &[FORM, ("Cookie", &format!("shredlog_signin={pre}"))],
        &form(&[("_signin", &token_field), ("token", token)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = cookie_of(&r, "shredlog_session").expect("a session cookie");
    let home = s.request(
        "GET",
        "/",
        &[("Cookie", &format!("shredlog_session={cookie}"))],
        b"",
    );
    assert_eq!(home.status, 200);
    Session {
        s,
        csrf: hidden(&home.body, "_csrf"),
        cookie,
    }
}

impl Session<'_> {
    fn cookie(&self) -> String {
        format!("shredlog_session={}", self.cookie)
    }

    fn get(&self, path: &str) -> Resp {
        self.s
            .request("GET", path, &[("Cookie", &self.cookie())], b"")
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.s.request(
            "POST",
            path,
            &[FORM, ("Cookie", &self.cookie())],
            &form(&all),
        )
    }

    /// The visitor page's path for `email`.
    fn find(&self, email: &str) -> String {
        let r = self.post("/search", &[("email", email)]);
        assert_eq!(r.status, 303, "{}", r.body);
        r.header("location").unwrap().to_owned()
    }
}

fn line(t: &str, email: &str, text: &str) -> String {
    json!({"transcript": t, "ts": "2024-05-02T10:15:03Z", "from": "visitor",
        "visitor": {"email": email, "name": "Ann Lee", "phone": "+44 20 7946 0958"}, "kind": "text", "text": text})
    .to_string()
}

#[test]
fn pages_need_a_session_and_every_form_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    // No session: pages lead to the sign-in, forms are refused.
    let r = s.request("GET", "/", &[], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/signin")));
    let r = s.request(
        "POST",
        "/search",
        &[FORM],
        &form(&[("email", "ann@example.com")]),
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Your session has ended"));

    // Signing in: the form's own cookie is required, a wrong token is not
    // echoed, a good one gives an HttpOnly, SameSite=Strict cookie that expires.
    let page = s.request("GET", "/signin", &[], b"");
    let pre = cookie_of(&page, "shredlog_signin").unwrap();
    let field = hidden(&page.body, "_signin");
    let r = s.request(
        "POST",
        "/signin",
        &[FORM],
        &form(&[("_signin", &field), ("token", ADMIN)]),
    );
    assert_eq!(r.status, 403, "no sign-in cookie");
    assert!(cookie_of(&r, "shredlog_session").is_none());
    let with_pre = format!("shredlog_signin={pre}");
    let r = s.request(
        "POST",
        "/signin",
        &[FORM, ("Cookie", &with_pre)],
        &form(&[("_signin", &field), ("token", "wrong-token-9876543210")]),
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("That token is not valid") && !r.body.contains("wrong-token"));
    let r = s.request(
        "POST",
        "/signin",
        &[FORM, ("Cookie", &with_pre)],
        &form(&[("_signin", &field), ("token", ADMIN)]),
    );
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("shredlog_session="))
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(part), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    // Behind a TLS proxy that says so: Secure.
    let r = s.request(
        "POST",
        "/signin",
        &[FORM, ("Cookie", &with_pre), ("X-Forwarded-Proto", "https")],
        &form(&[("_signin", &field), ("token", ADMIN)]),
    );
    assert!(cookie_of(&r, "shredlog_session").is_some());
    assert!(
        set_cookies(&r).iter().all(|c| c.contains("; Secure")),
        "{:?}",
        set_cookies(&r)
    );

    // Signed in: a form without the session's token, or with another, or
    // from another site, or not form-encoded, changes nothing.
    let a = sign_in(&s, ADMIN);
    let cookie = a.cookie();
    for (headers, body) in [
        (
            vec![FORM, ("Cookie", cookie.as_str())],
            form(&[("email", "ann@example.com")]),
        ),
        (
            vec![FORM, ("Cookie", cookie.as_str())],
            form(&[
                ("_csrf", "0123456789abcdef0123456789abcdef"),
                ("email", "ann@example.com"),
            ]),
        ),
        (
            vec![
                FORM,
                ("Cookie", cookie.as_str()),
                ("Origin", "http://evil.example"),
            ],
            form(&[("_csrf", &a.csrf), ("email", "a@b.example")]),
        ),
        (
            vec![
                FORM,
                ("Cookie", cookie.as_str()),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            form(&[("_csrf", &a.csrf), ("email", "a@b.example")]),
        ),
        (
            vec![FORM, ("Cookie", cookie.as_str()), ("Origin", "null")],
            form(&[("_csrf", &a.csrf), ("email", "a@b.example")]),
        ),
    ] {
        let r = s.request("POST", "/search", &headers, &body);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
    }
    let r = s.request(
        "POST",
        "/search",
        &[("Content-Type", "text/plain"), ("Cookie", &cookie)],
        format!("_csrf={}&email=ann@example.com", a.csrf).as_bytes(),
    );
    assert_eq!(r.status, 415);
    // The same site, saying so: fine.
    let r = s.request(
        "POST",
        "/search",
        &[
            FORM,
            ("Cookie", &cookie),
            ("Origin", &s.base),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        &form(&[("_csrf", &a.csrf), ("email", "nobody@example.com")]),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("No visitor has that address"));

    // Signing out ends the session on the server too.
    let r = a.post("/signout", &[]);
    assert_eq!((r.status, r.header("location")), (303, Some("/signin")));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("shredlog_session=;") && c.contains("Max-Age=0"))
    );
    let r = a.get("/");
    assert_eq!((r.status, r.header("location")), (303, Some("/signin")));
}

#[test]
fn pages_carry_strict_headers_and_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &["--secure-cookies"]);
    let a = sign_in(&s, ADMIN);
    for path in ["/", "/store", "/audit", "/retention", "/signin"] {
        let r = a.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(
            r.header("content-security-policy"),
            Some(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            )
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        // Nothing inline for the policy to forbid: no inline script or style.
        assert!(
            !r.body.contains("<script>")
                && !r.body.contains("style=")
                && !r.body.contains("<style"),
            "{path}"
        );
    }
    // --secure-cookies: every cookie is Secure, on plain HTTP too.
    let page = s.request("GET", "/signin", &[], b"");
    assert!(set_cookies(&page).iter().all(|c| c.contains("; Secure")));
    // The assets are the embedded ones, and may be cached.
    let css = s.request("GET", "/assets/dashboard.css", &[], b"");
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );
    assert_eq!(css.header("cache-control"), Some("public, max-age=300"));
    assert!(css.body.contains(":focus-visible"));
    assert_eq!(s.request("GET", "/assets/nothing.js", &[], b"").status, 404);
}

#[test]
fn visitors_are_addressed_by_handles_that_name_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    let email = "Ann.Lee@example.com";
    assert_eq!(s.append(ADMIN, &line("t-1", email, "hello")).status, 200);
    let a = sign_in(&s, ADMIN);
    // Any spelling; a 32-digit handle, nothing of the address.
    let page = a.find("  MAILTO:ann.lee@EXAMPLE.com. ");
    let handle = page.strip_prefix("/visitors/").unwrap();
    assert!(
        handle.len() == 32 && handle.bytes().all(|b| b.is_ascii_hexdigit()),
        "{page}"
    );
    let r = a.get(&page);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Ann Lee") && r.body.contains("href=\"/transcripts/t-1\""));
    // Every link and form of the page is free of the address.
    for attr in ["href=\"", "action=\""] {
        for part in r.body.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(!url.to_lowercase().contains("ann.lee"), "{url}");
        }
    }
    // Another session (same tenant, same role) cannot use the handle.
    let b = sign_in(&s, ADMIN);
    let r = b.get(&page);
    assert_eq!(r.status, 410);
    assert!(r.body.contains("This visitor link has expired"));
    // Exports: files named for no one.
    let r = a.post(&format!("{page}/export"), &[("format", "csv")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"export.csv\"")
    );
    assert!(r.body.starts_with("visitor_email,"), "{}", r.body);
    // The log: route templates, never the address, the handle or a token.
    let log = s.log();
    assert!(log.contains("route=\"/visitors/{handle}\""), "{log}");
    for secret in ["ann.lee", "Ann.Lee", handle, ADMIN, &a.cookie] {
        assert!(!log.contains(secret), "the log holds {secret}");
    }
}

#[test]
fn a_writer_sees_no_admin_action_and_a_tenant_nothing_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    let email = "carol@example.net";
    assert_eq!(
        s.append(ADMIN, &line("acme-1", email, "acme chat")).status,
        200
    );
    let w = sign_in(&s, WRITER);
    let home = w.get("/");
    assert!(!home.body.contains("href=\"/audit\"") && !home.body.contains("href=\"/retention\""));
    let page = w.find(email);
    let r = w.get(&page);
    assert!(
        r.body.contains("acme-1") && !r.body.contains("/actions/") && !r.body.contains("/export")
    );
    for path in ["/audit", "/retention", &format!("{page}/actions/erase")] {
        let r = w.get(path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("Not available with your role"));
    }
    for (path, fields) in [
        (
            format!("{page}/actions/erase"),
            vec![("reference", "R-1"), ("confirm", email)],
        ),
        (format!("{page}/export"), vec![("format", "csv")]),
        ("/store/compact".to_owned(), vec![]),
        (
            "/retention".to_owned(),
            vec![("days", "0"), ("mode", "delete"), ("confirm_zero", "yes")],
        ),
    ] {
        assert_eq!(w.post(&path, &fields).status, 403, "{path}");
    }
    assert_eq!(
        s.api(
            "POST",
            "/v1/visitors/lookup",
            ADMIN,
            Some(&json!({"email": email}))
        )
        .json()["transcripts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // globex's admin: acme's visitor is nobody, acme's transcript nothing,
    // acme's name and counts nowhere.
    let g = sign_in(&s, OTHER_ADMIN);
    let r = g.post("/search", &[("email", email)]);
    assert_eq!(r.status, 404);
    for path in ["/", "/store", "/audit", "/retention", "/transcripts/acme-1"] {
        let r = g.get(path);
        assert!(!r.body.contains("acme"), "{path}: {}", r.body);
    }
    assert_eq!(g.get("/transcripts/acme-1").status, 404);
    assert!(
        g.get("/store")
            .body
            .contains("<dt>Transcripts</dt><dd>0</dd>")
    );
}

#[test]
fn what_visitors_wrote_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)> \"quoted\" & done";
    let id = "odd id/with?chars&<b>";
    assert_eq!(
        s.append(ADMIN, &line(id, "dan@example.org", hostile))
            .status,
        200
    );
    let a = sign_in(&s, ADMIN);
    let page = a.get(&a.find("dan@example.org"));
    let href = "/transcripts/odd%20id%2Fwith%3Fchars%26%3Cb%3E";
    assert!(
        page.body.contains(&format!("href=\"{href}\"")),
        "{}",
        page.body
    );
    let r = a.get(href);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; &quot;quoted&quot; &amp; done"), "{}", r.body);
    assert!(!r.body.contains("<script>alert") && !r.body.contains("<img src=x"));
    assert!(r.body.contains("odd id/with?chars&amp;&lt;b&gt;"));
}

#[test]
fn retention_needs_a_confirmation_for_zero_days_and_previews_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &[]);
    assert_eq!(
        s.append(ADMIN, &line("t-1", "eve@example.org", "old chat"))
            .status,
        200
    );
    let a = sign_in(&s, ADMIN);
    let r = a.post("/retention/preview", &[("days", "30"), ("mode", "redact")]);
    assert!(
        r.body
            .contains("Would redact <strong>1 transcript</strong> now."),
        "{}",
        r.body
    );
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"],
        serde_json::Value::Null,
        "a preview saves nothing"
    );
    for days in ["-1", "x", "36501"] {
        let r = a.post("/retention/preview", &[("days", days), ("mode", "redact")]);
        assert_eq!(r.status, 400, "{days}");
        assert!(r.body.contains("Enter a whole number of days"));
    }
    let r = a.post("/retention", &[("days", "0"), ("mode", "delete")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("Tick the box to confirm a period of 0 days")
    );
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"],
        serde_json::Value::Null
    );
    let r = a.post(
        "/retention",
        &[("days", "0"), ("mode", "delete"), ("confirm_zero", "yes")],
    );
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/retention?done=saved"))
    );
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"],
        json!({"older_than_ms": 0, "delete": true})
    );
    // Applying it: a reference naming a person is refused, then a receipt.
    let r = a.post("/retention/run", &[("reference", "ask 192.0.2.7")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("The reference contains an IP address"),
        "{}",
        r.body
    );
    let r = a.post("/retention/run", &[("reference", "RET-1")]);
    assert_eq!(r.status, 303);
    let receipt = a.get(r.header("location").unwrap());
    assert!(
        receipt.body.contains("Retention applied to 1 transcript"),
        "{}",
        receipt.body
    );
}
