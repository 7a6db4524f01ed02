//! RocksDB (the system library, Debian's librocksdb-dev): one column family
//! per table, compression off (every level, bottommost too), one `WriteBatch`
//! per commit batch written with `sync = true`.

use std::path::Path;

use anyhow::Result;
use rocksdb::{
    BottommostLevelCompaction, ColumnFamilyDescriptor, CompactOptions, DB, DBCompressionType,
    Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};
use shredlog::Message;

use super::{Db, KvRead, Table, kv_erase_keys, kv_list, kv_read, prefix_end, rows};
use crate::data::Meta;

pub struct Rocks {
    db: DB,
    sync: WriteOptions,
}

fn cf_options() -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::None);
    o.set_bottommost_compression_type(DBCompressionType::None);
    o
}

impl Rocks {
    pub fn open(dir: &Path) -> Result<Rocks> {
        let mut opts = cf_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), cf_options()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(Rocks { db, sync })
    }

    fn cf(&self, t: Table) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(t.name())
            .expect("column families are created at open")
    }
}

impl KvRead for Rocks {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(t), key)?)
    }

    fn scan(
        &self,
        t: Table,
        prefix: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let cf = self.cf(t);
        let end = prefix_end(prefix);
        let mode = match (&end, rev) {
            (_, false) => IteratorMode::From(prefix, Direction::Forward),
            (Some(e), true) => IteratorMode::From(e.as_slice(), Direction::Reverse),
            (None, true) => IteratorMode::End,
        };
        for item in self.db.iterator_cf(cf, mode) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                if rev && end.as_deref().is_some_and(|e| &*k >= e) {
                    continue;
                }
                break;
            }
            f(&k, &v);
        }
        Ok(())
    }
}

impl Db for Rocks {
    fn ingest(&mut self, msgs: &[Message], bare: &[Message], meta: &[Meta]) -> Result<()> {
        let mut b = WriteBatch::default();
        for ((full, bare), meta) in msgs.iter().zip(bare).zip(meta) {
            rows(full, bare, meta, |t, k, v| b.put_cf(self.cf(t), k, v));
        }
        self.db.write_opt(b, &self.sync)?;
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
        let mut b = WriteBatch::default();
        for (t, k) in keys {
            b.delete_cf(self.cf(t), k);
        }
        self.db.write_opt(b, &self.sync)?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        let mut c = CompactOptions::default();
        c.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for t in Table::ALL {
            self.db
                .compact_range_cf_opt(self.cf(t), None::<&[u8]>, None::<&[u8]>, &c);
        }
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}
