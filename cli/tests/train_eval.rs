//! Training and evaluation from the command line: `eval` on the hand-made NumPy case (the
//! trainer crate's `tests/fixtures/eval`), `train` and `eval` on small logs, and clear errors for
//! malformed input.

use std::path::{Path, PathBuf};
use std::process::Command;

use pocketrec::{Model, ValueEncoding};
use pocketrec_export::export::{ExportOptions, Source, export};
use pocketrec_train::synthetic::{SyntheticSpec, generate, to_lightgcn_text};
use serde_json::Value;

fn case(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../train/tests/fixtures/eval"
    ))
    .join(name)
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
    assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["k"], 5);
    assert_eq!(v["users"], 6);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case("expected.json")).unwrap()).unwrap();
    let recall = v["recall@5"].as_f64().unwrap();
    assert!((recall - expected["5"]["recall"].as_f64().unwrap()).abs() < 5e-5);
    assert!(v["ndcg@5"].as_f64().is_some());
}

/// Fails the test with the command's stderr unless it exited with status 0.
fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// `pocketrec train --train TRAIN --test TEST -o OUTPUT`, for more arguments.
fn train_command(train: &Path, test: &Path, output: &Path) -> Command {
    let mut command = pocketrec();
    command
        .arg("train")
        .arg("--train")
        .arg(train)
        .arg("--test")
        .arg(test)
        .arg("-o")
        .arg(output);
    command
}

#[test]
fn train_cli_writes_a_sparse_model_far_better_than_random() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = small_split(dir.path());
    let output = dir.path().join("m.prec");
    let out = train_command(&train_path, &test_path, &output)
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
    assert_success(&out);
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

