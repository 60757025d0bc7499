//! Lottery tickets through the public API: every round holds exactly its planned number of
//! weights, the final one the budget; the same seed gives the same tables on any number of
//! threads; round 0 is the teacher of a distilled run; DST-only settings are refused.

use pocketrec_train::loss::{LossConfig, LossKind};
use pocketrec_train::lottery::round_budgets;
use pocketrec_train::synthetic::{SyntheticSpec, generate};
use pocketrec_train::{Event, LotteryConfig, Sparsify, TrainOptions, Trained, train};

fn options(threads: usize, seed: u64, distill: bool) -> TrainOptions {
    let loss = LossConfig {
        negatives: 64,
        ..LossConfig::defaults(LossKind::Bsl)
    };
    let mut o = TrainOptions {
        dim: 16,
        epochs: 4,
        seed,
        threads,
        eval_every: 4,
        sparsify: Sparsify::Lottery(LotteryConfig {
            rounds: 3,
            rewind_step: Some(3),
        }),
        ..TrainOptions::for_loss(0.1, loss)
    };
    if !distill {
        o.distill = None;
    }
    o
}

#[test]
fn every_round_holds_its_planned_weights_and_the_same_seed_gives_the_same_tables() {
    let data = generate(&SyntheticSpec {
        users: 300,
        items: 200,
        ..SyntheticSpec::default()
    });
    let planned = round_budgets(300, 200, 16, 0.1, 3);
    let mut announced = Vec::new();
    let one = train(&data, &options(1, 7, true), &mut |e| {
        if let Event::Round { round, active, .. } = e {
            announced.push((round, active));
        }
    })
    .unwrap();
    let mut expected = vec![(0, 500 * 16)];
    expected.extend(planned.iter().enumerate().map(|(r, &b)| (r + 1, b)));
    assert_eq!(announced, expected);
    let held: Vec<(usize, usize)> = one.rounds.iter().map(|r| (r.round, r.active)).collect();
    assert_eq!(held, expected, "the masks hold exactly the planned weights");
    assert!(one.nnz() <= planned[2]);
    assert!(one.nnz() as f64 > 0.99 * planned[2] as f64);
    // Round 0 taught the others: no teacher was trained apart.
    assert!(one.teacher.is_none());
    assert!(one.rounds.iter().all(|r| r.validation.is_some()));

    let tables = |t: &Trained| (t.user_table.clone(), t.item_table.clone());
    let two = train(&data, &options(2, 7, true), &mut |_| {}).unwrap();
    assert!(tables(&one) == tables(&two), "two threads, other tables");
    let again = train(&data, &options(1, 7, true), &mut |_| {}).unwrap();
    assert!(tables(&one) == tables(&again), "same seed, other tables");
    let other = train(&data, &options(1, 8, true), &mut |_| {}).unwrap();
    assert!(tables(&one) != tables(&other), "another seed, same tables");
    let plain = train(&data, &options(1, 7, false), &mut |_| {}).unwrap();
    assert!(
        tables(&one) != tables(&plain),
        "distillation changed nothing"
    );
}

#[test]
fn settings_that_belong_to_dynamic_sparse_training_are_refused() {
    let data = generate(&SyntheticSpec {
        users: 50,
        items: 40,
        ..SyntheticSpec::default()
    });
    for (change, flag) in [
        (
            (|o: &mut TrainOptions| o.start_density = 0.5) as fn(&mut TrainOptions),
            "--start-density",
        ),
        (|o| o.per_row = true, "--per-row"),
        (|o| o.row_floor = 2, "--row-floor"),
        (
            |o| {
                o.sparsify = Sparsify::Lottery(LotteryConfig {
                    rounds: 0,
                    rewind_step: None,
                })
            },
            "--rounds",
        ),
        (
            |o| {
                o.sparsify = Sparsify::Lottery(LotteryConfig {
                    rounds: 2,
                    rewind_step: Some(1_000_000),
                })
            },
            "--rewind-step",
        ),
    ] {
        let mut o = options(1, 7, false);
        change(&mut o);
        let err = train(&data, &o, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}
