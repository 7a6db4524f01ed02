//! `shredlog serve`: JSON over HTTP in front of one store per tenant
//! (DESIGN §6; docs/SERVER.md).
//!
//! Layout: [`config`] resolves flags, environment and the TOML file; [`auth`]
//! holds tokens, roles and tenant names; [`tenants`] opens stores on first use;
//! [`routes`] is the route table, [`handlers`] the handlers it names and
//! [`body`] their input parsing; [`openapi`] documents the table; [`metrics`]
//! keeps the Prometheus counters; [`error`] maps library errors to JSON errors;
//! [`listen`] accepts connections (limits, time-outs, shutdown);
//! [`dashboard`] is the data-management page at `/`.
//!
//! Every store call blocks (file I/O, fsync), so each runs on tokio's blocking
//! pool; the number of requests in progress is bounded by a semaphore.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

mod app;
mod auth;
pub(crate) mod backup;
mod body;
mod config;
mod dashboard;
mod error;
mod handlers;
mod listen;
mod metrics;
mod openapi;
mod route;
mod routes;
mod tenants;

#[cfg(feature = "fuzzing")]
pub(crate) use body::fuzz_request_body;

pub(crate) use config::ServeArgs;

use crate::config::LogFormat;
use app::{App, AppState};
use auth::{DEFAULT_TENANT, Principal, Role};
use config::Config;
use error::ApiError;
use route::{Access, Meta};

/// The matched route template, carried on the response for the access log
/// and the metrics (never the path itself: it can hold ids).
#[derive(Clone, Copy)]
struct RouteTemplate(&'static str);

/// The tenant a request acted for, carried on the response for the metrics.
#[derive(Clone)]
struct RequestTenant(String);

/// Runs the server until SIGTERM or SIGINT.
pub(crate) fn run(settings: &crate::config::Settings, args: &ServeArgs) -> Result<ExitCode> {
    let config = Config::resolve(args, settings)?;
    let options = settings.options();
    let backups = match &settings.file.backup {
        Some(b) => Some(Arc::new(backup::Backups::from_settings(b)?)),
        None => None,
    };
    init_logging(config.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shredlog-http")
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(serve(config, options, backups));
    // Requests cut off by the grace period may still run store calls on the
    // blocking pool; they hold their store, which syncs when dropped.
    rt.shutdown_timeout(Duration::from_secs(5));
    code
}

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(
    config: Config,
    options: shredlog::Options,
    backups: Option<Arc<backup::Backups>>,
) -> Result<ExitCode> {
    let tenants = tenants::Tenants::new(&config.data, options);
    std::fs::create_dir_all(tenants.root()).with_context(|| {
        format!(
            "cannot create the tenants directory {}",
            tenants.root().display()
        )
    })?;
    if config.data.join("keyring").exists() {
        tracing::warn!(
            data = %config.data.display(),
            "the data directory holds a store of its own, which the server does not serve: \
             the server serves DATA/tenants/NAME (move it to DATA/tenants/default to serve it \
             as the default tenant)"
        );
    }
    // Signal handlers first, so that a signal right after start-up is caught.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    if !addr.ip().is_loopback() {
        if config.tokens.is_none() {
            anyhow::bail!(
                "--insecure-no-auth is refused on a non-loopback address ({addr}): anyone who can reach it would be an admin; listen on 127.0.0.1 or configure tokens"
            );
        }
        tracing::warn!(%addr, "listening on a non-loopback address: put TLS in front (a reverse proxy) so tokens and personal data are not sent in clear");
    }
    match &config.tokens {
        None => tracing::warn!(
            "authentication is OFF (--insecure-no-auth): anyone who can connect is an admin of the default tenant"
        ),
        Some(t) => tracing::info!(tenants = ?t.tenants(), "tokens loaded"),
    }
    let grace = config.shutdown_grace;
    let conn_limits = listen::ConnLimits {
        max_connections: config.limits.max_connections,
        header_read_timeout: config.limits.header_read_timeout,
    };
    let app = Arc::new(App {
        tenants,
        metrics: metrics::Metrics::default(),
        permits: tokio::sync::Semaphore::new(config.limits.max_concurrent_requests),
        limits: config.limits,
        tokens: config.tokens,
        shutting_down: AtomicBool::new(false),
        started: Instant::now(),
        retention_interval: config.retention_interval,
        dashboard: dashboard::State::new(config.secure_cookies),
        backup: backups.clone(),
    });
    let router = router(Arc::clone(&app));
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "shredlog: listening on http://{addr}");
        let _ = out.flush();
    }
    tracing::info!(%addr, data = %config.data.display(), "listening");

    let backup_tasks: Vec<tokio::task::JoinHandle<()>> = match &backups {
        Some(b) => {
            let mut t = vec![tokio::spawn(backup::journal_loop(
                Arc::clone(&app),
                Arc::clone(b),
            ))];
            if let Some(every) = b.interval {
                t.push(tokio::spawn(backup::backup_loop(
                    Arc::clone(&app),
                    Arc::clone(b),
                    every,
                )));
            }
            t
        }
        None => Vec::new(),
    };
    let retention = config
        .retention_interval
        .map(|every| tokio::spawn(retention_loop(Arc::clone(&app), every)));

    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = Arc::clone(&stop);
    let mut server = tokio::spawn(listen::serve(listener, router, conn_limits, async move {
        stopped.notified().await
    }));
    let signal = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        r = &mut server => {
            // The server never ends on its own; if it did, close the stores.
            tracing::error!(panicked = r.is_err(), "the server stopped unexpectedly");
            app.tenants.close_all(grace).await;
            return Ok(ExitCode::FAILURE);
        }
    };
    app.shutting_down.store(true, Ordering::SeqCst);
    tracing::info!(
        signal,
        "shutting down: no new connections, finishing requests in flight"
    );
    stop.notify_one();
    let deadline = Instant::now() + grace;
    match tokio::time::timeout(grace, &mut server).await {
        Ok(_) => tracing::info!("every connection finished"),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "requests still in flight after the grace period; closing anyway"
            );
            server.abort();
        }
    }
    if let Some(r) = retention {
        r.abort();
    }
    for t in backup_tasks {
        t.abort();
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let clean = app.tenants.close_all(left).await;
    if clean {
        tracing::info!("stopped cleanly");
        Ok(ExitCode::SUCCESS)
    } else {
        tracing::error!("stopped, but a store could not be closed cleanly");
        Ok(ExitCode::FAILURE)
    }
}

