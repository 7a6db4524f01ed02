//! Prometheus metrics in the text exposition format, kept by hand.
//!
//! Labels are route templates, methods, statuses and tenant names: never a
//! path's values, never personal data. Everything is kept per tenant and a
//! caller sees only its own tenant's series ([`Metrics::render`]): a token
//! of one tenant learns nothing of another, not even its name. Requests that
//! named no tenant (no valid token, `/healthz`) are one unlabelled count.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use shredlog::Stats;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b
                && let Some(c) = self.counts.get_mut(i)
            {
                *c += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// What is kept of one tenant.
#[derive(Default)]
struct TenantMetrics {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    in_flight: u64,
    erasures: u64,
    retention_runs: BTreeMap<&'static str, u64>,
    retention_failures: u64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    tenants: Mutex<BTreeMap<String, TenantMetrics>>,
    /// Requests answered without a tenant (no valid token, `/healthz`).
    untenanted: AtomicU64,
}

/// Counts a request of a tenant in flight until dropped.
pub(crate) struct InFlight<'a> {
    metrics: &'a Metrics,
    tenant: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.metrics.tenants.lock().get_mut(&self.tenant) {
            t.in_flight = t.in_flight.saturating_sub(1);
        }
    }
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<T>(&self, tenant: &str, f: impl FnOnce(&mut TenantMetrics) -> T) -> T {
        f(self.tenants.lock().entry(tenant.to_owned()).or_default())
    }

    /// A request of `tenant` is being handled (until the guard drops).
    pub(crate) fn enter(&self, tenant: &str) -> InFlight<'_> {
        self.with(tenant, |t| t.in_flight += 1);
        InFlight {
            metrics: self,
            tenant: tenant.to_owned(),
        }
    }

    /// A request was answered; `tenant` is `None` when it named none.
    pub(crate) fn finished(
        &self,
        tenant: Option<&str>,
        route: &'static str,
        method: &'static str,
        status: u16,
        secs: f64,
    ) {
        let Some(tenant) = tenant else {
            self.untenanted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.with(tenant, |t| {
            *t.requests.entry((route, method, status)).or_default() += 1;
            t.latency.entry(route).or_default().observe(secs);
        });
    }

    pub(crate) fn erasure(&self, tenant: &str) {
        self.with(tenant, |t| t.erasures += 1);
    }

    pub(crate) fn retention_run(&self, tenant: &str, trigger: &'static str) {
        self.with(tenant, |t| {
            *t.retention_runs.entry(trigger).or_default() += 1
        });
    }

    pub(crate) fn retention_failure(&self, tenant: &str) {
        self.with(tenant, |t| t.retention_failures += 1);
    }

    /// The exposition text for `tenant` only; `stats` is its store's.
    pub(crate) fn render(&self, tenant: &str, stats: Option<&Stats>, uptime_secs: f64) -> String {
        let tenants = self.tenants.lock();
        let empty = TenantMetrics::default();
        let m = tenants.get(tenant).unwrap_or(&empty);
        let t = label(tenant);
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(
            o,
            "# HELP shredlog_http_requests_total HTTP requests answered, by tenant, route template, method and status.\n# TYPE shredlog_http_requests_total counter"
        );
        for ((route, method, status), n) in &m.requests {
            let _ = writeln!(
                o,
                "shredlog_http_requests_total{{tenant=\"{t}\",route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route),
            );
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_http_request_duration_seconds Time to answer a request (to the response head), by tenant and route template.\n# TYPE shredlog_http_request_duration_seconds histogram"
        );
        for (route, h) in &m.latency {
            let r = label(route);
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    o,
                    "shredlog_http_request_duration_seconds_bucket{{tenant=\"{t}\",route=\"{r}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                o,
                "shredlog_http_request_duration_seconds_bucket{{tenant=\"{t}\",route=\"{r}\",le=\"+Inf\"}} {}\nshredlog_http_request_duration_seconds_sum{{tenant=\"{t}\",route=\"{r}\"}} {}\nshredlog_http_request_duration_seconds_count{{tenant=\"{t}\",route=\"{r}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let counters: [(&str, &str, &str, u64); 4] = [
            (
                "shredlog_http_requests_in_flight",
                "gauge",
                "Requests of the tenant being handled.",
                m.in_flight,
            ),
            (
                "shredlog_erasures_total",
                "counter",
                "Erasure requests carried out.",
                m.erasures,
            ),
            (
                "shredlog_retention_failures_total",
                "counter",
                "Background retention runs that failed.",
                m.retention_failures,
            ),
            (
                "shredlog_http_unauthenticated_requests_total",
                "counter",
                "Requests of no tenant (no valid token, /healthz), all tenants' callers together.",
                self.untenanted.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, n) in counters {
            let labels = if name == "shredlog_http_unauthenticated_requests_total" {
                String::new()
            } else {
                format!("{{tenant=\"{t}\"}}")
            };
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {n}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_retention_runs_total Retention runs carried out, by trigger (request or background).\n# TYPE shredlog_retention_runs_total counter"
        );
        for (trigger, n) in &m.retention_runs {
            let _ = writeln!(
                o,
                "shredlog_retention_runs_total{{tenant=\"{t}\",trigger=\"{trigger}\"}} {n}"
            );
        }
        type Getter = fn(&Stats) -> u64;
        let gauges: [(&str, &str, Getter); 9] = [
            (
                "shredlog_store_segment_bytes",
                "Bytes of data in segment files (without the active segment's preallocated zeros).",
                |s| s.segment_bytes,
            ),
            (
                "shredlog_store_live_bytes",
                "Bytes of records that can still be read.",
                |s| s.live_bytes,
            ),
            (
                "shredlog_store_dead_bytes",
                "Bytes of records that can never be read again (reclaimable by compaction).",
                |s| s.dead_bytes,
            ),
            (
                "shredlog_store_keyring_bytes",
                "Bytes of the keyring file.",
                |s| s.keyring_bytes,
            ),
            ("shredlog_store_segments", "Segment files.", |s| {
                s.segments as u64
            }),
            ("shredlog_store_transcripts", "Live transcripts.", |s| {
                s.transcripts
            }),
            (
                "shredlog_store_transcripts_redacted",
                "Transcripts whose personal-data key is destroyed.",
                |s| s.transcripts_redacted,
            ),
            (
                "shredlog_store_visitors",
                "Visitors in the directory.",
                |s| s.visitors,
            ),
            ("shredlog_store_messages", "Live message records.", |s| {
                s.messages
            }),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
            if let Some(s) = stats {
                let _ = writeln!(o, "{name}{{tenant=\"{t}\"}} {}", get(s));
            }
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_uptime_seconds Seconds since the server started.\n# TYPE shredlog_uptime_seconds gauge\nshredlog_uptime_seconds {uptime_secs:.3}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms_of_one_tenant_only() {
        let m = Metrics::default();
        let busy = m.enter("acme");
        m.finished(Some("acme"), "/v1/messages", "POST", 200, 0.003);
        m.finished(Some("globex"), "/v1/visitors/erase", "POST", 200, 0.003);
        m.finished(None, "/healthz", "GET", 200, 0.001);
        m.erasure("acme");
        m.erasure("globex");
        m.retention_run("acme", "background");
        m.retention_failure("globex");
        let text = m.render("acme", Some(&Stats::default()), 1.0);
        for want in [
            "shredlog_http_requests_total{tenant=\"acme\",route=\"/v1/messages\",method=\"POST\",status=\"200\"} 1",
            "shredlog_http_request_duration_seconds_bucket{tenant=\"acme\",route=\"/v1/messages\",le=\"0.005\"} 1",
            "shredlog_http_request_duration_seconds_bucket{tenant=\"acme\",route=\"/v1/messages\",le=\"0.001\"} 0",
            "shredlog_erasures_total{tenant=\"acme\"} 1",
            "shredlog_retention_runs_total{tenant=\"acme\",trigger=\"background\"} 1",
            "shredlog_retention_failures_total{tenant=\"acme\"} 0",
            "shredlog_store_dead_bytes{tenant=\"acme\"} 0",
            "shredlog_http_requests_in_flight{tenant=\"acme\"} 1",
            "shredlog_http_unauthenticated_requests_total 1",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
        assert!(!text.contains("globex"), "{text}");
        assert!(!text.contains("erase"), "{text}");
        drop(busy);
        let text = m.render("acme", None, 1.0);
        assert!(text.contains("shredlog_http_requests_in_flight{tenant=\"acme\"} 0"));
        assert!(!text.contains("shredlog_store_dead_bytes{"));
        // A tenant never seen: its own empty series, nobody else's.
        let text = m.render("initech", None, 1.0);
        assert!(!text.contains("acme") && !text.contains("globex"), "{text}");
    }
}
