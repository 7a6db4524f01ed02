//! The route handlers: each parses its input, runs the store call on the
//! blocking pool and answers JSON (or a stream, for exports).

use std::io::Write;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shredlog::{Body as MsgBody, HoldTarget, Message, RetentionPolicy, Store, Timestamp};

use super::app::AppState;
use super::auth::Principal;
use super::body::*;
use super::error::ApiError;

// ---------------------------------------------------------------- helpers

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> shredlog::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(ApiError::from)
}

async fn store_of(app: &AppState, p: &Principal) -> Result<Arc<Store>, ApiError> {
    app.tenants.get(&p.tenant).await
}

fn json_response(status: StatusCode, v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => ApiError::internal().into_response(),
    }
}

/// A 200 with `v` as JSON.
pub(super) fn json_ok(v: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, v)
}

fn ok(v: &impl serde::Serialize) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, v))
}

fn message_value(m: &Message) -> Value {
    serde_json::from_str(&shredlog::interchange::to_line(m)).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- ops

pub(super) async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

pub(super) async fn readyz(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    store_of(&app, &p).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the tenant's store cannot be opened ({})", e.code),
        )
    })?;
    ok(&json!({"status": "ready"}))
}

/// The caller's tenant's metrics only (its store's sizes if it is open).
pub(super) async fn metrics(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let store = app
        .tenants
        .opened()
        .await
        .into_iter()
        .find_map(|(name, store)| (name == p.tenant).then_some(store));
    let stats = match store {
        Some(store) => tokio::task::spawn_blocking(move || store.stats())
            .await
            .ok()
            .and_then(|s| s.ok()),
        None => None,
    };
    let text = app.metrics.render(
        &p.tenant,
        stats.as_ref(),
        app.started.elapsed().as_secs_f64(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(super) async fn append(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ndjson = check_messages(&headers)?;
    let bytes = read_body(&headers, body, app.limits.max_body_bytes).await?;
    let items = append_items(ndjson, &bytes)?;
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the body holds no message",
        ));
    }
    let limits = &app.limits;
    let mut msgs = Vec::with_capacity(items.len());
    for (i, line) in items.iter().enumerate() {
        if line.len() as u64 > limits.max_message_bytes {
            return Err(ApiError::too_large(
                "message_too_large",
                format!(
                    "message {i} is larger than the limit of {} bytes",
                    limits.max_message_bytes
                ),
            ));
        }
        let msg = shredlog::interchange::parse_line(line).map_err(|e| {
            let why = match e {
                shredlog::Error::Invalid(m) => m,
                other => other.to_string(),
            };
            ApiError::bad_request("invalid_message", format!("message {i}: {why}"))
        })?;
        if let MsgBody::File(f) = &msg.body
            && f.data.len() as u64 > limits.max_file_bytes
        {
            return Err(ApiError::too_large(
                "file_too_large",
                format!(
                    "message {i}: the file is larger than the limit of {} bytes",
                    limits.max_file_bytes
                ),
            ));
        }
        msgs.push(msg);
    }
    let store = store_of(&app, &p).await?;
    let n = msgs.len();
    let done = blocking(move || store.append_batch(&msgs)).await?;
    // `appended` counts the messages the request carried, for clients that
    // read it; `stored` and `already_stored` say which were new.
    ok(&json!({
        "appended": n,
        "stored": done.stored,
        "already_stored": done.already_stored,
    }))
}

