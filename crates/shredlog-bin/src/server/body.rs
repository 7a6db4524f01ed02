//! Reading request bodies, queries and paths: size limits (413), JSON
//! parsing whose errors never echo a value, field checks.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::app::AppState;
use super::error::ApiError;

/// Reads the body up to `limit` bytes; 413 past it.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(
            "body_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("body_unreadable", "the request body could not be read")
        })?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// A JSON parse error without any of the input's values: serde's messages can
/// quote a value ("invalid type: string \"ann@...\""), so only its category,
/// position and, for a missing field, the field's (schema-given) name are kept.
pub(super) fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed_json",
            format!(
                "the request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        ),
        Category::Data => {
            let text = e.to_string();
            let what = if text.starts_with("missing field") {
                text.split(" at line")
                    .next()
                    .unwrap_or("missing field")
                    .to_owned()
            } else {
                "a field is unknown or has the wrong type".to_owned()
            };
            ApiError::bad_request(
                "invalid_body",
                format!(
                    "the request body does not match the schema: {what} (line {}, column {}); see /v1/openapi.json",
                    e.line(),
                    e.column()
                ),
            )
        }
    }
}

/// The media type of the body (`type/subtype`, lower case, without
/// parameters), if the request names one.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = v.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

fn unsupported(accepted: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("send the body with `Content-Type: {accepted}`"),
    )
}

/// A JSON body must say it is JSON: `application/json` (or `…+json`). This
/// also keeps out what a cross-site HTML form can send without asking
/// (`text/plain`, form encodings).
pub(super) fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(t)
            if t == "application/json"
                || (t.starts_with("application/") && t.ends_with("+json")) =>
        {
            Ok(())
        }
        _ => Err(unsupported("application/json")),
    }
}

/// Messages come as JSON or as JSON lines; whether they are JSON lines.
pub(super) fn check_messages(headers: &HeaderMap) -> Result<bool, ApiError> {
    let lines = |t: &str| {
        matches!(
            t,
            "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
        )
    };
    match media_type(headers) {
        Some(t) if lines(&t) => Ok(true),
        _ => check_json(headers)
            .map(|()| false)
            .map_err(|_| unsupported("application/json` or `application/x-ndjson")),
    }
}

pub(super) async fn json_body<T: DeserializeOwned>(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    check_json(headers)?;
    let bytes = read_body(headers, body, app.limits.max_body_bytes).await?;
    parse_object(&bytes)
}

/// Parses a JSON object (serde would also take an array for a struct).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the request body must be a JSON object; see /v1/openapi.json",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

/// An optional body: empty means the default.
pub(super) async fn json_body_or_default<T: DeserializeOwned + Default>(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, app.limits.max_body_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    check_json(headers)?;
    parse_object(&bytes)
}

pub(super) fn check_email(email: &str) -> Result<(), ApiError> {
    if email.trim().is_empty() {
        return Err(ApiError::bad_request("invalid", "field `email` is empty"));
    }
    if email.chars().count() > 320 {
        return Err(ApiError::bad_request(
            "invalid",
            "field `email` is longer than 320 characters",
        ));
    }
    Ok(())
}

/// An optional field that, when present, must not be `null` (leave it out
/// instead): keeps "absent" and "present" the only two cases.
pub(super) fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

pub(super) fn path_id(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = p.map_err(|_| {
        ApiError::bad_request(
            "invalid_path",
            "the transcript id in the path is not valid percent-encoded UTF-8",
        )
    })?;
    if id.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_path",
            "the transcript id is empty",
        ));
    }
    Ok(id)
}

pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "the query string does not match the schema; see /v1/openapi.json",
        )
    })
}

// ---------------------------------------------------------------- messages

/// Why a request body could not be split into messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Not UTF-8, or not JSON (position only, never content).
    Malformed(String),
    /// An element of a JSON array is not an object (its index).
    NotAnObject(usize),
    /// JSON, but neither an object nor an array of objects.
    NotMessages,
}

