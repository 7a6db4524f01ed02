//! Splitting a message into its redacted view (sealed under the content key)
//! and its PII fill (sealed under the PII key), and joining them back.
//!
//! Pure functions, no I/O: the fuzzers aim here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::codec::Bytes;

use crate::message::{Body, FileUpload, Message, REDACTED, Sender, Timestamp, Visitor};
use crate::pii::Detector;

/// Text with its personal data cut out: `text` is the remaining text, `holes`
/// are (byte offset into `text`, kind code) where a removed span goes back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SplitText {
    pub text: String,
    pub holes: Vec<(u32, u8)>,
}

/// Bits of [`ContentPart::visitor_fields`]: which visitor fields the message had.
const V_PRESENT: u8 = 1;
const V_NAME: u8 = 2;
const V_PHONE: u8 = 4;
const V_ID: u8 = 8;
const V_IP: u8 = 16;

/// The redacted view: everything that is not personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContentPart {
    pub ts: String,
    pub from: u8,
    pub visitor_fields: u8,
    pub body: ContentBody,
}

/// The content plaintext of a version-2 record: the redacted view followed by
/// the caller's message id (`""`: none). A version-1 record's plaintext is the
/// [`ContentPart`] alone.
#[derive(Serialize)]
pub(crate) struct ContentV2<'a> {
    pub part: &'a ContentPart,
    pub msg_id: &'a str,
}

/// [`ContentV2`] as decoded.
#[derive(Deserialize)]
pub(crate) struct ContentV2Owned {
    pub part: ContentPart,
    pub msg_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ContentBody {
    Text(SplitText),
    /// Field names; the values are in the PII fill.
    Form(Vec<String>),
    File {
        mime: String,
        size: u64,
    },
    Consent {
        granted: bool,
        prompt: SplitText,
    },
}

/// The PII fill: the personal data cut out of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub(crate) struct PiiPart {
    pub email: String,
    pub name: String,
    pub phone: String,
    pub id: String,
    pub ip: String,
    pub spans: Vec<String>,
    pub form_values: Vec<String>,
    pub file_name: String,
    /// SHA-256 of `file_data`; empty in records written since the file's hash
    /// is computed when read ([`file_sha256`]).
    #[serde(deserialize_with = "crate::codec::byte_buf")]
    pub file_sha256: Vec<u8>,
    #[serde(deserialize_with = "crate::codec::byte_buf")]
    pub file_data: Vec<u8>,
}

/// The PII fill of a message being written: what a [`PiiPart`] holds,
/// borrowed from the message, so that nothing (a file's bytes least of all)
/// is copied to encode it. Encodes exactly as the [`PiiPart`] it reads back
/// as.
#[derive(Default, Serialize)]
pub(crate) struct PiiFill<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub phone: &'a str,
    pub id: &'a str,
    pub ip: &'a str,
    pub spans: Vec<&'a str>,
    pub form_values: Vec<&'a str>,
    pub file_name: &'a str,
    pub file_sha256: Bytes<'a>,
    pub file_data: Bytes<'a>,
}

impl PiiFill<'_> {
    fn is_empty(&self) -> bool {
        self.email.is_empty()
            && self.name.is_empty()
            && self.phone.is_empty()
            && self.id.is_empty()
            && self.ip.is_empty()
            && self.spans.is_empty()
            && self.form_values.is_empty()
            && self.file_name.is_empty()
            && self.file_sha256.0.is_empty()
            && self.file_data.0.is_empty()
    }
}

/// Cuts the personal data out of `text`, appending the spans to `spans`.
fn split_text<'a>(detector: &Detector, text: &'a str, spans: &mut Vec<&'a str>) -> SplitText {
    let found = detector.find(text);
    let mut out = SplitText {
        text: String::with_capacity(text.len()),
        holes: Vec::with_capacity(found.len()),
    };
    let mut pos = 0;
    for s in found {
        let (Some(before), Some(span)) = (text.get(pos..s.start), text.get(s.start..s.end)) else {
            continue;
        };
        out.text.push_str(before);
        out.holes.push((
            u32::try_from(out.text.len()).unwrap_or(u32::MAX),
            s.kind.code(),
        ));
        spans.push(span);
        pos = s.end;
    }
    out.text.push_str(text.get(pos..).unwrap_or_default());
    out
}

