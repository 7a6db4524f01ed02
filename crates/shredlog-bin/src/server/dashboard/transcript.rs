//! One transcript, read in full: every message with its sender and time,
//! `<redacted>` where personal data was destroyed.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use shredlog::{Body, Message, Sender};

use super::page::{self, Section, bytes, tag, time, transcript_href, with_redactions};
use super::{SessionCtx, blocking, store, store_error};
use crate::server::app::AppState;
use crate::server::auth::Role;

/// `GET /transcripts/{id}`.
pub(super) async fn transcript(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path(id): Path<String>,
) -> Response {
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let tid = id.clone();
    let read = blocking(move || {
        let messages = store.transcript(&tid)?;
        let held = store
            .holds()
            .iter()
            .any(|(s, _)| s.strip_prefix("transcript:") == Some(tid.as_str()));
        Ok((messages, held))
    })
    .await;
    let (messages, held) = match read {
        Ok(r) => r,
        Err(e) => return store_error(&ctx, e),
    };
    let body = render(&ctx, &id, &messages, held);
    page::page(
        Some(&ctx),
        Section::Visitors,
        &format!("Transcript {id}"),
        body,
    )
}

fn sender(m: &Message) -> &'static str {
    match m.from {
        Some(Sender::Visitor) => "Visitor",
        Some(Sender::Operator) => "Operator",
        Some(Sender::Bot) => "Bot",
        Some(Sender::System) => "System",
        _ => "Unknown",
    }
}

fn render(ctx: &SessionCtx, id: &str, messages: &[Message], held: bool) -> Markup {
    let admin = ctx.principal.role == Role::Admin;
    let redacted = messages.iter().any(|m| {
        m.visitor
            .as_ref()
            .is_some_and(|v| v.email == shredlog::REDACTED)
    });
    let base = format!("{}/actions", transcript_href(id));
    html! {
        p.crumbs { a href="/" { "Find a visitor" } " › Transcript" }
        h1 { "Transcript " span.subtitle { (id) } }
        p.tags {
            (tag("count", &page::counted(messages.len() as u64, "message")))
            @if redacted { " " (tag("redacted", "Personal data erased")) }
            @if held { " " (tag("held", "On legal hold")) }
        }
        @if admin {
            section.actions aria-labelledby="actions-title" {
                h2 #actions-title { "Actions" }
                div.action-row {
                    @if held {
                        a.button href={ (base) "/release" } { "Release legal hold…" }
                    } @else {
                        a.button href={ (base) "/hold" } { "Place legal hold…" }
                    }
                    a.button.danger href={ (base) "/delete" } { "Delete this transcript…" }
                }
            }
        }
        ol.messages aria-label="Messages, oldest first" {
            @for m in messages {
                li class={ "message from-" (sender(m).to_ascii_lowercase()) } {
                    div.meta {
                        strong { (sender(m)) }
                        " · " (time(m.ts.as_str()))
                        @if let Some(v) = &m.visitor {
                            " · "
                            span.visitor { (with_redactions(&v.email)) }
                        }
                    }
                    div.content { (body(m)) }
                }
            }
        }
    }
}

fn body(m: &Message) -> Markup {
    html! {
        @match &m.body {
            Body::Text(t) => p.text { (with_redactions(t)) },
            Body::Form(fields) => {
                p.kind { "Form submitted" }
                dl.form {
                    @for (k, v) in fields {
                        dt { (k) }
                        dd { (with_redactions(v)) }
                    }
                }
            }
            Body::File(f) => p.kind {
                "File uploaded: " (with_redactions(&f.name)) " (" (f.mime)
                @if !f.data.is_empty() { ", " (bytes(f.data.len() as u64)) }
                ")"
            },
            Body::Consent { granted, prompt } => p.kind {
                @if *granted { "Consent granted" } @else { "Consent withdrawn" }
                ": “" (prompt) "”"
            },
        }
    }
}
