//! What a privacy operation does, as data: carried by its audit entry, so
//! that open can finish an operation cut short by reading the entry, not by
//! parsing its text (docs/FORMAT.md §8.2).
//!
//! Entries written before intents existed carry none; [`Intent::of_legacy`]
//! reads their `op`, `subject` and `detail` once, here and nowhere else.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{hex, parse_hex};
use crate::record::{Tid, Vid};

/// A random id written as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HexId(pub [u8; 16]);

impl Serialize for HexId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HexId, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s)
            .map(HexId)
            .ok_or_else(|| serde::de::Error::custom("an id must be 32 hex digits"))
    }
}

/// What an audited operation destroys or changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Intent {
    /// Destroy the PII keys of every generation of the visitor, and their
    /// directory entry.
    EraseVisitor { visitor: HexId },
    /// Destroy both keys of every generation of the visitor, and their
    /// directory entry.
    DeleteVisitor { visitor: HexId },
    /// Destroy both keys of one generation.
    DeleteTranscript { tid: HexId },
    /// Redact (or delete) the listed generations.
    Retention {
        cutoff: i64,
        delete: bool,
        targets: Vec<HexId>,
    },
    /// A rewrite committed: destroy the old generation's keys; the new one
    /// is the caller id's.
    Rewrite { old: HexId, new: HexId },
    /// A legal hold placed (`place`) or released, on a visitor or on one
    /// transcript (by the caller's id).
    Hold {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visitor: Option<HexId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
        place: bool,
    },
    /// A restriction of processing placed (`on`) or lifted.
    Restriction { visitor: HexId, on: bool },
}

impl Intent {
    pub(crate) fn erase_visitor(vid: &Vid) -> Intent {
        Intent::EraseVisitor {
            visitor: HexId(*vid),
        }
    }

    pub(crate) fn delete_visitor(vid: &Vid) -> Intent {
        Intent::DeleteVisitor {
            visitor: HexId(*vid),
        }
    }

    pub(crate) fn delete_transcript(tid: &Tid) -> Intent {
        Intent::DeleteTranscript { tid: HexId(*tid) }
    }

    pub(crate) fn retention(cutoff: i64, delete: bool, targets: &[Tid]) -> Intent {
        Intent::Retention {
            cutoff,
            delete,
            targets: targets.iter().copied().map(HexId).collect(),
        }
    }

    pub(crate) fn rewrite(old: &Tid, new: &Tid) -> Intent {
        Intent::Rewrite {
            old: HexId(*old),
            new: HexId(*new),
        }
    }

    /// Whether the operation destroys keys (its effects are keyring wipes).
    pub(crate) fn destroys_keys(&self) -> bool {
        !matches!(self, Intent::Hold { .. } | Intent::Restriction { .. })
    }

    /// The intent of an entry written before entries carried one: from its
    /// `op`, `subject` and `detail` (docs/FORMAT.md §8.1).
    pub(crate) fn of_legacy(op: &str, subject: &str, detail: Option<&str>) -> Option<Intent> {
        let visitor = subject
            .strip_prefix("visitor:")
            .and_then(parse_hex)
            .map(HexId);
        let transcript = subject.strip_prefix("transcript:");
        Some(match op {
            "erasure" => Intent::EraseVisitor { visitor: visitor? },
            "delete-visitor" => Intent::DeleteVisitor { visitor: visitor? },
            "delete-transcript" => Intent::DeleteTranscript {
                tid: HexId(parse_hex(detail?.strip_prefix("tid:")?)?),
            },
            "retention" => {
                let detail = detail?;
                let (head, targets) = detail.split_once(";targets:")?;
                let cutoff = head
                    .strip_prefix("cutoff:")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Intent::Retention {
                    cutoff,
                    delete: head.contains("mode:delete"),
                    targets: targets
                        .split(' ')
                        .filter_map(parse_hex)
                        .map(HexId)
                        .collect(),
                }
            }
            "rewrite" => {
                let d = detail?.strip_prefix("old:")?;
                let (old, new) = d.split_once(",new:")?;
                Intent::Rewrite {
                    old: HexId(parse_hex(old)?),
                    new: HexId(parse_hex(new)?),
                }
            }
            "hold" | "release-hold" => Intent::Hold {
                visitor,
                transcript: transcript.map(str::to_owned),
                place: op == "hold",
            },
            "restriction" | "lift-restriction" => Intent::Restriction {
                visitor: visitor?,
                on: op == "restriction",
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_roundtrip_as_json() {
        let all = [
            Intent::erase_visitor(&[1; 16]),
            Intent::delete_visitor(&[2; 16]),
            Intent::delete_transcript(&[3; 16]),
            Intent::retention(5, true, &[[4; 16], [5; 16]]),
            Intent::rewrite(&[6; 16], &[7; 16]),
            Intent::Hold {
                visitor: None,
                transcript: Some("t-1".into()),
                place: true,
            },
            Intent::Restriction {
                visitor: HexId([8; 16]),
                on: false,
            },
        ];
        for i in all {
            let json = serde_json::to_string(&i).unwrap();
            assert_eq!(serde_json::from_str::<Intent>(&json).unwrap(), i, "{json}");
        }
        assert!(
            serde_json::from_str::<Intent>(r#"{"do":"erase-visitor","visitor":"xyz"}"#).is_err()
        );
    }

    #[test]
    fn legacy_entries_are_read_once_here() {
        let v = hex(&[1; 16]);
        let t = hex(&[2; 16]);
        assert_eq!(
            Intent::of_legacy("erasure", &format!("visitor:{v}"), None),
            Some(Intent::erase_visitor(&[1; 16]))
        );
        assert_eq!(
            Intent::of_legacy(
                "delete-transcript",
                "transcript:t-1",
                Some(&format!("tid:{t}"))
            ),
            Some(Intent::delete_transcript(&[2; 16]))
        );
        assert_eq!(
            Intent::of_legacy(
                "retention",
                "store",
                Some(&format!("cutoff:99,mode:delete;targets:{t} {v}"))
            ),
            Some(Intent::retention(99, true, &[[2; 16], [1; 16]]))
        );
        assert_eq!(
            Intent::of_legacy("retention", "store", Some("cutoff:99,mode:redact;targets:")),
            Some(Intent::retention(99, false, &[]))
        );
        assert_eq!(
            Intent::of_legacy(
                "rewrite",
                "transcript:t-1",
                Some(&format!("old:{t},new:{v}"))
            ),
            Some(Intent::rewrite(&[2; 16], &[1; 16]))
        );
        assert_eq!(
            Intent::of_legacy("release-hold", &format!("visitor:{v}"), None),
            Some(Intent::Hold {
                visitor: Some(HexId([1; 16])),
                transcript: None,
                place: false
            })
        );
        assert_eq!(
            Intent::of_legacy("rectification", &format!("visitor:{v}"), None),
            None
        );
    }
}
