//! The data-management dashboard at `/`: server-rendered pages for the people
//! who answer privacy requests, on the same stores, tokens, roles and tenants
//! as the API (docs/SERVER.md, "The dashboard").
//!
//! | module | what |
//! | --- | --- |
//! | [`session`] | sessions, form tokens, visitor handles |
//! | [`page`] | the frame, forms, formatting (maud escapes every value) |
//! | [`signin`] | sign-in with a token, sign-out |
//! | [`visitors`] | search by email, the visitor page, export downloads |
//! | [`transcript`] | one transcript |
//! | [`actions`] | erase, delete, holds, restriction, rectification; receipts |
//! | [`retention`] | the retention policy, with a preview before saving |
//! | [`store_page`] | sizes, garbage, compaction with progress |
//! | [`audit`] | the audit log with filters and paging |
//! | [`assets`] | stylesheet, script and icon, embedded in the binary |
//!
//! Every page goes through [`guard`]: a form posted from another site is
//! refused (`Origin`, `Sec-Fetch-Site`), then the session cookie is
//! required (except for sign-in and assets) and the role checked, then the
//! request runs under the server's concurrency bound and time limit. Every
//! form carries the session's token ([`Form`] checks it). No URL carries
//! personal data: the email search is a POST, visitors are addressed by
//! session-bound handles.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shredlog::Store;

use super::app::{App, AppState};
use super::auth::Role;
use super::error::ApiError;
use super::route::{Access, Meta};
use super::{RequestTenant, RouteTemplate, run_limited};

mod actions;
mod assets;
mod audit;
mod page;
mod retention;
mod session;
mod signin;
mod store_page;
mod transcript;
mod visitors;

use page::Section;
pub(crate) use session::SessionCtx;
use session::Sessions;

/// The session cookie.
const COOKIE: &str = "shredlog_session";
/// Largest form body.
const MAX_FORM_BYTES: u64 = 64 << 10;

/// The dashboard's share of the server's state.
pub(crate) struct State {
    sessions: Sessions,
    compactions: store_page::Compactions,
    /// Session cookies are always `Secure` (`--secure-cookies`).
    secure_cookies: bool,
}

impl State {
    pub(crate) fn new(secure_cookies: bool) -> State {
        State {
            sessions: Sessions::default(),
            compactions: store_page::Compactions::default(),
            secure_cookies,
        }
    }
}

/// Who may open a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// No session needed (sign-in, assets).
    Open,
    /// Any signed-in role.
    Signed,
    /// The admin role.
    Admin,
}

struct Page {
    path: &'static str,
    gate: Gate,
    /// Exempt from the request timeout.
    long: bool,
    handler: MethodRouter<AppState>,
}

fn at(path: &'static str, gate: Gate, handler: MethodRouter<AppState>) -> Page {
    Page {
        path,
        gate,
        long: false,
        handler,
    }
}

/// Every page and download of the dashboard.
fn pages() -> Vec<Page> {
    use Gate::*;
    vec![
        at("/", Signed, get(visitors::search_page)),
        at("/signin", Open, get(signin::form).post(signin::submit)),
        at("/signout", Signed, post(signin::signout)),
        at("/assets/{name}", Open, get(assets::serve)),
        at("/favicon.ico", Open, get(assets::favicon)),
        at("/search", Signed, post(visitors::search)),
        at("/visitors/{handle}", Signed, get(visitors::visitor)),
        at("/visitors/{handle}/export", Admin, post(visitors::export)),
        Page {
            long: true,
            ..at(
                "/visitors/{handle}/actions/{action}",
                Admin,
                get(actions::visitor_form).post(actions::visitor_submit),
            )
        },
        at("/transcripts/{id}", Signed, get(transcript::transcript)),
        at(
            "/transcripts/{id}/actions/{action}",
            Admin,
            get(actions::transcript_form).post(actions::transcript_submit),
        ),
        at("/receipts/{seq}", Admin, get(audit::receipt)),
        at("/receipts/{seq}/download", Admin, get(audit::download)),
        at(
            "/retention",
            Admin,
            get(retention::settings).post(retention::save),
        ),
        at("/retention/preview", Admin, post(retention::preview)),
        at("/retention/remove", Admin, post(retention::remove)),
        Page {
            long: true,
            ..at("/retention/run", Admin, post(retention::run))
        },
        at("/store", Signed, get(store_page::store_page)),
        at("/store/compact", Admin, post(store_page::compact)),
        at("/store/compaction", Admin, get(store_page::status)),
        at("/audit", Admin, get(audit::log)),
    ]
}

