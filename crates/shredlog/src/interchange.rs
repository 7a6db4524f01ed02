//! The interchange format (DESIGN §4): one JSON object per line.
//!
//! Parsing is strict: unknown fields and wrong types are errors that name the
//! field, never echo its value (values are personal data).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::message::{Body, FileUpload, Message, Sender, Timestamp, Visitor};

const TOP_FIELDS: &[&str] = &[
    "transcript",
    "id",
    "ts",
    "from",
    "visitor",
    "kind",
    "text",
    "form",
    "file",
    "consent",
];
const VISITOR_FIELDS: &[&str] = &["email", "name", "phone", "id", "ip"];
/// Longest message id, in bytes.
pub const MAX_MESSAGE_ID: usize = 200;

/// Parses one interchange line.
///
/// # Errors
/// [`Error::Invalid`] naming the field that is missing, unknown or of the wrong
/// type; the message never contains a field's value.
///
/// ```
/// let line = r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03.120Z","from":"bot","kind":"text","text":"hello"}"#;
/// let msg = shredlog::interchange::parse_line(line).unwrap();
/// assert_eq!(msg.transcript, "t-1");
/// assert!(shredlog::interchange::parse_line(r#"{"transcript":"t-1"}"#).is_err());
/// ```
pub fn parse_line(line: &str) -> Result<Message> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        // serde_json's syntax errors name a position, not the content.
        Error::invalid(format!("not a JSON object: {}", syntax_error(&e)))
    })?;
    let Value::Object(obj) = value else {
        return Err(Error::invalid("not a JSON object"));
    };
    parse_object(&obj)
}

fn syntax_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of line",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong type",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what} at column {}", e.column())
}

fn parse_object(obj: &Map<String, Value>) -> Result<Message> {
    for key in obj.keys() {
        if !TOP_FIELDS.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "unknown field `{}`",
                printable_field(key)
            )));
        }
    }
    let transcript = req_str(obj, "transcript")?.to_owned();
    if transcript.is_empty() {
        return Err(Error::invalid("field `transcript` is empty"));
    }
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            return Err(Error::invalid("field `id` is empty"));
        }
        Some(Value::String(s)) if s.len() > MAX_MESSAGE_ID => {
            return Err(Error::invalid(format!(
                "field `id` is longer than {MAX_MESSAGE_ID} bytes"
            )));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::invalid("field `id` must be a string")),
    };
    let ts = Timestamp::parse(req_str(obj, "ts")?)
        .map_err(|_| Error::invalid("field `ts` is not an RFC 3339 timestamp"))?;
    let from = match obj.get("from") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Sender::parse(s).ok_or_else(|| {
            Error::invalid("field `from` must be one of visitor, operator, bot, system")
        })?),
        Some(_) => return Err(Error::invalid("field `from` must be a string")),
    };
    let visitor = match obj.get("visitor") {
        None | Some(Value::Null) => None,
        Some(Value::Object(v)) => Some(parse_visitor(v)?),
        Some(_) => return Err(Error::invalid("field `visitor` must be an object")),
    };
    let kind = req_str(obj, "kind")?;
    let body_fields = ["text", "form", "file", "consent"];
    if !body_fields.contains(&kind) {
        return Err(Error::invalid(
            "field `kind` must be one of text, form, file, consent",
        ));
    }
    for other in body_fields {
        if other != kind && obj.contains_key(other) {
            return Err(Error::invalid(format!(
                "field `{other}` does not belong to kind `{kind}`"
            )));
        }
    }
    let body = match kind {
        "text" => Body::Text(req_str(obj, "text")?.to_owned()),
        "form" => {
            let Some(Value::Object(form)) = obj.get("form") else {
                return Err(Error::invalid("field `form` must be an object of strings"));
            };
            let mut fields = BTreeMap::new();
            for (k, v) in form {
                let Value::String(s) = v else {
                    return Err(Error::invalid(
                        "every value in field `form` must be a string",
                    ));
                };
                fields.insert(k.clone(), s.clone());
            }
            Body::Form(fields)
        }
        "file" => {
            let Some(Value::Object(file)) = obj.get("file") else {
                return Err(Error::invalid(
                    "field `file` must be an object with name, mime, data",
                ));
            };
            for key in file.keys() {
                if !["name", "mime", "data"].contains(&key.as_str()) {
                    return Err(Error::invalid(format!(
                        "unknown field `file.{}`",
                        printable_field(key)
                    )));
                }
            }
            let name = req_str_in(file, "file.name", "name")?.to_owned();
            let mime = req_str_in(file, "file.mime", "mime")?.to_owned();
            let data = BASE64
                .decode(req_str_in(file, "file.data", "data")?)
                .map_err(|_| Error::invalid("field `file.data` is not valid base64"))?;
            Body::File(FileUpload { name, mime, data })
        }
        _ => {
            let Some(Value::Object(consent)) = obj.get("consent") else {
                return Err(Error::invalid(
                    "field `consent` must be an object with granted, prompt",
                ));
            };
            for key in consent.keys() {
                if !["granted", "prompt"].contains(&key.as_str()) {
                    return Err(Error::invalid(format!(
                        "unknown field `consent.{}`",
                        printable_field(key)
                    )));
                }
            }
            let granted = match consent.get("granted") {
                Some(Value::Bool(b)) => *b,
                _ => {
                    return Err(Error::invalid(
                        "field `consent.granted` must be true or false",
                    ));
                }
            };
            let prompt = req_str_in(consent, "consent.prompt", "prompt")?.to_owned();
            Body::Consent { granted, prompt }
        }
    };
    Ok(Message {
        transcript,
        id,
        ts,
        from,
        visitor,
        body,
    })
}

