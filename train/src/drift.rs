//! A drifting interaction log for incremental training, its tests, the demo and the benchmarks:
//! the taste clusters of [`crate::synthetic`] over `periods` periods of time, in which
//!
//! - cluster popularity drifts (each cluster's weight takes a log-normal step every period),
//! - new users arrive (a share of the first period's users each period) and new items enter
//!   the catalogue, each in a cluster, as its most popular item for a while (within a cluster,
//!   popularity follows a Zipf law over items from the newest to the oldest),
//! - some users move to another taste cluster,
//! - a share of the known users comes back each period for a few interactions.
//!
//! Every interaction has a time inside its period; the log is deterministic for a seed.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::random::Zipf;
use crate::sample::mix;

/// Shape of a drifting log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftSpec {
    /// Periods.
    pub periods: usize,
    /// Users who arrive in the first period.
    pub users: usize,
    /// Items in the catalogue at the start.
    pub items: usize,
    /// Taste clusters.
    pub clusters: usize,
    /// New users each later period, as a share of `users`.
    pub new_user_share: f64,
    /// New items each later period, as a share of `items`.
    pub new_item_share: f64,
    /// Standard deviation of each cluster's log-popularity step per period.
    pub popularity_drift: f64,
    /// Share of known users who move to another main cluster each period.
    pub moving_share: f64,
    /// Share of known users active in a later period.
    pub returning_share: f64,
    /// Interactions of a user in the period they arrive (mean; at least 5).
    pub first_interactions: f64,
    /// Interactions of a returning user in a period (mean; at least 1).
    pub later_interactions: f64,
    /// Unix seconds of the first period's start.
    pub start: i64,
    /// Seconds a period lasts.
    pub period_seconds: i64,
    /// Random seed.
    pub seed: u64,
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            periods: 8,
            users: 3000,
            items: 2000,
            clusters: 24,
            new_user_share: 0.15,
            new_item_share: 0.08,
            popularity_drift: 0.5,
            moving_share: 0.05,
            returning_share: 0.5,
            first_interactions: 20.0,
            later_interactions: 6.0,
            start: 1_700_000_000,
            period_seconds: 7 * 86_400,
            seed: 42,
        }
    }
}

/// One interaction of a drifting log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedInteraction {
    /// User id.
    pub user: u32,
    /// Item id.
    pub item: u32,
    /// Unix seconds.
    pub time: i64,
    /// 0-based period.
    pub period: u32,
}

/// A user's state in the generator.
struct User {
    main: usize,
    second: usize,
    seen: Vec<u32>,
}

/// Heavy-tailed activity with mean about `mean`, at least `min`.
fn activity(rng: &mut impl Rng, min: usize, mean: f64) -> usize {
    let tail_mean = (mean - min as f64).max(0.0);
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    min + (tail_mean * (1.0 / u.sqrt() - 1.0))
        .round()
        .min(50.0 * mean) as usize
}

/// A draw from `weights` (not all zero).
fn weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (k, &w) in weights.iter().enumerate() {
        if x < w {
            return k;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Generates the log, in time order (ties in generation order).
pub fn generate_drifting(spec: &DriftSpec) -> Vec<TimedInteraction> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(spec.seed ^ 0x0064_7269_6674));
    let clusters = spec.clusters.max(1);
    let base = Zipf::new(clusters, 0.6);
    let mut popularity: Vec<f64> = (0..clusters).map(|c| base.probability(c)).collect();
    // Items of each cluster, newest first.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); clusters];
    let mut next_item = 0u32;
    let mut add_items = |rng: &mut ChaCha8Rng, members: &mut Vec<Vec<u32>>, n: usize, w: &[f64]| {
        for _ in 0..n {
            let c = weighted(rng, w);
            members[c].insert(0, next_item);
            next_item += 1;
        }
    };
    add_items(&mut rng, &mut members, spec.items, &popularity);
    let mut users: Vec<User> = Vec::new();
    let mut out = Vec::new();
    let mut zipfs: Vec<Option<Zipf>> = Vec::new();
    for period in 0..spec.periods.max(1) {
        if period > 0 {
            for w in &mut popularity {
                let step = spec.popularity_drift * crate::random::normal(&mut rng) as f64;
                *w *= step.exp();
            }
            let n = (spec.items as f64 * spec.new_item_share).round() as usize;
            add_items(&mut rng, &mut members, n, &popularity);
            for user in &mut users {
                if rng.random::<f64>() < spec.moving_share {
                    user.main = weighted(&mut rng, &popularity);
                }
            }
        }
        zipfs.clear();
        zipfs.extend(
            members
                .iter()
                .map(|m| (!m.is_empty()).then(|| Zipf::new(m.len(), 1.1))),
        );
        let arriving = if period == 0 {
            spec.users
        } else {
            (spec.users as f64 * spec.new_user_share).round() as usize
        };
        let known = users.len();
        for _ in 0..arriving {
            users.push(User {
                main: weighted(&mut rng, &popularity),
                second: weighted(&mut rng, &popularity),
                seen: Vec::new(),
            });
        }
        let period_start = spec.start + period as i64 * spec.period_seconds;
        let mut events = Vec::new();
        for (u, user) in users.iter_mut().enumerate() {
            let wanted = if u >= known {
                activity(&mut rng, 5, spec.first_interactions)
            } else if rng.random::<f64>() < spec.returning_share {
                activity(&mut rng, 1, spec.later_interactions)
            } else {
                0
            };
            let mut added = 0;
            let mut attempts = 0;
            while added < wanted && attempts < wanted * 20 {
                attempts += 1;
                let roll: f64 = rng.random();
                let cluster = if roll < 0.75 {
                    user.main
                } else if roll < 0.92 {
                    user.second
                } else {
                    weighted(&mut rng, &popularity)
                };
                let Some(zipf) = zipfs[cluster].as_ref() else {
                    continue;
                };
                let item = members[cluster][zipf.sample(&mut rng)];
                if user.seen.contains(&item) {
                    continue;
                }
                user.seen.push(item);
                added += 1;
                let time = period_start + rng.random_range(0..spec.period_seconds.max(1));
                events.push(TimedInteraction {
                    user: u as u32,
                    item,
                    time,
                    period: period as u32,
                });
            }
        }
        events.sort_by_key(|e| e.time);
        out.extend(events);
    }
    out
}

