//! Prometheus metrics in the text exposition format, kept by hand.
//!
//! Labels are route templates, methods, statuses and tenant names: never a
//! path's values, never personal data.

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

#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    erasures: Mutex<BTreeMap<String, u64>>,
    retention_runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    retention_failures: AtomicU64,
    in_flight: AtomicU64,
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub(crate) fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, route: &'static str, method: &str, status: u16, secs: f64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *self
            .requests
            .lock()
            .entry((route, method.to_owned(), status))
            .or_default() += 1;
        self.latency.lock().entry(route).or_default().observe(secs);
    }

    pub(crate) fn erasure(&self, tenant: &str) {
        *self.erasures.lock().entry(tenant.to_owned()).or_default() += 1;
    }

    pub(crate) fn retention_run(&self, tenant: &str, trigger: &'static str) {
        *self
            .retention_runs
            .lock()
            .entry((tenant.to_owned(), trigger))
            .or_default() += 1;
    }

    pub(crate) fn retention_failure(&self) {
        self.retention_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `stores` are the open tenants' statistics.
    pub(crate) fn render(&self, stores: &[(String, Stats)], uptime_secs: f64) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(
            o,
            "# HELP shredlog_http_requests_total HTTP requests answered, by route template, method and status.\n# TYPE shredlog_http_requests_total counter"
        );
        for ((route, method, status), n) in self.requests.lock().iter() {
            let _ = writeln!(
                o,
                "shredlog_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_http_request_duration_seconds Time to answer a request (to the response head), by route template.\n# TYPE shredlog_http_request_duration_seconds histogram"
        );
        for (route, h) in self.latency.lock().iter() {
            let r = label(route);
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    o,
                    "shredlog_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                o,
                "shredlog_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\nshredlog_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\nshredlog_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_http_requests_in_flight Requests being handled.\n# TYPE shredlog_http_requests_in_flight gauge\nshredlog_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP shredlog_erasures_total Erasure requests carried out, by tenant.\n# TYPE shredlog_erasures_total counter"
        );
        for (t, n) in self.erasures.lock().iter() {
            let _ = writeln!(o, "shredlog_erasures_total{{tenant=\"{}\"}} {n}", label(t));
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_retention_runs_total Retention runs carried out, by tenant and trigger (request or background).\n# TYPE shredlog_retention_runs_total counter"
        );
        for ((t, trigger), n) in self.retention_runs.lock().iter() {
            let _ = writeln!(
                o,
                "shredlog_retention_runs_total{{tenant=\"{}\",trigger=\"{trigger}\"}} {n}",
                label(t)
            );
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_retention_failures_total Background retention runs that failed.\n# TYPE shredlog_retention_failures_total counter\nshredlog_retention_failures_total {}",
            self.retention_failures.load(Ordering::Relaxed)
        );
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
            for (t, s) in stores {
                let _ = writeln!(o, "{name}{{tenant=\"{}\"}} {}", label(t), get(s));
            }
        }
        let _ = writeln!(
            o,
            "# HELP shredlog_tenants_open Tenant stores open.\n# TYPE shredlog_tenants_open gauge\nshredlog_tenants_open {}",
            stores.len()
        );
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
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.started();
        m.finished("/v1/messages", "POST", 200, 0.003);
        m.erasure("acme");
        m.retention_run("acme", "background");
        let text = m.render(&[("acme".into(), Stats::default())], 1.0);
        assert!(text.contains(
            "shredlog_http_requests_total{route=\"/v1/messages\",method=\"POST\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "shredlog_http_request_duration_seconds_bucket{route=\"/v1/messages\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "shredlog_http_request_duration_seconds_bucket{route=\"/v1/messages\",le=\"0.001\"} 0"
        ));
        assert!(text.contains("shredlog_erasures_total{tenant=\"acme\"} 1"));
        assert!(text.contains("shredlog_store_dead_bytes{tenant=\"acme\"} 0"));
        assert!(text.contains("shredlog_http_requests_in_flight 0"));
    }
}