/// Runs `pocketrec` with `args`, expecting success; returns stdout parsed as JSON.
fn json_of(args: &[&std::ffi::OsStr]) -> Value {
    let out = pocketrec().args(args).output().unwrap();
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn held_out_users_are_folded_in_as_new_users_and_beat_popularity() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = small_split(dir.path());
    let output = dir.path().join("m.prec");
    let os = |s: &str| std::ffi::OsString::from(s);
    let mut args: Vec<std::ffi::OsString> = ["train", "--train"].map(os).to_vec();
    args.push(train_path.clone().into());
    args.extend(["-o"].map(os));
    args.push(output.clone().into());
    args.extend(
        [
            "--dim",
            "16",
            "--density",
            "1",
            "--epochs",
            "20",
            "--holdout-users",
            "0.2",
            "--json",
            "--quiet",
            "--threads",
            "2",
        ]
        .map(os),
    );
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    json_of(&refs);
    let model = Model::read(&output).unwrap();
    model.verify().unwrap();
    // About a fifth of the 400 users have no row, and the file says how fold-in was chosen.
    let rows = model.users().unwrap().rows();
    assert!((280..360).contains(&rows), "{rows} user rows");
    assert_eq!(model.property("fold_in.chosen_by"), Some("default"));
    let eval = |fold_in: bool| {
        let mut args: Vec<std::ffi::OsString> = vec![os("eval"), output.clone().into()];
        args.push(os("--train"));
        args.push(train_path.clone().into());
        args.push(os("--test"));
        args.push(test_path.clone().into());
        args.extend(["--json", "--quiet"].map(os));
        if fold_in {
            args.push(os("--fold-in"));
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        json_of(&refs)
    };
    let trained = eval(false);
    let folded = eval(true);
    assert_eq!(folded["fold_in"], true);
    let (r_trained, r_folded) = (
        trained["recall@20"].as_f64().unwrap(),
        folded["recall@20"].as_f64().unwrap(),
    );
    // Without fold-in the held-out users score zero as cold users; with it they are new users.
    assert!(trained["cold_users"].as_u64().unwrap() > 40);
    assert_eq!(folded["cold_users"], 0);
    assert!(
        r_folded > 0.7 * r_trained,
        "folded {r_folded} vs trained {r_trained}"
    );
    let new = &folded["new_users"];
    assert!(new["users"].as_u64().unwrap() > 40, "{new}");
    let (r_new, r_popular) = (
        new["recall@20"].as_f64().unwrap(),
        new["popularity_recall@20"].as_f64().unwrap(),
    );
    assert!(
        r_new > r_popular,
        "new users {r_new} vs popularity {r_popular}"
    );
}

#[test]
fn fold_in_settings_are_chosen_on_a_validation_file() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, _) = small_split(dir.path());
    // Carve a validation file out of the training file: each user's last item.
    let text = std::fs::read_to_string(&train_path).unwrap();
    let (mut kept, mut held) = (String::new(), String::new());
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 3 {
            kept.push_str(&fields[..fields.len() - 1].join(" "));
            held.push_str(&format!("{} {}", fields[0], fields[fields.len() - 1]));
        } else {
            kept.push_str(line);
        }
        kept.push('\n');
        held.push('\n');
    }
    let (train_v, valid) = (dir.path().join("train_v.txt"), dir.path().join("valid.txt"));
    std::fs::write(&train_v, kept).unwrap();
    std::fs::write(&valid, held).unwrap();
    let output = dir.path().join("m.prec");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_v)
        .arg("--fold-in-validation")
        .arg(&valid)
        .arg("-o")
        .arg(&output)
        .args(["--dim", "8", "--density", "1", "--epochs", "5", "--quiet"])
        .args(["--loss", "bpr"])
        .output()
        .unwrap();
    assert_success(&out);
    let model = Model::read(&output).unwrap();
    assert_eq!(model.property("fold_in.chosen_by"), Some("validation"));
    assert!(model.fold_in_params().is_ok());
    // A validation file sharing no user with the training file is an error, not a default.
    let stranger = dir.path().join("stranger.txt");
    std::fs::write(&stranger, "999999 1\n").unwrap();
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_v)
        .arg("--fold-in-validation")
        .arg(&stranger)
        .arg("-o")
        .arg(dir.path().join("x.prec"))
        .args(["--dim", "8", "--density", "1", "--epochs", "1", "--quiet"])
        .args(["--loss", "bpr"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user has both"));
    // A softmax-trained model (the default loss, BSL at τ 0.1, power 1.2) gets its softmax
    // fold-in's temperature and power chosen on the same file, from the grid around the loss's;
    // --json lists every point tried.
    let output = dir.path().join("y.prec");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_v)
        .arg("--fold-in-validation")
        .arg(&valid)
        .arg("-o")
        .arg(&output)
        .args([
            "--dim",
            "8",
            "--density",
            "1",
            "--epochs",
            "2",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let model = Model::read(&output).unwrap();
    assert_eq!(model.property("fold_in.chosen_by"), Some("validation"));
    assert_eq!(model.property("fold_in.objective"), Some("softmax"));
    let chosen = model.fold_in_softmax().unwrap().expect("a softmax fold-in");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tuning = &json["fold_in_tuning"];
    assert_eq!(tuning["objective"], "softmax");
    let grid = tuning["grid"].as_array().unwrap();
    use pocketrec_train::fold_in::{SOFTMAX_POWER_GRID, SOFTMAX_TEMPERATURE_GRID};
    assert_eq!(
        grid.len(),
        SOFTMAX_TEMPERATURE_GRID.len() * SOFTMAX_POWER_GRID.len()
    );
    let recalls: Vec<f64> = grid.iter().map(|p| p["recall"].as_f64().unwrap()).collect();
    let best = recalls.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(tuning["best"]["recall"].as_f64(), Some(best));
    // The file holds the best point's settings, on the grid around the loss's τ and power.
    let settings = &tuning["best"]["settings"];
    let as_f32 = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
    assert_eq!(as_f32(&settings["temperature"]), Some(chosen.temperature));
    assert_eq!(as_f32(&settings["power"]), Some(chosen.power));
    let on_grid = |value: f32, unit: f32, grid: &[f32]| {
        grid.iter()
            .any(|&g| (value - g * unit).abs() <= 1e-6 * unit)
    };
    assert!(on_grid(chosen.temperature, 0.1, &SOFTMAX_TEMPERATURE_GRID));
    assert!(on_grid(chosen.power, 1.2, &SOFTMAX_POWER_GRID));
    assert_eq!(
        model.property("fold_in.temperature"),
        Some(chosen.temperature.to_string().as_str())
    );
}

#[test]
fn a_softmax_trained_model_folds_in_by_its_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, _) = small_split(dir.path());
    let output = dir.path().join("m.prec");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_path)
        .arg("-o")
        .arg(&output)
        .args(["--dim", "8", "--density", "1", "--epochs", "2", "--quiet"])
        .output()
        .unwrap();
    assert_success(&out);
    let model = Model::read(&output).unwrap();
    assert_eq!(model.property("fold_in.objective"), Some("softmax"));
    // The default loss is BSL at temperature 0.1, power 1.2.
    let items = model.items().unwrap().rows();
    let want = pocketrec::SoftmaxFoldIn::for_loss(0.1, 1.2, items);
    assert_eq!(model.fold_in_softmax().unwrap(), Some(want));
    assert!(matches!(
        model.fold_in_params(),
        Err(pocketrec::Error::NoFoldIn)
    ));
    let first = model.items().unwrap().id(0).unwrap();
    let mut x = [0.0f32; 8];
    let summary = model.fold_in(&[first], &[], None, &mut x).unwrap();
    assert_eq!(summary.solver, pocketrec::Solver::Softmax);
    // inspect names the objective; recommend --items uses it.
    let inspect = pocketrec()
        .args(["inspect", "--json"])
        .arg(&output)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["fold_in"]["objective"], "softmax");
    assert_eq!(json["fold_in"]["status"], "ok");
    // A catalogue this small gets no summary: the 32-byte header alone.
    assert_eq!(want.clusters, 0);
    assert_eq!(json["fold_in"]["bytes"], 32);
    let out = pocketrec()
        .arg("recommend")
        .arg(&output)
        .args(["--items", &first.to_string(), "-k", "3"])
        .output()
        .unwrap();
    assert_success(&out);
}

