//! The privacy operations on a visitor (erase, delete, hold and release,
//! restrict and lift, rectify) and on one transcript (delete, hold and
//! release): a page that says what will happen (from the dry run), a
//! reference for the audit log, and for what cannot be undone a typed
//! confirmation; then the receipt.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use shredlog::{HoldTarget, Preview, Store};

use super::page::{self, FieldError, Input, Section, counted, transcript_href};
use super::visitors::{email_of, expired};
use super::{Form, SessionCtx, blocking, see_other, store, store_error};
use crate::server::app::AppState;
use crate::server::error::ApiError;

/// What can be done to a visitor or a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Erase,
    Delete,
    Hold,
    Release,
    Restrict,
    Lift,
    Rectify,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "erase" => Action::Erase,
            "delete" => Action::Delete,
            "hold" => Action::Hold,
            "release" => Action::Release,
            "restrict" => Action::Restrict,
            "lift" => Action::Lift,
            "rectify" => Action::Rectify,
            _ => return None,
        })
    }

    fn slug(self) -> &'static str {
        match self {
            Action::Erase => "erase",
            Action::Delete => "delete",
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Restrict => "restrict",
            Action::Lift => "lift",
            Action::Rectify => "rectify",
        }
    }

    /// What cannot be undone needs the subject typed out.
    fn irreversible(self) -> bool {
        matches!(self, Action::Erase | Action::Delete | Action::Rectify)
    }

    fn title(self, transcript: bool) -> &'static str {
        match (self, transcript) {
            (Action::Erase, _) => "Erase this visitor's personal data",
            (Action::Delete, false) => "Delete everything of this visitor",
            (Action::Delete, true) => "Delete this transcript",
            (Action::Hold, false) => "Place a legal hold on this visitor",
            (Action::Hold, true) => "Place a legal hold on this transcript",
            (Action::Release, false) => "Release this visitor's legal hold",
            (Action::Release, true) => "Release this transcript's legal hold",
            (Action::Restrict, _) => "Restrict processing of this visitor's data",
            (Action::Lift, _) => "Lift the restriction",
            (Action::Rectify, _) => "Rectify this visitor's details",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Action::Erase => "Erase personal data",
            Action::Delete => "Delete",
            Action::Hold => "Place legal hold",
            Action::Release => "Release legal hold",
            Action::Restrict => "Restrict processing",
            Action::Lift => "Lift restriction",
            Action::Rectify => "Rectify",
        }
    }
}

/// The posted form of every action.
#[derive(Deserialize, Default, Clone)]
pub(super) struct ActionForm {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
}

/// The subject of an action.
#[derive(Clone)]
enum Subject {
    /// A visitor: their handle and email.
    Visitor { handle: String, email: String },
    /// A transcript, by id.
    Transcript(String),
}

impl Subject {
    fn action_href(&self, a: Action) -> String {
        match self {
            Subject::Visitor { handle, .. } => format!("/visitors/{handle}/actions/{}", a.slug()),
            Subject::Transcript(id) => format!("{}/actions/{}", transcript_href(id), a.slug()),
        }
    }

    fn back(&self) -> (String, &'static str) {
        match self {
            Subject::Visitor { handle, .. } => {
                (format!("/visitors/{handle}"), "Back to the visitor")
            }
            Subject::Transcript(id) => (transcript_href(id), "Back to the transcript"),
        }
    }

    /// What to type to confirm (the address in its canonical spelling), and
    /// how it is named.
    fn confirmation(&self) -> (String, &'static str) {
        match self {
            Subject::Visitor { email, .. } => (
                shredlog::normalize_email(email).unwrap_or_else(|_| email.clone()),
                "the visitor's email address",
            ),
            Subject::Transcript(id) => (id.clone(), "the transcript id"),
        }
    }

    fn confirmed(&self, typed: &str) -> bool {
        match self {
            Subject::Visitor { email, .. } => {
                match (
                    shredlog::normalize_email(typed),
                    shredlog::normalize_email(email),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => typed.trim() == email.trim(),
                }
            }
            Subject::Transcript(id) => typed.trim() == id,
        }
    }
}

