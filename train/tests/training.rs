//! The trainer and the evaluation as libraries: `evaluate` against an independent NumPy
//! computation (`tests/fixtures/eval/make_eval_case.py`), training determinism whatever the
//! thread count, distillation, and the parameter budget.

use std::path::{Path, PathBuf};

use pocketrec::{Model, ValueEncoding};
use pocketrec_export::export::{ExportOptions, Source, export};
use pocketrec_train::data::ReadOptions;
use pocketrec_train::eval::{EvalOptions, evaluate};
use pocketrec_train::synthetic::{SyntheticSpec, generate};
use pocketrec_train::{TrainOptions, train};
use serde_json::Value;

fn case(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eval")).join(name)
}

/// Exports the NumPy tables of the hand-made case with their ids, as a user would.
fn export_case(dir: &Path, values: ValueEncoding) -> PathBuf {
    let output = dir.join(format!("case-{values}.prec"));
    let mut options = ExportOptions::new(
        Source::file(case("users.npy")),
        Source::file(case("items.npy")),
        &output,
    );
    options.user_ids = Some(case("user_ids.txt"));
    options.item_ids = Some(case("item_ids.txt"));
    options.values = values;
    export(&options).expect("export");
    output
}

#[test]
fn eval_agrees_with_numpy_to_four_decimals() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case("expected.json")).expect("expected.json"),
    )
    .expect("JSON");
    let dir = tempfile::tempdir().unwrap();
    let path = export_case(dir.path(), ValueEncoding::F32);
    let model = Model::read(&path).expect("model");
    for k in [3usize, 5] {
        let e = &expected[k.to_string()];
        for threads in [1, 2] {
            let report = evaluate(
                &model,
                &path,
                &EvalOptions {
                    train: case("train.txt"),
                    test: case("test.txt"),
                    k,
                    read: ReadOptions::default(),
                    threads,
                    fold_in: false,
                },
            )
            .expect("eval");
            assert_eq!(report.users as u64, e["users"].as_u64().unwrap(), "k={k}");
            assert_eq!(report.cold_users, 0);
            let recall = e["recall"].as_f64().unwrap();
            let ndcg = e["ndcg"].as_f64().unwrap();
            assert!(
                (report.recall - recall).abs() < 5e-5,
                "k={k}: recall {} vs numpy {recall}",
                report.recall
            );
            assert!(
                (report.ndcg - ndcg).abs() < 5e-5,
                "k={k}: ndcg {} vs numpy {ndcg}",
                report.ndcg
            );
        }
    }
}

#[test]
fn training_is_deterministic_for_a_seed_whatever_the_threads() {
    let d = generate(&SyntheticSpec {
        users: 300,
        items: 200,
        ..SyntheticSpec::default()
    });
    let run = |threads, seed| {
        let options = TrainOptions {
            dim: 16,
            density: 0.2,
            epochs: 4,
            seed,
            threads,
            ..TrainOptions::default()
        };
        let t = train(&d, &options, &mut |_| {}).unwrap();
        (t.user_table, t.item_table)
    };
    let one = run(1, 7);
    assert!(one == run(1, 7), "same seed, same tables");
    assert!(one == run(2, 7), "same tables on two threads");
    assert!(one != run(1, 8), "another seed, other tables");
}