/// The log as text: a header, then `user<TAB>item<TAB>1<TAB>unix seconds` lines, as
/// `pocketrec split` and `train` read it.
pub fn to_log_text(log: &[TimedInteraction]) -> String {
    let mut out = String::from("user\titem\trating\ttimestamp\n");
    for e in log {
        out.push_str(&format!("{}\t{}\t1\t{}\n", e.user, e.item, e.time));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn small() -> DriftSpec {
        DriftSpec {
            periods: 6,
            users: 400,
            items: 300,
            ..DriftSpec::default()
        }
    }

    #[test]
    fn the_log_drifts_and_grows_and_is_deterministic() {
        let spec = small();
        let log = generate_drifting(&spec);
        assert_eq!(log, generate_drifting(&spec), "same seed, same log");
        assert_ne!(
            log,
            generate_drifting(&DriftSpec { seed: 7, ..spec }),
            "another seed"
        );
        assert!(log.windows(2).all(|w| w[0].time <= w[1].time), "time order");
        let mut seen_users = HashSet::new();
        let mut seen_items = HashSet::new();
        for p in 0..6u32 {
            let part: Vec<_> = log.iter().filter(|e| e.period == p).collect();
            assert!(!part.is_empty());
            let start = spec.start + i64::from(p) * spec.period_seconds;
            assert!(
                part.iter()
                    .all(|e| (start..start + spec.period_seconds).contains(&e.time))
            );
            let users: HashSet<u32> = part.iter().map(|e| e.user).collect();
            let items: HashSet<u32> = part.iter().map(|e| e.item).collect();
            if p > 0 {
                // New users (60 a period) and new items (24 a period) show up.
                assert!(users.iter().filter(|u| !seen_users.contains(*u)).count() >= 50);
                assert!(items.iter().filter(|i| !seen_items.contains(*i)).count() >= 10);
                // And known users come back.
                assert!(users.iter().filter(|u| seen_users.contains(*u)).count() >= 100);
            }
            seen_users.extend(users);
            seen_items.extend(items);
        }
        // No user meets an item twice.
        let pairs: HashSet<(u32, u32)> = log.iter().map(|e| (e.user, e.item)).collect();
        assert_eq!(pairs.len(), log.len());
    }

    #[test]
    fn popularity_moves_between_periods() {
        let log = generate_drifting(&small());
        let top = |p: u32| {
            let mut counts = std::collections::HashMap::new();
            for e in log.iter().filter(|e| e.period == p) {
                *counts.entry(e.item).or_insert(0u32) += 1;
            }
            let mut items: Vec<(u32, u32)> = counts.into_iter().collect();
            items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            items.iter().take(20).map(|x| x.0).collect::<HashSet<u32>>()
        };
        // The 20 most popular items of the last period are mostly not those of the first.
        let shared = top(0).intersection(&top(5)).count();
        assert!(shared < 10, "{shared} of the top 20 shared");
    }

    #[test]
    fn the_text_reads_back_with_its_times() {
        let log = generate_drifting(&DriftSpec {
            periods: 2,
            users: 30,
            items: 40,
            ..DriftSpec::default()
        });
        let text = to_log_text(&log);
        let timed = crate::periods::parse_timed_log(
            std::path::Path::new("drift.tsv"),
            &text,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(timed.records.len(), log.len());
        assert_eq!(timed.records[0].time, log[0].time * 1000);
    }
}