/// What the form page shows before anything is done.
fn preview(store: &Store, subject: &Subject, action: Action) -> shredlog::Result<Option<Preview>> {
    match (subject, action) {
        (Subject::Visitor { email, .. }, Action::Erase) => {
            store.preview_redact_visitor(email).map(Some)
        }
        (Subject::Visitor { email, .. }, Action::Delete) => {
            store.preview_delete_visitor(email).map(Some)
        }
        // Any other visitor action: the erasure's preview says how many
        // transcripts and whether the visitor exists.
        (Subject::Visitor { email, .. }, _) => store.preview_redact_visitor(email).map(Some),
        (Subject::Transcript(id), Action::Delete) => store.preview_delete_transcript(id).map(Some),
        (Subject::Transcript(id), _) => store.preview_delete_transcript(id).map(|_| None),
    }
}

/// What will happen, in a sentence or two.
fn consequences(action: Action, subject: &Subject, p: Option<&Preview>) -> Markup {
    let n = p.map_or(0, |p| p.transcripts);
    let keys = p.map_or(0, |p| p.keys_destroyed);
    let transcript = matches!(subject, Subject::Transcript(_));
    html! {
        @match action {
            Action::Erase => {
                p.consequence {
                    "This erases the personal data in " strong { (counted(n, "transcript")) } " of this visitor: "
                    "their details, form answers, uploaded files, and every email address, phone number and IP address in their chats. "
                    "The conversations stay readable, with " code { "<redacted>" } " in place. "
                    (counted(keys, "key")) " are destroyed."
                }
                p.warning { strong { "This cannot be undone." } " Export their data first if they asked for a copy." }
            }
            Action::Delete if transcript => {
                p.consequence { "This deletes the transcript outright (" (counted(keys, "key")) " destroyed): it will not read at all any more." }
                p.warning { strong { "This cannot be undone." } }
            }
            Action::Delete => {
                p.consequence {
                    "This deletes " strong { (counted(n, "transcript")) } " of this visitor outright, conversation and all ("
                    (counted(keys, "key")) " destroyed): they will not read at all any more."
                }
                p.warning { strong { "This cannot be undone." } }
            }
            Action::Hold if transcript => p.consequence { "While held, the transcript is exempt from retention and cannot be deleted." },
            Action::Hold => p.consequence {
                "While held, this visitor's " (counted(n, "transcript")) " (and any later ones) are exempt from retention and cannot be deleted. "
                "An erasure request is not stopped unless the store is set to let holds block erasure."
            },
            Action::Release => p.consequence { "Retention and deletion apply again once the hold is released." },
            Action::Restrict => p.consequence {
                "While restricted (GDPR Art. 18), new messages of this visitor and reading their transcripts are refused. "
                "Export, erasure and lifting the restriction remain possible."
            },
            Action::Lift => p.consequence { "Their transcripts can be read and appended to again." },
            Action::Rectify => {
                p.consequence {
                    "Every one of this visitor's " (counted(n, "transcript")) " is rewritten under new keys with the old value replaced by the new one, "
                    "in their details and wherever it appears in the messages. Fields left empty stay as they are."
                }
                p.warning { strong { "The old values are destroyed: this cannot be undone." } }
            }
        }
    }
}

fn form_page(
    ctx: &SessionCtx,
    subject: &Subject,
    action: Action,
    p: Option<&Preview>,
    form: &ActionForm,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let transcript = matches!(subject, Subject::Transcript(_));
    let title = action.title(transcript);
    let (back, back_label) = subject.back();
    let refused = p.is_some_and(|p| p.refused_by_hold);
    let (confirm_value, confirm_name) = subject.confirmation();
    let body = html! {
        div.narrow {
            p.crumbs { a href=(back) { (back_label) } }
            h1 { (title) }
            @if let Subject::Visitor { .. } = subject { p.lead { "Visitor: " strong { (confirm_value) } } }
            @if let Subject::Transcript(id) = subject { p.lead { "Transcript: " strong { (id) } } }
            (page::error_summary(errors))
            (consequences(action, subject, p))
            @if let Some(p) = p {
                @if p.restricted && matches!(action, Action::Erase | Action::Delete) {
                    p { "The visitor's restriction of processing ends with it." }
                }
                @if p.held > 0 && !refused && action == Action::Erase {
                    p { (counted(p.held, "transcript")) " of this visitor are on legal hold; holds do not stop an erasure on this store." }
                }
            }
            @if refused {
                div.error-summary role="alert" {
                    h2 { "Refused while a legal hold applies" }
                    p { (counted(p.map_or(0, |p| p.held), "transcript")) " on legal hold. Release the hold first." }
                }
            } @else {
                form method="post" action=(subject.action_href(action)) novalidate {
                    (page::csrf(ctx))
                    @if action == Action::Rectify {
                        fieldset {
                            legend { "The corrected values" }
                            (Input::text("new_email", "New email address").value(&form.new_email).autocomplete("off").wide().render(errors))
                            (Input::text("name", "New name").value(&form.name).autocomplete("off").wide().render(errors))
                            (Input::text("phone", "New phone number").value(&form.phone).autocomplete("off").render(errors))
                        }
                    }
                    (page::reference_input(&form.reference, errors))
                    @if action.irreversible() {
                        (Input::text("confirm", &format!("To confirm, type {confirm_name}"))
                            .hint(&format!("Type {confirm_value} exactly as shown above."))
                            .autocomplete("off")
                            .wide()
                            .required()
                            .render(errors))
                    }
                    div.buttons {
                        button type="submit" class={ @if action.irreversible() { "danger" } @else { "primary" } } { (action.button()) }
                        a href=(back) { "Cancel" }
                    }
                }
            }
        }
    };
    page::page_with(status, Some(ctx), Section::Visitors, title, body)
}

