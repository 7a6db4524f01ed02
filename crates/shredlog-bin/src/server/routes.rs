//! The route table.
//!
//! [`routes`] is the single list of routes: the router is built from it and so
//! is the OpenAPI document, so the two cannot disagree about which routes
//! exist, their methods or who may call them.

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::handlers::*;
use super::route::{Access, Doc, Param, REFERENCE_PATTERN, Route, route, schema_ref};

/// Every route the server has.
pub(crate) fn routes() -> Vec<Route> {
    use Access::*;
    let id = || Param::path("id", "The caller's transcript id (percent-encoded).");
    let reference = || {
        Param::query(
            "reference",
            "Your reference for the audit log (e.g. a ticket number). Must not contain personal data.",
            json!({"type": "string", "maxLength": 256, "pattern": REFERENCE_PATTERN}),
        )
    };
    vec![
        route(
            Method::GET,
            "/healthz",
            Public,
            healthz,
            Doc::new("healthz", "ops", "Liveness: the process answers.")
                .ok_json("Alive.", schema_ref("Status")),
        ),
        route(
            Method::GET,
            "/readyz",
            Any,
            readyz,
            Doc::new("readyz", "ops", "Readiness: the caller's tenant store is open and the server is not shutting down.")
                .ok_json("Ready.", schema_ref("Status"))
                .errors(&[503]),
        ),
        route(
            Method::GET,
            "/metrics",
            Any,
            metrics,
            Doc::new("metrics", "ops", "Prometheus metrics (text exposition format): requests by route and status, latency histograms, store sizes, dead bytes, erasures, retention runs.")
                .ok_text("Metrics.", "text/plain; version=0.0.4"),
        ),
        route(
            Method::GET,
            "/v1/openapi.json",
            Any,
            openapi,
            Doc::new("openapi", "ops", "This OpenAPI document.")
                .ok_json("The document.", json!({"type": "object"})),
        ),
        route(
            Method::POST,
            "/v1/messages",
            Writer,
            append,
            Doc::new("append", "messages", "Append one message or a batch.")
                .describe("The body is one interchange object (DESIGN §4), a JSON array of them, or NDJSON (one object a line; `Content-Type: application/x-ndjson`). A batch is checked whole before anything is written and acknowledged with one sync. Messages over the message size or with a file over the file size get 413.")
                .body_append()
                .ok_json("Appended and durable under the store's durability setting.", schema_ref("AppendResult"))
                .errors(&[400, 413, 423]),
        ),
        route(
            Method::GET,
            "/v1/transcripts/{id}",
            Writer,
            get_transcript,
            Doc::new("getTranscript", "messages", "Read one transcript whole.")
                .describe("Destroyed personal data reads as `<redacted>`. With `Accept: application/x-ndjson` the messages come as interchange lines.")
                .param(id())
                .ok_json("The transcript.", schema_ref("Transcript"))
                .ok_also("application/x-ndjson", json!({"type": "string"}))
                .errors(&[404, 423]),
        ),
        route(
            Method::DELETE,
            "/v1/transcripts/{id}",
            Admin,
            delete_transcript,
            Doc::new("deleteTranscript", "privacy", "Delete one transcript outright (both keys destroyed).")
                .param(id())
                .param(reference())
                .param(Param::query(
                    "dry_run",
                    "`true`: answer what the deletion would do (a Preview) and do nothing.",
                    json!({"type": "boolean", "default": false}),
                ))
                .ok_json("The audit entry (with `dry_run`, the preview).", audit_or_preview())
                .errors(&[400, 404, 409]),
        ),
        route(
            Method::POST,
            "/v1/transcripts/{id}/rewrite",
            Admin,
            rewrite_transcript,
            Doc::new("rewriteTranscript", "privacy", "Re-redact a transcript by rewriting it under new keys with the current detection rules, plus literal spans the rules missed.")
                .param(id())
                .body_json(schema_ref("RewriteRequest"), false)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404, 409, 423]),
        ),
        route(
            Method::POST,
            "/v1/visitors/lookup",
            Writer,
            lookup,
            Doc::new("lookupVisitor", "visitors", "List a visitor's transcripts, newest first, optionally within a time range.")
                .describe("The email travels in the body, never in the URL. An unknown email gives an empty list.")
                .body_json(schema_ref("LookupRequest"), true)
                .ok_json("The transcripts.", schema_ref("TranscriptList"))
                .errors(&[400, 423]),
        ),
        route(
            Method::POST,
            "/v1/visitors/consent",
            Writer,
            consent,
            Doc::new("visitorConsent", "visitors", "A visitor's consent state and history (from consent events in their transcripts).")
                .body_json(schema_ref("EmailRequest"), true)
                .ok_json("Consent state.", schema_ref("ConsentState"))
                .errors(&[400, 404]),
        ),
        route(
            Method::POST,
            "/v1/visitors/export",
            Admin,
            export,
            Doc::new("exportVisitor", "privacy", "Export everything held about a visitor (Art. 15 and 20), streamed.")
                .describe("`format: json` gives interchange JSON lines (re-importable, file bytes included); `format: csv` gives one row per message (columns as in docs/EXPORT.md). Works on restricted visitors.")
                .body_json(schema_ref("ExportRequest"), true)
                .ok_text("The export.", "application/x-ndjson")
                .ok_also("text/csv", json!({"type": "string"}))
                .errors(&[400, 404]),
        ),
        route(
            Method::POST,
            "/v1/visitors/erase",
            Admin,
            erase,
            Doc::new("eraseVisitor", "privacy", "Erasure request (Art. 17): destroy all of a visitor's personal data, durably, before answering.")
                .describe("Their transcripts stay readable with `<redacted>` where personal data was; a lookup by the email finds nothing afterwards. The answer is the erasure report (the audit entry), which names the random visitor id, never the email. With `dry_run` nothing is done and the answer is the preview.")
                .body_json(schema_ref("EraseRequest"), true)
                .ok_json("The erasure report (with `dry_run`, the preview).", audit_or_preview())
                .errors(&[400, 404, 409]),
        ),
        route(
            Method::POST,
            "/v1/visitors/delete",
            Admin,
            delete_visitor,
            Doc::new("deleteVisitor", "privacy", "Delete everything of a visitor outright.")
                .describe("With `dry_run` nothing is done and the answer is the preview.")
                .body_json(schema_ref("EraseRequest"), true)
                .ok_json("The audit entry (with `dry_run`, the preview).", audit_or_preview())
                .errors(&[400, 404, 409]),
        ),
        route(
            Method::POST,
            "/v1/visitors/restrict",
            Admin,
            restrict,
            Doc::new("restrictVisitor", "privacy", "Restrict processing of a visitor's data (Art. 18): appends and ordinary reads answer 423 until lifted.")
                .body_json(schema_ref("EmailRequest"), true)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404]),
        ),
        route(
            Method::POST,
            "/v1/visitors/lift-restriction",
            Admin,
            lift_restriction,
            Doc::new("liftRestriction", "privacy", "Lift a restriction.")
                .body_json(schema_ref("EmailRequest"), true)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404]),
        ),
        route(
            Method::POST,
            "/v1/visitors/rectify",
            Admin,
            rectify,
            Doc::new("rectifyVisitor", "privacy", "Rectification (Art. 16): correct a visitor's email, name or phone.")
                .describe("Every transcript of the visitor is rewritten under new keys with the old values replaced, and the old keys destroyed.")
                .body_json(schema_ref("RectifyRequest"), true)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404, 423]),
        )
        .long(),
        route(
            Method::GET,
            "/v1/holds",
            Admin,
            list_holds,
            Doc::new("listHolds", "holds", "Legal holds in force.")
                .ok_json("The holds.", schema_ref("HoldList")),
        ),
        route(
            Method::POST,
            "/v1/holds",
            Admin,
            place_hold,
            Doc::new("placeHold", "holds", "Place a legal hold on a visitor (by email) or a transcript: exempt from retention and deletion.")
                .body_json(schema_ref("HoldRequest"), true)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404]),
        ),
        route(
            Method::POST,
            "/v1/holds/release",
            Admin,
            release_hold,
            Doc::new("releaseHold", "holds", "Release a legal hold.")
                .body_json(schema_ref("HoldRequest"), true)
                .ok_json("The audit entry.", schema_ref("AuditEntry"))
                .errors(&[400, 404]),
        ),
        route(
            Method::PUT,
            "/v1/holds/settings",
            Admin,
            hold_settings,
            Doc::new("holdSettings", "holds", "Whether legal holds also refuse erasure requests (default: no).")
                .body_json(schema_ref("HoldSettings"), true)
                .ok_json("The setting now in force.", schema_ref("HoldSettings"))
                .errors(&[400]),
        ),
        route(
            Method::GET,
            "/v1/retention",
            Admin,
            get_retention,
            Doc::new("getRetention", "retention", "The stored retention policy and the background run's interval.")
                .ok_json("The policy.", schema_ref("RetentionState")),
        ),
        route(
            Method::PUT,
            "/v1/retention",
            Admin,
            put_retention,
            Doc::new("setRetention", "retention", "Store the retention policy: transcripts whose latest message is older than the period are redacted (or deleted), except under a legal hold.")
                .body_json(schema_ref("RetentionPolicy"), true)
                .ok_json("The policy now in force.", schema_ref("RetentionState"))
                .errors(&[400]),
        ),
        route(
            Method::DELETE,
            "/v1/retention",
            Admin,
            delete_retention,
            Doc::new("deleteRetention", "retention", "Remove the retention policy.")
                .ok_json("No policy is in force.", schema_ref("RetentionState")),
        ),
        route(
            Method::POST,
            "/v1/retention/run",
            Admin,
            run_retention,
            Doc::new("runRetention", "retention", "Apply retention now: the stored policy, or the period given in the body.")
                .body_json(schema_ref("RetentionRunRequest"), false)
                .ok_json("The run's audit entry (`report` is null when there is no policy to apply).", schema_ref("RetentionRunResult"))
                .errors(&[400]),
        )
        .long(),
        route(
            Method::POST,
            "/v1/rewrite-stale",
            Admin,
            rewrite_stale,
            Doc::new("rewriteStale", "privacy", "Rewrite every transcript written under older detection rules than the current ones.")
                .body_json(schema_ref("ReferenceRequest"), false)
                .ok_json("How many were rewritten.", schema_ref("RewriteStaleResult"))
                .errors(&[400]),
        )
        .long(),
        route(
            Method::POST,
            "/v1/compact",
            Admin,
            compact,
            Doc::new("compact", "maintenance", "Compact: rewrite segments without dead records, so shredded ciphertext leaves the disk.")
                .body_json(schema_ref("CompactRequest"), false)
                .ok_json("What compaction did.", schema_ref("CompactReport"))
                .errors(&[400]),
        )
        .long(),
        route(
            Method::POST,
            "/v1/backup",
            Admin,
            super::backup::backup_now,
            Doc::new("backup", "maintenance", "Take a backup point of the tenant's store now (hot, incremental) at the destination of the configuration file's [backup] table; docs/BACKUP.md.")
                .ok_json("What the backup did: the point id, bytes, objects uploaded and reused.", json!({"type": "object"}))
                .errors(&[400, 502]),
        )
        .long(),
        route(
            Method::POST,
            "/v1/verify",
            Admin,
            verify,
            Doc::new("verify", "maintenance", "Check every record and key of the tenant's store.")
                .ok_json("The report; `problems` is empty when the store is sound.", schema_ref("VerifyReport")),
        )
        .long(),
        route(
            Method::GET,
            "/v1/stats",
            Writer,
            stats,
            Doc::new("stats", "maintenance", "Sizes, counts and garbage of the tenant's store.")
                .ok_json("Statistics.", schema_ref("Stats")),
        ),
        route(
            Method::GET,
            "/v1/audit",
            Admin,
            audit,
            Doc::new("auditLog", "privacy", "The audit log, oldest first: every erasure, deletion, retention run, hold, restriction, rectification and rewrite, without personal data.")
                .param(Param::query(
                    "after",
                    "Only entries with a sequence number above this.",
                    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
                ))
                .ok_json("The entries.", schema_ref("AuditLog"))
                .errors(&[400]),
        ),
    ]
}

/// The answer of an operation that takes `dry_run`.
fn audit_or_preview() -> serde_json::Value {
    json!({"oneOf": [schema_ref("AuditEntry"), schema_ref("Preview")]})
}

/// `GET /v1/openapi.json`: the document of this very table.
async fn openapi() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOC.get_or_init(|| super::openapi::document(&routes()).to_string());
    ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::openapi::document;

    /// Every `$ref` points at a schema that exists; every operation has a
    /// unique id; the document covers every route of the table.
    #[test]
    fn document_is_self_consistent() {
        let routes = routes();
        let doc = document(&routes);
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
        }
        let mut ids = std::collections::HashSet::new();
        for r in &routes {
            let op = &doc["paths"][r.meta.path][r.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} undocumented", r.method, r.meta.path);
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
            assert!(op["responses"]["200"].is_object());
        }
        let n: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(n, routes.len());
    }
}
