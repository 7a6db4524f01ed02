//! Writing the index's run and its manifest (docs/FORMAT.md §7b): the
//! changes the index holds in memory go into a new run file, so that memory
//! holds only what changed since (and the active segment's records), and
//! the next open reads the run instead of rebuilding the index.
//!
//! A run is written only when everything written is durable, under the
//! writer's lock (no append, privacy operation or compaction is half done):
//! then the run names only acknowledged slots and records, and every
//! audit entry logged so far has all its effects in it. The run file is
//! synced, the directory synced, the manifest naming it replaces the old
//! one, then the keyring's state names the run (the commit point: open
//! uses no manifest of another run), and the old run file is removed.

use std::sync::atomic::Ordering;

use super::{Engine, Writer};
use crate::error::{IoContext, Result};
use crate::index::{Index, Manifest, run_file_name};

/// Changes held in memory over the run before a commit writes a new one.
pub(crate) const RUN_EVERY: usize = 1 << 16;

impl Engine {
    /// Writes a new run if the index holds more than [`RUN_EVERY`] changes
    /// and everything written is durable (else later).
    pub(crate) fn maybe_write_run(&self, w: &mut Writer) -> Result<()> {
        if self.options.read_only || !self.options.checkpoint {
            return Ok(());
        }
        if self.index.read().changes_held() < RUN_EVERY || !self.commit.is_clean() {
            return Ok(());
        }
        self.write_run(w)
    }

    /// Writes the index's run and manifest (see the module documentation).
    /// The caller holds the writer's lock and has made everything durable.
    pub(crate) fn write_run(&self, w: &mut Writer) -> Result<()> {
        let number = self.run_number.load(Ordering::SeqCst) + 1;
        let name = run_file_name(number);
        let path = self.dir.join(&name);
        let mut index = self.index.write();
        let old = index.run_path().map(std::path::Path::to_path_buf);
        crate::failpoint::check("run.write").at(&path)?;
        index.write_run(&path, number)?;
        // The index reads this file from now on, its blocks cached under its
        // number: a later run never reuses it, whatever happens below.
        self.run_number.store(number, Ordering::SeqCst);
        crate::fsutil::sync_dir(&self.dir)?;
        let mut manifest = self.manifest_now(w, &index, number);
        manifest.held = index.run_rows().to_vec();
        drop(index);
        crate::failpoint::check("run.manifest").at(&path)?;
        manifest.save(&self.dir)?;
        // The keyring names the run: open uses no other manifest.
        w.keyring.note_run(number);
        w.keyring.sync()?;
        w.keyring.set_floor(manifest.keyring_cells);
        manifest.held = Vec::new();
        w.run_manifest = Some(manifest);
        if let Some(old) = old
            && old != path
        {
            // A run left behind is removed by the next writing open.
            let _ = std::fs::remove_file(&old);
        }
        Ok(())
    }

    /// Whether the run in use holds everything: the keyring names it, the
    /// index holds nothing it lacks, and a manifest written now would say
    /// what its manifest says (same floor, audit marks, segments' byte
    /// accounting). Then writing a run (at close) would only copy it.
    ///
    /// # Errors
    /// As the run's lookups.
    pub(crate) fn run_is_current(&self, w: &Writer) -> Result<bool> {
        let number = self.run_number.load(Ordering::SeqCst);
        let Some(kept) = &w.run_manifest else {
            return Ok(false);
        };
        if number == 0 || kept.run != number || w.keyring.marks().run != number {
            return Ok(false);
        }
        let index = self.index.read();
        if !self.manifest_now(w, &index, number).same_coverage(kept) {
            return Ok(false);
        }
        index.matches_run()
    }

    /// The manifest of run `number` written now (without the rows of held
    /// generations).
    fn manifest_now(&self, w: &Writer, index: &Index, number: u64) -> Manifest {
        let segments = self.segments.read();
        let (active, _) = w.last_segment();
        let usage = index
            .usage()
            .iter()
            .filter(|(id, _)| **id != active)
            .filter_map(|(id, u)| Some((*id, segments.get(id)?.generation(), *u)))
            .collect();
        drop(segments);
        let (audit_entries, audit_bytes) = self.audit.lock().marks();
        let floor = w.keyring.used_end();
        let tail = w.keyring.tail_from(floor);
        Manifest {
            keyring_id: w.keyring.id(),
            caller_check: index.caller_key().check(),
            run: number,
            transcripts: index.transcript_count(),
            directory: index.directory_len() as u64,
            keyring_cells: floor,
            occupancy: tail.occupancy,
            stranded: tail.stranded,
            twins: self.report.email_twins as u64,
            audit_entries,
            audit_bytes,
            usage,
            held: Vec::new(),
        }
    }
}
