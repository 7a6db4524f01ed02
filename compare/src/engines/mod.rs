//! The engines under test, behind one small trait.

use std::path::Path;

use anyhow::{Result, bail};
use shredlog::{Message, interchange};

use crate::data::Meta;

mod fjall_kv;
mod redb_kv;
#[cfg(feature = "rocksdb")]
mod rocks_kv;
mod shred;
mod sqlite;

/// One open store of one engine.
pub trait Db {
    /// Durably writes one commit batch: messages (with the visitor, for
    /// shredlog), the same without the visitor (for the peers' message rows),
    /// and what the application knows about each.
    fn ingest(&mut self, msgs: &[Message], bare: &[Message], meta: &[Meta]) -> Result<()>;
    /// The visitor's transcript ids, newest first.
    fn list(&self, email: &str) -> Result<Vec<String>>;
    /// One transcript's messages, in order.
    fn read(&self, id: &str) -> Result<Vec<Message>>;
    /// Erasure request, durable before it returns (shredlog: `redact_visitor`;
    /// the peers: delete everything of the visitor).
    fn erase(&mut self, email: &str) -> Result<()>;
    /// The engine's own space reclamation.
    fn reclaim(&mut self) -> Result<()>;
    fn close(self: Box<Self>) -> Result<()>;
    /// Engine-specific remarks for the report.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Shredlog,
    Sqlite,
    SqliteSecureDelete,
    Redb,
    Fjall,
    Rocksdb,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Shredlog,
        Kind::Sqlite,
        Kind::SqliteSecureDelete,
        Kind::Redb,
        Kind::Fjall,
        Kind::Rocksdb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Shredlog => "shredlog",
            Kind::Sqlite => "sqlite",
            Kind::SqliteSecureDelete => "sqlite-secure-delete",
            Kind::Redb => "redb",
            Kind::Fjall => "fjall",
            Kind::Rocksdb => "rocksdb",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn available(self) -> bool {
        self != Kind::Rocksdb || cfg!(feature = "rocksdb")
    }

    /// What the engine's reclamation is, for the table's notes.
    pub fn reclaim_what(self) -> &'static str {
        match self {
            Kind::Shredlog => "compact(everything)",
            Kind::Sqlite | Kind::SqliteSecureDelete => "VACUUM + wal_checkpoint(TRUNCATE)",
            Kind::Redb => "compact() until done",
            Kind::Fjall => "flush + major_compact per keyspace",
            Kind::Rocksdb => "compact_range (bottommost: force) per CF",
        }
    }

    /// Opens (creating if needed) the store in `dir`.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Db>> {
        Ok(match self {
            Kind::Shredlog => Box::new(shred::Shred::open(dir)?),
            Kind::Sqlite => Box::new(sqlite::Sqlite::open(dir, false)?),
            Kind::SqliteSecureDelete => Box::new(sqlite::Sqlite::open(dir, true)?),
            Kind::Redb => Box::new(redb_kv::Redb::open(dir)?),
            Kind::Fjall => Box::new(fjall_kv::Fjall::open(dir)?),
            #[cfg(feature = "rocksdb")]
            Kind::Rocksdb => Box::new(rocks_kv::Rocks::open(dir)?),
            #[cfg(not(feature = "rocksdb"))]
            Kind::Rocksdb => bail!("built without the `rocksdb` feature"),
        })
    }
}

// ---------------------------------------------------------------------------
// The key-value schema shared by redb, fjall and RocksDB.

/// The five tables (redb tables, fjall keyspaces, RocksDB column families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// vid (u64 BE) → visitor JSON {email, name, phone, id, ip}
    Visitors,
    /// normalised email → vid
    Email,
    /// vid ‖ first message ms (BE, sign-flipped) ‖ transcript id → ""
    VisitorTranscripts,
    /// transcript id → vid ‖ first ms
    Transcripts,
    /// transcript id ‖ 0x00 ‖ seq (u32 BE) → message as interchange JSON
    /// without the visitor object
    Messages,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Visitors,
        Table::Email,
        Table::VisitorTranscripts,
        Table::Transcripts,
        Table::Messages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Visitors => "visitors",
            Table::Email => "email",
            Table::VisitorTranscripts => "visitor_transcripts",
            Table::Transcripts => "transcripts",
            Table::Messages => "messages",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

