//! The audit log, newest first, filtered by operation and date and paged;
//! one entry as a receipt to read and to download (the erasure report:
//! what was done, to whom by random id, under which reference; never the
//! erased data).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use shredlog::AuditEntry;

use super::page::{
    self, FieldError, Input, Section, count, counted, counted_as, time, transcript_href,
};
use super::visitors::day_range;
use super::{SessionCtx, blocking, store, store_error};
use crate::server::app::AppState;
use crate::server::error::ApiError;

/// Entries a page of the log lists.
const PAGE: usize = 25;

/// The operations the log can hold, with how people call them.
const OPS: [(&str, &str); 10] = [
    ("erasure", "Erasure"),
    ("delete-visitor", "Visitor deleted"),
    ("delete-transcript", "Transcript deleted"),
    ("retention", "Retention run"),
    ("rectification", "Rectification"),
    ("rewrite", "Rewrite"),
    ("hold", "Legal hold placed"),
    ("release-hold", "Legal hold released"),
    ("restriction", "Restriction"),
    ("lift-restriction", "Restriction lifted"),
];

fn op_name(op: &str) -> &str {
    OPS.iter().find(|(k, _)| *k == op).map_or(op, |(_, v)| v)
}

#[derive(Deserialize, Default)]
pub(super) struct Filter {
    #[serde(default)]
    op: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<usize>,
}

async fn entries(app: &AppState, ctx: &SessionCtx) -> Result<Vec<AuditEntry>, ApiError> {
    let store = store(app, ctx).await?;
    blocking(move || store.audit_log()).await
}

/// `GET /audit`.
pub(super) async fn log(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let f = filter.map(|Query(f)| f).unwrap_or_default();
    let mut errors = Vec::new();
    let (from, to) = day_range(&f.from, &f.to, &mut errors);
    let all = match entries(&app, &ctx).await {
        Ok(e) => e,
        Err(e) => return store_error(&ctx, e),
    };
    let total = all.len();
    let mut shown: Vec<AuditEntry> = all
        .into_iter()
        .filter(|e| f.op.is_empty() || e.op == f.op)
        .filter(|e| {
            let ms = shredlog::Timestamp::parse(&e.at)
                .map(|t| t.unix_millis())
                .ok();
            from.is_none_or(|from| ms.is_some_and(|ms| ms >= from))
                && to.is_none_or(|to| ms.is_some_and(|ms| ms <= to))
        })
        .collect();
    shown.reverse();
    let body = render(&f, &shown, total, &errors);
    page::page(Some(&ctx), Section::Audit, "Audit log", body)
}