/// The dashboard's routes, each behind [`guard`].
pub(super) fn router() -> Router<AppState> {
    let mut r = Router::new();
    for p in pages() {
        let (path, gate, long) = (p.path, p.gate, p.long);
        let handler = p
            .handler
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                guard(path, gate, long, req, next)
            }));
        r = r.route(path, handler);
    }
    r
}

/// Whether a path belongs to the dashboard (for the tests of the table).
#[cfg(test)]
pub(super) fn paths() -> Vec<&'static str> {
    pages().iter().map(|p| p.path).collect()
}

async fn guard(
    path: &'static str,
    gate: Gate,
    long: bool,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(app) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal().into_response();
    };
    let mut resp = if req.method() == Method::POST && !same_origin(req.headers()) {
        refused(
            None,
            StatusCode::FORBIDDEN,
            "This form came from another site",
            "The dashboard only accepts forms sent from its own pages. Nothing was changed.",
        )
    } else if gate == Gate::Open {
        next.run(req).await
    } else {
        let ctx = session_cookie(req.headers())
            .and_then(|id| app.dashboard.sessions.find(&id, Instant::now()));
        match ctx {
            None if req.method() == Method::GET => see_other("/signin"),
            None => refused(
                None,
                StatusCode::FORBIDDEN,
                "Your session has ended",
                "Sign in again, then repeat what you were doing. Nothing was changed.",
            ),
            Some(ctx) if gate == Gate::Admin && ctx.principal.role != Role::Admin => refused(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                "Not available with your role",
                "This page needs an admin token. Your token has the writer role.",
            ),
            Some(ctx) => {
                let tenant = ctx.principal.tenant.clone();
                let in_flight = app.metrics.enter(&tenant);
                req.extensions_mut().insert(ctx);
                let meta = Meta {
                    path,
                    access: Access::Writer,
                    long,
                };
                let mut resp = run_limited(&app, meta, req, next).await;
                drop(in_flight);
                resp.extensions_mut().insert(RequestTenant(tenant));
                resp
            }
        }
    };
    resp.extensions_mut().insert(RouteTemplate(path));
    resp
}

/// A POST is accepted only from the dashboard's own pages: a browser says
/// where a form came from (`Sec-Fetch-Site`, `Origin`); clients that say
/// nothing (scripts) still need the session cookie and the form token.
fn same_origin(h: &HeaderMap) -> bool {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
    {
        return false;
    }
    match text("origin") {
        None => true,
        Some(origin) => {
            let host = text("host").unwrap_or_default();
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host))
        }
    }
}

/// The session id the browser sent, if any.
fn session_cookie(h: &HeaderMap) -> Option<String> {
    cookie_value(h, COOKIE)
}

/// A cookie's value from the `Cookie` headers.
fn cookie_value(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Whether cookies should be `Secure`: configured, or the request came
/// over TLS through a proxy that says so.
fn secure(app: &App, h: &HeaderMap) -> bool {
    app.dashboard.secure_cookies
        || h.get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, an expiry,
/// `Secure` when asked for.
fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> Option<HeaderValue> {
    let c = cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age_secs).unwrap_or(i64::MAX),
        ))
        .build();
    HeaderValue::from_str(&c.to_string()).ok()
}

/// `303 See Other` to a path of the dashboard.
fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A page that says why something was refused.
fn refused(ctx: Option<&SessionCtx>, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p { (message) }
        p {
            @if ctx.is_some() {
                a href="/" { "Back to the visitor search" }
            } @else {
                a href="/signin" { "Sign in" }
            }
        }
    };
    page::page_with(status, ctx, Section::None, title, body)
}

