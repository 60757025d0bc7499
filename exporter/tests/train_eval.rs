//! Training and evaluation end to end: `eval` against an independent NumPy computation
//! (`tests/fixtures/eval/make_eval_case.py`), the CLI's `train` and `eval` on small logs,
//! determinism, and clear errors for malformed input.

use std::path::{Path, PathBuf};
use std::process::Command;

use pocketrec::{Model, ValueEncoding};
use pocketrec_export::eval::{EvalOptions, evaluate};
use pocketrec_export::export::{ExportOptions, Source, export};
use pocketrec_export::train::data::ReadOptions;
use pocketrec_export::train::synthetic::{SyntheticSpec, generate, to_lightgcn_text};
use pocketrec_export::train::{TrainOptions, train};
use serde_json::Value;

fn case(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eval")).join(name)
}

fn pocketrec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pocketrec"))
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
                    progress: false,
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
fn eval_cli_prints_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let path = export_case(dir.path(), ValueEncoding::F32);
    let out = pocketrec()
        .arg("eval")
        .arg(&path)
        .arg("--train")
        .arg(case("train.txt"))
        .arg("--test")
        .arg(case("test.txt"))
        .args(["-k", "5", "--json", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["k"], 5);
    assert_eq!(v["users"], 6);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case("expected.json")).unwrap()).unwrap();
    let recall = v["recall@5"].as_f64().unwrap();
    assert!((recall - expected["5"]["recall"].as_f64().unwrap()).abs() < 5e-5);
    assert!(v["ndcg@5"].as_f64().is_some());
}

/// A small generated split written as LightGCN files.
fn small_split(dir: &Path) -> (PathBuf, PathBuf) {
    let d = generate(&SyntheticSpec {
        users: 400,
        items: 300,
        ..SyntheticSpec::default()
    });
    let train = dir.join("train.txt");
    let test = dir.join("test.txt");
    std::fs::write(&train, to_lightgcn_text(&d.train, &d.users, &d.items)).unwrap();
    std::fs::write(
        &test,
        to_lightgcn_text(d.test.as_ref().unwrap(), &d.users, &d.items),
    )
    .unwrap();
    (train, test)
}

#[test]
fn train_cli_writes_a_sparse_model_far_better_than_random() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = small_split(dir.path());
    let output = dir.path().join("m.prec");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_path)
        .arg("--test")
        .arg(&test_path)
        .arg("-o")
        .arg(&output)
        .args([
            "--dim",
            "16",
            "--density",
            "0.25",
            "--epochs",
            "15",
            "--values",
            "i8",
            "--layout",
            "columns",
            "--json",
            "--quiet",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let model = Model::read(&output).expect("written model opens");
    model.verify().expect("and verifies");
    let users = model.users().unwrap();
    let items = model.items().unwrap();
    // --layout columns: the item table as posting lists alone, evaluated through them below.
    assert!(!items.has_rows() && items.has_columns() && users.has_rows());
    assert_eq!(model.property("layout"), Some("columns"));
    assert_eq!(users.dim(), 16);
    let cells = (users.rows() + items.rows()) * 16;
    let nnz = (users.nnz() + items.nnz()) as usize;
    assert!(nnz <= cells / 4 + 1, "{nnz} non-zeros of {cells}");
    assert_eq!(
        summary["file_bytes"],
        std::fs::metadata(&output).unwrap().len()
    );
    // Random ranking of the ~276 items a user has not seen recalls about 20 / 276 = 7 % at
    // k = 20; the trained model must do at least twice as well.
    let recall = summary["eval"]["recall@20"].as_f64().expect("final eval");
    assert!(recall > 0.145, "Recall@20 {recall}");
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
    let distill = pocketrec_export::train::model::DistillConfig::default();
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
    assert_eq!(teacher.options.step, TrainOptions::for_density(1.0).step);
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
            regrow: pocketrec_export::train::mask::Regrow::from_name(regrow).unwrap(),
            mask_init: pocketrec_export::train::MaskInit::from_name(init).unwrap(),
            update_interval: 5,
            ..TrainOptions::default()
        };
        let trained = train(&d, &options, &mut |_| {}).unwrap();
        let budget = pocketrec_export::train::budget(300, 200, 32, density);
        assert!(trained.nnz() <= budget, "{} > {budget}", trained.nnz());
        assert!(trained.nnz() as f64 > 0.95 * budget as f64, "{density}");
        assert!(trained.log.last().unwrap().loss < trained.log[0].loss);
    }
}

#[test]
fn malformed_lines_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "1\t2\t5\n1\t3\t4\n2\tx\tgreat\n").unwrap();
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&bad)
        .arg("-o")
        .arg(dir.path().join("m.prec"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3: rating \"great\" is not a number",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert!(!dir.path().join("m.prec").exists());
}

#[test]
fn eval_refuses_ids_of_the_wrong_kind_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = export_case(dir.path(), ValueEncoding::F16);
    let test = dir.path().join("test.txt");
    std::fs::write(&test, "100 28\nbob 7\n").unwrap();
    let out = pocketrec()
        .arg("eval")
        .arg(&path)
        .arg("--train")
        .arg(case("train.txt"))
        .arg("--test")
        .arg(&test)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test.txt:2: user id \"bob\" is not an integer"),
        "{err}"
    );
}

#[test]
fn interaction_logs_keep_original_ids_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("u.data");
    // MovieLens-style: user item rating timestamp, tab separated, sparse ids.
    let mut text = String::new();
    for u in 0..30u64 {
        for k in 0..8u64 {
            let item = 1000 + (u * 7 + k * 13) % 50;
            text.push_str(&format!("{}\t{item}\t{}\t88125{k}\n", 500 + u, 1 + k % 5));
        }
    }
    std::fs::write(&log, text).unwrap();
    let output = dir.path().join("m.prec");
    let status = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&log)
        .arg("-o")
        .arg(&output)
        .args([
            "--dim",
            "8",
            "--epochs",
            "2",
            "--quiet",
            "--min-rating",
            "2",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let model = Model::read(&output).unwrap();
    let users = model.users().unwrap();
    assert_eq!(users.rows(), 30);
    assert_eq!(users.id(0).unwrap(), 500);
    assert!(model.items().unwrap().find(1000).is_ok());
}
