//! Sign-in with an access token (pasted once; the session cookie carries on)
//! and sign-out.
//!
//! The sign-in form is protected like every other: the page sets a
//! short-lived cookie holding a random token that the form repeats (there
//! is no session yet to hold it), so another site cannot sign a browser in
//! under its own token.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::page::{self, FieldError, Input, Section};
use super::session::{self, random_id};
use super::{COOKIE, Form, NoFields, cookie_value, read_form, secure, see_other, set_cookie};
use crate::server::app::AppState;
use crate::server::auth::{DEFAULT_TENANT, Principal, Role};

/// The sign-in form's own cookie.
const SIGNIN_COOKIE: &str = "shredlog_signin";
/// How long the sign-in form stays usable.
const SIGNIN_MAX_AGE: u64 = 10 * 60;

fn form_page(
    app: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    errors: &[FieldError],
) -> Response {
    let Some(token) = random_id() else {
        return crate::server::error::ApiError::internal().into_response();
    };
    let no_auth = app.tokens.is_none();
    let body = html! {
        div.signin {
            h1 { "Sign in" }
            p.lead { "The data-management page of shredlog: find a visitor by email, read and export what is held about them, answer erasure requests, and set how long transcripts are kept." }
            (page::error_summary(errors))
            @if no_auth {
                (page::notice("Authentication is off (--insecure-no-auth): anyone who can reach this server is an admin of the default tenant. Leave the token empty."))
            } @else {
                p { "Paste an access token of your organisation (from the server's token file). It is checked once; the browser then keeps a session for up to 12 hours (30 minutes without use)." }
            }
            form method="post" action="/signin" novalidate {
                input type="hidden" name="_signin" value=(token);
                (Input::text("token", "Access token")
                    .kind("password")
                    .autocomplete("current-password")
                    .hint("A writer token can look up and read; an admin token can also export, erase, delete and change settings.")
                    .wide()
                    .render(errors))
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = page::page_with(status, None, Section::None, "Sign in", body);
    if let Some(v) = set_cookie(SIGNIN_COOKIE, &token, SIGNIN_MAX_AGE, secure(app, headers)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /signin`.
pub(super) async fn form(State(app): State<AppState>, headers: HeaderMap) -> Response {
    form_page(&app, &headers, StatusCode::OK, &[])
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default, rename = "_signin")]
    signin: String,
}

/// `POST /signin`: a token of the table starts a session.
pub(super) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_form(&headers, body).await {
        Ok(b) => b,
        Err(e) => return super::refused(None, e.status, "The form could not be read", &e.message),
    };
    let form: SignIn = serde_urlencoded::from_bytes(&bytes).unwrap_or(SignIn {
        token: String::new(),
        signin: String::new(),
    });
    let expected = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_secret(&form.signin, &expected) {
        let e = FieldError::new(
            "token",
            "The sign-in form has expired. Paste the token again.",
        );
        return form_page(&app, &headers, StatusCode::FORBIDDEN, &[e]);
    }
    let principal = match &app.tokens {
        None => Some(Principal {
            role: Role::Admin,
            tenant: DEFAULT_TENANT.into(),
        }),
        Some(tokens) => tokens.authenticate(form.token.trim()),
    };
    let Some(principal) = principal else {
        // Never the token itself, not even in the page.
        let e = FieldError::new(
            "token",
            "That token is not valid. Check that you pasted all of it.",
        );
        return form_page(&app, &headers, StatusCode::UNAUTHORIZED, &[e]);
    };
    let Some((id, ctx)) = app.dashboard.sessions.create(principal, Instant::now()) else {
        return crate::server::error::ApiError::internal().into_response();
    };
    let mut resp = see_other("/");
    let secure = secure(&app, &headers);
    let h = resp.headers_mut();
    if let Some(v) = set_cookie(COOKIE, &id, ctx.max_age, secure) {
        h.append(header::SET_COOKIE, v);
    }
    if let Some(v) = set_cookie(SIGNIN_COOKIE, "", 0, secure) {
        h.append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /signout`: the session ends here and in the browser.
pub(super) async fn signout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(NoFields {}, ctx): Form<NoFields>,
) -> Response {
    app.dashboard.sessions.end(&ctx);
    let mut resp = see_other("/signin");
    if let Some(v) = set_cookie(COOKIE, "", 0, secure(&app, &headers)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