/// Splits a message. The returned PII fill is `None` when nothing personal
/// was found; it borrows from `msg`.
pub(crate) fn split<'a>(
    msg: &'a Message,
    detector: &Detector,
) -> (ContentPart, Option<PiiFill<'a>>) {
    let mut pii = PiiFill::default();
    let mut visitor_fields = 0;
    if let Some(v) = &msg.visitor {
        visitor_fields |= V_PRESENT;
        pii.email = &v.email;
        for (bit, field, slot) in [
            (V_NAME, &v.name, &mut pii.name),
            (V_PHONE, &v.phone, &mut pii.phone),
            (V_ID, &v.id, &mut pii.id),
            (V_IP, &v.ip, &mut pii.ip),
        ] {
            if let Some(value) = field {
                visitor_fields |= bit;
                *slot = value;
            }
        }
    }
    let body = match &msg.body {
        Body::Text(t) => ContentBody::Text(split_text(detector, t, &mut pii.spans)),
        Body::Form(fields) => {
            pii.form_values = fields.values().map(String::as_str).collect();
            ContentBody::Form(fields.keys().cloned().collect())
        }
        Body::File(f) => {
            pii.file_name = &f.name;
            pii.file_data = Bytes(&f.data);
            ContentBody::File {
                mime: f.mime.clone(),
                size: f.data.len() as u64,
            }
        }
        Body::Consent { granted, prompt } => ContentBody::Consent {
            granted: *granted,
            prompt: split_text(detector, prompt, &mut pii.spans),
        },
    };
    let content = ContentPart {
        ts: msg.ts.as_str().to_owned(),
        from: msg.from.map_or(0, Sender::code),
        visitor_fields,
        body,
    };
    let pii = if pii.is_empty() { None } else { Some(pii) };
    (content, pii)
}

/// Why a join failed: the parts do not fit together (only a bug or a forged
/// payload that passed authentication could cause this).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JoinError(pub &'static str);

fn join_text(
    st: SplitText,
    spans: Option<&mut std::vec::IntoIter<String>>,
) -> Result<String, JoinError> {
    if st.holes.is_empty() {
        return Ok(st.text);
    }
    let mut spans = spans;
    let mut out = String::with_capacity(st.text.len() + st.holes.len() * 16);
    let mut pos = 0usize;
    for &(off, _kind) in &st.holes {
        let off = off as usize;
        let before = st.text.get(pos..off).ok_or(JoinError(
            "hole offset out of order or not on a character boundary",
        ))?;
        out.push_str(before);
        match spans.as_mut() {
            Some(it) => out.push_str(&it.next().ok_or(JoinError("fewer spans than holes"))?),
            None => out.push_str(REDACTED),
        }
        pos = off;
    }
    out.push_str(
        st.text
            .get(pos..)
            .ok_or(JoinError("text shorter than its holes"))?,
    );
    Ok(out)
}

/// Details the redacted view needs besides the two parts.
pub(crate) struct JoinContext<'a> {
    pub transcript: &'a str,
    pub ts_millis: i64,
    /// The caller's message id, if the record carries one.
    pub msg_id: Option<&'a str>,
}