/// What went wrong with a store call, as a page; internals stay in the log.
fn store_error(ctx: &SessionCtx, e: ApiError) -> Response {
    let (title, message) = match e.code {
        "visitor_not_found" => (
            "No such visitor",
            "No visitor has that address (or their data was erased or deleted).".to_owned(),
        ),
        "transcript_not_found" => (
            "No such transcript",
            "No transcript has that id (or it was deleted).".to_owned(),
        ),
        "not_found" => ("Not found", e.message.clone()),
        "restricted" => (
            "Processing is restricted",
            "Processing of this visitor's data is restricted: reading is refused until the restriction is lifted. Export, erasure and lifting the restriction remain possible.".to_owned(),
        ),
        _ => ("Something went wrong", e.message.clone()),
    };
    refused(Some(ctx), e.status, title, &message)
}

/// The caller's tenant's store.
async fn store(app: &AppState, ctx: &SessionCtx) -> Result<Arc<Store>, ApiError> {
    app.tenants.get(&ctx.principal.tenant).await
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> shredlog::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(ApiError::from)
}

/// A posted form: `application/x-www-form-urlencoded`, at most 64 KiB,
/// carrying the session's form token in `_csrf` (checked in constant time).
/// Anything else is refused before the handler runs.
pub(crate) struct Form<T>(pub T, pub SessionCtx);

/// A form with nothing but its token (sign-out, compaction, removal).
#[derive(Deserialize)]
pub(crate) struct NoFields {}

#[derive(Deserialize)]
struct Token {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Response> {
        let Some(ctx) = req.extensions().get::<SessionCtx>().cloned() else {
            return Err(ApiError::internal().into_response());
        };
        let (parts, body) = req.into_parts();
        let bytes = read_form(&parts.headers, body).await.map_err(|e| {
            refused(
                Some(&ctx),
                e.status,
                "The form could not be read",
                &e.message,
            )
        })?;
        let token: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or(Token {
            csrf: String::new(),
        });
        if !session::same_secret(&token.csrf, &ctx.csrf) {
            return Err(refused(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form's security token does not match your session (it may come from an older page or another site). Go back, reload the page and try again. Nothing was changed.",
            ));
        }
        let value: T = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            refused(
                Some(&ctx),
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "A field of the form is missing or has a value of the wrong kind.",
            )
        })?;
        Ok(Form(value, ctx))
    }
}

/// The body of a form post, checked for its type and size.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "forms are sent as application/x-www-form-urlencoded",
        ));
    }
    super::body::read_body(headers, body, MAX_FORM_BYTES).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_same_origin_posts() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:7878")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:7878"),
            ("origin", "http://127.0.0.1:7878"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "shred.example"),
            ("origin", "https://shred.example")
        ])));
        for bad in [
            &[
                ("host", "127.0.0.1:7878"),
                ("origin", "http://evil.example"),
            ][..],
            &[("host", "127.0.0.1:7878"), ("origin", "null")],
            &[
                ("host", "127.0.0.1:7878"),
                ("origin", "http://127.0.0.1:7878.evil.example"),
            ],
            &[("host", "127.0.0.1:7878"), ("sec-fetch-site", "cross-site")],
            &[("host", "127.0.0.1:7878"), ("sec-fetch-site", "same-site")],
            &[("origin", "http://127.0.0.1:7878")],
        ] {
            assert!(!same_origin(&headers(bad)), "{bad:?}");
        }
    }

    #[test]
    fn cookies() {
        let h = headers(&[("cookie", "a=1; shredlog_session=abc"), ("cookie", "b=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "b").as_deref(), Some("2"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
        let c = set_cookie(COOKIE, "abc", 600, false).unwrap();
        let c = c.to_str().unwrap();
        for part in [
            "shredlog_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Secure"));
        assert!(
            set_cookie(COOKIE, "abc", 600, true)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn dashboard_paths_stay_clear_of_the_api() {
        for p in paths() {
            assert!(
                !p.starts_with("/v1") && p != "/healthz" && p != "/readyz" && p != "/metrics",
                "{p}"
            );
        }
    }
}
