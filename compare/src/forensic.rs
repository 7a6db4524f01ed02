//! The forensic count: which of the erased visitors' personal strings can
//! still be found, as plain bytes, in an engine's files.

use std::collections::HashSet;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use anyhow::Result;
use workload::VisitorTruth;

use crate::stats::files;

/// The strings searched for, built once for all engines.
pub struct Needles {
    /// The distinct strings (ASCII case-insensitive matching).
    pub strings: Vec<String>,
    /// Strings left out because they also occur inside the data of a visitor
    /// who was not erased (common names, for instance): their presence would
    /// prove nothing.
    pub ambiguous: usize,
    ac: AhoCorasick,
}

/// Below this many bytes a string is too likely to occur by chance.
const MIN_LEN: usize = 5;

pub fn needles(all: &[VisitorTruth], erased: &[usize]) -> Result<Needles> {
    let erased_set: HashSet<usize> = erased.iter().copied().collect();
    let mut cand: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for &i in erased {
        let v = &all[i];
        let mut push = |s: &str| {
            let s = s.trim();
            if s.len() >= MIN_LEN && seen.insert(s.to_ascii_lowercase()) {
                cand.push(s.to_owned());
            }
        };
        push(&v.email);
        push(&v.name);
        for s in [&v.phone, &v.internal_id, &v.ip].into_iter().flatten() {
            push(s);
        }
        for s in &v.typed_pii {
            push(s);
        }
    }
    // Everything the kept visitors own, one string a line: a candidate found
    // in it is ambiguous.
    let mut kept = String::new();
    for (i, v) in all.iter().enumerate() {
        if erased_set.contains(&i) {
            continue;
        }
        for s in [&v.email, &v.name] {
            kept.push_str(s);
            kept.push('\n');
        }
        for s in [&v.phone, &v.internal_id, &v.ip].into_iter().flatten() {
            kept.push_str(s);
            kept.push('\n');
        }
        for s in &v.typed_pii {
            kept.push_str(s);
            kept.push('\n');
        }
    }
    let probe = build(&cand)?;
    let mut bad = HashSet::new();
    for m in probe.find_overlapping_iter(kept.as_bytes()) {
        bad.insert(m.pattern().as_usize());
    }
    let strings: Vec<String> = cand
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, s)| s.clone())
        .collect();
    Ok(Needles {
        ac: build(&strings)?,
        ambiguous: bad.len(),
        strings,
    })
}

fn build(strings: &[String]) -> Result<AhoCorasick> {
    Ok(AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(strings)?)
}

/// What a search found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Distinct needles found anywhere.
    pub total: usize,
    /// Per file (path relative to the store directory): distinct needles in it.
    pub per_file: Vec<(String, usize)>,
}

impl Found {
    /// The files holding residue, most first, e.g. `db.redb (458)`.
    pub fn where_(&self, max: usize) -> String {
        let mut v = self.per_file.clone();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut parts: Vec<String> = v
            .iter()
            .take(max)
            .map(|(f, n)| format!("`{f}` ({n})"))
            .collect();
        if v.len() > max {
            parts.push(format!("{} more files", v.len() - max));
        }
        parts.join(", ")
    }
}

/// Which of the needles occur somewhere in the files under `dir`.
pub fn count(needles: &Needles, dir: &Path) -> Result<Found> {
    let mut found = vec![false; needles.strings.len()];
    let mut per_file = Vec::new();
    for f in files(dir) {
        // An engine's background work (fjall's journal and table
        // maintenance) may remove a file between the listing and the read:
        // what is gone holds nothing.
        let bytes = match std::fs::read(&f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let mut here = vec![false; needles.strings.len()];
        for m in needles.ac.find_overlapping_iter(&bytes) {
            here[m.pattern().as_usize()] = true;
        }
        let n = here.iter().filter(|&&b| b).count();
        if n > 0 {
            for (i, h) in here.iter().enumerate() {
                found[i] |= *h;
            }
            let name = f
                .strip_prefix(dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            per_file.push((name, n));
        }
    }
    Ok(Found {
        total: found.iter().filter(|&&b| b).count(),
        per_file,
    })
}