/// Joins the parts back into the message, moving what they hold into it
/// (a file's bytes are not copied). With `pii == None` every personal value
/// reads [`REDACTED`] and file bytes are gone.
pub(crate) fn join(
    ctx: &JoinContext<'_>,
    content: ContentPart,
    pii: Option<PiiPart>,
) -> Result<Message, JoinError> {
    let redacted = || REDACTED.to_owned();
    let (mut spans, mut pii) = match pii {
        Some(mut p) => (Some(std::mem::take(&mut p.spans).into_iter()), Some(p)),
        None => (None, None),
    };
    let visitor = if content.visitor_fields & V_PRESENT != 0 {
        let fields = content.visitor_fields;
        let pick = |pii: &mut Option<PiiPart>, bit: u8, value: fn(&mut PiiPart) -> &mut String| {
            (fields & bit != 0).then(|| {
                pii.as_mut()
                    .map_or_else(redacted, |p| std::mem::take(value(p)))
            })
        };
        Some(Visitor {
            email: pii
                .as_mut()
                .map_or_else(redacted, |p| std::mem::take(&mut p.email)),
            name: pick(&mut pii, V_NAME, |p| &mut p.name),
            phone: pick(&mut pii, V_PHONE, |p| &mut p.phone),
            id: pick(&mut pii, V_ID, |p| &mut p.id),
            ip: pick(&mut pii, V_IP, |p| &mut p.ip),
        })
    } else {
        None
    };
    let body = match content.body {
        ContentBody::Text(st) => Body::Text(join_text(st, spans.as_mut())?),
        ContentBody::Form(names) => {
            let mut fields = BTreeMap::new();
            match pii.as_mut() {
                Some(p) => {
                    if p.form_values.len() != names.len() {
                        return Err(JoinError("form names and values differ in number"));
                    }
                    fields.extend(names.into_iter().zip(std::mem::take(&mut p.form_values)));
                }
                None => {
                    for n in names {
                        fields.insert(n, redacted());
                    }
                }
            }
            Body::Form(fields)
        }
        ContentBody::File { mime, .. } => Body::File(FileUpload {
            name: pii
                .as_mut()
                .map_or_else(redacted, |p| std::mem::take(&mut p.file_name)),
            mime,
            data: pii
                .as_mut()
                .map(|p| std::mem::take(&mut p.file_data))
                .unwrap_or_default(),
        }),
        ContentBody::Consent { granted, prompt } => Body::Consent {
            granted,
            prompt: join_text(prompt, spans.as_mut())?,
        },
    };
    if let Some(it) = spans.as_mut()
        && it.next().is_some()
    {
        return Err(JoinError("more spans than holes"));
    }
    let from = match content.from {
        0 => None,
        c => Some(Sender::from_code(c).ok_or(JoinError("unknown sender code"))?),
    };
    Ok(Message {
        transcript: ctx.transcript.to_owned(),
        id: ctx.msg_id.map(str::to_owned),
        ts: Timestamp::from_parts(ctx.ts_millis, &content.ts),
        from,
        visitor,
        body,
    })
}

