//! Finding a visitor by email (a POST: the address never enters a URL),
//! the visitor page (details, consent, transcripts newest first with a date
//! filter and paging, the actions) and the export downloads.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use shredlog::{ConsentState, Preview, TranscriptInfo, Visitor};

use super::page::{self, FieldError, Input, Section, count, counted, tag, time, transcript_href};
use super::{Form, SessionCtx, blocking, see_other, store, store_error};
use crate::server::app::AppState;
use crate::server::auth::Role;
use crate::server::handlers::{ExportFormat, export_response};

/// Transcripts a page of the visitor page lists.
const PAGE: usize = 10;

fn search_form(ctx: &SessionCtx, email: &str, errors: &[FieldError]) -> Markup {
    html! {
        div.narrow {
            h1 { "Find a visitor" }
            p.lead { "Look up everything held about a visitor by their email address, to answer a request for access, erasure, rectification or restriction." }
            (page::error_summary(errors))
            form.search method="post" action="/search" novalidate {
                (page::csrf(ctx))
                (Input::text("email", "Visitor's email address")
                    .hint("Any spelling finds them: letter case, a mailto: prefix, spaces and a trailing dot do not matter.")
                    .value(email)
                    .autocomplete("off")
                    .kind("text")
                    .required()
                    .wide()
                    .render(errors))
                button.primary type="submit" { "Search" }
            }
            p.small { "The address is sent in the form's body and never appears in the page's address, the history or the server's log." }
        }
    }
}

/// `GET /`: the search form.
pub(super) async fn search_page(axum::Extension(ctx): axum::Extension<SessionCtx>) -> Response {
    page::page(
        Some(&ctx),
        Section::Visitors,
        "Find a visitor",
        search_form(&ctx, "", &[]),
    )
}

#[derive(Deserialize)]
pub(super) struct Search {
    #[serde(default)]
    email: String,
}

/// `POST /search`: to the visitor's page under a new handle.
pub(super) async fn search(State(app): State<AppState>, Form(form, ctx): Form<Search>) -> Response {
    let email = form.email.trim().to_owned();
    let again = |status: StatusCode, message: &str| {
        let errors = [FieldError::new("email", message)];
        page::page_with(
            status,
            Some(&ctx),
            Section::Visitors,
            "Find a visitor",
            search_form(&ctx, &email, &errors),
        )
    };
    if email.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter the visitor's email address.",
        );
    }
    if shredlog::normalize_email(&email).is_err() {
        return again(
            StatusCode::BAD_REQUEST,
            "That is not an email address. Check it for typing mistakes.",
        );
    }
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let lookup = email.clone();
    match blocking(move || store.preview_redact_visitor(&lookup)).await {
        Ok(_) => {}
        Err(e) if e.code == "visitor_not_found" => {
            return again(
                StatusCode::NOT_FOUND,
                "No visitor has that address. Their data may have been erased or deleted already; the audit log lists what was done.",
            );
        }
        Err(e) => return store_error(&ctx, e),
    }
    match app
        .dashboard
        .sessions
        .handle_for(&ctx, &email, Instant::now())
    {
        Some(handle) => see_other(&format!("/visitors/{handle}")),
        None => store_error(&ctx, crate::server::error::ApiError::internal()),
    }
}

/// The email a handle of this session stands for, if it is alive.
pub(super) fn email_of(app: &AppState, ctx: &SessionCtx, handle: &str) -> Option<String> {
    app.dashboard.sessions.email_of(ctx, handle, Instant::now())
}

/// The page for a handle that is not (or no longer) this session's.
pub(super) fn expired(ctx: &SessionCtx) -> Response {
    super::refused(
        Some(ctx),
        StatusCode::GONE,
        "This visitor link has expired",
        "Links to visitors last 15 minutes without use and belong to one session. Search for the visitor again.",
    )
}

#[derive(Deserialize, Default)]
pub(super) struct Filter {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<usize>,
}

/// A `YYYY-MM-DD` date as Unix milliseconds at the start (or end) of the day.
fn day(field: &'static str, s: &str, end: bool) -> Result<Option<i64>, FieldError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let time = if end { "23:59:59.999" } else { "00:00:00" };
    shredlog::Timestamp::parse(&format!("{s}T{time}Z"))
        .map(|t| Some(t.unix_millis()))
        .map_err(|_| FieldError::new(field, "Enter a date as year-month-day, e.g. 2024-05-02."))
}

