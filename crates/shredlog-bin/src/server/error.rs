//! JSON errors: `{"code": "...", "message": "..."}` with a stable `code`.
//!
//! Messages never carry personal data or internals: library errors are mapped
//! to a code and status, and I/O or corruption details go to the server log
//! only (the library's messages name files and offsets, never values).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub(crate) fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; the server log has the details",
        )
    }
}

/// The JSON error body.
pub(crate) fn body(code: &str, message: &str) -> String {
    serde_json::json!({"code": code, "message": message}).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body(self.code, &self.message),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<shredlog::Error> for ApiError {
    fn from(e: shredlog::Error) -> Self {
        use shredlog::Error as E;
        match e {
            E::Invalid(m) => ApiError::bad_request("invalid", m),
            // A message of a batch broke a rule: its index, then why.
            E::InMessage { index, error } => {
                let inner = ApiError::from(*error);
                let code = if inner.code == "invalid" {
                    "invalid_message"
                } else {
                    inner.code
                };
                ApiError::new(
                    inner.status,
                    code,
                    format!("message {index}: {}", inner.message),
                )
            }
            E::PersonalData { .. } => ApiError::bad_request("personal_data", e.to_string()),
            E::TranscriptNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "transcript_not_found",
                "no transcript with that id exists (or it was deleted)",
            ),
            E::VisitorNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "visitor_not_found",
                "no visitor with that email exists (or it was erased)",
            ),
            E::LegalHold => ApiError::new(
                StatusCode::CONFLICT,
                "legal_hold",
                "refused: a legal hold applies (release it first)",
            ),
            E::Restricted => ApiError::new(
                StatusCode::LOCKED,
                "restricted",
                "refused: processing of this visitor's data is restricted; only export, erasure and lifting the restriction are allowed",
            ),
            E::Limit(m) => {
                tracing::error!(error = %m, "store limit reached");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "store_limit",
                    "a limit of the store's on-disk format was reached",
                )
            }
            E::Poisoned(_) => {
                tracing::error!(error = %e, "store refuses writes after an I/O error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store refuses writes after an I/O error; the server must be restarted (see the server log)",
                )
            }
            E::Locked(_) => {
                tracing::error!(error = %e, "store locked by another process");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_locked",
                    "the tenant's store is open in another process",
                )
            }
            E::Io { .. } => {
                tracing::error!(error = %e, "store I/O error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "io_error",
                    "an I/O error occurred in the store; the server log has the details",
                )
            }
            E::Corrupt { .. } | E::UnsupportedVersion { .. } => {
                tracing::error!(error = %e, "store damaged");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "corrupt",
                    "the store holds damaged data; the server log has the details",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

/// The code for a status, for error bodies the server did not write itself
/// (e.g. the router's 405).
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        411 => "length_required",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "overloaded",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}
