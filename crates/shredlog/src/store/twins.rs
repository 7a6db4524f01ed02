//! Counting, at open, the directory entries that share their address with
//! another visitor's entry (two spellings of one address stored before
//! canonical emails; each is found by its own spelling, see
//! [`crate::keyring::directory::choose`]), without holding the addresses:
//! each is known only by a keyed digest, under a key drawn for the count
//! and dropped with it.

use crate::ids::IdMap;
use crate::keyring::directory::{Digests, placement};
use crate::record::Vid;

/// Digests of the addresses seen so far, and the twins among them.
#[derive(Default)]
pub(crate) struct Twins {
    digests: Digests,
    seen: IdMap<Vid>,
    count: usize,
}

impl Twins {
    /// Notes visitor `vid`'s entry for `email`.
    pub(crate) fn add(&mut self, vid: Vid, email: &str) {
        let d = self.digests.of(&placement(email));
        match self.seen.get(&d) {
            Some(other) if *other != vid => self.count += 1,
            Some(_) => {}
            None => {
                self.seen.insert(d, vid);
            }
        }
    }

    /// Entries whose address an earlier entry of another visitor has.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_of_two_visitors_are_twins() {
        let mut t = Twins::default();
        t.add([1; 16], "ann@x.example");
        t.add([1; 16], "ann@x.example");
        assert_eq!(t.count(), 0, "the same visitor's entry twice");
        t.add([2; 16], "ANN@x.example.");
        t.add([3; 16], "bob@x.example");
        t.add([4; 16], " Bob@X.example ");
        assert_eq!(t.count(), 2);
    }
}