/// Applies every tenant's stored retention policy now and then.
async fn retention_loop(app: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for name in app.tenants.on_disk() {
            if app.is_shutting_down() {
                return;
            }
            let store = match app.tenants.get(&name).await {
                Ok(s) => s,
                Err(e) => {
                    app.metrics.retention_failure(&name);
                    tracing::error!(tenant = %name, code = e.code, "background retention: cannot open the store");
                    continue;
                }
            };
            let run = tokio::task::spawn_blocking(move || {
                store.run_retention_policy("background retention")
            })
            .await;
            match run {
                Ok(Ok(Some(entry))) => {
                    app.metrics.retention_run(&name, "background");
                    tracing::info!(
                        tenant = %name,
                        transcripts = entry.transcripts,
                        keys_destroyed = entry.keys_destroyed,
                        "background retention run"
                    );
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    app.metrics.retention_failure(&name);
                    tracing::error!(tenant = %name, error = %e, "background retention failed");
                }
                Err(_) => app.metrics.retention_failure(&name),
            }
        }
    }
}

/// The router: every route of the table behind its guard, the fallback, and
/// the global layers (access log and metrics, JSON errors, shared state).
fn router(app: AppState) -> Router {
    let mut r: Router<AppState> = Router::new();
    for route in routes::routes() {
        let meta = route.meta;
        let handler = route
            .handler
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                guard(meta, req, next)
            }));
        r = r.route(meta.path, handler);
    }
    r.merge(dashboard::router())
        .fallback(fallback)
        .with_state(Arc::clone(&app))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(access_log))
        .layer(axum::Extension(app))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Who the request's bearer token belongs to.
