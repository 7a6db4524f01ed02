//! The pages' frame and the pieces every page uses: navigation, error
//! summaries, form fields with their errors, numbers, sizes and times.
//! maud escapes every value put into the HTML; URLs are built from
//! percent-encoded segments ([`segment`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::SessionCtx;
use crate::server::auth::Role;

/// The pages' Content-Security-Policy: their own stylesheet, script and
/// icon, requests to the server itself, forms to the server itself; nothing
/// inline, nothing from elsewhere, no framing.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The sections of the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Visitors,
    Retention,
    Store,
    Audit,
    None,
}

/// A form field's error, shown next to it and in the page's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The input's `id`.
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// A whole page, `200`.
pub(crate) fn page(
    ctx: Option<&SessionCtx>,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    page_with(StatusCode::OK, ctx, section, title, body)
}

/// A whole page with a status.
pub(crate) fn page_with(
    status: StatusCode,
    ctx: Option<&SessionCtx>,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · shredlog" }
                link rel="stylesheet" href="/assets/dashboard.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                script src="/assets/dashboard.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header.top {
                    div.bar {
                        a.brand href="/" { img src="/assets/icon.svg" alt="" width="28" height="28"; span { "shredlog" } }
                        @if let Some(ctx) = ctx {
                            (nav(ctx, section))
                            div.who {
                                span { "Tenant " strong { (ctx.principal.tenant) } " · " (ctx.principal.role.as_str()) }
                                form method="post" action="/signout" {
                                    (csrf(ctx))
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (body)
                }
                footer.foot {
                    p { "shredlog data-management · personal data never appears in this page's address" }
                }
            }
        }
    };
    html_response(status, doc)
}

/// An HTML answer with the pages' headers.
pub(crate) fn html_response(status: StatusCode, doc: Markup) -> Response {
    let mut resp = (status, doc.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // Other sites get no `Referer` at all; the dashboard's own forms keep
    // their `Origin`, which the guard checks.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn nav(ctx: &SessionCtx, current: Section) -> Markup {
    let admin = ctx.principal.role == Role::Admin;
    let items: Vec<(&str, &str, Section)> = [
        ("/", "Visitors", Section::Visitors, true),
        ("/retention", "Retention", Section::Retention, admin),
        ("/store", "Store", Section::Store, true),
        ("/audit", "Audit log", Section::Audit, admin),
    ]
    .into_iter()
    .filter(|(_, _, _, shown)| *shown)
    .map(|(href, label, s, _)| (href, label, s))
    .collect();
    html! {
        nav aria-label="Main" {
            ul {
                @for (href, label, s) in items {
                    li {
                        @if s == current {
                            a href=(href) aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// The hidden field carrying the session's form token.
pub(crate) fn csrf(ctx: &SessionCtx) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.csrf); }
}

/// "There is a problem" with links to each field in error; announced.
pub(crate) fn error_summary(errors: &[FieldError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                h2 #error-summary-title { "There is a problem" }
                ul {
                    @for e in errors {
                        li { a href={ "#" (e.field) } { (e.message) } }
                    }
                }
            }
        }
    }
}

/// A notice (not an error), announced politely.
pub(crate) fn notice(text: &str) -> Markup {
    html! { div.notice role="status" { p { (text) } } }
}

/// The error for `field`, if any.
pub(crate) fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

/// A labelled text input with its hint and error, wired for screen readers
/// (`aria-describedby`, `aria-invalid`).
pub(crate) struct Input<'a> {
    pub id: &'static str,
    pub label: &'a str,
    pub hint: Option<&'a str>,
    pub value: &'a str,
    pub kind: &'static str,
    pub required: bool,
    pub autocomplete: &'static str,
    pub extra_class: &'static str,
}

impl<'a> Input<'a> {
    pub(crate) fn text(id: &'static str, label: &'a str) -> Input<'a> {
        Input {
            id,
            label,
            hint: None,
            value: "",
            kind: "text",
            required: false,
            autocomplete: "off",
            extra_class: "",
        }
    }

    pub(crate) fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(crate) fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub(crate) fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub(crate) fn autocomplete(mut self, a: &'static str) -> Self {
        self.autocomplete = a;
        self
    }

    pub(crate) fn wide(mut self) -> Self {
        self.extra_class = "wide";
        self
    }

    pub(crate) fn render(&self, errors: &[FieldError]) -> Markup {
        let err = error_for(errors, self.id);
        let hint_id = format!("{}-hint", self.id);
        let err_id = format!("{}-error", self.id);
        let mut described = Vec::new();
        if self.hint.is_some() {
            described.push(hint_id.clone());
        }
        if err.is_some() {
            described.push(err_id.clone());
        }
        let described = described.join(" ");
        html! {
            div.field.has-error[err.is_some()] {
                label for=(self.id) { (self.label) }
                @if let Some(h) = self.hint {
                    p.hint id=(hint_id) { (h) }
                }
                @if let Some(e) = err {
                    p.error-message id=(err_id) { span.visually-hidden { "Error: " } (e.message) }
                }
                input id=(self.id) name=(self.id) type=(self.kind) value=(self.value)
                    class=[(!self.extra_class.is_empty()).then_some(self.extra_class)]
                    autocomplete=(self.autocomplete)
                    spellcheck="false"
                    required[self.required]
                    aria-describedby=[(!described.is_empty()).then_some(described.as_str())]
                    aria-invalid=[err.is_some().then_some("true")];
            }
        }
    }
}

/// The reference field every privacy operation has.
pub(crate) fn reference_input(value: &str, errors: &[FieldError]) -> Markup {
    Input::text("reference", "Your reference")
        .hint("A ticket or case number, for the audit log, which keeps it forever: no names, email addresses, phone numbers or IP addresses.")
        .value(value)
        .wide()
        .render(errors)
}

/// A path segment, percent-encoded (transcript ids can hold any character).
pub(crate) fn segment(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The link to a transcript.
pub(crate) fn transcript_href(id: &str) -> String {
    format!("/transcripts/{}", segment(id))
}

/// `1234567` → `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, singular or plural: `1 transcript`, `1,234 transcripts`.
pub(crate) fn counted(n: u64, noun: &str) -> String {
    counted_as(n, noun, &format!("{noun}s"))
}

/// `n` and the noun, with its plural given: `1 entry`, `2 entries`.
pub(crate) fn counted_as(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", count(n))
    }
}

/// A message starting with a capital letter (the engine's start lower-case).
pub(crate) fn sentence(message: &str) -> String {
    let mut c = message.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Bytes for people: `512 B`, `12.3 KiB`, `4.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// An RFC 3339 UTC time as `2024-05-02 10:15 UTC`, in a `<time>` element.
pub(crate) fn time(ts: &str) -> Markup {
    let shown = match (ts.get(..10), ts.get(11..16)) {
        (Some(date), Some(hm)) if ts.len() >= 16 => format!("{date} {hm} UTC"),
        _ => ts.to_owned(),
    };
    html! { time datetime=(ts) { (shown) } }
}

/// A duration in milliseconds for people: `90 days`, `12 hours`, `0 days`.
pub(crate) fn period(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    if ms % DAY == 0 {
        counted((ms / DAY) as u64, "day")
    } else if ms % HOUR == 0 {
        counted((ms / HOUR) as u64, "hour")
    } else {
        format!("{} ms", count(ms.max(0) as u64))
    }
}

/// A status tag (held, restricted, redacted...), readable without colour.
pub(crate) fn tag(class: &str, text: &str) -> Markup {
    html! { span class={ "tag " (class) } { (text) } }
}

/// Text in which `<redacted>` placeholders stand out.
pub(crate) fn with_redactions(text: &str) -> Markup {
    let mut parts = text.split(shredlog::REDACTED).peekable();
    html! {
        @while let Some(part) = parts.next() {
            (part)
            @if parts.peek().is_some() {
                span.redacted { (shredlog::REDACTED) }
            }
        }
    }
}

/// An empty fragment.
pub(crate) fn nothing() -> Markup {
    PreEscaped(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(counted(1, "transcript"), "1 transcript");
        assert_eq!(counted(12, "transcript"), "12 transcripts");
        assert_eq!(counted_as(2, "entry", "entries"), "2 entries");
        assert_eq!(sentence("the reference contains"), "The reference contains");
        assert_eq!(sentence(""), "");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(period(90 * 86_400_000), "90 days");
        assert_eq!(period(0), "0 days");
        assert_eq!(period(3_600_000), "1 hour");
        assert_eq!(
            time("2024-05-02T10:15:03.120Z").into_string(),
            "<time datetime=\"2024-05-02T10:15:03.120Z\">2024-05-02 10:15 UTC</time>"
        );
        assert_eq!(segment("t-1/../x y?é"), "t-1%2F..%2Fx%20y%3F%C3%A9");
    }

    #[test]
    fn values_are_escaped() {
        let m = with_redactions("<script>alert(1)</script> mail <redacted> \"now\"");
        let s = m.into_string();
        assert!(
            s.starts_with("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{s}"
        );
        assert!(
            s.contains("<span class=\"redacted\">&lt;redacted&gt;</span>"),
            "{s}"
        );
        assert!(s.contains("&quot;now&quot;"), "{s}");
        let i = Input::text("reference", "Ref")
            .value("\"><script>")
            .render(&[]);
        assert!(
            i.into_string()
                .contains("value=\"&quot;&gt;&lt;script&gt;\"")
        );
    }
}
