//! Checkpoints and incremental training through the public API, on the drifting synthetic log:
//! a checkpoint reads back to the same bytes; a resume with no new data leaves the tables
//! identical; new ids get rows at the end; rows without new interactions stay bit for bit; the
//! sparse model keeps its budget; the same checkpoint and data give the same tables on any
//! number of threads; damaged checkpoints are refused, never a panic; replay adds a seeded
//! sample of earlier interactions.

use std::collections::HashSet;
use std::path::Path;

use pocketrec_train::checkpoint::{self, Checkpoint};
use pocketrec_train::data::{Dataset, UserItems, parse_dataset};
use pocketrec_train::drift::{DriftSpec, generate_drifting, to_log_text};
use pocketrec_train::incremental::{ResumeOptions, align, checkpoint_of, resume, with_replay};
use pocketrec_train::loss::{LossConfig, LossKind};
use pocketrec_train::trainer::FoldInObjective;
use pocketrec_train::{TrainOptions, Trained, budget, train};

/// Period `p`'s interactions (0-based) of a small drifting log.
fn period(p: u32) -> Dataset {
    let log = generate_drifting(&DriftSpec {
        periods: 3,
        users: 200,
        items: 150,
        ..DriftSpec::default()
    });
    let part: Vec<_> = log.into_iter().filter(|e| e.period == p).collect();
    parse_dataset(
        (Path::new("period.tsv"), &to_log_text(&part)),
        None,
        &Default::default(),
    )
    .unwrap()
}

fn first_model(density: f64) -> (Trained, Checkpoint) {
    let data = period(0);
    let loss = LossConfig {
        negatives: 32,
        ..LossConfig::defaults(LossKind::Bsl)
    };
    let options = TrainOptions {
        dim: 8,
        epochs: 3,
        threads: 1,
        ..TrainOptions::for_loss(density, loss)
    };
    let trained = train(&data, &options, &mut |_| {}).unwrap();
    let ckpt = checkpoint_of(&trained, data.train.len()).unwrap();
    (trained, ckpt)
}

fn options(threads: usize) -> ResumeOptions {
    ResumeOptions {
        epochs: 2,
        threads,
        ..ResumeOptions::default()
    }
}

#[test]
fn checkpoints_read_back_to_the_same_bytes_and_damage_is_refused() {
    for density in [1.0, 0.25] {
        let (_, ckpt) = first_model(density);
        let bytes = checkpoint::to_bytes(&ckpt).unwrap();
        let back = checkpoint::from_bytes(Path::new("c.safetensors"), &bytes).unwrap();
        assert_eq!(
            checkpoint::to_bytes(&back).unwrap(),
            bytes,
            "lossless, deterministic"
        );
        assert_eq!(back.master.is_some(), density < 1.0);
        let step = (bytes.len() / 97).max(1);
        for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            let e = checkpoint::from_bytes(Path::new("c.safetensors"), &bytes[..cut]);
            assert!(e.is_err(), "truncated at {cut} of {}", bytes.len());
        }
        // Every byte of the header (the metadata and the tensor table) and a sample of the
        // tensors' bytes.
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for at in (0..header).chain((header..bytes.len()).step_by(step)) {
            let mut bad = bytes.clone();
            bad[at] ^= 0xa5;
            let e = checkpoint::from_bytes(Path::new("c.safetensors"), &bad);
            assert!(
                e.is_err(),
                "byte {at} of {} changed, still read",
                bytes.len()
            );
        }
        let e = checkpoint::from_bytes(Path::new("c.safetensors"), b"not a checkpoint")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.safetensors: not a checkpoint"), "{e}");
    }
}

#[test]
fn a_resume_without_new_data_changes_nothing() {
    for density in [1.0, 0.25] {
        let (trained, ckpt) = first_model(density);
        let empty = Dataset {
            users: ckpt.users.clone(),
            items: ckpt.items.clone(),
            train: UserItems::from_pairs(ckpt.users.len(), &[]),
            test: None,
        };
        let r = resume(&ckpt, &empty, &options(1), &mut |_| {}).unwrap();
        assert!(r.trained.user_table == trained.user_table);
        assert!(r.trained.item_table == trained.item_table);
        assert_eq!(r.changes.changed_fraction(), 0.0);
        assert_eq!(r.checkpoint.info.updates, 1);
    }
}

