//! Retention settings: redact (or delete) what is older than N days. A
//! period is previewed before it is saved ("would redact 1,234 transcripts
//! now; 12 are on hold"), and a period of 0 days needs ticking a box that
//! says what it means.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use shredlog::{Preview, RetentionPolicy, Timestamp};

use super::page::{self, FieldError, Input, Section, counted, period};
use super::{Form, NoFields, SessionCtx, blocking, see_other, store, store_error};
use crate::server::app::AppState;

const DAY: i64 = 86_400_000;
/// The longest period the form takes: a hundred years.
const MAX_DAYS: i64 = 36_500;

#[derive(Deserialize, Default)]
pub(super) struct Shown {
    #[serde(default)]
    done: String,
}

/// `GET /retention`.
pub(super) async fn settings(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    shown: Result<Query<Shown>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = shown.map(|Query(s)| s.done).unwrap_or_default();
    settings_page(&app, &ctx, &done, &[], StatusCode::OK).await
}

async fn settings_page(
    app: &AppState,
    ctx: &SessionCtx,
    done: &str,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let store = match store(app, ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(ctx, e),
    };
    let policy = match blocking(move || Ok(store.retention_policy())).await {
        Ok(p) => p,
        Err(e) => return store_error(ctx, e),
    };
    let interval = app.retention_interval;
    let days = policy
        .as_ref()
        .map(|p| (p.older_than_ms / DAY).to_string())
        .unwrap_or_else(|| "90".into());
    let delete = policy.as_ref().is_some_and(|p| p.delete);
    let body = html! {
        div.narrow {
            h1 { "Retention" }
            @match done {
                "saved" => (page::notice("The retention policy is saved.")),
                "removed" => (page::notice("The retention policy is removed: nothing is redacted or deleted automatically.")),
                _ => (page::nothing()),
            }
            (page::error_summary(errors))
            section.card aria-labelledby="current-title" {
                h2 #current-title { "In force" }
                @match &policy {
                    Some(p) => p.policy {
                        (if p.delete { "Delete" } else { "Redact" }) " transcripts whose last message is older than "
                        strong { (period(p.older_than_ms)) } ", except those on legal hold."
                    },
                    None => p { "No retention policy: transcripts are kept until someone erases or deletes them." },
                }
                p.small {
                    @match interval {
                        Some(d) => { "The server applies the stored policy every " (humane(d)) " and once at start." }
                        None => { "The server's background run is off (retention-interval 0): apply the policy with the button below." }
                    }
                }
                @if policy.is_some() {
                    form method="post" action="/retention/run" novalidate {
                        (page::csrf(ctx))
                        (page::reference_input("", errors))
                        div.buttons {
                            button type="submit" { "Apply the policy now" }
                        }
                    }
                    form method="post" action="/retention/remove" {
                        (page::csrf(ctx))
                        button.link type="submit" { "Remove the policy" }
                    }
                }
            }
            section.card aria-labelledby="change-title" {
                h2 #change-title { @if policy.is_some() { "Change it" } @else { "Set one" } }
                (period_form(ctx, &days, delete, errors))
            }
        }
    };
    page::page_with(status, Some(ctx), Section::Retention, "Retention", body)
}

fn humane(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        counted(s / 86_400, "day")
    } else if s.is_multiple_of(3600) {
        counted(s / 3600, "hour")
    } else if s.is_multiple_of(60) {
        counted(s / 60, "minute")
    } else {
        counted(s, "second")
    }
}