/// Errors of a failed operation, put next to the field they belong to.
fn field_errors(action: Action, e: &ApiError) -> Option<Vec<FieldError>> {
    let sentence = page::sentence;
    match e.code {
        "personal_data" => Some(vec![FieldError::new("reference", sentence(&e.message))]),
        "invalid" if action == Action::Rectify => {
            Some(vec![FieldError::new("new_email", sentence(&e.message))])
        }
        "invalid" => Some(vec![FieldError::new("reference", sentence(&e.message))]),
        "legal_hold" => Some(vec![FieldError::new(
            "reference",
            "Refused: a legal hold applies. Release it first.",
        )]),
        "restricted" => Some(vec![FieldError::new(
            "reference",
            "Refused: processing of this visitor's data is restricted. Lift the restriction first.",
        )]),
        _ => None,
    }
}

fn not_found(ctx: &SessionCtx) -> Response {
    super::refused(
        Some(ctx),
        StatusCode::NOT_FOUND,
        "No such action",
        "That action does not exist.",
    )
}

/// The action's page: what it will do (its dry run), the form as typed, the
/// errors if any.
async fn form_again(
    store: Arc<Store>,
    ctx: &SessionCtx,
    subject: &Subject,
    action: Action,
    form: &ActionForm,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let s2 = subject.clone();
    match blocking(move || preview(&store, &s2, action)).await {
        Ok(p) => form_page(ctx, subject, action, p.as_ref(), form, errors, status),
        Err(e) => store_error(ctx, e),
    }
}

async fn show(app: AppState, ctx: SessionCtx, subject: Subject, action: Action) -> Response {
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let form = ActionForm::default();
    form_again(store, &ctx, &subject, action, &form, &[], StatusCode::OK).await
}

/// `GET /visitors/{handle}/actions/{action}`.
pub(super) async fn visitor_form(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path((handle, action)): Path<(String, String)>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return not_found(&ctx);
    };
    let Some(email) = email_of(&app, &ctx, &handle) else {
        return expired(&ctx);
    };
    show(app, ctx, Subject::Visitor { handle, email }, action).await
}

/// `GET /transcripts/{id}/actions/{action}`.
pub(super) async fn transcript_form(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    match Action::parse(&action) {
        Some(a @ (Action::Delete | Action::Hold | Action::Release)) => {
            show(app, ctx, Subject::Transcript(id), a).await
        }
        _ => not_found(&ctx),
    }
}

/// `POST /visitors/{handle}/actions/{action}`.
pub(super) async fn visitor_submit(
    State(app): State<AppState>,
    Path((handle, action)): Path<(String, String)>,
    Form(form, ctx): Form<ActionForm>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return not_found(&ctx);
    };
    let Some(email) = email_of(&app, &ctx, &handle) else {
        return expired(&ctx);
    };
    submit(app, ctx, Subject::Visitor { handle, email }, action, form).await
}

/// `POST /transcripts/{id}/actions/{action}`.
pub(super) async fn transcript_submit(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(form, ctx): Form<ActionForm>,
) -> Response {
    match Action::parse(&action) {
        Some(a @ (Action::Delete | Action::Hold | Action::Release)) => {
            submit(app, ctx, Subject::Transcript(id), a, form).await
        }
        _ => not_found(&ctx),
    }
}

/// What an operation returned: its audit entry and the transcripts it acted
/// on (for the receipt's links).
type Done = (shredlog::AuditEntry, Vec<String>);