#[test]
fn an_update_adds_rows_at_the_end_keeps_untouched_rows_and_the_budget() {
    let (trained, ckpt) = first_model(0.25);
    let next = period(1);
    let data = align(&next, &ckpt.users, &ckpt.items, Path::new("p2.tsv")).unwrap();
    let (old_users, old_items) = (ckpt.users.len(), ckpt.items.len());
    assert_eq!(&data.users.ids[..old_users], &ckpt.users.ids[..]);
    assert!(data.users.len() > old_users, "period 2 brings new users");
    assert!(data.items.len() > old_items, "and new items");
    let new_ids = &data.users.ids[old_users..];
    assert!(
        new_ids.windows(2).all(|w| w[0] < w[1]),
        "new ids sorted at the end"
    );
    assert!(new_ids.iter().all(|id| !ckpt.users.ids.contains(id)));

    let r = resume(&ckpt, &data, &options(1), &mut |_| {}).unwrap();
    let dim = 8;
    for u in 0..old_users {
        let row = |t: &[f32]| t[u * dim..(u + 1) * dim].to_vec();
        if data.train.items(u).is_empty() {
            assert!(
                row(&r.trained.user_table) == row(&trained.user_table),
                "user row {u} has no new interaction but changed"
            );
        }
    }
    let changes = r.changes;
    assert_eq!(changes.new_users, data.users.len() - old_users);
    assert!(changes.changed_users > 0 && changes.changed_users < old_users);
    assert!(changes.changed_fraction() < 1.0);
    // As for a first training, the sparse model's own time and samples; the master's time is
    // the teacher's.
    assert_eq!(r.trained.samples, 2 * data.train.len() as u64, "two epochs");
    assert!(r.trained.teacher.is_some(), "the master's record");
    // The update's files fold users in as the first model's do (the softmax fold-in of a BSL
    // model), so that devices fold in new and changing users with the updated items.
    let objective = |t: &Trained| t.fold_in.as_ref().map(|c| c.objective);
    for t in [&trained, &r.trained] {
        assert!(
            matches!(objective(t), Some(FoldInObjective::Softmax(_))),
            "{:?}",
            objective(t)
        );
    }
    // The budget of the larger tables, exactly, in the masks.
    let b = budget(data.users.len(), data.items.len(), dim, 0.25);
    let active = r.checkpoint.model.users.active_count() + r.checkpoint.model.items.active_count();
    assert_eq!(active, b);
    assert!(r.trained.nnz() <= b);
    // The next checkpoint continues: same threads or not, the same tables.
    let two = resume(&ckpt, &data, &options(2), &mut |_| {}).unwrap();
    assert!(two.trained.user_table == r.trained.user_table);
    assert!(two.trained.item_table == r.trained.item_table);
    let bytes = checkpoint::to_bytes(&r.checkpoint).unwrap();
    let back = checkpoint::from_bytes(Path::new("c2"), &bytes).unwrap();
    assert_eq!(back.users.ids, data.users.ids);
    assert_eq!(back.info.updates, 1);
}