pub(super) async fn get_transcript(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let store = store_of(&app, &p).await?;
    let id2 = id.clone();
    let messages = blocking(move || store.transcript(&id2)).await?;
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/x-ndjson"));
    if ndjson {
        let mut out = String::new();
        for m in &messages {
            out.push_str(&shredlog::interchange::to_line(m));
            out.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response());
    }
    let list: Vec<Value> = messages.iter().map(message_value).collect();
    ok(&json!({"transcript": id, "messages": list}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferenceQuery {
    #[serde(default)]
    reference: String,
    /// Answer what the deletion would do, do nothing.
    #[serde(default)]
    dry_run: bool,
}

pub(super) async fn delete_transcript(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ReferenceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let q = query(q)?;
    let store = store_of(&app, &p).await?;
    if q.dry_run {
        return ok(&blocking(move || store.preview_delete_transcript(&id)).await?);
    }
    let entry = blocking(move || store.delete_transcript(&id, &q.reference)).await?;
    ok(&entry)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RewriteRequest {
    #[serde(default)]
    spans: Vec<String>,
    #[serde(default)]
    reference: String,
}

pub(super) async fn rewrite_transcript(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let req: RewriteRequest = json_body_or_default(&app, &headers, body).await?;
    let store = store_of(&app, &p).await?;
    let entry = blocking(move || store.rewrite_transcript(&id, &req.spans, &req.reference)).await?;
    ok(&entry)
}

// ---------------------------------------------------------------- visitors

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmailRequest {
    email: String,
    #[serde(default)]
    reference: String,
}

async fn email_request(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<EmailRequest, ApiError> {
    let req: EmailRequest = json_body(app, headers, body).await?;
    check_email(&req.email)?;
    Ok(req)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LookupRequest {
    email: String,
    #[serde(default, deserialize_with = "some")]
    from: Option<String>,
    #[serde(default, deserialize_with = "some")]
    to: Option<String>,
}

fn parse_time(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        Timestamp::parse(s).map(|t| t.unix_millis()).map_err(|_| {
            ApiError::bad_request(
                "invalid",
                format!("field `{field}` is not an RFC 3339 timestamp"),
            )
        })
    })
    .transpose()
}

pub(super) async fn lookup(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: LookupRequest = json_body(&app, &headers, body).await?;
    check_email(&req.email)?;
    let from = parse_time("from", req.from.as_deref())?;
    let to = parse_time("to", req.to.as_deref())?;
    let store = store_of(&app, &p).await?;
    let list = blocking(move || store.transcripts_by_email(&req.email, from, to)).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|t| {
            json!({
                "transcript": t.id, "first": t.first.as_str(), "last": t.last.as_str(),
                "messages": t.messages, "redacted": t.redacted, "rules_version": t.rules_version,
            })
        })
        .collect();
    ok(&json!({"transcripts": items}))
}

pub(super) async fn consent(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = email_request(&app, &headers, body).await?;
    let store = store_of(&app, &p).await?;
    let state = blocking(move || store.consent(&req.email)).await?;
    ok(&state)
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportRequest {
    email: String,
    #[serde(default)]
    format: ExportFormat,
}

/// Sends what the export writers write to the response body in chunks.
pub(super) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

pub(super) async fn export(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ExportRequest = json_body(&app, &headers, body).await?;
    check_email(&req.email)?;
    let store = store_of(&app, &p).await?;
    // The library assembles the export in memory; what is streamed is its
    // serialisation (file bytes base64-encoded can be several times larger).
    let data = blocking(move || store.export(&req.email)).await?;
    Ok(export_response(data, req.format))
}

/// Streams an export as a download (`export.jsonl` or `export.csv`: the
/// file name names no one).
pub(crate) fn export_response(data: shredlog::VisitorExport, format: ExportFormat) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let r = match format {
            ExportFormat::Json => shredlog::export::write_json(&data, &mut w),
            ExportFormat::Csv => shredlog::export::write_csv(&data, &mut w),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "export stream ended early");
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (ctype, name) = match format {
        ExportFormat::Json => ("application/x-ndjson", "export.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "export.csv"),
    };
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A visitor operation addressed by email in the body: runs `op` with the
/// email and the caller's reference and answers with its audit entry.
async fn email_op(
    app: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    body: Body,
    op: fn(&Store, &str, &str) -> shredlog::Result<shredlog::AuditEntry>,
) -> Result<shredlog::AuditEntry, ApiError> {
    let req = email_request(app, headers, body).await?;
    let store = store_of(app, p).await?;
    blocking(move || op(&store, &req.email, &req.reference)).await
}

/// An erasure or a deletion of a visitor, or with `dry_run` its preview.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseRequest {
    email: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    dry_run: bool,
}

async fn erase_request(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<EraseRequest, ApiError> {
    let req: EraseRequest = json_body(app, headers, body).await?;
    check_email(&req.email)?;
    Ok(req)
}

pub(super) async fn erase(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = erase_request(&app, &headers, body).await?;
    let store = store_of(&app, &p).await?;
    if req.dry_run {
        return ok(&blocking(move || store.preview_redact_visitor(&req.email)).await?);
    }
    let entry = blocking(move || store.redact_visitor(&req.email, &req.reference)).await?;
    app.metrics.erasure(&p.tenant);
    ok(&entry)
}

pub(super) async fn delete_visitor(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = erase_request(&app, &headers, body).await?;
    let store = store_of(&app, &p).await?;
    if req.dry_run {
        return ok(&blocking(move || store.preview_delete_visitor(&req.email)).await?);
    }
    ok(&blocking(move || store.delete_visitor(&req.email, &req.reference)).await?)
}

pub(super) async fn restrict(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ok(&email_op(&app, &p, &headers, body, Store::restrict_visitor).await?)
}

pub(super) async fn lift_restriction(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ok(&email_op(&app, &p, &headers, body, Store::lift_restriction).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RectifyRequest {
    email: String,
    #[serde(default, deserialize_with = "some")]
    new_email: Option<String>,
    #[serde(default, deserialize_with = "some")]
    name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    phone: Option<String>,
    #[serde(default)]
    reference: String,
}

pub(super) async fn rectify(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: RectifyRequest = json_body(&app, &headers, body).await?;
    check_email(&req.email)?;
    if req.new_email.is_none() && req.name.is_none() && req.phone.is_none() {
        return Err(ApiError::bad_request(
            "invalid",
            "give at least one of `new_email`, `name`, `phone`",
        ));
    }
    if let Some(e) = &req.new_email {
        check_email(e)?;
    }
    let store = store_of(&app, &p).await?;
    let entry = blocking(move || {
        let fix = shredlog::Rectification::new(req.new_email, req.name, req.phone);
        store.rectify_visitor(&req.email, &fix, &req.reference)
    })
    .await?;
    ok(&entry)
}

// ---------------------------------------------------------------- holds

pub(super) async fn list_holds(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let store = store_of(&app, &p).await?;
    let holds = blocking(move || Ok(store.holds())).await?;
    let items: Vec<Value> = holds
        .into_iter()
        .map(|(subject, h)| json!({"subject": subject, "reference": h.reference, "since": h.since}))
        .collect();
    ok(&json!({"holds": items}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldRequest {
    #[serde(default, deserialize_with = "some")]
    email: Option<String>,
    #[serde(default, deserialize_with = "some")]
    transcript: Option<String>,
    #[serde(default)]
    reference: String,
}

async fn hold_op(
    app: AppState,
    p: Principal,
    headers: HeaderMap,
    body: Body,
    place: bool,
) -> Result<Response, ApiError> {
    let req: HoldRequest = json_body(&app, &headers, body).await?;
    match (&req.email, &req.transcript) {
        (Some(e), None) => check_email(e)?,
        (None, Some(t)) if !t.is_empty() => {}
        _ => {
            return Err(ApiError::bad_request(
                "invalid",
                "give exactly one of `email` and `transcript`",
            ));
        }
    }
    let store = store_of(&app, &p).await?;
    let entry = blocking(move || {
        let target = match (&req.email, &req.transcript) {
            (Some(e), _) => HoldTarget::Email(e),
            (_, Some(t)) => HoldTarget::Transcript(t),
            _ => return Err(shredlog::Error::Invalid("no target".into())),
        };
        if place {
            store.place_hold(target, &req.reference)
        } else {
            store.release_hold(target, &req.reference)
        }
    })
    .await?;
    ok(&entry)
}

pub(super) async fn place_hold(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    hold_op(app, p, headers, body, true).await
}

pub(super) async fn release_hold(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    hold_op(app, p, headers, body, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldSettings {
    block_erasure: bool,
}

pub(super) async fn hold_settings(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: HoldSettings = json_body(&app, &headers, body).await?;
    let store = store_of(&app, &p).await?;
    let block = req.block_erasure;
    blocking(move || store.set_holds_block_erasure(block)).await?;
    ok(&json!({"block_erasure": block}))
}

// ---------------------------------------------------------------- retention

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionRequest {
    #[serde(default, deserialize_with = "some")]
    older_than: Option<String>,
    #[serde(default, deserialize_with = "some")]
    older_than_ms: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    delete: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    reference: Option<String>,
    /// Run: answer what the run would do, do nothing.
    #[serde(default)]
    dry_run: bool,
    /// A period of 0 (every transcript at once) must be confirmed.
    #[serde(default)]
    confirm_zero: bool,
}

impl RetentionRequest {
    /// The period in milliseconds, if one was given.
    fn period(&self) -> Result<Option<i64>, ApiError> {
        let bad = |m: &str| ApiError::bad_request("invalid", m.to_owned());
        match (&self.older_than, self.older_than_ms) {
            (Some(_), Some(_)) => Err(bad("give `older_than` or `older_than_ms`, not both")),
            (Some(s), None) => {
                let d = crate::config::parse_duration(s).map_err(|e| bad(&e))?;
                i64::try_from(d.as_millis())
                    .map(Some)
                    .map_err(|_| bad("the period is too long"))
            }
            (None, Some(ms)) if ms < 0 => Err(bad("the period must not be negative")),
            (None, ms) => Ok(ms),
        }
    }

    /// The period, refused when it is 0 and not confirmed.
    fn confirmed_period(&self) -> Result<Option<i64>, ApiError> {
        let period = self.period()?;
        if period == Some(0) && !self.confirm_zero {
            return Err(ApiError::bad_request(
                "confirmation_required",
                "a period of 0 acts on every transcript not on hold at once; send `\"confirm_zero\": true` if that is meant",
            ));
        }
        Ok(period)
    }
}

fn retention_state(app: &AppState, policy: Option<RetentionPolicy>) -> Value {
    json!({
        "policy": policy.map(|p| json!({"older_than_ms": p.older_than_ms, "delete": p.delete})),
        "background_interval_secs": app.retention_interval.map(|d| d.as_secs()),
    })
}

pub(super) async fn get_retention(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let store = store_of(&app, &p).await?;
    let policy = blocking(move || Ok(store.retention_policy())).await?;
    ok(&retention_state(&app, policy))
}

pub(super) async fn put_retention(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: RetentionRequest = json_body(&app, &headers, body).await?;
    if req.reference.is_some() || req.dry_run {
        return Err(ApiError::bad_request(
            "invalid",
            "`reference` and `dry_run` belong to a retention run, not to the policy",
        ));
    }
    let Some(older_than_ms) = req.confirmed_period()? else {
        return Err(ApiError::bad_request(
            "invalid",
            "give the period as `older_than` (e.g. \"90d\") or `older_than_ms`",
        ));
    };
    let policy = RetentionPolicy {
        older_than_ms,
        delete: req.delete.unwrap_or(false),
    };
    let store = store_of(&app, &p).await?;
    let stored = policy.clone();
    blocking(move || store.set_retention_policy(Some(stored))).await?;
    ok(&retention_state(&app, Some(policy)))
}

pub(super) async fn delete_retention(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let store = store_of(&app, &p).await?;
    blocking(move || store.set_retention_policy(None)).await?;
    ok(&retention_state(&app, None))
}

pub(super) async fn run_retention(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: RetentionRequest = json_body_or_default(&app, &headers, body).await?;
    let reference = req.reference.clone().unwrap_or_else(|| "retention".into());
    let period = if req.dry_run {
        req.period()?
    } else {
        req.confirmed_period()?
    };
    if period.is_none() && req.delete.is_some() {
        return Err(ApiError::bad_request(
            "invalid",
            "`delete` needs a period; without one the stored policy is applied as stored",
        ));
    }
    let store = store_of(&app, &p).await?;
    let delete = req.delete.unwrap_or(false);
    if req.dry_run {
        let preview = blocking(move || {
            let now = Timestamp::now().unix_millis();
            match period {
                Some(ms) => store.preview_retention(ms, delete, now).map(Some),
                None => store
                    .retention_policy()
                    .map(|p| store.preview_retention(p.older_than_ms, p.delete, now))
                    .transpose(),
            }
        })
        .await?;
        return ok(&json!({"preview": preview}));
    }
    let report = blocking(move || match period {
        Some(ms) => store
            .apply_retention(ms, delete, Timestamp::now().unix_millis(), &reference)
            .map(Some),
        None => store.run_retention_policy(&reference),
    })
    .await?;
    if report.is_some() {
        app.metrics.retention_run(&p.tenant, "request");
    }
    ok(&json!({"report": report}))
}

// ---------------------------------------------------------------- maintenance

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferenceRequest {
    #[serde(default, deserialize_with = "some")]
    reference: Option<String>,
}

pub(super) async fn rewrite_stale(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ReferenceRequest = json_body_or_default(&app, &headers, body).await?;
    let reference = req.reference.unwrap_or_else(|| "rewrite".into());
    let store = store_of(&app, &p).await?;
    let n = blocking(move || store.rewrite_stale(&reference)).await?;
    ok(&json!({"rewritten": n, "rules_version": shredlog::pii::RULES_VERSION}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CompactRequest {
    #[serde(default, deserialize_with = "some")]
    max_mib_per_sec: Option<u64>,
}

pub(super) async fn compact(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CompactRequest = json_body_or_default(&app, &headers, body).await?;
    let mut options = shredlog::CompactOptions::everything();
    if let Some(mib) = req.max_mib_per_sec {
        if mib == 0 {
            return Err(ApiError::bad_request(
                "invalid",
                "`max_mib_per_sec` must be at least 1",
            ));
        }
        if mib > 1 << 20 {
            return Err(ApiError::bad_request(
                "invalid",
                "`max_mib_per_sec` may be at most 1048576",
            ));
        }
        options.bytes_per_sec = Some(mib.saturating_mul(1 << 20));
    }
    let store = store_of(&app, &p).await?;
    let report = blocking(move || store.compact(&options)).await?;
    ok(&report)
}

pub(super) async fn verify(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let store = store_of(&app, &p).await?;
    let report = blocking(move || store.verify()).await?;
    ok(&report)
}

pub(super) async fn stats(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let store = store_of(&app, &p).await?;
    let stats = blocking(move || store.stats()).await?;
    ok(&stats)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    after: Option<u64>,
}

pub(super) async fn audit(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let store = store_of(&app, &p).await?;
    let mut entries = blocking(move || store.audit_log()).await?;
    if let Some(after) = q.after {
        entries.retain(|e| e.seq > after);
    }
    ok(&json!({"entries": entries}))
}