#[test]
fn distillation_trains_the_dense_teacher_of_the_seed_and_stays_deterministic() {
    let d = generate(&SyntheticSpec {
        users: 300,
        items: 200,
        ..SyntheticSpec::default()
    });
    let distill = pocketrec_train::model::DistillConfig::default();
    let run = |threads, distill| {
        let options = TrainOptions {
            dim: 16,
            density: 0.2,
            epochs: 3,
            seed: 7,
            threads,
            distill,
            ..TrainOptions::default()
        };
        train(&d, &options, &mut |_| {}).unwrap()
    };
    let one = run(1, Some(distill));
    let two = run(2, Some(distill));
    assert!(one.user_table == two.user_table && one.item_table == two.item_table);
    let plain = run(1, None);
    assert!(plain.teacher.is_none());
    assert!(
        one.item_table != plain.item_table,
        "the teacher changes the steps"
    );
    // The teacher is the run `--density 1.0` with the same flags makes.
    let teacher = one.teacher.expect("teacher record");
    assert_eq!(teacher.options.density, 1.0);
    let bpr = pocketrec_train::loss::LossConfig::BPR;
    assert_eq!(teacher.options.step, TrainOptions::for_loss(1.0, bpr).step);
    assert_eq!((teacher.options.epochs, teacher.options.seed), (3, 7));
    assert_eq!(teacher.options.distill, None);
    // Distilling into a dense model is refused with a clear message.
    let err = train(
        &d,
        &TrainOptions {
            density: 1.0,
            distill: Some(distill),
            ..TrainOptions::default()
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("distillation"), "{err}");
}

#[test]
fn sparse_training_keeps_the_budget_and_dense_training_uses_the_same_code() {
    let d = generate(&SyntheticSpec {
        users: 300,
        items: 200,
        ..SyntheticSpec::default()
    });
    for (density, regrow, init) in [
        (0.1, "accumulated", "nmf"),
        (0.1, "gradient", "random"),
        (1.0, "accumulated", "nmf"),
    ] {
        let options = TrainOptions {
            dim: 32,
            density,
            epochs: 6,
            regrow: pocketrec_train::mask::Regrow::from_name(regrow).unwrap(),
            mask_init: pocketrec_train::MaskInit::from_name(init).unwrap(),
            update_interval: 5,
            ..TrainOptions::default()
        };
        let trained = train(&d, &options, &mut |_| {}).unwrap();
        let budget = pocketrec_train::budget(300, 200, 32, density);
        assert!(trained.nnz() <= budget, "{} > {budget}", trained.nnz());
        assert!(trained.nnz() as f64 > 0.95 * budget as f64, "{density}");
        assert!(trained.log.last().unwrap().loss < trained.log[0].loss);
    }
}

/// A cosine loss trains (sparse, distilled from its own dense teacher) the same tables on one
/// thread or two, writes unit rows (so the files score by cosine through inner products), keeps
/// the budget, and learns: its validation Recall@20 is 1.5 times an untrained model's (chance is 20 / 300).
#[test]
fn cosine_losses_learn_deterministically_and_write_unit_rows() {
    use pocketrec_train::loss::{LossConfig, LossKind};
    let d = generate(&SyntheticSpec {
        users: 400,
        items: 300,
        ..SyntheticSpec::default()
    });
    for kind in [LossKind::Ssm, LossKind::Bsl, LossKind::Ccl] {
        let loss = LossConfig {
            negatives: 64,
            ..LossConfig::defaults(kind)
        };
        let run = |threads, lr, density| {
            let mut options = TrainOptions {
                dim: 16,
                epochs: 6,
                seed: 7,
                threads,
                eval_every: 6,
                ..TrainOptions::for_loss(density, loss)
            };
            options.step.lr = lr;
            train(&d, &options, &mut |_| {}).unwrap()
        };
        let one = run(1, 0.02, 0.25);
        let two = run(2, 0.02, 0.25);
        assert!(
            one.user_table == two.user_table && one.item_table == two.item_table,
            "{kind:?}: threads changed the tables"
        );
        assert!(
            one.teacher.is_some(),
            "{kind:?}: sparse models are distilled"
        );
        for row in one.item_table.chunks(16).chain(one.user_table.chunks(16)) {
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                norm == 0.0 || (norm - 1.0).abs() < 1e-5,
                "{kind:?}: row norm {norm}"
            );
        }
        let budget = pocketrec_train::budget(400, 300, 16, 0.25);
        assert!(
            one.nnz() <= budget,
            "{kind:?}: {} weights over {budget}",
            one.nnz()
        );
        let recall =
            |t: &pocketrec_train::Trained| t.log.last().unwrap().validation.unwrap().recall;
        let untrained = run(1, 1e-9, 1.0);
        let trained = run(1, 0.02, 1.0);
        assert!(
            recall(&trained) > 1.5 * recall(&untrained).max(0.01),
            "{kind:?}: {} vs untrained {}",
            recall(&trained),
            recall(&untrained)
        );
    }
}
