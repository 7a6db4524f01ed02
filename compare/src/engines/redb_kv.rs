//! redb: one write transaction per commit batch, default durability
//! (`Durability::Immediate`). redb has no compression.

use std::path::Path;

use anyhow::Result;
use redb::{Database, ReadableDatabase, TableDefinition};
use shredlog::Message;

use super::{Db, KvRead, Table, kv_erase_keys, kv_list, kv_read, prefix_end, rows};
use crate::data::Meta;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

const DEFS: [Def; 5] = [
    TableDefinition::new("visitors"),
    TableDefinition::new("email"),
    TableDefinition::new("visitor_transcripts"),
    TableDefinition::new("transcripts"),
    TableDefinition::new("messages"),
];

pub struct Redb {
    db: Database,
}

impl Redb {
    pub fn open(dir: &Path) -> Result<Redb> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("db.redb"))?;
        let w = db.begin_write()?;
        for d in DEFS {
            w.open_table(d)?;
        }
        w.commit()?;
        Ok(Redb { db })
    }
}

struct Reader<'a>(&'a Database);

impl KvRead for Reader<'_> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let r = self.0.begin_read()?;
        let table = r.open_table(DEFS[t.index()])?;
        Ok(table.get(key)?.map(|g| g.value().to_vec()))
    }

    fn scan(
        &self,
        t: Table,
        prefix: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let r = self.0.begin_read()?;
        let table = r.open_table(DEFS[t.index()])?;
        let end = prefix_end(prefix);
        let range = match &end {
            Some(e) => table.range::<&[u8]>(prefix..e.as_slice())?,
            None => table.range::<&[u8]>(prefix..)?,
        };
        if rev {
            for item in range.rev() {
                let (k, v) = item?;
                f(k.value(), v.value());
            }
        } else {
            for item in range {
                let (k, v) = item?;
                f(k.value(), v.value());
            }
        }
        Ok(())
    }
}

impl Db for Redb {
    fn ingest(&mut self, msgs: &[Message], bare: &[Message], meta: &[Meta]) -> Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut tables = Vec::new();
            for d in DEFS {
                tables.push(w.open_table(d)?);
            }
            let mut res = Ok(());
            for ((full, bare), meta) in msgs.iter().zip(bare).zip(meta) {
                rows(full, bare, meta, |t, k, v| {
                    if res.is_ok() {
                        res = tables[t.index()]
                            .insert(k.as_slice(), v.as_slice())
                            .map(drop);
                    }
                });
            }
            res?;
        }
        w.commit()?;
        Ok(())
    }

    fn list(&self, email: &str) -> Result<Vec<String>> {
        kv_list(&Reader(&self.db), email)
    }

    fn read(&self, id: &str) -> Result<Vec<Message>> {
        kv_read(&Reader(&self.db), id)
    }

    fn erase(&mut self, email: &str) -> Result<()> {
        let keys = kv_erase_keys(&Reader(&self.db), email)?;
        let w = self.db.begin_write()?;
        {
            let mut tables = Vec::new();
            for d in DEFS {
                tables.push(w.open_table(d)?);
            }
            for (t, k) in &keys {
                tables[t.index()].remove(k.as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        while self.db.compact()? {}
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}