/// The `from` and `to` days of a date filter, as the first and last
/// millisecond they cover; a day that does not parse is left out and its
/// error added to `errors`.
pub(super) fn day_range(
    from: &str,
    to: &str,
    errors: &mut Vec<FieldError>,
) -> (Option<i64>, Option<i64>) {
    let mut keep = |r: Result<Option<i64>, FieldError>| {
        r.unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    (keep(day("from", from, false)), keep(day("to", to, true)))
}

/// Everything the visitor page shows.
struct VisitorPage {
    preview: Preview,
    details: Option<Visitor>,
    consent: ConsentState,
    /// `None` while processing is restricted.
    transcripts: Option<Vec<TranscriptInfo>>,
    visitor_hold: Option<shredlog::Hold>,
    held_transcripts: Vec<String>,
}

/// `GET /visitors/{handle}`.
pub(super) async fn visitor(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path(handle): Path<String>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(email) = email_of(&app, &ctx, &handle) else {
        return expired(&ctx);
    };
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    let mut errors = Vec::new();
    let (from, to) = day_range(&filter.from, &filter.to, &mut errors);
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let admin = ctx.principal.role == Role::Admin;
    let data = blocking(move || {
        let preview = store.preview_redact_visitor(&email)?;
        let restricted = preview.restricted;
        let holds = store.holds();
        let visitor_hold = holds
            .iter()
            .find(|(s, _)| *s == preview.subject)
            .map(|(_, h)| h.clone());
        let held_transcripts = holds
            .iter()
            .filter_map(|(s, _)| s.strip_prefix("transcript:").map(str::to_owned))
            .collect();
        // A restricted visitor's details are an admin's to see (as an export is).
        let details = if restricted && !admin {
            None
        } else {
            store.export(&email)?.visitor
        };
        let consent = store.consent(&email)?;
        let transcripts = if restricted {
            None
        } else {
            Some(store.transcripts_by_email(&email, from, to)?)
        };
        Ok(VisitorPage {
            preview,
            details,
            consent,
            transcripts,
            visitor_hold,
            held_transcripts,
        })
    })
    .await;
    let data = match data {
        Ok(d) => d,
        Err(e) => return store_error(&ctx, e),
    };
    let title = "Visitor";
    let body = render(&ctx, &handle, &data, &filter, &errors);
    page::page(Some(&ctx), Section::Visitors, title, body)
}

fn render(
    ctx: &SessionCtx,
    handle: &str,
    d: &VisitorPage,
    filter: &Filter,
    errors: &[FieldError],
) -> Markup {
    let admin = ctx.principal.role == Role::Admin;
    let email = d.details.as_ref().map(|v| v.email.as_str());
    html! {
        p.crumbs { a href="/" { "Find a visitor" } " › Visitor" }
        h1 {
            "Visitor"
            @if let Some(e) = email { span.subtitle { (e) } }
        }
        p.tags {
            (tag("count", &counted(d.preview.transcripts, "transcript")))
            @if d.preview.restricted { " " (tag("restricted", "Processing restricted")) }
            @if d.visitor_hold.is_some() { " " (tag("held", "On legal hold")) }
            @else if d.preview.held > 0 { " " (tag("held", &format!("{} on legal hold", counted(d.preview.held, "transcript")))) }
        }
        @if admin { (actions(ctx, handle, d)) }
        div.columns {
            section aria-labelledby="details-title" {
                h2 #details-title { "Details" }
                @match &d.details {
                    Some(v) => {
                        dl.details {
                            dt { "Email" } dd { (v.email) }
                            dt { "Name" } dd { (opt(&v.name)) }
                            dt { "Phone" } dd { (opt(&v.phone)) }
                            dt { "Visitor id" } dd { (opt(&v.id)) }
                            dt { "IP address" } dd { (opt(&v.ip)) }
                        }
                        p.small { "As most recently given in a chat." }
                    }
                    None => p { "Shown to admins only while processing is restricted." }
                }
            }
            section aria-labelledby="consent-title" {
                h2 #consent-title { "Consent" }
                p {
                    "Current state: "
                    strong {
                        @match d.consent.current {
                            Some(true) => "granted",
                            Some(false) => "withdrawn",
                            None => "never asked",
                        }
                    }
                }
                @if !d.consent.history.is_empty() {
                    table {
                        caption.visually-hidden { "Consent history, oldest first" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "Answer" } th scope="col" { "Prompt" } th scope="col" { "Transcript" } } }
                        tbody {
                            @for e in &d.consent.history {
                                tr {
                                    td { (time(&e.ts)) }
                                    td { @if e.granted { "Granted" } @else { "Withdrawn" } }
                                    td { (e.prompt) }
                                    td { a href=(transcript_href(&e.transcript)) { (e.transcript) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="transcripts-title" {
            h2 #transcripts-title { "Transcripts" }
            @match &d.transcripts {
                None => {
                    (page::notice("Processing of this visitor's data is restricted: their transcripts cannot be listed or read until the restriction is lifted. Export, erasure and lifting the restriction remain possible."))
                }
                Some(list) => {
                    (transcripts(handle, list, &d.held_transcripts, filter, errors))
                }
            }
        }
    }
}

fn opt(v: &Option<String>) -> Markup {
    html! {
        @match v {
            Some(s) if s == shredlog::REDACTED => span.redacted { (s) },
            Some(s) => (s),
            None => span.muted { "—" },
        }
    }
}

fn actions(ctx: &SessionCtx, handle: &str, d: &VisitorPage) -> Markup {
    let base = format!("/visitors/{handle}/actions");
    let export = format!("/visitors/{handle}/export");
    html! {
        section.actions aria-labelledby="actions-title" {
            h2 #actions-title { "Actions" }
            div.groups {
                div.group {
                    h3 { "Access and portability" }
                    p.small { "Everything held about them, to hand over (Art. 15, 20)." }
                    div.action-row {
                        @for (format, label) in [("csv", "Export CSV"), ("json", "Export JSON")] {
                            form method="post" action=(export) {
                                (page::csrf(ctx))
                                input type="hidden" name="format" value=(format);
                                button type="submit" { (label) }
                            }
                        }
                    }
                }
                div.group {
                    h3 { "Erasure" }
                    p.small { "Destroys their personal data, or everything (Art. 17)." }
                    div.action-row {
                        a.button.danger href={ (base) "/erase" } { "Erase personal data…" }
                        a.button.danger href={ (base) "/delete" } { "Delete everything…" }
                    }
                }
                div.group {
                    h3 { "Holds, restriction, rectification" }
                    p.small { "Keep, freeze or correct their data (Art. 16, 18)." }
                    div.action-row {
                        @if d.visitor_hold.is_some() {
                            a.button href={ (base) "/release" } { "Release legal hold…" }
                        } @else {
                            a.button href={ (base) "/hold" } { "Place legal hold…" }
                        }
                        @if d.preview.restricted {
                            a.button href={ (base) "/lift" } { "Lift restriction…" }
                        } @else {
                            a.button href={ (base) "/restrict" } { "Restrict processing…" }
                            a.button href={ (base) "/rectify" } { "Rectify…" }
                        }
                    }
                }
            }
        }
    }
}

fn transcripts(
    handle: &str,
    list: &[TranscriptInfo],
    held: &[String],
    f: &Filter,
    errors: &[FieldError],
) -> Markup {
    let pages = list.len().div_ceil(PAGE).max(1);
    let current = f.page.unwrap_or(1).clamp(1, pages);
    let shown = list.iter().skip((current - 1) * PAGE).take(PAGE);
    let link = |p: usize| {
        let q = serde_urlencoded::to_string([
            ("from", f.from.trim()),
            ("to", f.to.trim()),
            ("page", &p.to_string()),
        ])
        .unwrap_or_default();
        format!("/visitors/{handle}?{q}")
    };
    let filtered = !f.from.trim().is_empty() || !f.to.trim().is_empty();
    html! {
        form.filter method="get" action={ "/visitors/" (handle) } {
            (page::error_summary(errors))
            fieldset {
                legend { "Only transcripts with messages between" }
                div.inline {
                    (Input::text("from", "From").kind("date").value(f.from.trim()).render(errors))
                    (Input::text("to", "To").kind("date").value(f.to.trim()).render(errors))
                    button type="submit" { "Filter" }
                    @if filtered { a href={ "/visitors/" (handle) } { "Show all" } }
                }
            }
        }
        @if list.is_empty() {
            p { @if filtered { "No transcript in that period." } @else { "No transcripts." } }
        } @else {
            table.transcripts {
                caption {
                    (counted(list.len() as u64, "transcript")) ", newest first"
                    @if pages > 1 { " (page " (current) " of " (pages) ")" }
                }
                thead { tr {
                    th scope="col" { "Transcript" } th scope="col" { "First message" } th scope="col" { "Last message" }
                    th scope="col" class="num" { "Messages" } th scope="col" { "Status" }
                } }
                tbody {
                    @for t in shown {
                        tr {
                            th scope="row" { a href=(transcript_href(&t.id)) { (t.id) } }
                            td { (time(t.first.as_str())) }
                            td { (time(t.last.as_str())) }
                            td.num { (count(t.messages as u64)) }
                            td {
                                @if t.redacted { (tag("redacted", "Redacted")) " " }
                                @if held.contains(&t.id) { (tag("held", "On hold")) }
                                @if !t.redacted && !held.contains(&t.id) { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages of transcripts" {
                    ul {
                        @if current > 1 { li { a href=(link(current - 1)) rel="prev" { "‹ Newer" } } }
                        @for p in 1..=pages {
                            li {
                                @if p == current { a href=(link(p)) aria-current="page" { (p) } }
                                @else { a href=(link(p)) { (p) } }
                            }
                        }
                        @if current < pages { li { a href=(link(current + 1)) rel="next" { "Older ›" } } }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Export {
    format: ExportFormat,
}

/// `POST /visitors/{handle}/export`: the download (`export.csv` or
/// `export.jsonl`; the file name names no one).
pub(super) async fn export(
    State(app): State<AppState>,
    Path(handle): Path<String>,
    Form(form, ctx): Form<Export>,
) -> Response {
    let Some(email) = email_of(&app, &ctx, &handle) else {
        return expired(&ctx);
    };
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    match blocking(move || store.export(&email)).await {
        Ok(data) => export_response(data, form.format),
        Err(e) => store_error(&ctx, e),
    }
}