/// The SHA-256 of a file message's bytes while its PII key lives: as stored
/// by records that carry it, else computed from the bytes.
pub(crate) fn file_sha256(content: &ContentPart, pii: Option<&PiiPart>) -> Option<[u8; 32]> {
    let ContentBody::File { .. } = content.body else {
        return None;
    };
    let p = pii?;
    Some(
        <[u8; 32]>::try_from(p.file_sha256.as_slice())
            .unwrap_or_else(|_| Sha256::digest(&p.file_data).into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::parse_line;

    fn roundtrip(line: &str) -> (Message, Message) {
        let msg = parse_line(line).unwrap();
        let (content, pii) = split(&msg, &Detector::default());
        let ctx = JoinContext {
            transcript: &msg.transcript,
            ts_millis: msg.ts.unix_millis(),
            msg_id: msg.id.as_deref(),
        };
        // As the store does: the fill encoded, read back as a `PiiPart`.
        let pii: Option<PiiPart> =
            pii.map(|p| crate::codec::decode(&crate::codec::encode(&p)).unwrap());
        let full = join(&ctx, content.clone(), pii).unwrap();
        let red = join(&ctx, content, None).unwrap();
        assert_eq!(full, msg);
        (full, red)
    }

    /// The borrowed fill encodes byte for byte as the owned part did (file
    /// bytes as one string now, element by element before), and both decode.
    #[test]
    fn the_borrowed_fill_encodes_as_the_owned_part() {
        let msg = parse_line(r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","from":"visitor","visitor":{"email":"ann@x.example","name":"Ann","phone":"+44 20 7946 0958","id":"v-1","ip":"203.0.113.9"},"kind":"file","file":{"name":"scan.pdf","mime":"application/pdf","data":"aGVsbG8gd29ybGQ="}}"#).unwrap();
        let (content, fill) = split(&msg, &Detector::default());
        let fill = fill.unwrap();
        let owned = PiiPart {
            email: "ann@x.example".into(),
            name: "Ann".into(),
            phone: "+44 20 7946 0958".into(),
            id: "v-1".into(),
            ip: "203.0.113.9".into(),
            spans: vec![],
            form_values: vec![],
            file_name: "scan.pdf".into(),
            file_sha256: Sha256::digest(b"hello world").to_vec(),
            file_data: b"hello world".to_vec(),
        };
        let with_hash = PiiFill {
            file_sha256: Bytes(&owned.file_sha256),
            ..fill
        };
        assert_eq!(
            crate::codec::encode(&with_hash),
            crate::codec::encode(&owned)
        );
        let back: PiiPart = crate::codec::decode(&crate::codec::encode(&owned)).unwrap();
        assert_eq!(back, owned);
        // Without a stored hash (records written now) it is computed on read.
        let (_, fill) = split(&msg, &Detector::default());
        let new: PiiPart = crate::codec::decode(&crate::codec::encode(&fill.unwrap())).unwrap();
        assert!(new.file_sha256.is_empty());
        assert_eq!(
            file_sha256(&content, Some(&new)),
            file_sha256(&content, Some(&owned))
        );
        assert_eq!(
            file_sha256(&content, Some(&new)).unwrap().to_vec(),
            owned.file_sha256
        );
        assert_eq!(file_sha256(&content, None), None);
    }

    #[test]
    fn text_spans_come_back_or_read_redacted() {
        let (_, red) = roundtrip(
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","from":"visitor","visitor":{"email":"Ann@x.example","name":"Ann","ip":"203.0.113.9"},"kind":"text","text":"mail ann@work.example or call +44 20 7946 0958 from 10.1.2.3, thanks"}"#,
        );
        let Body::Text(t) = &red.body else { panic!() };
        assert_eq!(
            t,
            "mail <redacted> or call <redacted> from <redacted>, thanks"
        );
        let v = red.visitor.unwrap();
        assert_eq!(v.email, REDACTED);
        assert_eq!(v.name.as_deref(), Some(REDACTED));
        assert_eq!(v.phone, None);
        assert_eq!(v.ip.as_deref(), Some(REDACTED));
    }

    #[test]
    fn forms_files_consent() {
        let (_, red) = roundtrip(
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","kind":"form","form":{"email":"a@b.example","order":"123"}}"#,
        );
        let Body::Form(f) = &red.body else { panic!() };
        assert!(f.values().all(|v| v == REDACTED));
        assert_eq!(f.keys().collect::<Vec<_>>(), ["email", "order"]);
        let (_, red) = roundtrip(
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","kind":"file","file":{"name":"passport.pdf","mime":"application/pdf","data":"aGVsbG8="}}"#,
        );
        assert_eq!(
            red.body,
            Body::File(FileUpload {
                name: REDACTED.into(),
                mime: "application/pdf".into(),
                data: vec![]
            })
        );
        roundtrip(
            r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","kind":"consent","consent":{"granted":true,"prompt":"Store this? Questions: dpo@shop.example"}}"#,
        );
    }

    #[test]
    fn no_pii_means_no_fill() {
        let msg = parse_line(r#"{"transcript":"t","ts":"2024-05-02T10:15:03.120Z","kind":"text","text":"where is my order?"}"#).unwrap();
        assert!(split(&msg, &Detector::default()).1.is_none());
    }

    #[test]
    fn mismatched_parts_are_errors_not_panics() {
        let content = ContentPart {
            ts: "x".into(),
            from: 9,
            visitor_fields: 0,
            body: ContentBody::Text(SplitText {
                text: "ab".into(),
                holes: vec![(5, 1)],
            }),
        };
        let ctx = JoinContext {
            transcript: "t",
            ts_millis: 0,
            msg_id: None,
        };
        assert!(join(&ctx, content.clone(), None).is_err());
        assert!(join(&ctx, content, Some(PiiPart::default())).is_err());
    }
}