#[test]
fn string_ids_of_a_log_are_stored_with_the_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.tsv");
    let mut text = String::new();
    for u in 0..20u64 {
        for k in 0..6u64 {
            text.push_str(&format!("user-{u}\tsku-{}\n", (u * 5 + k * 11) % 40));
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
        .args(["--dim", "8", "--epochs", "2", "--quiet"])
        .status()
        .unwrap();
    assert!(status.success());
    let model = Model::read(&output).unwrap();
    model.verify().unwrap();
    let id = pocketrec::string_id("sku-7");
    assert_eq!(
        model.id_str(pocketrec::Role::Item, id).unwrap(),
        Some("sku-7")
    );
    assert_eq!(
        model.find_str(pocketrec::Role::User, "user-3").unwrap(),
        pocketrec::string_id("user-3")
    );
    let out = pocketrec()
        .arg("recommend")
        .arg(&output)
        .args(["--user", "user-3", "-k", "2", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["items"][0]["item"]
            .as_str()
            .unwrap()
            .starts_with("sku-")
    );
}

#[test]
fn a_pruned_softmax_model_folds_in_with_the_sparse_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, _) = small_split(dir.path());
    let output = dir.path().join("m.prec");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_path)
        .arg("-o")
        .arg(&output)
        .args(["--dim", "8", "--density", "0.5", "--epochs", "2", "--quiet"])
        .output()
        .unwrap();
    assert_success(&out);
    let model = Model::read(&output).unwrap();
    let settings = model.fold_in_softmax().unwrap().unwrap();
    let items = model.items().unwrap().rows();
    let dense = pocketrec::SoftmaxFoldIn::for_loss(0.1, 1.2, items);
    // BSL's temperature 0.1 and power 1.2, times the sparse factors.
    assert_eq!(
        settings,
        pocketrec::SoftmaxFoldIn {
            temperature: pocketrec_train::trainer::SPARSE_FOLD_IN_TEMPERATURE * 0.1,
            power: pocketrec_train::trainer::SPARSE_FOLD_IN_POWER * 1.2,
            ..dense
        }
    );
}