fn ms_be(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn msg_prefix(tid: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tid.len() + 5);
    k.extend_from_slice(tid.as_bytes());
    k.push(0);
    k
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The rows one message puts, in table order.
pub fn rows(
    full: &Message,
    bare: &Message,
    meta: &Meta,
    mut put: impl FnMut(Table, Vec<u8>, Vec<u8>),
) {
    if meta.first {
        if let Some(v) = &full.visitor {
            let email = crate::data::email_key(&v.email);
            let value = serde_json::json!({
                "email": v.email, "name": v.name, "phone": v.phone, "id": v.id, "ip": v.ip,
            });
            put(
                Table::Visitors,
                meta.vid.to_be_bytes().to_vec(),
                value.to_string().into_bytes(),
            );
            put(
                Table::Email,
                email.into_bytes(),
                meta.vid.to_be_bytes().to_vec(),
            );
        }
        let mut vt = meta.vid.to_be_bytes().to_vec();
        vt.extend_from_slice(&ms_be(meta.first_ms));
        vt.extend_from_slice(full.transcript.as_bytes());
        put(Table::VisitorTranscripts, vt, Vec::new());
        let mut tv = meta.vid.to_be_bytes().to_vec();
        tv.extend_from_slice(&ms_be(meta.first_ms));
        put(Table::Transcripts, full.transcript.as_bytes().to_vec(), tv);
    }
    let mut k = msg_prefix(&full.transcript);
    k.extend_from_slice(&meta.seq.to_be_bytes());
    put(Table::Messages, k, interchange::to_line(bare).into_bytes());
}

/// Reads a peer's key-value tables.
pub trait KvRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Calls `f` with each (key, value) whose key starts with `prefix`, in key
    /// order (reversed with `rev`).
    fn scan(
        &self,
        t: Table,
        prefix: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()>;
}

pub fn kv_list(r: &dyn KvRead, email: &str) -> Result<Vec<String>> {
    let Some(vid) = r.get(Table::Email, crate::data::email_key(email).as_bytes())? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    r.scan(Table::VisitorTranscripts, &vid, true, &mut |k, _| {
        out.push(String::from_utf8_lossy(&k[16..]).into_owned());
    })?;
    Ok(out)
}

pub fn kv_read(r: &dyn KvRead, id: &str) -> Result<Vec<Message>> {
    let mut lines = Vec::new();
    r.scan(Table::Messages, &msg_prefix(id), false, &mut |_, v| {
        lines.push(String::from_utf8_lossy(v).into_owned());
    })?;
    lines
        .iter()
        .map(|l| Ok(interchange::parse_line(l)?))
        .collect()
}

/// Every key that deleting the visitor removes.
pub fn kv_erase_keys(r: &dyn KvRead, email: &str) -> Result<Vec<(Table, Vec<u8>)>> {
    let ekey = crate::data::email_key(email).into_bytes();
    let Some(vid) = r.get(Table::Email, &ekey)? else {
        bail!("visitor not found");
    };
    let mut keys = vec![(Table::Email, ekey), (Table::Visitors, vid.clone())];
    let mut tids = Vec::new();
    r.scan(Table::VisitorTranscripts, &vid, false, &mut |k, _| {
        keys.push((Table::VisitorTranscripts, k.to_vec()));
        tids.push(k[16..].to_vec());
    })?;
    for tid in tids {
        let mut p = tid.clone();
        p.push(0);
        r.scan(Table::Messages, &p, false, &mut |k, _| {
            keys.push((Table::Messages, k.to_vec()));
        })?;
        keys.push((Table::Transcripts, tid));
    }
    Ok(keys)
}
