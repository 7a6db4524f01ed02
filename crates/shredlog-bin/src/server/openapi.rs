//! The OpenAPI 3.0 document, built from a route table (the server's is
//! `super::routes::routes`), so that it describes exactly the routes the
//! router has.

use serde_json::{Map, Value, json};

use super::route::{Access, REFERENCE_PATTERN, Route, schema_ref};

fn content(items: &[(&'static str, Value)]) -> Value {
    let mut m = Map::new();
    for (ct, schema) in items {
        m.insert((*ct).to_owned(), json!({"schema": schema}));
    }
    Value::Object(m)
}

fn error_description(code: u16) -> &'static str {
    match code {
        400 => {
            "Malformed JSON, a body or parameter that does not match the schema, or an invalid message, or personal data in a reference or an id (`code`: malformed_json, invalid_body, invalid_message, invalid, personal_data, confirmation_required, invalid_path, invalid_query, empty_batch)."
        }
        401 => "No valid bearer token (`code`: unauthorized).",
        403 => "The token's role may not call this route (`code`: forbidden).",
        404 => "No such transcript or visitor (`code`: transcript_not_found, visitor_not_found).",
        409 => "A legal hold applies (`code`: legal_hold).",
        413 => {
            "Body, message or file over its limit (`code`: body_too_large, message_too_large, file_too_large)."
        }
        415 => {
            "The body is not sent as `Content-Type: application/json` (appends: or `application/x-ndjson`) (`code`: unsupported_media_type)."
        }
        423 => "The visitor's data is restricted (`code`: restricted).",
        500 => {
            "Internal or storage error; details only in the server log (`code`: internal, io_error, corrupt)."
        }
        503 => {
            "Overloaded, timed out, shutting down or store unavailable (`code`: overloaded, timeout, shutting_down, store_unavailable, store_locked, not_ready)."
        }
        507 => "A limit of the store's format was reached (`code`: store_limit).",
        _ => "Error.",
    }
}

fn operation(r: &Route) -> Value {
    let d = &r.doc;
    let mut op = Map::new();
    op.insert("operationId".into(), json!(d.id));
    op.insert("tags".into(), json!([d.tag]));
    op.insert("summary".into(), json!(d.summary));
    let role = match r.meta.access {
        Access::Public => "No authentication.",
        Access::Any => "Any valid token.",
        Access::Writer => "Role: writer or admin.",
        Access::Admin => "Role: admin.",
    };
    let desc = match d.description {
        Some(x) => format!("{x}\n\n{role}"),
        None => role.to_owned(),
    };
    op.insert("description".into(), json!(desc));
    op.insert("x-shredlog-role".into(), json!(r.meta.access.as_str()));
    if r.meta.access == Access::Public {
        op.insert("security".into(), json!([]));
    }
    if !d.params.is_empty() {
        let params: Vec<Value> = d
            .params
            .iter()
            .map(|p| {
                json!({"name": p.name, "in": p.location, "required": p.required,
                       "description": p.description, "schema": p.schema})
            })
            .collect();
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some((items, required)) = &d.body {
        op.insert(
            "requestBody".into(),
            json!({"required": required, "content": content(items)}),
        );
    }
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": d.ok_description, "content": content(&d.ok)}),
    );
    let mut codes: Vec<u16> = d.errors.to_vec();
    if r.meta.access != Access::Public {
        codes.extend([401, 403]);
    }
    if d.body.is_some() {
        codes.extend([400, 413, 415]);
    }
    codes.extend([500, 503]);
    codes.sort_unstable();
    codes.dedup();
    for c in codes {
        responses.insert(
            c.to_string(),
            json!({"description": error_description(c), "content": {"application/json": {"schema": schema_ref("Error")}}}),
        );
    }
    responses.insert(
        "default".into(),
        json!({"description": "Any other error.", "content": {"application/json": {"schema": schema_ref("Error")}}}),
    );
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// The whole document.
pub(crate) fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let entry = paths
            .entry(r.meta.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(r.method.as_str().to_ascii_lowercase(), operation(r));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "shredlog",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Chat transcripts with crypto-shredding of personal data. Every route but /healthz needs `Authorization: Bearer TOKEN`; the token decides the tenant. Personal data (emails) travels only in request bodies, never in URLs. Errors are `{\"code\", \"message\"}` with a stable `code`. See docs/SERVER.md.",
            "license": {"name": "Apache-2.0"}
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

/// One kind of interchange message.
fn message_variant(kind: &str, body: Value) -> Value {
    let mut props = Map::new();
    props.insert(
        "transcript".into(),
        json!({"type": "string", "minLength": 1, "description": "The caller's transcript id. Must not contain personal data."}),
    );
    props.insert(
        "ts".into(),
        json!({"type": "string", "format": "date-time", "description": "RFC 3339."}),
    );
    props.insert(
        "from".into(),
        json!({"type": "string", "enum": ["visitor", "operator", "bot", "system"], "nullable": true}),
    );
    props.insert(
        "visitor".into(),
        json!({"allOf": [schema_ref("Visitor")], "nullable": true}),
    );
    props.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
    props.insert(kind.into(), body);
    json!({
        "type": "object",
        "required": ["transcript", "ts", "kind", kind],
        "additionalProperties": false,
        "properties": props,
    })
}

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let int = json!({"type": "integer", "minimum": 0});
    let opt_string = json!({"type": "string", "nullable": true});
    let email = json!({"type": "string", "pattern": "\\S", "maxLength": 320, "description": "The visitor's email (compared case-insensitively after trimming)."});
    let reference = json!({"type": "string", "maxLength": 256, "pattern": REFERENCE_PATTERN,
        "description": "Your reference for the audit log (e.g. a ticket number), without control characters. Must not contain personal data."});
    let period = json!({"type": "string", "pattern": "^[0-9]{1,10}(ms|s|m|h|d)?$", "description": "A period such as 90d, 12h, 30m, 45s."});
    let period_ms = json!({"type": "integer", "minimum": 0, "maximum": i64::MAX});
    let mut parts: Vec<Value> = Vec::new();
    parts.push(json!({
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string", "description": "Human-readable explanation (never personal data)."}
            },
            "additionalProperties": false
        },
        "Status": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok", "ready"]}}
        },
        "Visitor": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {
                "email": {"type": "string", "pattern": "\\S", "description": "The lookup key; required on a transcript's first message."},
                "name": opt_string, "phone": opt_string, "id": opt_string, "ip": opt_string
            }
        },
        "Message": {
            "description": "One interchange object (DESIGN §4): `kind` says which one of `text`, `form`, `file`, `consent` is present.",
            "oneOf": [schema_ref("TextMessage"), schema_ref("FormMessage"), schema_ref("FileMessage"), schema_ref("ConsentMessage")],
            "discriminator": {"propertyName": "kind", "mapping": {
                "text": "#/components/schemas/TextMessage", "form": "#/components/schemas/FormMessage",
                "file": "#/components/schemas/FileMessage", "consent": "#/components/schemas/ConsentMessage"
            }}
        }
    }));
    parts.push(json!({
        "TextMessage": message_variant("text", json!({"type": "string"})),
        "FormMessage": message_variant("form", json!({"type": "object", "additionalProperties": {"type": "string"}})),
        "FileMessage": message_variant("file", json!({
            "type": "object", "required": ["name", "mime", "data"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "mime": {"type": "string"}, "data": {"type": "string", "format": "byte", "description": "Base64."}}
        })),
        "ConsentMessage": message_variant("consent", json!({
            "type": "object", "required": ["granted", "prompt"], "additionalProperties": false,
            "properties": {"granted": {"type": "boolean"}, "prompt": {"type": "string"}}
        }))
    }));
    parts.push(json!({
        "AppendResult": {
            "type": "object", "required": ["appended", "stored", "already_stored"],
            "properties": {"appended": int, "stored": int, "already_stored": int}
        },
        "Transcript": {
            "type": "object", "required": ["transcript", "messages"],
            "properties": {"transcript": string, "messages": {"type": "array", "items": schema_ref("Message")}}
        },
        "EmailRequest": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {"email": email, "reference": reference}
        },
        "EraseRequest": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {
                "email": email, "reference": reference,
                "dry_run": {"type": "boolean", "default": false, "description": "Answer what the operation would do (a `Preview`) and do nothing."}
            }
        },
        "LookupRequest": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {
                "email": email,
                "from": {"type": "string", "format": "date-time", "description": "Only transcripts with messages at or after this time."},
                "to": {"type": "string", "format": "date-time", "description": "Only transcripts with messages at or before this time."}
            }
        }
    }));
    parts.push(json!({
        "TranscriptInfo": {
            "type": "object",
            "required": ["transcript", "first", "last", "messages", "redacted", "rules_version"],
            "properties": {
                "transcript": string, "first": string, "last": string,
                "messages": int, "redacted": {"type": "boolean"}, "rules_version": int
            }
        },
        "TranscriptList": {
            "type": "object", "required": ["transcripts"],
            "properties": {"transcripts": {"type": "array", "items": schema_ref("TranscriptInfo")}}
        },
        "ExportRequest": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {"email": email, "format": {"type": "string", "enum": ["json", "csv"], "default": "json"}}
        },
        "ConsentState": {
            "type": "object", "required": ["current", "history"],
            "properties": {
                "current": {"type": "boolean", "nullable": true},
                "history": {"type": "array", "items": {
                    "type": "object", "required": ["ts", "granted", "prompt", "transcript"],
                    "properties": {"ts": string, "granted": {"type": "boolean"}, "prompt": string, "transcript": string}
                }}
            }
        }
    }));
    parts.push(json!({
        "AuditEntry": {
            "type": "object",
            "description": "An audited operation; for an erasure, the erasure report. Names the random visitor id or the transcript id, never personal data.",
            "required": ["seq", "at", "op", "subject", "transcripts", "keys_destroyed", "reference"],
            "properties": {
                "seq": int, "at": string,
                "op": {"type": "string", "description": "erasure, delete-transcript, delete-visitor, retention, rectification, restriction, lift-restriction, rewrite, hold, release-hold"},
                "subject": string, "transcripts": int, "keys_destroyed": int, "reference": string,
                "detail": string
            }
        },
        "Preview": {
            "type": "object",
            "description": "What an operation would do now (a dry run): the counts its audit entry would carry. Nothing was changed.",
            "required": ["op", "subject", "transcripts", "keys_destroyed", "held", "refused_by_hold", "restricted"],
            "properties": {
                "op": string, "subject": string, "transcripts": int, "keys_destroyed": int,
                "held": {"type": "integer", "minimum": 0, "description": "Transcripts a legal hold covers: retention leaves them alone; a deletion (or an erasure, when holds block erasure) is refused."},
                "refused_by_hold": {"type": "boolean", "description": "The operation would be refused with 409 `legal_hold`."},
                "restricted": {"type": "boolean", "description": "The visitor's processing is restricted (an erasure or deletion ends it)."},
                "detail": string
            }
        },
        "AuditLog": {
            "type": "object", "required": ["entries"],
            "properties": {"entries": {"type": "array", "items": schema_ref("AuditEntry")}}
        },
        "RectifyRequest": {
            "type": "object", "required": ["email"], "additionalProperties": false,
            "properties": {
                "email": email,
                "new_email": {"type": "string", "pattern": "\\S", "maxLength": 320},
                "name": string, "phone": string, "reference": reference
            },
            "anyOf": [{"required": ["new_email"]}, {"required": ["name"]}, {"required": ["phone"]}]
        },
        "RewriteRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "spans": {"type": "array", "items": string, "description": "Literal strings to treat as personal data."},
                "reference": reference
            }
        }
    }));
    parts.push(json!({
        "HoldRequest": {
            "type": "object", "additionalProperties": false,
            "description": "Exactly one of `email` and `transcript`.",
            "properties": {"email": email, "transcript": {"type": "string", "minLength": 1}, "reference": reference},
            "oneOf": [{"required": ["email"]}, {"required": ["transcript"]}]
        },
        "HoldList": {
            "type": "object", "required": ["holds"],
            "properties": {"holds": {"type": "array", "items": {
                "type": "object", "required": ["subject", "reference", "since"],
                "properties": {"subject": {"type": "string", "description": "`visitor:<random id>` or `transcript:<id>`."}, "reference": string, "since": string}
            }}}
        },
        "HoldSettings": {
            "type": "object", "required": ["block_erasure"], "additionalProperties": false,
            "properties": {"block_erasure": {"type": "boolean"}}
        },
        "RetentionPolicy": {
            "type": "object", "additionalProperties": false,
            "description": "Exactly one of `older_than` and `older_than_ms`.",
            "properties": {
                "older_than": period,
                "older_than_ms": period_ms,
                "delete": {"type": "boolean", "default": false, "description": "Delete instead of redact."},
                "confirm_zero": {"type": "boolean", "default": false, "description": "Required for a period of 0, which acts on every transcript not on hold at once (else 400 `confirmation_required`)."}
            },
            "oneOf": [{"required": ["older_than"]}, {"required": ["older_than_ms"]}]
        }
    }));
    parts.push(json!({
        "RetentionState": {
            "type": "object", "required": ["policy", "background_interval_secs"],
            "properties": {
                "policy": {
                    "type": "object", "nullable": true, "required": ["older_than_ms", "delete"],
                    "properties": {"older_than_ms": int, "delete": {"type": "boolean"}}
                },
                "background_interval_secs": {"type": "integer", "minimum": 0, "nullable": true}
            }
        },
        "RetentionRunRequest": {
            "type": "object", "additionalProperties": false,
            "description": "Without a period the stored policy is applied (and `delete` may not be given); with one (`older_than` or `older_than_ms`, not both) that period is applied once. With `dry_run` nothing is done and the answer says what would be.",
            "properties": {
                "older_than": period, "older_than_ms": period_ms,
                "delete": {"type": "boolean"}, "reference": reference,
                "dry_run": {"type": "boolean", "default": false, "description": "Answer `{\"preview\"}` and do nothing."},
                "confirm_zero": {"type": "boolean", "default": false, "description": "Required to run with a period of 0 (else 400 `confirmation_required`)."}
            },
            "allOf": [
                {"not": {"required": ["older_than", "older_than_ms"]}},
                {"anyOf": [{"not": {"required": ["delete"]}}, {"required": ["older_than"]}, {"required": ["older_than_ms"]}]}
            ]
        },
        "RetentionRunResult": {
            "type": "object",
            "description": "`report` after a run; `preview` after a dry run. Either is null when there is no stored policy to apply.",
            "properties": {
                "report": {"allOf": [schema_ref("AuditEntry")], "nullable": true},
                "preview": {"allOf": [schema_ref("Preview")], "nullable": true}
            }
        },
        "ReferenceRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {"reference": reference}
        }
    }));
    parts.push(json!({
        "RewriteStaleResult": {
            "type": "object", "required": ["rewritten", "rules_version"],
            "properties": {"rewritten": int, "rules_version": int}
        },
        "CompactRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {"max_mib_per_sec": {"type": "integer", "minimum": 1, "maximum": 1_048_576, "description": "Limit compaction I/O."}}
        },
        "CompactReport": {
            "type": "object",
            "required": ["segments_rewritten", "segments_removed", "bytes_before", "bytes_after", "records_copied", "pii_parts_dropped", "keyring_bytes_before", "keyring_bytes_after"],
            "properties": {
                "segments_rewritten": int, "segments_removed": int, "bytes_before": int, "bytes_after": int,
                "records_copied": int, "pii_parts_dropped": int, "keyring_bytes_before": int, "keyring_bytes_after": int
            }
        },
        "VerifyReport": {
            "type": "object", "required": ["records", "live_records", "dead_records", "keyring_slots", "problems"],
            "properties": {
                "records": int, "live_records": int, "dead_records": int, "keyring_slots": int,
                "problems": {"type": "array", "items": string}
            }
        }
    }));
    parts.push(json!({
        "Stats": {
            "type": "object",
            "required": ["segments", "segment_bytes", "live_bytes", "dead_bytes", "keyring_bytes", "transcripts", "visitors", "messages"],
            "properties": {
                "segments": int, "segment_bytes": int, "live_bytes": int, "dead_bytes": int,
                "keyring_bytes": int, "keyring_slots_used": int, "keyring_slots_free": int, "keyring_unit_bytes": int,
                "transcripts": int, "transcripts_redacted": int, "visitors": int, "messages": int,
                "rules_versions": {"type": "object", "additionalProperties": {"type": "integer"}},
                "current_rules_version": int,
                "per_segment": {"type": "array", "items": {"type": "array", "description": "[segment id, file bytes, usage]"}}
            }
        }
    }));
    let mut all = Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            all.extend(m);
        }
    }
    Value::Object(all)
}
