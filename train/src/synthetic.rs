//! A built-in interaction set with the structure of real logs, for the demo and tests: users
//! and items belong to latent taste clusters, item popularity follows a Zipf law inside each
//! cluster, user activity is heavy-tailed (a few heavy users, many light ones, at least
//! `min_per_user` each), and a random 20 % of each user's interactions is held out as the test
//! split, the way the LightGCN splits were made.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::random::Zipf;

use crate::data::{Dataset, IdSpace, UserItems};
use crate::sample::mix;

/// Shape of the generated set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Taste clusters.
    pub clusters: usize,
    /// Fewest interactions per user (before the split).
    pub min_per_user: usize,
    /// Mean interactions per user (before the split).
    pub mean_per_user: f64,
    /// Share of each user's interactions held out for testing.
    pub test_fraction: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            users: 6000,
            items: 4000,
            clusters: 24,
            min_per_user: 10,
            mean_per_user: 30.0,
            test_fraction: 0.2,
            seed: 42,
        }
    }
}

/// A user's activity: `min + Pareto-like tail`, mean about `mean`.
fn activity(rng: &mut impl Rng, min: usize, mean: f64, cap: usize) -> usize {
    // Pareto with shape 2 has mean 2 x_m; scaled so that min + tail has the requested mean.
    let tail_mean = (mean - min as f64).max(0.0);
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let pareto = 1.0 / u.sqrt() - 1.0; // shape 2, scale 1, shifted to start at 0: mean 1
    (min + (tail_mean * pareto).round() as usize).min(cap)
}

/// Generates the interaction set and its split; ids are row numbers.
pub fn generate(spec: &SyntheticSpec) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(spec.seed ^ 0x7379_6e74));
    let clusters = spec.clusters.max(1);
    let cluster_size = Zipf::new(clusters, 0.6);
    // Items: a cluster each; popularity ranks inside the cluster follow a random order.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); clusters];
    for item in 0..spec.items as u32 {
        members[cluster_size.sample(&mut rng)].push(item);
    }
    for list in &mut members {
        for k in (1..list.len()).rev() {
            let j = rng.random_range(0..=k);
            list.swap(k, j);
        }
    }
    let within: Vec<Option<Zipf>> = members
        .iter()
        .map(|m| (!m.is_empty()).then(|| Zipf::new(m.len(), 1.2)))
        .collect();
    let global = Zipf::new(spec.items.max(1), 1.0);

    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut chosen: Vec<u32> = Vec::new();
    for user in 0..spec.users as u32 {
        let main = cluster_size.sample(&mut rng);
        let second = cluster_size.sample(&mut rng);
        let wanted = activity(
            &mut rng,
            spec.min_per_user,
            spec.mean_per_user,
            spec.items / 2,
        );
        chosen.clear();
        let mut attempts = 0;
        while chosen.len() < wanted && attempts < wanted * 20 {
            attempts += 1;
            let roll: f64 = rng.random();
            let cluster = if roll < 0.7 {
                main
            } else if roll < 0.9 {
                second
            } else {
                usize::MAX
            };
            let item = match within.get(cluster).and_then(Option::as_ref) {
                Some(z) => members[cluster][z.sample(&mut rng)],
                None => global.sample(&mut rng) as u32,
            };
            if !chosen.contains(&item) {
                chosen.push(item);
            }
        }
        for k in (1..chosen.len()).rev() {
            let j = rng.random_range(0..=k);
            chosen.swap(k, j);
        }
        let held = ((chosen.len() as f64) * spec.test_fraction).round() as usize;
        let held = held.min(chosen.len().saturating_sub(1));
        for (k, &item) in chosen.iter().enumerate() {
            if k < held {
                test.push((user, item));
            } else {
                train.push((user, item));
            }
        }
    }
    let ids = |n: usize| IdSpace {
        ids: (0..n as u64).collect(),
        kind: pocketrec::IdKind::Integer,
        strings: None,
    };
    Dataset {
        users: ids(spec.users),
        items: ids(spec.items),
        train: UserItems::from_pairs(spec.users, &train),
        test: Some(UserItems::from_pairs(spec.users, &test)),
    }
}

/// Writes per-user lists in the LightGCN split format (`user item item ...`).
pub fn to_lightgcn_text(lists: &UserItems, users: &IdSpace, items: &IdSpace) -> String {
    let mut out = String::new();
    for u in 0..lists.users() {
        let row = lists.items(u);
        if row.is_empty() {
            continue;
        }
        out.push_str(&users.ids[u].to_string());
        for &i in row {
            out.push(' ');
            out.push_str(&items.ids[i as usize].to_string());
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_has_the_intended_shape() {
        let spec = SyntheticSpec {
            users: 1000,
            items: 2000,
            ..SyntheticSpec::default()
        };
        let d = generate(&spec);
        let test = d.test.as_ref().unwrap();
        let total = d.train.len() + test.len();
        let share = test.len() as f64 / total as f64;
        assert!((0.17..0.23).contains(&share), "{share}");
        for u in 0..1000 {
            assert!(d.train.items(u).len() + test.items(u).len() >= spec.min_per_user);
            assert!(test.items(u).iter().all(|&i| !d.train.contains(u, i)));
        }
        // Popularity skew: the top 10 % of items hold far more than 10 % of interactions.
        let mut deg = d.train.item_degrees(2000);
        deg.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = deg[..200].iter().sum();
        assert!(f64::from(top) > 0.35 * d.train.len() as f64);
        assert_eq!(generate(&spec).train, d.train, "deterministic");
    }

    #[test]
    fn lightgcn_text_round_trips() {
        let d = generate(&SyntheticSpec {
            users: 50,
            items: 40,
            ..SyntheticSpec::default()
        });
        let text = to_lightgcn_text(&d.train, &d.users, &d.items);
        let back = crate::data::parse_dataset(
            (std::path::Path::new("t.txt"), &text),
            None,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(back.train.len(), d.train.len());
    }
}