/// Splits a request body holding messages into interchange lines: one JSON
/// object, a JSON array of objects, or NDJSON (one object a line; also
/// recognised without `ndjson` when every line starts with `{`). Errors name
/// what is wrong, never echoing content.
pub(crate) fn split_body(bytes: &[u8], ndjson: bool) -> Result<Vec<String>, BodyError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| BodyError::Malformed("the request body is not UTF-8".into()))?;
    let lines = |t: &str| -> Vec<String> {
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if ndjson {
        return Ok(lines(text));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(vec![text.trim().to_owned()]),
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                serde_json::Value::Object(_) => Ok(v.to_string()),
                _ => Err(BodyError::NotAnObject(i)),
            })
            .collect(),
        Ok(_) => Err(BodyError::NotMessages),
        Err(e) => {
            // Several objects, one a line, without the NDJSON content type.
            let l = lines(text);
            if l.len() > 1 && l.iter().all(|x| x.starts_with('{')) {
                Ok(l)
            } else {
                Err(BodyError::Malformed(format!(
                    "the request body is not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )))
            }
        }
    }
}

/// Splits an append body into interchange lines (see [`split_body`], which
/// the fuzzers exercise); `ndjson` from [`check_messages`].
pub(super) fn append_items(ndjson: bool, bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    split_body(bytes, ndjson).map_err(|e| match e {
        BodyError::Malformed(m) => ApiError::bad_request("malformed_json", m),
        BodyError::NotAnObject(i) => {
            ApiError::bad_request("invalid_message", format!("message {i}: not a JSON object"))
        }
        BodyError::NotMessages => ApiError::bad_request(
            "invalid_body",
            "the body must be a message object, an array of them, or NDJSON",
        ),
    })
}

/// Fuzz entry point: an append body split into messages and each parsed, as
/// `POST /v1/messages` does. Never panics; errors never echo the input.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_request_body(data: &[u8]) {
    for ndjson in [false, true] {
        match split_body(data, ndjson) {
            Ok(lines) => {
                for line in lines {
                    let _ = shredlog::interchange::parse_line(&line);
                }
            }
            Err(BodyError::Malformed(m)) => {
                if let Ok(text) = std::str::from_utf8(data) {
                    for word in text.split(|c: char| c.is_whitespace() || c == '"') {
                        if word.len() >= 12 && word.contains('@') {
                            assert!(!m.contains(word), "error echoes input");
                        }
                    }
                }
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_every_shape_split() {
        let one = r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x"}"#;
        assert_eq!(
            split_body(format!("[{one},{one}]").as_bytes(), false)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            split_body(format!("{one}\n{one}\n").as_bytes(), true)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            split_body(format!("{one}\n{one}").as_bytes(), false)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(split_body(b"[1]", false), Err(BodyError::NotAnObject(0)));
        assert_eq!(split_body(b"7", false), Err(BodyError::NotMessages));
        assert!(matches!(
            split_body(b"\xff", false),
            Err(BodyError::Malformed(_))
        ));
        fuzz_request_body(br#"{"transcript":"ann@example.com""#);
    }

    #[test]
    fn content_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            h
        };
        assert!(check_json(&with("application/json")).is_ok());
        assert!(check_json(&with("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_json(&with("application/merge-patch+json")).is_ok());
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json+x",
        ] {
            let e = check_json(&with(bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (415, "unsupported_media_type"),
                "{bad}"
            );
        }
        assert!(check_json(&HeaderMap::new()).is_err());
        assert!(check_messages(&with("application/x-ndjson")).unwrap());
        assert!(!check_messages(&with("application/json")).unwrap());
        assert!(check_messages(&with("text/plain")).is_err());
    }

    #[test]
    fn append_bodies() {
        let h = false;
        let one = r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x"}"#;
        assert_eq!(append_items(h, one.as_bytes()).unwrap().len(), 1);
        let arr = format!("[{one},{one}]");
        assert_eq!(append_items(h, arr.as_bytes()).unwrap().len(), 2);
        let nd = format!("{one}\n\n{one}\n{one}\n");
        assert_eq!(append_items(true, nd.as_bytes()).unwrap().len(), 3);
        assert_eq!(append_items(h, nd.as_bytes()).unwrap().len(), 3);
        let e = append_items(h, b"{\"transcript\":").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = append_items(h, b"[1]").unwrap_err();
        assert_eq!(e.code, "invalid_message");
        let e = append_items(h, b"\"x\"").unwrap_err();
        assert_eq!(e.code, "invalid_body");
    }

    #[test]
    fn json_errors_never_echo_values() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            email: String,
            flag: bool,
        }
        for body in [
            r#"{"email":"a","flag":"ann@example.com"}"#,
            r#"{"email":"a","flag":true,"ann@example.com":1}"#,
            r#"{"email":"ann@example.com""#,
        ] {
            let e = serde_json::from_str::<T>(body).unwrap_err();
            let api = json_error(&e);
            assert!(!api.message.contains("ann@"), "{}", api.message);
        }
        let e = serde_json::from_str::<T>(r#"{"flag":true}"#).unwrap_err();
        assert!(json_error(&e).message.contains("missing field `email`"));
    }
}
