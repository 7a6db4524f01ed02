//! The store page: sizes, garbage (bytes of shredded records still on disk),
//! the delete-persistence bound, and compaction, which runs in the
//! background with a progress bar (`dashboard.js` polls
//! `/store/compaction`; without script, the page's own link refreshes it).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use parking_lot::Mutex;
use serde_json::json;
use shredlog::{CompactOptions, CompactReport, Stats};

use super::page::{self, Section, bytes, count};
use super::{Form, NoFields, SessionCtx, blocking, see_other, store, store_error};
use crate::server::app::AppState;
use crate::server::auth::Role;

/// One compaction of a tenant's store, started from the page.
pub(crate) struct Job {
    done: AtomicU64,
    total: AtomicU64,
    outcome: Mutex<Option<Result<CompactReport, String>>>,
}

impl Job {
    fn running(&self) -> bool {
        self.outcome.lock().is_none()
    }
}

/// The latest compaction of each tenant.
#[derive(Default)]
pub(crate) struct Compactions(Mutex<HashMap<String, Arc<Job>>>);

impl Compactions {
    fn of(&self, tenant: &str) -> Option<Arc<Job>> {
        self.0.lock().get(tenant).cloned()
    }
}

/// `GET /store`.
pub(super) async fn store_page(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
) -> Response {
    let s = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let stats = match blocking(move || s.stats()).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let bound = app.tenants.options().max_dead_age_ms;
    let job = app.dashboard.compactions.of(&ctx.principal.tenant);
    let body = render(&ctx, &stats, bound, job.as_deref());
    page::page(Some(&ctx), Section::Store, "Store", body)
}

fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn render(ctx: &SessionCtx, s: &Stats, bound: Option<u64>, job: Option<&Job>) -> Markup {
    let admin = ctx.principal.role == Role::Admin;
    let stale: u64 = s
        .rules_versions
        .iter()
        .filter(|(v, _)| **v < s.current_rules_version)
        .map(|(_, n)| n)
        .sum();
    html! {
        h1 { "Store" }
        p.lead { "The tenant's store: what it holds, and what erasures left behind on disk until compaction removes it." }
        div.cards {
            section.card aria-labelledby="size-title" {
                h2 #size-title { "Size" }
                dl.figures {
                    dt { "Segment files" } dd { (bytes(s.segment_bytes)) " in " (page::counted(s.segments as u64, "file")) }
                    dt { "Keyring" } dd { (bytes(s.keyring_bytes)) }
                    dt { "Transcripts" } dd { (count(s.transcripts)) }
                    dt { "Of them redacted" } dd { (count(s.transcripts_redacted)) }
                    dt { "Visitors" } dd { (count(s.visitors)) }
                    dt { "Messages" } dd { (count(s.messages)) }
                }
            }
            section.card aria-labelledby="garbage-title" {
                h2 #garbage-title { "Garbage" }
                dl.figures {
                    dt { "Live data" } dd { (bytes(s.live_bytes)) }
                    dt { "Shredded, still on disk" } dd { (bytes(s.dead_bytes)) " (" (ratio(s.dead_bytes, s.live_bytes + s.dead_bytes)) ")" }
                    dt { "Delete-persistence bound" }
                    dd.text {
                        @match bound {
                            Some(ms) => { "Shredded bytes are removed within " (page::period(ms as i64)) " by background compaction." }
                            None => "None: shredded bytes stay until compacted here or with shredlog compact.",
                        }
                    }
                    @if stale > 0 {
                        dt { "Written under older detection rules" } dd { (count(stale)) " transcripts" }
                    }
                }
                p.small { "Erased data is unreadable at once (its keys are destroyed); compaction also removes the unreadable bytes from the disk." }
            }
        }
        section.card aria-labelledby="compaction-title" {
            h2 #compaction-title { "Compaction" }
            (compaction(ctx, admin, job))
        }
    }
}

fn compaction(ctx: &SessionCtx, admin: bool, job: Option<&Job>) -> Markup {
    html! {
        div #compaction data-status-url=[job.filter(|j| j.running()).map(|_| "/store/compaction")] {
            @match job {
                Some(j) if j.running() => {
                    @let (done, total) = (j.done.load(Ordering::Relaxed), j.total.load(Ordering::Relaxed));
                    label for="compaction-progress" { "Compacting…" }
                    progress #compaction-progress max=(total.max(1)) value=(done) { (ratio(done, total)) }
                    p #compaction-status role="status" aria-live="polite" { (bytes(done)) " of " (bytes(total)) " rewritten." }
                    p.small { a href="/store" { "Refresh" } }
                }
                Some(j) => {
                    @match &*j.outcome.lock() {
                        Some(Ok(r)) => div.notice role="status" {
                            p { strong { "Compaction finished." } " " (count(r.segments_rewritten)) " segments rewritten, " (count(r.segments_removed)) " removed; "
                                (bytes(r.bytes_before)) " → " (bytes(r.bytes_after)) "; " (count(r.pii_parts_dropped)) " personal-data parts dropped; keyring "
                                (bytes(r.keyring_bytes_before)) " → " (bytes(r.keyring_bytes_after)) "." }
                        },
                        Some(Err(m)) => div.error-summary role="alert" { h3 { "Compaction failed" } p { (m) } },
                        None => (page::nothing()),
                    }
                }
                None => (page::nothing()),
            }
            @if admin && !job.is_some_and(Job::running) {
                form method="post" action="/store/compact" {
                    (page::csrf(ctx))
                    p { "Rewrites the segment files without their shredded records, and shortens the keyring. Reading and writing go on meanwhile." }
                    button.primary type="submit" { "Compact now" }
                }
            }
        }
    }
}

/// `POST /store/compact`: starts a compaction (one at a time per tenant).
pub(super) async fn compact(
    State(app): State<AppState>,
    Form(NoFields {}, ctx): Form<NoFields>,
) -> Response {
    let tenant = ctx.principal.tenant.clone();
    let store = match store(&app, &ctx).await {
        Ok(s) => s,
        Err(e) => return store_error(&ctx, e),
    };
    let job = {
        let mut all = app.dashboard.compactions.0.lock();
        if all.get(&tenant).is_some_and(|j| j.running()) {
            return see_other("/store");
        }
        let job = Arc::new(Job {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        all.insert(tenant, Arc::clone(&job));
        job
    };
    tokio::task::spawn_blocking(move || {
        let progress = |done: u64, total: u64| {
            job.done.store(done, Ordering::Relaxed);
            job.total.store(total, Ordering::Relaxed);
        };
        let r = store.compact_with_progress(&CompactOptions::everything(), &progress);
        if let Err(e) = &r {
            tracing::error!(error = %e, "compaction from the dashboard failed");
        }
        let outcome = r.map_err(|e| crate::server::error::ApiError::from(e).message);
        *job.outcome.lock() = Some(outcome);
    });
    see_other("/store")
}

/// `GET /store/compaction`: the progress, as JSON, for the page's script.
pub(super) async fn status(
    State(app): State<AppState>,
    axum::Extension(ctx): axum::Extension<SessionCtx>,
) -> Response {
    let v = match app.dashboard.compactions.of(&ctx.principal.tenant) {
        None => json!({"state": "none"}),
        Some(j) => json!({
            "state": if j.running() { "running" } else { "finished" },
            "done": j.done.load(Ordering::Relaxed),
            "total": j.total.load(Ordering::Relaxed),
        }),
    };
    let mut resp = v.to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
