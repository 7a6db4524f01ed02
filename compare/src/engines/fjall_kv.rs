//! fjall (built without its `lz4` feature, and every keyspace created with
//! compression disabled): one write batch per commit batch, persisted with
//! `PersistMode::SyncAll` before it returns.

use std::path::Path;

use anyhow::Result;
use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use shredlog::Message;

use super::{Db, KvRead, Table, kv_erase_keys, kv_list, kv_read, rows};
use crate::data::Meta;

pub struct Fjall {
    db: Database,
    ks: Vec<Keyspace>,
}

impl Fjall {
    pub fn open(dir: &Path) -> Result<Fjall> {
        let db = Database::builder(dir).open()?;
        let mut ks = Vec::new();
        for t in Table::ALL {
            ks.push(db.keyspace(t.name(), || {
                KeyspaceCreateOptions::default()
                    .data_block_compression_policy(CompressionPolicy::disabled())
                    .index_block_compression_policy(CompressionPolicy::disabled())
            })?);
        }
        Ok(Fjall { db, ks })
    }
}

impl KvRead for Fjall {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.ks[t.index()].get(key)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        t: Table,
        prefix: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let it = self.ks[t.index()].prefix(prefix);
        if rev {
            for g in it.rev() {
                let (k, v) = g.into_inner()?;
                f(&k, &v);
            }
        } else {
            for g in it {
                let (k, v) = g.into_inner()?;
                f(&k, &v);
            }
        }
        Ok(())
    }
}

impl Db for Fjall {
    fn ingest(&mut self, msgs: &[Message], bare: &[Message], meta: &[Meta]) -> Result<()> {
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        for ((full, bare), meta) in msgs.iter().zip(bare).zip(meta) {
            rows(full, bare, meta, |t, k, v| {
                b.insert(&self.ks[t.index()], k, v)
            });
        }
        b.commit()?;
        Ok(())
    }

    fn list(&self, email: &str) -> Result<Vec<String>> {
        kv_list(self, email)
    }

    fn read(&self, id: &str) -> Result<Vec<Message>> {
        kv_read(self, id)
    }

    fn erase(&mut self, email: &str) -> Result<()> {
        let keys = kv_erase_keys(self, email)?;
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        for (t, k) in keys {
            b.remove(&self.ks[t.index()], k);
        }
        b.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        for ks in &self.ks {
            ks.rotate_memtable_and_wait()?;
            ks.major_compact()?;
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        let Fjall { db, ks } = *self;
        drop(ks);
        drop(db);
        Ok(())
    }
}
