//! What a route is: its method, path, who may call it, its handler and its
//! documentation. The table of routes is [`super::routes`]; the OpenAPI
//! document ([`super::openapi`]) is drawn from the same values.

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use serde_json::{Value, json};

use super::app::AppState;

/// Who may call a route.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// No token needed (`/healthz` only).
    Public,
    /// Any valid token.
    Any,
    /// A writer or admin token.
    Writer,
    /// An admin token.
    Admin,
}

impl Access {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Access::Public => "none",
            Access::Any => "any",
            Access::Writer => "writer",
            Access::Admin => "admin",
        }
    }
}

/// What the per-route guard needs to know.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Meta {
    pub path: &'static str,
    pub access: Access,
    /// Exempt from the request timeout (long maintenance operations).
    pub long: bool,
}

pub(crate) struct Route {
    pub method: Method,
    pub meta: Meta,
    pub doc: Doc,
    pub handler: MethodRouter<AppState>,
}

pub(crate) fn route<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    handler: H,
    doc: Doc,
) -> Route
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    Route {
        method,
        meta: Meta {
            path,
            access,
            long: false,
        },
        doc,
        handler: axum::routing::on(filter, handler),
    }
}

impl Route {
    pub(crate) fn long(mut self) -> Route {
        self.meta.long = true;
        self
    }
}

/// A `$ref` to a component schema.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A path or query parameter.
pub(crate) struct Param {
    pub(super) name: &'static str,
    pub(super) location: &'static str,
    pub(super) description: &'static str,
    pub(super) required: bool,
    pub(super) schema: Value,
}

impl Param {
    pub(crate) fn path(name: &'static str, description: &'static str) -> Param {
        Param {
            name,
            location: "path",
            description,
            required: true,
            schema: json!({"type": "string", "minLength": 1}),
        }
    }

    pub(crate) fn query(name: &'static str, description: &'static str, schema: Value) -> Param {
        Param {
            name,
            location: "query",
            description,
            required: false,
            schema,
        }
    }
}

/// The documentation of one operation.
pub(crate) struct Doc {
    pub(super) id: &'static str,
    pub(super) tag: &'static str,
    pub(super) summary: &'static str,
    pub(super) description: Option<&'static str>,
    pub(super) params: Vec<Param>,
    /// (content type, schema) pairs and whether a body is required.
    pub(super) body: Option<(Vec<(&'static str, Value)>, bool)>,
    pub(super) ok_description: &'static str,
    pub(super) ok: Vec<(&'static str, Value)>,
    pub(super) errors: &'static [u16],
}

impl Doc {
    pub(crate) fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Doc {
        Doc {
            id,
            tag,
            summary,
            description: None,
            params: Vec::new(),
            body: None,
            ok_description: "OK",
            ok: Vec::new(),
            errors: &[],
        }
    }

    pub(crate) fn describe(mut self, d: &'static str) -> Doc {
        self.description = Some(d);
        self
    }

    pub(crate) fn param(mut self, p: Param) -> Doc {
        self.params.push(p);
        self
    }

    pub(crate) fn body_json(mut self, schema: Value, required: bool) -> Doc {
        self.body = Some((vec![("application/json", schema)], required));
        self
    }

    pub(crate) fn body_append(mut self) -> Doc {
        self.body = Some((
            vec![
                (
                    "application/json",
                    json!({"oneOf": [schema_ref("Message"), {"type": "array", "items": schema_ref("Message"), "minItems": 1}]}),
                ),
                (
                    "application/x-ndjson",
                    json!({"type": "string", "description": "One interchange object a line."}),
                ),
            ],
            true,
        ));
        self
    }

    pub(crate) fn ok_json(mut self, description: &'static str, schema: Value) -> Doc {
        self.ok_description = description;
        self.ok.push(("application/json", schema));
        self
    }

    pub(crate) fn ok_text(mut self, description: &'static str, content_type: &'static str) -> Doc {
        self.ok_description = description;
        self.ok.push((content_type, json!({"type": "string"})));
        self
    }

    pub(crate) fn ok_also(mut self, content_type: &'static str, schema: Value) -> Doc {
        self.ok.push((content_type, schema));
        self
    }

    pub(crate) fn errors(mut self, codes: &'static [u16]) -> Doc {
        self.errors = codes;
        self
    }
}

/// Control characters are refused in references (`char::is_control`).
pub(crate) const REFERENCE_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