fn run(store: &Store, subject: &Subject, action: Action, f: &ActionForm) -> shredlog::Result<Done> {
    let r = f.reference.trim();
    match subject {
        Subject::Visitor { email, .. } => {
            // The transcripts, for links on the receipt (none while restricted).
            let ids = || -> Vec<String> {
                store
                    .transcripts_by_email(email, None, None)
                    .map(|l| l.into_iter().map(|t| t.id).collect())
                    .unwrap_or_default()
            };
            Ok(match action {
                Action::Erase => {
                    let ids = ids();
                    (store.redact_visitor(email, r)?, ids)
                }
                Action::Delete => (store.delete_visitor(email, r)?, Vec::new()),
                Action::Hold => (store.place_hold(HoldTarget::Email(email), r)?, Vec::new()),
                Action::Release => (store.release_hold(HoldTarget::Email(email), r)?, Vec::new()),
                Action::Restrict => (store.restrict_visitor(email, r)?, Vec::new()),
                Action::Lift => (store.lift_restriction(email, r)?, Vec::new()),
                Action::Rectify => {
                    let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
                    let fix = shredlog::Rectification::new(
                        some(&f.new_email),
                        some(&f.name),
                        some(&f.phone),
                    );
                    let ids = ids();
                    (store.rectify_visitor(email, &fix, r)?, ids)
                }
            })
        }
        Subject::Transcript(id) => Ok(match action {
            Action::Delete => (store.delete_transcript(id, r)?, Vec::new()),
            Action::Hold => (
                store.place_hold(HoldTarget::Transcript(id), r)?,
                vec![id.clone()],
            ),
            _ => (
                store.release_hold(HoldTarget::Transcript(id), r)?,
                vec![id.clone()],
            ),
        }),
    }
}

async fn submit(
    app: AppState,
    ctx: SessionCtx,
    subject: Subject,
    action: Action,
    form: ActionForm,
) -> Response {
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    // Checked here so that a refusal shows the form with what was typed.
    let mut errors = Vec::new();
    if form.reference.trim().is_empty() {
        errors.push(FieldError::new(
            "reference",
            "Enter a reference for the audit log, such as the ticket number of the request.",
        ));
    }
    if action.irreversible() && !subject.confirmed(&form.confirm) {
        let (_, name) = subject.confirmation();
        errors.push(FieldError::new(
            "confirm",
            format!("Type {name} to confirm; what was typed does not match."),
        ));
    }
    if action == Action::Rectify {
        let new = form.new_email.trim();
        if new.is_empty() && form.name.trim().is_empty() && form.phone.trim().is_empty() {
            errors.push(FieldError::new(
                "new_email",
                "Enter at least one corrected value.",
            ));
        } else if !new.is_empty() && shredlog::normalize_email(new).is_err() {
            errors.push(FieldError::new(
                "new_email",
                "The new email address is not an email address.",
            ));
        }
    }
    if !errors.is_empty() {
        let status = StatusCode::BAD_REQUEST;
        return form_again(store, &ctx, &subject, action, &form, &errors, status).await;
    }
    let (s2, f, store2) = (subject.clone(), form.clone(), Arc::clone(&store));
    let result = blocking(move || run(&store2, &s2, action, &f)).await;
    let new_email = form.new_email.trim();
    match result {
        Ok((entry, transcripts)) => {
            if action == Action::Erase {
                app.metrics.erasure(&ctx.principal.tenant);
            }
            if let (Action::Rectify, Subject::Visitor { handle, .. }) = (action, &subject)
                && !new_email.is_empty()
            {
                app.dashboard.sessions.rename(&ctx, handle, new_email);
            }
            app.dashboard
                .sessions
                .note_receipt(&ctx, entry.seq, transcripts);
            let back = match &subject {
                Subject::Visitor { handle, .. }
                    if !matches!(action, Action::Erase | Action::Delete) =>
                {
                    format!("?visitor={handle}")
                }
                Subject::Transcript(id) if action != Action::Delete => {
                    format!("?transcript={}", page::segment(id))
                }
                _ => String::new(),
            };
            see_other(&format!("/receipts/{}{back}", entry.seq))
        }
        Err(e) => match field_errors(action, &e) {
            Some(errors) => {
                form_again(store, &ctx, &subject, action, &form, &errors, e.status).await
            }
            None => store_error(&ctx, e),
        },
    }
}