fn parse_visitor(v: &Map<String, Value>) -> Result<Visitor> {
    for key in v.keys() {
        if !VISITOR_FIELDS.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "unknown field `visitor.{}`",
                printable_field(key)
            )));
        }
    }
    let email = req_str_in(v, "visitor.email", "email")?.to_owned();
    if email.trim().is_empty() {
        return Err(Error::invalid("field `visitor.email` is empty"));
    }
    let opt = |name: &str| -> Result<Option<String>> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid(format!(
                "field `visitor.{name}` must be a string"
            ))),
        }
    };
    Ok(Visitor {
        email,
        name: opt("name")?,
        phone: opt("phone")?,
        id: opt("id")?,
        ip: opt("ip")?,
    })
}

/// Field names are chosen by whoever wrote the file; show them only when they
/// look like field names, so that a value pasted as a key is not echoed.
fn printable_field(key: &str) -> &str {
    let plain = key.len() <= 32
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain { key } else { "<unprintable>" }
}

fn req_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    req_str_in(obj, name, name)
}

fn req_str_in<'a>(obj: &'a Map<String, Value>, full: &str, name: &str) -> Result<&'a str> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(Error::invalid(format!("missing field `{full}`"))),
        Some(_) => Err(Error::invalid(format!("field `{full}` must be a string"))),
    }
}

/// Writes a message as one interchange line (without the newline).
///
/// ```
/// let line = r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03.120Z","from":"bot","kind":"text","text":"hello"}"#;
/// let msg = shredlog::interchange::parse_line(line).unwrap();
/// assert_eq!(shredlog::interchange::to_line(&msg), line);
/// ```
pub fn to_line(msg: &Message) -> String {
    let mut obj = Map::new();
    obj.insert("transcript".into(), Value::String(msg.transcript.clone()));
    if let Some(id) = &msg.id {
        obj.insert("id".into(), Value::String(id.clone()));
    }
    obj.insert("ts".into(), Value::String(msg.ts.as_str().to_owned()));
    if let Some(from) = msg.from {
        obj.insert("from".into(), Value::String(from.as_str().into()));
    }
    if let Some(v) = &msg.visitor {
        let mut vo = Map::new();
        vo.insert("email".into(), Value::String(v.email.clone()));
        for (k, val) in [
            ("name", &v.name),
            ("phone", &v.phone),
            ("id", &v.id),
            ("ip", &v.ip),
        ] {
            if let Some(val) = val {
                vo.insert(k.into(), Value::String(val.clone()));
            }
        }
        obj.insert("visitor".into(), Value::Object(vo));
    }
    obj.insert("kind".into(), Value::String(msg.body.kind().into()));
    match &msg.body {
        Body::Text(t) => {
            obj.insert("text".into(), Value::String(t.clone()));
        }
        Body::Form(fields) => {
            let f = fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            obj.insert("form".into(), Value::Object(f));
        }
        Body::File(file) => {
            let mut f = Map::new();
            f.insert("name".into(), Value::String(file.name.clone()));
            f.insert("mime".into(), Value::String(file.mime.clone()));
            f.insert("data".into(), Value::String(BASE64.encode(&file.data)));
            obj.insert("file".into(), Value::Object(f));
        }
        Body::Consent { granted, prompt } => {
            let mut c = Map::new();
            c.insert("granted".into(), Value::Bool(*granted));
            c.insert("prompt".into(), Value::String(prompt.clone()));
            obj.insert("consent".into(), Value::Object(c));
        }
    }
    // The map keeps insertion order (serde_json's `preserve_order`), which is
    // the documented field order.
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:03.120Z","from":"visitor","visitor":{"email":"Ann.Lee@example.com","name":"Ann Lee","phone":"+44 20 7946 0958","id":"v-88172","ip":"203.0.113.9"},"kind":"text","text":"hi, my other address is ann@work.example"}"#;

    #[test]
    fn roundtrip_every_kind() {
        let lines = [
            FULL,
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","from":"operator","kind":"form","form":{"email":"a@b.example","name":"A"}}"#,
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.5+02:00","kind":"file","file":{"name":"x.pdf","mime":"application/pdf","data":"aGVsbG8="}}"#,
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","from":"system","kind":"consent","consent":{"granted":false,"prompt":"May we store this chat?"}}"#,
        ];
        for line in lines {
            let msg = parse_line(line).unwrap();
            let again: Value = serde_json::from_str(&to_line(&msg)).unwrap();
            let orig: Value = serde_json::from_str(line).unwrap();
            assert_eq!(again, orig);
        }
    }

    #[test]
    fn errors_name_the_field_not_the_value() {
        let cases = [
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","secret@example.com":1}"#,
                "unknown field `<unprintable>`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"transcript":"t","ts":"ann@example.com","kind":"text","text":"x"}"#,
                "field `ts`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text"}"#,
                "missing field `text`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":5}"#,
                "field `text` must be a string",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","visitor":{"name":"Ann"}}"#,
                "missing field `visitor.email`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","visitor":{"email":"a@b","pet":"x"}}"#,
                "unknown field `visitor.pet`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"file","file":{"name":"a","mime":"b","data":"!!"}}"#,
                "base64",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","form":{}}"#,
                "does not belong",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"text","text":"x","from":"ann"}"#,
                "field `from`",
            ),
            (
                r#"{"transcript":"t","ts":"2024-05-02T10:15:03Z","kind":"video"}"#,
                "field `kind`",
            ),
            (r#"{"transcript":"ann@example.com""#, "not a JSON object"),
            (r#"["ann@example.com"]"#, "not a JSON object"),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line} gave {err}");
            assert!(!err.contains("ann@"), "error echoes a value: {err}");
            assert!(!err.contains("secret"), "error echoes a value: {err}");
        }
    }
}
