//! SQLite (rusqlite, bundled): WAL, `synchronous=FULL`, one transaction per
//! commit batch.

use std::path::Path;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use shredlog::{Message, interchange};

use crate::data::email_key;

use super::Db;
use crate::data::Meta;

pub struct Sqlite {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS visitors(
    vid INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,   -- normalised; the UNIQUE index is the email index
    name TEXT, phone TEXT, ext_id TEXT, ip TEXT);
CREATE TABLE IF NOT EXISTS transcripts(
    tid TEXT PRIMARY KEY,
    vid INTEGER NOT NULL,
    first_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transcripts_by_visitor ON transcripts(vid, first_ms);
CREATE TABLE IF NOT EXISTS messages(
    tid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,           -- interchange JSON without the visitor object
    PRIMARY KEY(tid, seq));
";

impl Sqlite {
    pub fn open(dir: &Path, secure_delete: bool) -> Result<Sqlite> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("db.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(
            None,
            "secure_delete",
            if secure_delete { "ON" } else { "OFF" },
        )?;
        conn.execute_batch(SCHEMA)?;
        // Make open read the schema now, not at the first query.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(Sqlite { conn })
    }
}

impl Db for Sqlite {
    fn ingest(&mut self, msgs: &[Message], bare: &[Message], meta: &[Meta]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins_msg =
                tx.prepare_cached("INSERT INTO messages(tid, seq, line) VALUES (?1, ?2, ?3)")?;
            for ((full, bare), meta) in msgs.iter().zip(bare).zip(meta) {
                if meta.first {
                    if let Some(v) = &full.visitor {
                        tx.prepare_cached(
                            "INSERT INTO visitors(vid, email, name, phone, ext_id, ip)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT(vid) DO UPDATE SET name = excluded.name,
                               phone = excluded.phone, ext_id = excluded.ext_id, ip = excluded.ip",
                        )?
                        .execute(params![
                            meta.vid as i64,
                            email_key(&v.email),
                            v.name,
                            v.phone,
                            v.id,
                            v.ip
                        ])?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO transcripts(tid, vid, first_ms) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        full.transcript,
                        meta.vid as i64,
                        meta.first_ms
                    ])?;
                }
                ins_msg.execute(params![
                    full.transcript,
                    meta.seq,
                    interchange::to_line(bare)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn list(&self, email: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT t.tid FROM visitors v JOIN transcripts t ON t.vid = v.vid
             WHERE v.email = ?1 ORDER BY t.first_ms DESC",
        )?;
        let rows = st.query_map([email_key(email)], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn read(&self, id: &str) -> Result<Vec<Message>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT line FROM messages WHERE tid = ?1 ORDER BY seq")?;
        let lines = st
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lines
            .iter()
            .map(|l| Ok(interchange::parse_line(l)?))
            .collect()
    }

    fn erase(&mut self, email: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        let vid: Option<i64> = tx
            .query_row(
                "SELECT vid FROM visitors WHERE email = ?1",
                [email_key(email)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(vid) = vid else {
            anyhow::bail!("visitor not found");
        };
        tx.execute(
            "DELETE FROM messages WHERE tid IN (SELECT tid FROM transcripts WHERE vid = ?1)",
            [vid],
        )?;
        tx.execute("DELETE FROM transcripts WHERE vid = ?1", [vid])?;
        tx.execute("DELETE FROM visitors WHERE vid = ?1", [vid])?;
        tx.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        self.conn.execute_batch("VACUUM")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}