fn render(f: &Filter, entries: &[AuditEntry], total: usize, errors: &[FieldError]) -> Markup {
    let pages = entries.len().div_ceil(PAGE).max(1);
    let current = f.page.unwrap_or(1).clamp(1, pages);
    let link = |p: usize| {
        let q = serde_urlencoded::to_string([
            ("op", f.op.as_str()),
            ("from", f.from.trim()),
            ("to", f.to.trim()),
            ("page", &p.to_string()),
        ])
        .unwrap_or_default();
        format!("/audit?{q}")
    };
    let filtered = !f.op.is_empty() || !f.from.trim().is_empty() || !f.to.trim().is_empty();
    html! {
        h1 { "Audit log" }
        p.lead {
            "Every privacy operation on this store, newest first: what was done, to which random visitor id or transcript, under which reference. "
            "It never holds the erased data, so it can be kept and handed to an auditor."
        }
        form.filter method="get" action="/audit" {
            (page::error_summary(errors))
            fieldset {
                legend { "Filter" }
                div.inline {
                    div.field {
                        label for="op" { "Operation" }
                        select #op name="op" {
                            option value="" selected[f.op.is_empty()] { "All operations" }
                            @for (k, v) in OPS {
                                option value=(k) selected[f.op == k] { (v) }
                            }
                        }
                    }
                    (Input::text("from", "From").kind("date").value(f.from.trim()).render(errors))
                    (Input::text("to", "To").kind("date").value(f.to.trim()).render(errors))
                    button type="submit" { "Filter" }
                    @if filtered { a href="/audit" { "Show all" } }
                }
            }
        }
        @if entries.is_empty() {
            p { @if total == 0 { "No privacy operation yet." } @else { "No entry matches the filter." } }
        } @else {
            table.audit {
                caption {
                    (counted_as(entries.len() as u64, "entry", "entries"))
                    @if filtered { " of " (count(total as u64)) }
                    @if pages > 1 { " (page " (current) " of " (pages) ")" }
                }
                thead { tr {
                    th scope="col" class="num" { "No." } th scope="col" { "When" } th scope="col" { "Operation" }
                    th scope="col" { "Subject" } th scope="col" class="num" { "Transcripts" } th scope="col" class="num" { "Keys destroyed" }
                    th scope="col" { "Reference" } th scope="col" { span.visually-hidden { "Receipt" } }
                } }
                tbody {
                    @for e in entries.iter().skip((current - 1) * PAGE).take(PAGE) {
                        tr {
                            td.num { (e.seq) }
                            td { (time(&e.at)) }
                            td { (op_name(&e.op)) }
                            td { code.subject { (e.subject) } }
                            td.num { (count(e.transcripts)) }
                            td.num { (count(e.keys_destroyed)) }
                            td { (e.reference) }
                            td { a href={ "/receipts/" (e.seq) } { "Receipt" span.visually-hidden { " of entry " (e.seq) } } }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages of the audit log" {
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

/// The entry numbered `seq`.
async fn entry(app: &AppState, ctx: &SessionCtx, seq: &str) -> Result<AuditEntry, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The audit log has no entry with that number.",
        )
    };
    let seq: u64 = seq.parse().map_err(|_| missing())?;
    entries(app, ctx)
        .await?
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or_else(missing)
}

#[derive(Deserialize, Default)]
pub(super) struct Back {
    #[serde(default)]
    visitor: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
}

fn headline(e: &AuditEntry) -> String {
    match e.op.as_str() {
        "erasure" => format!(
            "Erased: the personal data in {} is destroyed",
            counted(e.transcripts, "transcript")
        ),
        "delete-visitor" => format!(
            "Deleted: {} of the visitor",
            counted(e.transcripts, "transcript")
        ),
        "delete-transcript" => "Deleted: the transcript".to_owned(),
        "retention" => format!(
            "Retention applied to {}",
            counted(e.transcripts, "transcript")
        ),
        "rectification" => format!(
            "Rectified: {} rewritten",
            counted(e.transcripts, "transcript")
        ),
        "hold" => "Legal hold placed".to_owned(),
        "release-hold" => "Legal hold released".to_owned(),
        "restriction" => "Processing restricted".to_owned(),
        "lift-restriction" => "Restriction lifted".to_owned(),
        other => format!("Done: {other}"),
    }
}

/// `GET /receipts/{seq}`: what an operation did, as it is in the audit log.
pub(super) async fn receipt(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path(seq): Path<String>,
    back: Result<Query<Back>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let e = match entry(&app, &ctx, &seq).await {
        Ok(e) => e,
        Err(e) => return store_error(&ctx, e),
    };
    let back = back.map(|Query(b)| b).unwrap_or_default();
    let transcripts = app.dashboard.sessions.receipt(&ctx, e.seq);
    let title = headline(&e);
    let body = html! {
        div.narrow {
            div.receipt role="status" {
                h1 { (title) }
                p { "Recorded in the audit log as entry " (e.seq) ". The receipt names the visitor by a random id, never by their data." }
            }
            dl.details {
                dt { "Entry" } dd { (e.seq) }
                dt { "When" } dd { (time(&e.at)) }
                dt { "Operation" } dd { (op_name(&e.op)) }
                dt { "Subject" } dd { code.subject { (e.subject) } }
                dt { "Transcripts" } dd { (count(e.transcripts)) }
                dt { "Keys destroyed" } dd { (count(e.keys_destroyed)) }
                dt { "Reference" } dd { (e.reference) }
                @if let Some(d) = &e.detail { dt { "Detail" } dd { code { (d) } } }
            }
            p { a.button.primary href={ "/receipts/" (e.seq) "/download" } download { "Download receipt (JSON)" } }
            @if !transcripts.is_empty() {
                h2 { "The transcripts" }
                @if e.op == "erasure" { p { "They stay readable, with " code { "<redacted>" } " where personal data was:" } }
                ul.links {
                    @for t in &transcripts { li { a href=(transcript_href(t)) { (t) } } }
                }
            }
            p.next {
                @if let Some(h) = &back.visitor { a href={ "/visitors/" (page::segment(h)) } { "Back to the visitor" } " · " }
                @if let Some(t) = &back.transcript { a href=(transcript_href(t)) { "Back to the transcript" } " · " }
                a href="/" { "Find another visitor" } " · " a href="/audit" { "Audit log" }
            }
        }
    };
    page::page(Some(&ctx), Section::Audit, &title, body)
}

/// `GET /receipts/{seq}/download`: the entry as JSON, as a file.
pub(super) async fn download(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path(seq): Path<String>,
) -> Response {
    let e = match entry(&app, &ctx, &seq).await {
        Ok(e) => e,
        Err(e) => return store_error(&ctx, e),
    };
    let Ok(mut text) = serde_json::to_string_pretty(&e) else {
        return store_error(&ctx, crate::server::error::ApiError::internal());
    };
    text.push('\n');
    let mut resp = text.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"shredlog-receipt-{}.json\"",
        e.seq
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