#[test]
fn an_items_only_model_folds_every_user_in_as_the_full_model_would() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = small_split(dir.path());
    let train = |output: &Path, extra: &[&str]| -> Value {
        let out = train_command(&train_path, &test_path, output)
            .args([
                "--dim",
                "16",
                "--density",
                "0.5",
                "--epochs",
                "8",
                "--eval-every",
                "0",
            ])
            .args(["--json", "--quiet"])
            .args(extra)
            .output()
            .unwrap();
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let full_path = dir.path().join("full.prec");
    let items_path = dir.path().join("items.prec");
    let full = train(&full_path, &[]);
    let items_only = train(&items_path, &["--items-only"]);
    assert_eq!(full["user_rows"], "stored");
    assert_eq!(items_only["user_rows"], "folded-in");

    // The file holds the same item table and no user rows.
    let (full_model, model) = (
        Model::read(&full_path).unwrap(),
        Model::read(&items_path).unwrap(),
    );
    model.verify().unwrap();
    assert_eq!(model.users().unwrap().rows(), 0);
    assert_eq!(
        model.property("users"),
        Some(pocketrec_export::storage::USERS_FOLDED_IN)
    );
    let (a, b) = (full_model.items().unwrap(), model.items().unwrap());
    assert_eq!(a.rows(), b.rows());
    let (mut x, mut y) = (vec![0.0f32; 16], vec![0.0f32; 16]);
    for row in 0..a.rows() {
        a.decode_row(row, &mut x).unwrap();
        b.decode_row(row, &mut y).unwrap();
        assert_eq!(x, y, "item row {row}");
    }
    let saved = std::fs::metadata(&full_path).unwrap().len()
        - std::fs::metadata(&items_path).unwrap().len();
    assert!(saved > 400 * 4, "{saved} bytes saved");

    // Its evaluation folds every user in from their training items: exactly what the full
    // model gives with `eval --fold-in`, and no user is cold or new.
    let eval = |path: &Path, fold_in: bool| {
        let mut command = pocketrec();
        command
            .arg("eval")
            .arg(path)
            .arg("--train")
            .arg(&train_path)
            .arg("--test")
            .arg(&test_path)
            .args(["--json", "--quiet"]);
        if fold_in {
            command.arg("--fold-in");
        }
        command.output().unwrap()
    };
    let folded_full: Value = serde_json::from_slice(&eval(&full_path, true).stdout).unwrap();
    let summary_eval = &items_only["eval"];
    assert_eq!(summary_eval["fold_in"], true);
    assert_eq!(summary_eval["cold_users"], 0);
    assert_eq!(summary_eval["new_users"], Value::Null);
    assert_eq!(summary_eval["users"], folded_full["users"]);
    assert_eq!(summary_eval["recall@20"], folded_full["recall@20"]);
    assert!(
        summary_eval["recall@20"].as_f64().unwrap() > 0.05,
        "{summary_eval}"
    );

    // Without --fold-in there is nothing to rank by: a clear error, not zero recall.
    let out = eval(&items_path, false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no user rows") && stderr.contains("--fold-in"),
        "{stderr}"
    );

    // inspect says so; a file without users and without fold-in is refused before training.
    let inspect = pocketrec()
        .arg("inspect")
        .arg(&items_path)
        .output()
        .unwrap();
    assert_success(&inspect);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("no user rows"), "{text}");
    let out = pocketrec()
        .arg("train")
        .arg("--train")
        .arg(&train_path)
        .arg("-o")
        .arg(dir.path().join("x.prec"))
        .args(["--items-only", "--no-fold-in", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fold-in section"));
}

#[test]
fn export_items_only_writes_the_item_table_alone() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("items.prec");
    let export = |extra: &[&str]| {
        pocketrec()
            .arg("export")
            .arg("--users")
            .arg(case("users.npy"))
            .arg("--items")
            .arg(case("items.npy"))
            .arg("--item-ids")
            .arg(case("item_ids.txt"))
            .arg("-o")
            .arg(&output)
            .args(["--items-only", "--quiet"])
            .args(extra)
            .output()
            .unwrap()
    };
    assert_success(&export(&[]));
    let model = Model::read(&output).unwrap();
    model.verify().unwrap();
    assert_eq!(model.users().unwrap().rows(), 0);
    assert!(model.items().unwrap().rows() > 0);
    assert!(model.fold_in_params().is_ok());
    for refused in [&["--no-fold-in"][..], &["--user-bias", "x.npy"][..]] {
        let out = export(refused);
        assert!(!out.status.success(), "{refused:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--items-only"), "{stderr}");
    }

    // Without a user table at all: the same item rows and fold-in section.
    let alone = dir.path().join("alone.prec");
    let export_alone = |extra: &[&str], output: &Path| {
        pocketrec()
            .arg("export")
            .arg("--items")
            .arg(case("items.npy"))
            .arg("--item-ids")
            .arg(case("item_ids.txt"))
            .arg("-o")
            .arg(output)
            .arg("--quiet")
            .args(extra)
            .output()
            .unwrap()
    };
    assert_success(&export_alone(&["--items-only"], &alone));
    let without = Model::read(&alone).unwrap();
    without.verify().unwrap();
    assert_eq!(without.users().unwrap().rows(), 0);
    assert_eq!(without.users().unwrap().dim(), model.users().unwrap().dim());
    let (a, b) = (model.items().unwrap(), without.items().unwrap());
    assert_eq!(a.rows(), b.rows());
    let (mut row_a, mut row_b) = (vec![0.0f32; a.dim()], vec![0.0f32; b.dim()]);
    for r in 0..a.rows() {
        assert_eq!(a.id(r).unwrap(), b.id(r).unwrap());
        a.decode_row(r, &mut row_a).unwrap();
        b.decode_row(r, &mut row_b).unwrap();
        assert_eq!(row_a, row_b, "item row {r}");
    }
    assert_eq!(
        model.fold_in_params().unwrap(),
        without.fold_in_params().unwrap()
    );
    assert_eq!(
        without.property("source.users"),
        Some("none: the item table alone, users folded in")
    );
    // Refused without --items-only, and with user ids but no user table; nothing written.
    let refused = dir.path().join("refused.prec");
    let out = export_alone(&[], &refused);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--items alone with --items-only"),
        "{stderr}"
    );
    let ids = case("item_ids.txt");
    let out = export_alone(
        &["--items-only", "--user-ids", ids.to_str().unwrap()],
        &refused,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--user-ids names the rows of a user table"),
        "{stderr}"
    );
    assert!(!refused.exists());
}
