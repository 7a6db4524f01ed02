//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (the system's `chromedriver`; nothing is downloaded). A privacy officer
//! signs in, finds a visitor by any spelling of their address, reads,
//! exports (the CSV parses), erases with confirmation (the transcript then
//! reads `<redacted>` and no byte of the store holds the address), sets a
//! retention policy after its preview, compacts and reads the audit log; a
//! writer sees no admin action, another tenant sees nothing of this one, and
//! a form posted from another site changes nothing. Every page is checked
//! with axe-core (vendored, injected by the test): no serious or critical
//! violation.
//!
//! Without `chromedriver` the test says so and passes, unless
//! `SHREDLOG_BROWSER_TESTS=require` (as `.ci/run` sets). With
//! `SHREDLOG_SCREENSHOTS=DIR` it saves a screenshot of each page there
//! (docs/dashboard/ holds the ones in docs/SERVER.md).

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::*;

const AXE: &str = include_str!("fixtures/axe-core/axe.min.js");
const MARIA: &str = "gomez.mariajose@example.com";
const PAGING: &str = "paging.visitor@example.org";

/// The system's chromedriver, or why there is none.
fn chromedriver() -> Option<PathBuf> {
    let found = ["chromedriver", "chromium-driver"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("SHREDLOG_BROWSER_TESTS").as_deref() != Ok("require"),
            "SHREDLOG_BROWSER_TESTS=require but no chromedriver on PATH (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "browser test skipped: no chromedriver on PATH (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(path: &Path) -> Driver {
    use std::io::BufRead;
    // Port 0: chromedriver picks a free port and says which.
    let mut child = Command::new(path)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("started successfully on port ")
                .nth(1)
                .and_then(|p| p.trim().trim_end_matches('.').parse::<u16>().ok())
        })
        .expect("chromedriver says its port");
    // Keep reading what it says, so that it never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// One browser (its own profile, cookies and download folder).
struct Browser {
    c: Client,
    base: String,
    downloads: PathBuf,
    shots: Option<PathBuf>,
}

async fn browser(driver: &Driver, base: &str, downloads: &Path) -> Browser {
    // A profile of its own: browsers of parallel tests share nothing.
    let profile = tempfile::Builder::new()
        .prefix("profile-")
        .tempdir_in(downloads.parent().unwrap())
        .unwrap()
        .keep();
    let mut caps = serde_json::Map::new();
    let mut chrome = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1",
                 "--no-first-run", "--disable-extensions", "--lang=en-GB",
                 format!("--user-data-dir={}", profile.display())],
        "prefs": {
            "download.default_directory": downloads.to_str().unwrap(),
            "download.prompt_for_download": false,
            "safebrowsing.enabled": false,
        },
    });
    for bin in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(bin).is_file() {
            chrome["binary"] = json!(bin);
            break;
        }
    }
    caps.insert("goog:chromeOptions".into(), chrome);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session");
    Browser {
        c,
        base: base.to_owned(),
        downloads: downloads.to_owned(),
        shots: std::env::var_os("SHREDLOG_SCREENSHOTS").map(PathBuf::from),
    }
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    async fn source(&self) -> String {
        self.c.source().await.unwrap()
    }

    /// The text of the page's main content.
    async fn main_text(&self) -> String {
        self.c
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn h1(&self) -> String {
        self.c
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, id: &str, text: &str) {
        let e = self.c.find(Locator::Id(id)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Clicks what leads to another page, and waits for that page.
    async fn click(&self, css: &str) {
        let e = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        self.navigating(e).await;
    }

    /// Clicks what changes no page (a download, a checkbox).
    async fn click_here(&self, css: &str) {
        let e = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.click().await.unwrap();
    }

    async fn click_link(&self, text: &str) {
        let e = self
            .c
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("link {text:?}: {e}"));
        self.navigating(e).await;
    }

    /// Clicks and waits until the page it was on is gone and the next one
    /// is loaded (a bound for a hung browser, not a measurement).
    async fn navigating(&self, e: fantoccini::elements::Element) {
        let old = self.c.find(Locator::Css("html")).await.unwrap();
        e.click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "the click led nowhere");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            let state = self.c.execute("return document.readyState", vec![]).await;
            if matches!(
                state.as_ref().ok().and_then(Value::as_str),
                Some("complete")
            ) {
                break;
            }
            assert!(Instant::now() < deadline, "the next page never loaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn has(&self, css: &str) -> bool {
        !self.c.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    /// Signs in with `token`; lands on the visitor search.
    /// axe itself finds what it should, on a page made to fail it.
    async fn axe_finds_faults(&self) {
        self.c
            .goto("data:text/html,<html><body><img src=x><input type=text></body></html>")
            .await
            .unwrap();
        self.c.execute(AXE, vec![]).await.unwrap();
        let ids = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(r => done(r.violations.map(v => v.id)));",
                vec![],
            )
            .await
            .unwrap();
        let ids: Vec<&str> = ids
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            ids.contains(&"image-alt") && ids.contains(&"label"),
            "{ids:?}"
        );
    }

    async fn sign_in(&self, token: &str) {
        self.goto("/").await;
        assert_eq!(
            self.path().await,
            "/signin",
            "signed in already: {}",
            self.source().await
        );
        self.fill("token", token).await;
        self.click("form[action='/signin'] button[type=submit]")
            .await;
        assert_eq!(self.path().await, "/", "{}", self.main_text().await);
    }

    /// Searches a visitor; on their page, returns its path.
    async fn find_visitor(&self, email: &str) -> String {
        self.goto("/").await;
        self.fill("email", email).await;
        self.click("form.search button[type=submit]").await;
        self.path().await
    }

    /// axe-core on the page as it is: no serious or critical violation.
    async fn axe(&self, page: &str) {
        self.c.execute(AXE, vec![]).await.unwrap();
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))))
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
                vec![],
            )
            .await
            .unwrap();
        let all = found.as_array().cloned().unwrap_or_default();
        let serious: Vec<&Value> = all
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{page}: accessibility violations: {serious:#?}"
        );
        if !all.is_empty() {
            eprintln!("{page}: minor accessibility findings: {all:?}");
        }
    }

    /// Saves a screenshot of the whole page when asked to
    /// (`SHREDLOG_SCREENSHOTS`): the window is made as tall as the page
    /// (at most 2,400 pixels) for it.
    async fn shot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        std::fs::create_dir_all(dir).unwrap();
        let tall = self
            .c
            .execute(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .unwrap();
        let (page, chrome) = (
            tall[0].as_u64().unwrap_or(900),
            tall[1].as_u64().unwrap_or(0),
        );
        let height = (page.clamp(760, 2400) + chrome) as u32;
        self.c.set_window_size(1280, height).await.unwrap();
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.c.set_window_size(1280, 900).await.unwrap();
    }

    /// Waits for a download named `name` to be complete; its bytes.
    fn download(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let partial = std::fs::read_dir(&self.downloads).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".crdownload")
            });
            if path.is_file() && !partial {
                return std::fs::read(&path).unwrap();
            }
            assert!(Instant::now() < deadline, "no download {name}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the page's main content holds `text` (pages may come
    /// and go meanwhile).
    async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let shown = match self.c.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if shown.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "never showed {text:?}: {shown}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The store's data: the sample, a visitor with 23 transcripts (paging),
/// and a message that tries to inject markup.
fn fill_store(s: &Server) {
    let r = s.append(ADMIN, &sample());
    assert_eq!(r.status, 200, "{}", r.body);
    let mut lines = String::new();
    for i in 0..23 {
        let month = 1 + i % 12;
        let year = 2023 + i / 12;
        lines.push_str(&json!({"transcript": format!("p-{i:02}"), "ts": format!("{year}-{month:02}-15T10:00:00Z"),
            "from": "visitor", "visitor": {"email": PAGING, "name": "Pat Paging"}, "kind": "text",
            "text": format!("question number {i}")}).to_string());
        lines.push('\n');
    }
    lines.push_str(
        &json!({"transcript": "x-1", "ts": "2024-06-01T10:00:00Z", "from": "visitor",
        "visitor": {"email": "mallory@example.net"}, "kind": "text",
        "text": "<script>document.title='owned'</script><img src=x onerror=alert(1)>"})
        .to_string(),
    );
    assert_eq!(s.append(ADMIN, &lines).status, 200);
    let r = s.append(
        OTHER_ADMIN,
        &json!({"transcript": "g-1", "ts": "2024-06-01T10:00:00Z", "from": "visitor",
        "visitor": {"email": "gina@globex.example"}, "kind": "text", "text": "globex chat"})
        .to_string(),
    );
    assert_eq!(r.status, 200);
}

/// A page served from another site (another host name, so another site
/// for the browser) that posts a form to the dashboard at once.
fn attacker(action: &str, fields: &[(&str, &str)]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=hidden name=\"{k}\" value=\"{v}\">"))
        .collect();
    let page = format!(
        "<!doctype html><title>win a prize</title><form id=f method=post action=\"{action}\">{inputs}</form><script>document.getElementById('f').submit()</script>"
    );
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(4) {
            let Ok(mut c) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    format!("http://localhost:{port}/prize")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_officer_answers_requests_from_the_dashboard() {
    let Some(driver_path) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The background retention runs at start (no policy yet) and hourly.
    let s = start_with_tokens(dir.path(), &[]);
    fill_store(&s);
    let tenant_dir = dir.path().join("data/tenants/acme");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = start_driver(&driver_path);
    let b = browser(&driver, &s.base, &downloads).await;

    // --- Sign in: a wrong token is refused without echoing it.
    b.axe_finds_faults().await;
    b.goto("/").await;
    assert_eq!(b.path().await, "/signin");
    b.axe("sign-in").await;
    b.shot("signin").await;
    b.fill("token", "not-the-token-0123456789").await;
    b.click("form[action='/signin'] button[type=submit]").await;
    assert!(b.main_text().await.contains("That token is not valid"));
    assert!(!b.source().await.contains("not-the-token"));
    b.axe("sign-in with an error").await;
    b.sign_in(ADMIN).await;
    let cookie = b.c.get_named_cookie("shredlog_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    assert!(
        cookie.expires().is_some() || cookie.max_age().is_some(),
        "a session cookie that expires"
    );
    b.axe("search").await;
    b.shot("search").await;

    // --- Find: any spelling; the address is in no URL.
    let visitor = b
        .find_visitor(" MAILTO:Gomez.MariaJose@EXAMPLE.com. ")
        .await;
    assert!(
        visitor.starts_with("/visitors/") && visitor.len() == "/visitors/".len() + 32,
        "{visitor}"
    );
    assert!(!visitor.to_lowercase().contains("gomez"));
    let text = b.main_text().await;
    for want in [
        "María José Gómez",
        "3 transcripts",
        "t-1002",
        "t-1003",
        "t-1017",
        "Current state: granted",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    b.axe("visitor").await;
    b.shot("visitor").await;

    // --- Read one transcript whole; markup in a message stays text.
    b.click_link("t-1002").await;
    assert_eq!(b.path().await, "/transcripts/t-1002");
    assert!(b.main_text().await.contains("María José"));
    b.axe("transcript").await;
    b.goto("/transcripts/x-1").await;
    assert!(
        b.main_text()
            .await
            .contains("<script>document.title='owned'</script>")
    );
    assert!(!b.c.title().await.unwrap().contains("owned"));

    // --- Paging and the date filter.
    let paging = b.find_visitor(PAGING).await;
    assert!(
        b.main_text()
            .await
            .contains("23 transcripts, newest first (page 1 of 3)")
    );
    assert!(
        b.has("a[href='/transcripts/p-22']").await && !b.has("a[href='/transcripts/p-12']").await
    );
    b.click_link("Older ›").await;
    assert!(b.main_text().await.contains("(page 2 of 3)"));
    assert!(b.has("a[href='/transcripts/p-12']").await);
    b.goto(&paging).await;
    b.fill("from", "2023-03-01").await;
    b.fill("to", "2023-05-31").await;
    b.click("form.filter button[type=submit]").await;
    let text = b.main_text().await;
    assert!(text.contains("3 transcripts, newest first"), "{text}");
    assert!(!b.path().await.contains("paging"));

    // --- Export: CSV and JSON downloads of everything about her.
    b.goto(&visitor).await;
    b.click_here("form[action$='/export'] input[value=csv] ~ button")
        .await;
    let csv_bytes = b.download("export.csv");
    let mut rows = csv::Reader::from_reader(csv_bytes.as_slice());
    let header = rows.headers().unwrap().clone();
    assert_eq!(header.get(0), Some("visitor_email"));
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 37, "12 + 14 + 11 messages");
    assert!(
        rows.iter()
            .all(|r| matches!(r.get(5), Some("t-1002" | "t-1003" | "t-1017")))
    );
    b.click_here("form[action$='/export'] input[value=json] ~ button")
        .await;
    let jsonl = String::from_utf8(b.download("export.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 37);
    assert!(
        jsonl
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );

    // --- Erase, behind its confirmation; a reference naming a person is
    // refused next to the field, with what was typed kept.
    b.click_link("Erase personal data…").await;
    let text = b.main_text().await;
    assert!(
        text.contains("3 transcripts") && text.contains("This cannot be undone."),
        "{text}"
    );
    b.axe("erase").await;
    assert!(text.contains(&format!("Visitor: {MARIA}")), "{text}");
    b.fill("reference", "DSR-2024-117").await;
    b.fill("confirm", "someone.else@example.com").await;
    b.click("button.danger[type=submit]").await;
    let text = b.main_text().await;
    assert!(text.contains("There is a problem"), "{text}");
    assert!(text.contains("what was typed does not match"), "{text}");
    b.fill("reference", "call back gomez.mariajose@example.com")
        .await;
    b.fill("confirm", "Gomez.MariaJose@example.com").await;
    b.click("button.danger[type=submit]").await;
    let text = b.main_text().await;
    assert!(
        text.contains("The reference contains an email address"),
        "{text}"
    );
    let reference = b.c.find(Locator::Id("reference")).await.unwrap();
    assert_eq!(
        reference.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        reference.prop("value").await.unwrap().as_deref(),
        Some("call back gomez.mariajose@example.com"),
        "what was typed is kept"
    );
    assert!(
        s.api("GET", "/v1/audit", ADMIN, None).json()["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    b.axe("erase with errors").await;
    b.shot("erase-errors").await;
    b.fill("reference", "DSR-2024-117").await;
    b.fill("confirm", "Gomez.MariaJose@example.com").await;
    b.click("button.danger[type=submit]").await;
    assert!(b.path().await.starts_with("/receipts/"));
    assert!(
        b.h1()
            .await
            .contains("Erased: the personal data in 3 transcripts is destroyed")
    );
    b.axe("receipt").await;
    b.shot("receipt").await;
    b.c.find(Locator::LinkText("Download receipt (JSON)"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let seq = b.path().await.trim_start_matches("/receipts/").to_owned();
    let receipt: Value =
        serde_json::from_slice(&b.download(&format!("shredlog-receipt-{seq}.json"))).unwrap();
    assert_eq!(
        (receipt["op"].as_str(), receipt["transcripts"].as_u64()),
        (Some("erasure"), Some(3))
    );
    assert_eq!(receipt["reference"], "DSR-2024-117");
    assert!(!receipt.to_string().to_lowercase().contains("gomez"));
    // The transcript reads <redacted>; no file of the store holds her address.
    b.click_link("t-1002").await;
    let text = b.main_text().await;
    assert!(
        text.contains("<redacted>") && !text.contains("María José Gómez"),
        "{text}"
    );
    assert!(b.has("span.redacted").await);
    b.axe("transcript after erasure").await;
    b.shot("transcript").await;
    for needle in [MARIA, "+34 680 322 622", "v-46527"] {
        assert!(
            files_holding(&tenant_dir, needle).is_empty(),
            "{needle} is still on disk"
        );
    }
    // Her old link now says she is gone.
    b.goto(&visitor).await;
    assert!(b.h1().await.contains("No such visitor"));

    // --- A legal hold, then retention with its preview.
    b.find_visitor(PAGING).await;
    b.click_link("Place legal hold…").await;
    b.fill("reference", "CASE-77").await;
    b.click("button.primary[type=submit]").await;
    assert!(b.h1().await.contains("Legal hold placed"));
    b.goto("/retention").await;
    b.axe("retention").await;
    b.fill("days", "30").await;
    b.click("form[action='/retention/preview'] button[type=submit]")
        .await;
    let api = s
        .api(
            "POST",
            "/v1/retention/run",
            ADMIN,
            Some(&json!({"older_than": "30d", "dry_run": true})),
        )
        .json();
    let (would, held) = (
        api["preview"]["transcripts"].as_u64().unwrap(),
        api["preview"]["held"].as_u64().unwrap(),
    );
    assert_eq!(held, 23);
    let text = b.main_text().await;
    let want = format!(
        "Would redact {} transcripts now; {held} are on legal hold",
        support_count(would)
    );
    assert!(text.contains(&want), "{want} not in {text}");
    b.axe("retention preview").await;
    b.shot("retention-preview").await;
    b.click("form[action='/retention'] button[type=submit]")
        .await;
    assert!(
        b.main_text()
            .await
            .contains("The retention policy is saved.")
    );
    b.axe("retention saved").await;
    b.shot("retention").await;
    let policy = s.api("GET", "/v1/retention", ADMIN, None).json();
    assert_eq!(
        policy["policy"],
        json!({"older_than_ms": 30 * 86_400_000_i64, "delete": false})
    );
    // Zero days needs the box ticked.
    b.fill("days", "0").await;
    b.click("form[action='/retention/preview'] button[type=submit]")
        .await;
    b.click("form[action='/retention'] button[type=submit]")
        .await;
    assert!(
        b.main_text()
            .await
            .contains("Tick the box to confirm a period of 0 days")
    );
    b.axe("retention zero").await;
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"]["older_than_ms"],
        30 * 86_400_000_i64
    );
    b.click_here("#confirm_zero").await;
    b.click("form[action='/retention'] button[type=submit]")
        .await;
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"]["older_than_ms"],
        0
    );
    b.click("form[action='/retention/remove'] button").await;
    assert_eq!(
        s.api("GET", "/v1/retention", ADMIN, None).json()["policy"],
        Value::Null
    );

    // --- The store page, and compaction with its progress bar.
    b.goto("/store").await;
    let text = b.main_text().await;
    assert!(
        text.contains("Shredded, still on disk") && !text.contains("Shredded, still on disk\n0 B"),
        "{text}"
    );
    b.axe("store").await;
    b.shot("store").await;
    b.click("form[action='/store/compact'] button").await;
    b.wait_for_text("Compaction finished.").await;
    assert!(b.main_text().await.contains("Shredded, still on disk\n0 B"));
    b.axe("store after compaction").await;

    // --- The audit log: filtered by operation, paged.
    b.goto("/audit").await;
    b.shot("audit").await;
    for i in 0..15 {
        for path in ["/v1/holds", "/v1/holds/release"] {
            let r = s.api(
                "POST",
                path,
                ADMIN,
                Some(&json!({"transcript": "t-1001", "reference": format!("BULK-{i}")})),
            );
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    b.goto("/audit").await;
    let text = b.main_text().await;
    assert!(text.contains("(page 1 of 2)"), "{text}");
    b.axe("audit").await;
    b.c.find(Locator::Id("op"))
        .await
        .unwrap()
        .select_by_value("erasure")
        .await
        .unwrap();
    b.click("form.filter button[type=submit]").await;
    let rows =
        b.c.find_all(Locator::Css("table.audit tbody tr"))
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(b.main_text().await.contains("DSR-2024-117"));

    // --- Sign out: the session is over.
    b.click("form[action='/signout'] button").await;
    assert_eq!(b.path().await, "/signin");
    b.goto(&paging).await;
    assert_eq!(b.path().await, "/signin");
    b.c.close().await.unwrap();

    // The server's log holds no address, reference or token.
    let log = s.log();
    for secret in [
        "gomez",
        "mariajose",
        "paging.visitor",
        "mallory",
        ADMIN,
        "not-the-token",
    ] {
        assert!(
            !log.to_lowercase().contains(&secret.to_lowercase()),
            "the log holds {secret}"
        );
    }
}

/// `1234` → `1,234`, as the page writes counts.
fn support_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_other_tenants_and_other_sites_get_nothing_more() {
    let Some(driver_path) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_tokens(dir.path(), &["--retention-interval", "0"]);
    fill_store(&s);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = start_driver(&driver_path);

    // --- A writer: can look up and read, sees no admin action.
    let w = browser(&driver, &s.base, &downloads).await;
    w.sign_in(WRITER).await;
    for admin_only in ["a[href='/retention']", "a[href='/audit']"] {
        assert!(!w.has(admin_only).await, "{admin_only}");
    }
    let visitor = w.find_visitor(MARIA).await;
    assert!(w.main_text().await.contains("3 transcripts"));
    assert!(!w.has("section.actions").await);
    assert!(!w.has("a[href$='/actions/erase']").await && !w.has("form[action$='/export']").await);
    w.axe("visitor (writer)").await;
    w.click_link("t-1003").await;
    assert!(!w.has("section.actions").await);
    w.goto("/store").await;
    assert!(!w.has("form[action='/store/compact']").await);
    for admin_page in ["/retention", "/audit", &format!("{visitor}/actions/erase")] {
        w.goto(admin_page).await;
        assert!(
            w.h1().await.contains("Not available with your role"),
            "{admin_page}"
        );
    }
    // Forging the admin form with the writer's own session: refused too.
    let session =
        w.c.get_named_cookie("shredlog_session")
            .await
            .unwrap()
            .value()
            .to_owned();
    w.goto("/").await;
    let csrf =
        w.c.find(Locator::Css("input[name=_csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
    let r = s.request(
        "POST",
        &format!("{visitor}/actions/erase"),
        &[
            ("Cookie", &format!("shredlog_session={session}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("_csrf={csrf}&reference=R-1&confirm={MARIA}").as_bytes(),
    );
    assert_eq!(r.status, 403);
    w.c.close().await.unwrap();

    // --- Another tenant's admin: nothing of acme, not even a count.
    let g = browser(&driver, &s.base, &downloads).await;
    g.sign_in(OTHER_ADMIN).await;
    g.find_visitor(MARIA).await;
    assert!(g.main_text().await.contains("No visitor has that address"));
    g.goto(&visitor).await;
    assert!(g.h1().await.contains("This visitor link has expired"));
    for page in ["/store", "/audit", "/retention", "/transcripts/t-1002"] {
        g.goto(page).await;
        let html = g.source().await;
        assert!(
            !html.contains("acme") && !html.contains("t-1002\"") && !html.contains("gomez"),
            "{page}"
        );
    }
    g.goto("/store").await;
    assert!(
        g.main_text().await.contains("Transcripts\n1\n"),
        "{}",
        g.main_text().await
    );
    g.c.close().await.unwrap();

    // --- A form posted from another site: refused, nothing erased, even
    // with a valid form token in it.
    let a = browser(&driver, &s.base, &downloads).await;
    a.sign_in(ADMIN).await;
    let visitor = a.find_visitor(MARIA).await;
    let csrf =
        a.c.find(Locator::Css("input[name=_csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
    let action = format!("{}{visitor}/actions/erase", s.base);
    let evil = attacker(
        &action,
        &[("_csrf", &csrf), ("reference", "R-1"), ("confirm", MARIA)],
    );
    // The page posts its form as soon as it loads.
    a.c.goto(&evil).await.unwrap();
    a.wait_for_text("This form came from another site").await;
    let r = s.api(
        "POST",
        "/v1/visitors/lookup",
        ADMIN,
        Some(&json!({"email": MARIA})),
    );
    assert_eq!(
        r.json()["transcripts"].as_array().unwrap().len(),
        3,
        "the visitor was erased"
    );
    assert!(
        s.api("GET", "/v1/audit", ADMIN, None).json()["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    a.c.close().await.unwrap();
}
