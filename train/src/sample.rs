//! BPR triples: a user, one of the user's items, and an item the user has not interacted with.
//!
//! An epoch draws as many triples as there are training interactions, the way LightGCN's and
//! NGCF's reference code does: the user uniformly among users with at least one item (so a
//! user with few interactions is drawn as often as a heavy one), the positive uniformly among
//! the user's items, the negative uniformly among all items by rejection. Each chunk of
//! [`CHUNK`] triples has its own random stream derived from `(seed, epoch, chunk)`, so the
//! triples do not depend on how many threads draw them.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::UserItems;

/// One BPR training triple (rows, not external ids).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// The user row.
    pub user: u32,
    /// An item row the user interacted with.
    pub pos: u32,
    /// An item row the user did not interact with.
    pub neg: u32,
}

/// Triples drawn together from one random stream.
pub const CHUNK: usize = 256;

/// A stateless 64-bit mix (splitmix64's finaliser), for deriving stream seeds.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Draws BPR triples from a training set.
#[derive(Clone, Debug)]
pub struct Sampler<'a> {
    train: &'a UserItems,
    users: Vec<u32>,
    items: u32,
    seed: u64,
}

impl<'a> Sampler<'a> {
    /// A sampler over `train` with `items` item rows. Users with no items, or with every item
    /// (no negative exists), are never drawn.
    pub fn new(train: &'a UserItems, items: usize, seed: u64) -> Self {
        let users = (0..train.users())
            .filter(|&u| {
                let n = train.items(u).len();
                n > 0 && n < items
            })
            .map(|u| u as u32)
            .collect();
        Sampler {
            train,
            users,
            items: items as u32,
            seed,
        }
    }

    /// Whether any triple can be drawn.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Fills `out` with the triples `first .. first + out.len()` of epoch `epoch`; `first` must
    /// be a multiple of [`CHUNK`]. Runs in parallel on the current rayon pool.
    pub fn fill(&self, epoch: u64, first: usize, out: &mut [Sample]) {
        self.fill_hardest(epoch, first, out, 1, |_, _| 0.0);
    }

    /// [`Sampler::fill`] with `candidates` negatives drawn per triple (the first as `fill`
    /// draws it, the others after it from the same stream) and the one of highest `score(user,
    /// item)` kept, the earliest on ties: a teacher's hard negatives. One candidate gives
    /// exactly `fill`'s triples.
    pub fn fill_hardest<F>(
        &self,
        epoch: u64,
        first: usize,
        out: &mut [Sample],
        candidates: usize,
        score: F,
    ) where
        F: Fn(u32, u32) -> f32 + Sync,
    {
        debug_assert_eq!(first % CHUNK, 0);
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(k, chunk)| {
                let stream = (first / CHUNK + k) as u64;
                let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(self.seed ^ mix(epoch)) ^ stream));
                for slot in chunk {
                    let mut s = self.draw(&mut rng);
                    if candidates > 1 {
                        let items = self.train.items(s.user as usize);
                        let mut best = score(s.user, s.neg);
                        for _ in 1..candidates {
                            let neg = self.negative(items, &mut rng);
                            let x = score(s.user, neg);
                            if x > best {
                                (best, s.neg) = (x, neg);
                            }
                        }
                    }
                    *slot = s;
                }
            });
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> Sample {
        let user = self.users[rng.random_range(0..self.users.len())];
        let items = self.train.items(user as usize);
        let pos = items[rng.random_range(0..items.len())];
        let neg = self.negative(items, rng);
        Sample { user, pos, neg }
    }

    /// An item not in `items` (the user's sorted items), uniformly by rejection.
    fn negative(&self, items: &[u32], rng: &mut ChaCha8Rng) -> u32 {
        let mut neg = rng.random_range(0..self.items);
        let mut tries = 0;
        while items.binary_search(&neg).is_ok() {
            tries += 1;
            if tries > 64 {
                // A user with nearly every item: walk to the next free item.
                while items.binary_search(&neg).is_ok() {
                    neg = (neg + 1) % self.items;
                }
                break;
            }
            neg = rng.random_range(0..self.items);
        }
        neg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_valid_and_independent_of_threads() {
        let pairs: Vec<(u32, u32)> = (0..50u32)
            .flat_map(|u| (0..(u % 7 + 1)).map(move |k| (u, (u * 3 + k * 5) % 40)))
            .collect();
        let train = UserItems::from_pairs(51, &pairs);
        let sampler = Sampler::new(&train, 40, 9);
        let draw = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![Sample::default(); 1000];
            pool.install(|| sampler.fill(3, 512, &mut out));
            out
        };
        let one = draw(1);
        assert_eq!(one, draw(2));
        for s in &one {
            assert!(train.contains(s.user as usize, s.pos));
            assert!(!train.contains(s.user as usize, s.neg));
            assert_ne!(s.user, 50, "user 50 has no items");
        }
        let mut other = vec![Sample::default(); 1000];
        sampler.fill(4, 512, &mut other);
        assert_ne!(one, other, "epochs draw different triples");
    }

    #[test]
    fn hardest_of_candidates_keeps_the_highest_score() {
        let pairs: Vec<(u32, u32)> = (0..30u32)
            .flat_map(|u| (0..3).map(move |k| (u, (u + k * 11) % 60)))
            .collect();
        let train = UserItems::from_pairs(30, &pairs);
        let sampler = Sampler::new(&train, 60, 5);
        let mut plain = vec![Sample::default(); 512];
        sampler.fill(2, 256, &mut plain);
        let mut one = vec![Sample::default(); 512];
        sampler.fill_hardest(2, 256, &mut one, 1, |_, _| unreachable!());
        assert_eq!(plain, one, "one candidate is plain sampling");
        // Scoring by item number: the kept negative is the largest of four, never a training
        // item. The first triple of each chunk starts as plain sampling's (later ones differ:
        // the extra candidates come from the same stream), so its negative is at least the
        // plain one.
        let mut hard = vec![Sample::default(); 512];
        sampler.fill_hardest(2, 256, &mut hard, 4, |_, i| i as f32);
        for k in [0, CHUNK] {
            assert_eq!((hard[k].user, hard[k].pos), (plain[k].user, plain[k].pos));
            assert!(hard[k].neg >= plain[k].neg);
        }
        for h in &hard {
            assert!(train.contains(h.user as usize, h.pos));
            assert!(!train.contains(h.user as usize, h.neg));
        }
        let mean = |v: &[Sample]| v.iter().map(|s| f64::from(s.neg)).sum::<f64>() / 512.0;
        assert!(mean(&hard) > mean(&plain) + 10.0);
    }

    #[test]
    fn a_user_with_all_but_one_item_gets_that_one() {
        let pairs: Vec<(u32, u32)> = (0..99u32).map(|i| (0, i)).collect();
        let train = UserItems::from_pairs(1, &pairs);
        let sampler = Sampler::new(&train, 100, 1);
        let mut out = vec![Sample::default(); 300];
        sampler.fill(0, 0, &mut out);
        assert!(out.iter().all(|s| s.neg == 99));
    }
}