fn authenticate(app: &App, req: &Request) -> Result<Principal, ApiError> {
    let Some(tokens) = &app.tokens else {
        return Ok(Principal {
            role: Role::Admin,
            tenant: DEFAULT_TENANT.into(),
        });
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing `Authorization: Bearer TOKEN` header"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or_default();
    tokens
        .authenticate(token)
        .ok_or_else(|| unauthorized("the bearer token is not valid"))
}

/// Per-route: authentication, role, concurrency bound and time limit.
async fn guard(meta: Meta, mut req: Request, next: Next) -> Response {
    let Some(app) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal().into_response();
    };
    let mut resp = match admit(&app, meta, &mut req) {
        Err(e) => e.into_response(),
        Ok(None) => next.run(req).await,
        Ok(Some(tenant)) => {
            let in_flight = app.metrics.enter(&tenant);
            let mut resp = run_limited(&app, meta, req, next).await;
            drop(in_flight);
            resp.extensions_mut().insert(RequestTenant(tenant));
            resp
        }
    };
    resp.extensions_mut().insert(RouteTemplate(meta.path));
    resp
}

/// Authenticates and authorises; the caller's tenant (`None` on a public route).
fn admit(app: &App, meta: Meta, req: &mut Request) -> Result<Option<String>, ApiError> {
    if meta.access == Access::Public {
        return Ok(None);
    }
    let p = authenticate(app, req)?;
    if meta.access == Access::Admin && p.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this route needs the admin role; the token has the {} role",
                p.role.as_str()
            ),
        ));
    }
    let tenant = p.tenant.clone();
    req.extensions_mut().insert(p);
    Ok(Some(tenant))
}

async fn run_limited(app: &App, meta: Meta, req: Request, next: Next) -> Response {
    let limit = app.limits.request_timeout;
    let start = Instant::now();
    let Ok(Ok(permit)) = tokio::time::timeout(limit, app.permits.acquire()).await else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in progress; retry later",
        )
        .into_response();
    };
    let resp = if meta.long {
        next.run(req).await
    } else {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} ms; an operation already handed to the store may still complete",
                    limit.as_millis()
                ),
            )
            .into_response(),
        }
    };
    drop(permit);
    resp
}

/// Unknown routes: 401 without a valid token (so routes are not probed
/// anonymously), else 404.
async fn fallback(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
) -> Response {
    if let Err(e) = authenticate(&app, &req) {
        return e.into_response();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see /v1/openapi.json",
    )
    .into_response()
}

/// Gives every error response a JSON body, also those the router writes
/// itself (405, extractor rejections); the dashboard's HTML error pages
/// keep theirs.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let has_body = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json") || c.starts_with("text/html"));
    if has_body {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let message = status.canonical_reason().unwrap_or("error");
    Response::from_parts(
        parts,
        Body::from(error::body(error::code_for_status(status), message)),
    )
}

fn request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| getrandom::u32().unwrap_or(0));
    format!("{prefix:08x}-{:06x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The method as a label: the standard ones by name, anything else `OTHER`
/// (a custom method is text the client chose).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The access log and request metrics: method, route template, status,
/// latency and request id; never the path, query, headers or body.
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id();
    let method = method_label(req.method());
    let app = req.extensions().get::<AppState>().cloned();
    let mut resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0);
    let status = resp.status().as_u16();
    let secs = start.elapsed().as_secs_f64();
    if let Some(app) = &app {
        let tenant = resp
            .extensions()
            .get::<RequestTenant>()
            .map(|t| t.0.as_str());
        app.metrics.finished(tenant, route, method, status, secs);
    }
    tracing::info!(
        request_id = %id,
        method,
        route,
        status,
        latency_ms = (secs * 1e6).round() / 1e3,
        "request"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    // Answers can hold personal data: no cache may keep them.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    security_headers(h);
    resp
}

/// Headers every answer carries: nothing may frame, sniff, refer or run
/// anything. The dashboard's pages set a Content-Security-Policy of their
/// own (their stylesheet and script); everything else gets the strictest.
fn security_headers(h: &mut axum::http::HeaderMap) {
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ));
    // The dashboard's pages send `same-origin` (their forms need an `Origin`,
    // which browsers blank under `no-referrer`); no page ever refers
    // another site.
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }

    #[test]
    fn every_route_is_routable_and_documented_once() {
        let routes = routes::routes();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(
                seen.insert((r.method.clone(), r.meta.path)),
                "{} {} listed twice",
                r.method,
                r.meta.path
            );
            assert!(
                r.meta.path.starts_with("/v1/") || !r.meta.path[1..].contains('/'),
                "{}",
                r.meta.path
            );
        }
        assert_eq!(
            routes
                .iter()
                .filter(|r| r.meta.access == Access::Public)
                .map(|r| r.meta.path)
                .collect::<Vec<_>>(),
            ["/healthz"]
        );
    }
}