#[test]
fn string_ids_cannot_join_a_model_with_integer_ids() {
    let (_, ckpt) = first_model(1.0);
    let other = parse_dataset(
        (Path::new("new.tsv"), "alice\t1\t1\t1700000000\n"),
        None,
        &Default::default(),
    )
    .unwrap();
    let e = align(&other, &ckpt.users, &ckpt.items, Path::new("new.tsv"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("new.tsv: user ids are strings (such as \"alice\")"),
        "{e}"
    );
}

#[test]
fn mask_updates_move_only_the_rows_with_new_interactions() {
    let (_, ckpt) = first_model(0.25);
    let data = align(&period(1), &ckpt.users, &ckpt.items, Path::new("p2.tsv")).unwrap();
    let with = |mask_fraction: f64| ResumeOptions {
        epochs: 4,
        mask_fraction,
        churn: 0.0,
        ..options(1)
    };
    let fixed = resume(&ckpt, &data, &with(0.0), &mut |_| {}).unwrap();
    let moving = resume(&ckpt, &data, &with(0.5), &mut |_| {}).unwrap();
    let dim = 8;
    let old_items = ckpt.items.len();
    let item_masks = |c: &Checkpoint| c.model.items.active.clone().unwrap();
    let (before, fixed_masks, moving_masks) = (
        item_masks(&ckpt),
        item_masks(&fixed.checkpoint),
        item_masks(&moving.checkpoint),
    );
    let mut open = vec![false; data.items.len()];
    for (_, i) in data.train.pairs() {
        open[i as usize] = true;
    }
    let mut moved = 0;
    for r in 0..old_items {
        let row = |m: &[u8]| m[r * dim..(r + 1) * dim].to_vec();
        assert_eq!(
            row(&fixed_masks),
            row(&before),
            "no churn, no mask updates: item {r}'s mask stays"
        );
        if open[r] {
            moved += usize::from(row(&moving_masks) != row(&before));
        } else {
            assert_eq!(
                row(&moving_masks),
                row(&before),
                "item {r} has no new interaction: its mask stays"
            );
        }
    }
    assert!(moved > 0, "mask updates moved no item row");
    let b = budget(data.users.len(), data.items.len(), dim, 0.25);
    let active =
        moving.checkpoint.model.users.active_count() + moving.checkpoint.model.items.active_count();
    assert_eq!(active, b, "the budget holds through the mask updates");
    let e = resume(&ckpt, &data, &with(1.5), &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("--mask-fraction must be in [0, 1], got 1.5"),
        "{e}"
    );
    for (lr_end, lr_decay_start) in [(0.0, 0.5), (1.5, 0.5), (0.1, -0.1), (0.1, f64::NAN)] {
        let options = ResumeOptions {
            lr_end,
            lr_decay_start,
            ..with(0.5)
        };
        let e = resume(&ckpt, &data, &options, &mut |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--lr-decay-start must be in [0, 1] and --lr-end in (0, 1]"),
            "{lr_end} {lr_decay_start}: {e}"
        );
    }
}

#[test]
fn a_prior_keeps_the_weights_nearer_to_the_previous_ones() {
    let (_, ckpt) = first_model(1.0);
    let data = align(&period(1), &ckpt.users, &ckpt.items, Path::new("p2.tsv")).unwrap();
    let moved = |prior_strength: f32| {
        let r = resume(
            &ckpt,
            &data,
            &ResumeOptions {
                epochs: 4,
                prior_strength,
                ..options(1)
            },
            &mut |_| {},
        )
        .unwrap();
        let before = &ckpt.model.items.w;
        let after = &r.checkpoint.model.items.w[..before.len()];
        before
            .iter()
            .zip(after)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
    };
    let (free, held) = (moved(0.0), moved(100.0));
    assert!(free > 0.0, "the update moved nothing");
    assert!(
        held < 0.5 * free,
        "a strong prior moved the item weights {held}, no prior {free}"
    );
}

#[test]
fn replay_adds_a_seeded_sample_of_earlier_interactions() {
    let (_, ckpt) = first_model(0.25);
    let old = period(0);
    let data = align(&period(1), &ckpt.users, &ckpt.items, Path::new("p2.tsv")).unwrap();
    let new = data.train.len();
    let pairs = |d: &Dataset| -> HashSet<(u64, u64)> {
        d.train
            .pairs()
            .map(|(u, i)| (d.users.ids[u as usize], d.items.ids[i as usize]))
            .collect()
    };
    let new_pairs = pairs(&data);
    // Only the users who came back (with new interactions) have their past replayed.
    let returning: HashSet<u64> = new_pairs.iter().map(|&(u, _)| u).collect();
    let every_old = pairs(&old);
    let old_pairs: HashSet<(u64, u64)> = every_old
        .iter()
        .copied()
        .filter(|(u, _)| returning.contains(u))
        .collect();
    assert!(
        old_pairs.len() < every_old.len(),
        "some users do not come back"
    );
    let p = Path::new("old.tsv");

    let all = with_replay(&data, &old, None, &ckpt, p).unwrap();
    assert_eq!(
        pairs(&all),
        &new_pairs | &old_pairs,
        "without a share: all of theirs"
    );
    assert_eq!(
        all.users, data.users,
        "no rows for users who did not come back"
    );
    assert_eq!(&all.items.ids[..data.items.len()], &data.items.ids[..]);
    // An item only the replayed log names gets a row after `data`'s when a returning user's
    // replayed interaction names it; one named only by a user who did not come back, none.
    let back = *returning.iter().next().unwrap();
    let gone = *old
        .users
        .ids
        .iter()
        .find(|u| !returning.contains(u))
        .unwrap();
    let text = format!("{back} 900001\n{gone} 900002\n");
    let extra = parse_dataset((p, &text), None, &Default::default()).unwrap();
    let more = with_replay(&data, &extra, None, &ckpt, p).unwrap();
    assert_eq!(more.users, data.users);
    assert_eq!(&more.items.ids[..data.items.len()], &data.items.ids[..]);
    assert_eq!(&more.items.ids[data.items.len()..], &[900001]);
    assert!(pairs(&more).contains(&(back, 900001)));

    // A share that draws about half of the returning users' earlier interactions.
    let share = 0.5 * old_pairs.len() as f64 / new as f64;
    let half = with_replay(&data, &old, Some(share), &ckpt, p).unwrap();
    let got = pairs(&half);
    assert!(got.is_superset(&new_pairs), "the new interactions all stay");
    let replayed = &got - &new_pairs;
    assert!(replayed.is_subset(&old_pairs));
    // `share` times as many as the new ones are drawn; a drawn pair that repeats a new one is
    // one pair.
    let drawn = (share * new as f64).round() as usize;
    assert_eq!(half.train.len(), new + replayed.len());
    assert!(replayed.len() <= drawn);
    assert!(replayed.len() + old_pairs.intersection(&new_pairs).count() >= drawn);
    assert!(
        replayed.len() < (&old_pairs - &new_pairs).len(),
        "a sample, not all"
    );
    let again = with_replay(&data, &old, Some(share), &ckpt, p).unwrap();
    assert_eq!(
        again.train, half.train,
        "the same update draws the same sample"
    );
    assert!(
        with_replay(&data, &old, Some(2.0), &ckpt, p)
            .unwrap()
            .train
            .len()
            > half.train.len()
    );
    for bad in [0.0, -1.0, f64::NAN] {
        let e = with_replay(&data, &old, Some(bad), &ckpt, p).unwrap_err();
        assert!(e.to_string().contains("--replay-share"), "{e}");
    }
}