fn period_form(ctx: &SessionCtx, days: &str, delete: bool, errors: &[FieldError]) -> Markup {
    html! {
        form method="post" action="/retention/preview" novalidate {
            (page::csrf(ctx))
            (Input::text("days", "Older than, in days")
                .kind("number")
                .hint("Transcripts whose last message is older than this many days. 0 means every transcript, now.")
                .value(days)
                .required()
                .render(errors))
            fieldset.radios {
                legend { "What happens to them" }
                div.radio {
                    input #mode-redact type="radio" name="mode" value="redact" checked[!delete];
                    label for="mode-redact" { "Redact: personal data destroyed, conversations stay readable" }
                }
                div.radio {
                    input #mode-delete type="radio" name="mode" value="delete" checked[delete];
                    label for="mode-delete" { "Delete: transcripts destroyed whole" }
                }
            }
            div.buttons { button.primary type="submit" { "Preview" } }
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct PeriodForm {
    #[serde(default)]
    days: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    confirm_zero: Option<String>,
}

impl PeriodForm {
    fn delete(&self) -> bool {
        self.mode == "delete"
    }

    fn days(&self) -> Result<i64, FieldError> {
        match self.days.trim().parse::<i64>() {
            Ok(d) if (0..=MAX_DAYS).contains(&d) => Ok(d),
            _ => Err(FieldError::new(
                "days",
                format!("Enter a whole number of days from 0 to {MAX_DAYS}."),
            )),
        }
    }
}

/// `POST /retention/preview`: what the period would do now.
pub(super) async fn preview(
    State(app): State<AppState>,
    Form(form, ctx): Form<PeriodForm>,
) -> Response {
    preview_page(&app, &ctx, &form, &[]).await
}

async fn preview_page(
    app: &AppState,
    ctx: &SessionCtx,
    form: &PeriodForm,
    errors: &[FieldError],
) -> Response {
    let days = match form.days() {
        Ok(d) => d,
        Err(e) => return settings_page(app, ctx, "", &[e], StatusCode::BAD_REQUEST).await,
    };
    let store = match store(app, ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(ctx, e),
    };
    let delete = form.delete();
    let p = match blocking(move || {
        store.preview_retention(days * DAY, delete, Timestamp::now().unix_millis())
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return store_error(ctx, e),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! {
        div.narrow {
            p.crumbs { a href="/retention" { "Retention" } " › Preview" }
            h1 { "Preview" }
            (page::error_summary(errors))
            (sentence(days, delete, &p))
            form method="post" action="/retention" novalidate {
                (page::csrf(ctx))
                input type="hidden" name="days" value=(days);
                input type="hidden" name="mode" value=(if delete { "delete" } else { "redact" });
                @if days == 0 {
                    @let err = page::error_for(errors, "confirm_zero");
                    div.field.has-error[err.is_some()] {
                        @if let Some(e) = err { p.error-message #confirm_zero-error { span.visually-hidden { "Error: " } (e.message) } }
                        div.checkbox {
                            input #confirm_zero type="checkbox" name="confirm_zero" value="yes"
                                aria-describedby=[err.map(|_| "confirm_zero-error")]
                                aria-invalid=[err.map(|_| "true")];
                            label for="confirm_zero" {
                                "I understand that 0 days " (if delete { "deletes" } else { "redacts" })
                                " every transcript not on legal hold, as soon as the policy runs."
                            }
                        }
                    }
                }
                p.small { "Saving stores the policy; the server applies it in the background (or now, with “Apply the policy now”)." }
                div.buttons {
                    button type="submit" class=(if delete || days == 0 { "danger" } else { "primary" }) { "Save policy" }
                    a href="/retention" { "Change the period" }
                }
            }
        }
    };
    page::page_with(
        status,
        Some(ctx),
        Section::Retention,
        "Retention preview",
        body,
    )
}

/// "Would redact 1,234 transcripts now; 12 are on hold."
fn sentence(days: i64, delete: bool, p: &Preview) -> Markup {
    let verb = if delete { "delete" } else { "redact" };
    html! {
        div.preview role="status" {
            p.big {
                "Would " (verb) " " strong { (counted(p.transcripts, "transcript")) } " now"
                @if p.held > 0 { "; " strong { (p.held) } (if p.held == 1 { " is" } else { " are" }) " on legal hold and stay as they are" }
                "."
            }
            p {
                "Those whose last message is older than " (period(days * DAY)) ". "
                (counted(p.keys_destroyed, "key")) " would be destroyed. "
                @if delete { "Deleted transcripts do not read at all any more." }
                @else { "Redacted transcripts stay readable with <redacted> where personal data was." }
            }
        }
    }
}

/// `POST /retention`: stores the policy.
pub(super) async fn save(
    State(app): State<AppState>,
    Form(form, ctx): Form<PeriodForm>,
) -> Response {
    let days = match form.days() {
        Ok(d) => d,
        Err(e) => return settings_page(&app, &ctx, "", &[e], StatusCode::BAD_REQUEST).await,
    };
    if days == 0 && form.confirm_zero.is_none() {
        let e = FieldError::new(
            "confirm_zero",
            "Tick the box to confirm a period of 0 days, or change the period.",
        );
        return preview_page(&app, &ctx, &form, &[e]).await;
    }
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let policy = RetentionPolicy {
        older_than_ms: days * DAY,
        delete: form.delete(),
    };
    match blocking(move || store.set_retention_policy(Some(policy))).await {
        Ok(()) => see_other("/retention?done=saved"),
        Err(e) => store_error(&ctx, e),
    }
}

/// `POST /retention/remove`.
pub(super) async fn remove(
    State(app): State<AppState>,
    Form(NoFields {}, ctx): Form<NoFields>,
) -> Response {
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    match blocking(move || store.set_retention_policy(None)).await {
        Ok(()) => see_other("/retention?done=removed"),
        Err(e) => store_error(&ctx, e),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct RunForm {
    #[serde(default)]
    reference: String,
}

/// `POST /retention/run`: the stored policy, now; its receipt.
pub(super) async fn run(State(app): State<AppState>, Form(form, ctx): Form<RunForm>) -> Response {
    let reference = form.reference.trim().to_owned();
    if reference.is_empty() {
        let e = FieldError::new("reference", "Enter a reference for the audit log.");
        return settings_page(&app, &ctx, "", &[e], StatusCode::BAD_REQUEST).await;
    }
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    match blocking(move || store.run_retention_policy(&reference)).await {
        Ok(Some(entry)) => {
            app.metrics.retention_run(&ctx.principal.tenant, "request");
            see_other(&format!("/receipts/{}", entry.seq))
        }
        Ok(None) => settings_page(&app, &ctx, "", &[], StatusCode::OK).await,
        Err(e) if matches!(e.code, "personal_data" | "invalid") => {
            let error = FieldError::new("reference", page::sentence(&e.message));
            settings_page(&app, &ctx, "", &[error], StatusCode::BAD_REQUEST).await
        }
        Err(e) => store_error(&ctx, e),
    }
}
