//! shredlog itself.

use std::path::Path;

use anyhow::Result;
use shredlog::{CompactOptions, Durability, Message, Options, Store};

use super::Db;
use crate::data::Meta;

pub struct Shred {
    store: Store,
}

pub fn options() -> Options {
    Options {
        durability: Durability::Immediate,
        ..Options::default()
    }
}

impl Shred {
    pub fn open(dir: &Path) -> Result<Shred> {
        Ok(Shred {
            store: Store::open(dir, options())?,
        })
    }
}

impl Db for Shred {
    fn ingest(&mut self, msgs: &[Message], _bare: &[Message], _meta: &[Meta]) -> Result<()> {
        self.store.append_batch(msgs)?;
        Ok(())
    }

    fn list(&self, email: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .transcripts_by_email(email, None, None)?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }

    fn read(&self, id: &str) -> Result<Vec<Message>> {
        Ok(self.store.transcript(id)?)
    }

    fn erase(&mut self, email: &str) -> Result<()> {
        self.store.redact_visitor(email, "compare")?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        self.store.compact(&CompactOptions::everything())?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.store.close()?)
    }

    fn notes(&self) -> Vec<String> {
        let r = self.store.recovery_report();
        let st = self.store.stats().unwrap();
        vec![format!(
            "last open: checkpoint used: {}, records scanned: {}, sealed segments left unopened: {}; {} segment(s), {:.1} MB of segments ({:.1} MB live), keyring {:.1} MB ({} cells of 64 bytes used)",
            r.checkpoint_used,
            r.records_scanned,
            r.segments_unopened,
            st.segments,
            st.segment_bytes as f64 / 1e6,
            st.live_bytes as f64 / 1e6,
            st.keyring_bytes as f64 / 1e6,
            st.keyring_slots_used
        )]
    }
}
