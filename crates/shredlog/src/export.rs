//! Export writers (GDPR Art. 15 and 20): interchange JSON lines and CSV.

use std::io::Write;

use crate::error::{Error, Result};
use crate::interchange;
use crate::message::Body;
use crate::ops::VisitorExport;

/// The CSV columns, in order. Stable: new columns are only ever appended.
pub const CSV_COLUMNS: &[&str] = &[
    "visitor_email",
    "visitor_name",
    "visitor_phone",
    "visitor_id",
    "visitor_ip",
    "transcript",
    "seq",
    "ts",
    "from",
    "kind",
    "text",
    "form_json",
    "file_name",
    "file_mime",
    "file_size",
    "file_sha256",
    "consent_granted",
    "consent_prompt",
];

fn io(e: std::io::Error) -> Error {
    Error::io("export output", e)
}

/// Writes the export as interchange JSON lines (re-importable), file bytes included.
///
/// # Errors
/// [`Error::Io`] if writing fails.
pub fn write_json<W: Write>(export: &VisitorExport, mut out: W) -> Result<()> {
    for (_, msgs) in &export.transcripts {
        for m in msgs {
            out.write_all(interchange::to_line(&m.message).as_bytes())
                .map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

/// Neutralises spreadsheet formulas: a cell starting with `=`, `+`, `-`, `@`,
/// tab or carriage return gets a leading apostrophe.
pub fn csv_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// Writes the export as CSV: UTF-8, a header row of [`CSV_COLUMNS`], one row
/// per message, RFC 4180 quoting, formulas neutralised. File bytes are not
/// included (name, type, size and SHA-256 are).
///
/// # Errors
/// [`Error::Io`] if writing fails.
pub fn write_csv<W: Write>(export: &VisitorExport, out: W) -> Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(out);
    let csv_err = |e: csv::Error| Error::io("export output", std::io::Error::other(e.to_string()));
    w.write_record(CSV_COLUMNS).map_err(csv_err)?;
    let v = export.visitor.clone().unwrap_or_default();
    for (id, msgs) in &export.transcripts {
        for m in msgs {
            let msg = &m.message;
            let mut row: Vec<String> = vec![
                v.email.clone(),
                v.name.clone().unwrap_or_default(),
                v.phone.clone().unwrap_or_default(),
                v.id.clone().unwrap_or_default(),
                v.ip.clone().unwrap_or_default(),
                id.clone(),
                m.seq.to_string(),
                msg.ts.as_str().to_owned(),
                msg.from.map(|f| f.as_str().to_owned()).unwrap_or_default(),
                msg.body.kind().to_owned(),
            ];
            let (
                mut text,
                mut form,
                mut fname,
                mut fmime,
                mut fsize,
                mut fsha,
                mut granted,
                mut prompt,
            ) = Default::default();
            match &msg.body {
                Body::Text(t) => text = t.clone(),
                Body::Form(f) => form = serde_json::to_string(f).unwrap_or_default(),
                Body::File(f) => {
                    fname = f.name.clone();
                    fmime = f.mime.clone();
                    fsize = m.file_size.map(|s| s.to_string()).unwrap_or_default();
                    fsha = m.file_sha256.clone().unwrap_or_default();
                }
                Body::Consent {
                    granted: g,
                    prompt: p,
                } => {
                    granted = g.to_string();
                    prompt = p.clone();
                }
            }
            row.extend([text, form, fname, fmime, fsize, fsha, granted, prompt]);
            w.write_record(row.iter().map(|c| csv_cell(c).into_owned()))
                .map_err(csv_err)?;
        }
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("+44 20"), "'+44 20");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("hello"), "hello");
        assert_eq!(csv_cell(""), "");
    }
}
