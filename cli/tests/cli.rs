//! The `pocketrec` binary as a user meets it: exit codes, messages, JSON output, atomic and
//! deterministic writes. Bad input must give a message naming the file (and tensor, row, line)
//! and a non-zero exit, never a Rust panic message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pocketrec::{Model, Recommendation};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../exporter/tests/fixtures")
        .join(name)
}

fn pocketrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocketrec"))
        .args(args)
        .output()
        .expect("run pocketrec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must fail; returns its stderr after checking it is a clean message.
fn fails(args: &[&str]) -> String {
    let out = pocketrec(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
    stderr
}

fn succeeds(args: &[&str]) -> String {
    let out = pocketrec(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pocketrec inspect PATH --json`, parsed.
fn inspect_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&succeeds(&["inspect", path_str(path), "--json"])).unwrap()
}

/// The format version `inspect --json` gives: 1.7 when a table stores bitmap rows in blocks
/// (the default for bitmap rows), else `otherwise`.
fn version_with_blocks(json: &serde_json::Value, otherwise: &str) -> String {
    let tables = json["tables"].as_array().unwrap();
    if tables.iter().any(|t| t["index"] == "bitmap-blocks") {
        "1.7".to_string()
    } else {
        otherwise.to_string()
    }
}

/// Checks that the model at `path` verifies, and returns user 1's top-4 as JSON.
fn verified_top4(path: &Path) -> String {
    assert!(pocketrec(&["verify", path_str(path)]).status.success());
    succeeds(&[
        "recommend",
        path_str(path),
        "--user",
        "1",
        "-k",
        "4",
        "--json",
    ])
}

fn export_model(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let model = fixture("model.safetensors");
    let mut args = vec!["export", path_str(&model), "-o", path_str(&out), "--quiet"];
    args.extend_from_slice(extra);
    succeeds(&args);
    out
}

#[test]
fn export_inspect_verify_recommend() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = export_model(dir.path(), "m.prec", &["--values", "f16"]);

    let json: serde_json::Value =
        serde_json::from_str(&succeeds(&["inspect", path_str(&model_path), "--json"])).unwrap();
    assert_eq!(json["tables"][0]["role"], "user");
    assert_eq!(json["tables"][0]["rows"], 5);
    assert_eq!(json["tables"][1]["rows"], 6);
    assert_eq!(json["tables"][1]["dim"], 4);
    assert_eq!(json["tables"][1]["values"], "f16");
    assert_eq!(
        json["file_bytes"].as_u64().unwrap(),
        std::fs::metadata(&model_path).unwrap().len()
    );
    let inspect = succeeds(&["inspect", path_str(&model_path)]);
    assert!(
        inspect.contains("item table 'item_embedding': 6 rows x 4 dims"),
        "{inspect}"
    );

    let verify = pocketrec(&["verify", path_str(&model_path)]);
    assert!(verify.status.success());
    assert!(text(&verify.stdout).starts_with("OK "));

    // recommend --json agrees with the runtime called directly.
    let out = succeeds(&[
        "recommend",
        path_str(&model_path),
        "--user",
        "2",
        "-k",
        "3",
        "--exclude",
        "0,5",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let model = Model::read(&model_path).unwrap();
    let mut want = [Recommendation::default(); 3];
    let n = model.recommend(2, 3, &[0, 5], &mut want).unwrap();
    assert_eq!(json["user"], 2);
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), n);
    for (got, want) in items.iter().zip(&want[..n]) {
        assert_eq!(got["item"].as_u64().unwrap(), want.id);
        // JSON carries the f32 in its shortest round-trip form: exact after parsing back.
        assert_eq!(got["score"].as_f64().unwrap() as f32, want.score);
        assert!(want.id != 0 && want.id != 5);
    }
}

/// `export --values i4`: the file verifies, `inspect` names the encoding and the format
/// minor 1.6, every item keeps its value (int4 has no level 0), `recommend` answers; sliced
/// rows refuse int4 values with a clear message.
#[test]
fn export_values_i4() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = export_model(dir.path(), "m.prec", &["--values", "i4"]);
    let json: serde_json::Value =
        serde_json::from_str(&succeeds(&["inspect", path_str(&model_path), "--json"])).unwrap();
    assert_eq!(json["tables"][1]["values"], "i4", "{json}");
    let f32_path = export_model(dir.path(), "f32.prec", &[]);
    let f32_json: serde_json::Value =
        serde_json::from_str(&succeeds(&["inspect", path_str(&f32_path), "--json"])).unwrap();
    assert_eq!(json["tables"][1]["nnz"], f32_json["tables"][1]["nnz"]);
    let model = Model::read(&model_path).unwrap();
    assert_eq!(
        version_with_blocks(&json, "1.6"),
        format!("1.{}", model.format_minor())
    );
    assert!(text(&pocketrec(&["verify", path_str(&model_path)]).stdout).starts_with("OK "));
    succeeds(&["recommend", path_str(&model_path), "--user", "2", "-k", "3"]);
    let out = dir.path().join("sliced.prec");
    let model = fixture("model.safetensors");
    let stderr = fails(&[
        "export",
        path_str(&model),
        "-o",
        path_str(&out),
        "--quiet",
        "--values",
        "i4",
        "--layout",
        "rows",
        "--sliced-rows",
    ]);
    assert!(stderr.contains("sliced rows do not take int4"), "{stderr}");
    assert!(!out.exists());
    let stderr = fails(&[
        "export",
        path_str(&model),
        "-o",
        path_str(&out),
        "--values",
        "i3",
    ]);
    assert!(stderr.contains("f32, f16, bf16, i8, i4"), "{stderr}");
}

#[test]
fn users_file_gives_one_json_line_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = export_model(dir.path(), "m.prec", &[]);
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "0\n3\n\n4\n").unwrap();
    let out = succeeds(&[
        "recommend",
        path_str(&model_path),
        "--users-file",
        path_str(&users),
        "-k",
        "2",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["user"], 3);
    assert_eq!(lines[2]["items"].as_array().unwrap().len(), 2);

    std::fs::write(&users, "0\n99\n").unwrap();
    let err = fails(&[
        "recommend",
        path_str(&model_path),
        "--users-file",
        path_str(&users),
    ]);
    assert!(
        err.contains("users.txt:2") && err.contains("no user with id 99"),
        "{err}"
    );
}

#[test]
fn ids_biases_and_string_ids() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("user_ids.txt");
    let items = dir.path().join("item_ids.txt");
    std::fs::write(&users, "alice\nbob\ncarol\ndave\nerin\n").unwrap();
    std::fs::write(&items, "100\n200\n300\n400\n500\n600\n").unwrap();
    let bias = fixture("bias.txt"); // six numbers, with comments and blank lines
    let model_path = export_model(
        dir.path(),
        "m.prec",
        &[
            "--user-ids",
            path_str(&users),
            "--item-ids",
            path_str(&items),
            "--item-bias",
            path_str(&bias),
        ],
    );
    let model = Model::read(&model_path).unwrap();
    let table = model.items().unwrap();
    assert_eq!(table.bias(table.find(400).unwrap()).unwrap(), 3.0);
    let out = succeeds(&[
        "recommend",
        path_str(&model_path),
        "--user",
        "carol",
        "-k",
        "6",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["user"], "carol");
    let mut ids: Vec<u64> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![100, 200, 300, 400, 500, 600]);
    let err = fails(&["recommend", path_str(&model_path), "--user", "mallory"]);
    assert!(err.contains("no user with id"), "{err}");
}

#[test]
fn bad_values_name_file_tensor_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.prec");
    let nan = fixture("nan.npy");
    let ok = fixture("dense_f32.npy");
    let err = fails(&[
        "export",
        "--users",
        path_str(&nan),
        "--items",
        path_str(&ok),
        "-o",
        path_str(&out),
    ]);
    assert!(
        err.contains("nan.npy") && err.contains("row 2") && err.contains("column 3"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may be written on error");
}

#[test]
fn shape_mismatch_missing_tensor_dtype_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.prec");
    let o = path_str(&out);
    // 4 columns against 7.
    let err = fails(&[
        "export",
        "--users",
        path_str(&fixture("dense_f32.npy")),
        "--items",
        path_str(&fixture("one_row.npy")),
        "-o",
        o,
    ]);
    assert!(
        err.contains("one_row.npy") && err.contains("columns"),
        "{err}"
    );
    // A tensor that is not there: the message lists those that are.
    let err = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "--user-tensor",
        "nope",
        "-o",
        o,
    ]);
    assert!(
        err.contains("nope") && err.contains("user_embedding") && err.contains("item_embedding"),
        "{err}"
    );
    // An integer table.
    let err = fails(&[
        "export",
        "--users",
        path_str(&fixture("int32.npy")),
        "--items",
        path_str(&fixture("dense_f32.npy")),
        "-o",
        o,
    ]);
    assert!(err.contains("int32.npy") && err.contains("dtype"), "{err}");
    // A file that does not exist.
    let err = fails(&[
        "export",
        "--users",
        "/no/such/users.npy",
        "--items",
        path_str(&fixture("dense_f32.npy")),
        "-o",
        o,
    ]);
    assert!(err.contains("/no/such/users.npy"), "{err}");
    // Ids: one line short, then a duplicate.
    let ids = dir.path().join("ids.txt");
    std::fs::write(&ids, "1\n2\n3\n4\n").unwrap();
    let model = fixture("model.safetensors");
    let err = fails(&[
        "export",
        path_str(&model),
        "--user-ids",
        path_str(&ids),
        "-o",
        o,
    ]);
    assert!(
        err.contains("ids.txt") && err.contains("4 entries") && err.contains("5 rows"),
        "{err}"
    );
    std::fs::write(&ids, "1\n2\n3\n2\n5\n").unwrap();
    let err = fails(&[
        "export",
        path_str(&model),
        "--user-ids",
        path_str(&ids),
        "-o",
        o,
    ]);
    assert!(
        err.contains("ids.txt:4") && err.contains("duplicate id 2"),
        "{err}"
    );
    assert!(!out.exists());
    // Argument errors are clap's usage errors (exit status 2).
    let bad = pocketrec(&["export", path_str(&model), "-o", o, "--values", "f8"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("f8"));
}

#[test]
fn writes_are_atomic_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = export_model(dir.path(), "a.prec", &["--values", "i8"]);
    let b = export_model(dir.path(), "b.prec", &["--values", "i8"]);
    // Same input, same bytes, apart from nothing: the output path is not recorded.
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A failed export leaves the existing file as it was, and no temporary file behind.
    let before = std::fs::read(&a).unwrap();
    fails(&[
        "export",
        "--users",
        path_str(&fixture("nan.npy")),
        "--items",
        path_str(&fixture("dense_f32.npy")),
        "-o",
        path_str(&a),
    ]);
    assert_eq!(std::fs::read(&a).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn verify_exit_status_is_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = export_model(dir.path(), "m.prec", &[]);
    let mut bytes = std::fs::read(&model_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let bad = dir.path().join("bad.prec");
    std::fs::write(&bad, &bytes).unwrap();
    let out = pocketrec(&["verify", path_str(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("INVALID"),
        "{}",
        text(&out.stdout)
    );
    // Damage the header: open itself fails, still verdict 1.
    bytes[13] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();
    assert_eq!(
        pocketrec(&["verify", path_str(&bad)]).status.code(),
        Some(1)
    );
    // Unreadable: 2.
    let out = pocketrec(&["verify", "/no/such/model.prec"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/no/such/model.prec"));
}

#[test]
fn pruning_keeps_the_requested_density() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = export_model(dir.path(), "m.prec", &["--prune-density", "0.5"]);
    let json: serde_json::Value =
        serde_json::from_str(&succeeds(&["inspect", path_str(&model_path), "--json"])).unwrap();
    // 5 x 4 users -> 10 kept; 6 x 4 items -> 12 kept (fewer if the input had zeros).
    assert!(json["tables"][0]["nnz"].as_u64().unwrap() <= 10);
    assert!(json["tables"][1]["nnz"].as_u64().unwrap() <= 12);
    assert_eq!(json["properties"]["pruned_to_density"], "0.5");
    let err = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "-o",
        path_str(&model_path),
        "--prune-density",
        "1.5",
    ]);
    assert!(err.contains("--prune-density"), "{err}");
}

#[test]
fn every_layout_exports_verifies_and_recommends_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    let mut sizes = Vec::new();
    for layout in ["rows", "both", "columns"] {
        let name = format!("{layout}.prec");
        let path = export_model(dir.path(), &name, &["--layout", layout]);
        let json = inspect_json(&path);
        assert_eq!(json["tables"][1]["layout"], layout);
        assert_eq!(
            json["tables"][0]["layout"], "rows",
            "the user table keeps its rows"
        );
        let minor = if layout == "columns" { "1.2" } else { "1.1" };
        assert_eq!(json["format_version"], version_with_blocks(&json, minor));
        let bytes = &json["tables"][1]["bytes"];
        assert_eq!(bytes["data"].as_u64().unwrap() > 0, layout != "columns");
        assert_eq!(bytes["columns"].as_u64().unwrap() > 0, layout != "rows");
        sizes.push(json["file_bytes"].as_u64().unwrap());
        // f32 values: every path gives the exact dense scores, so the answers agree.
        answers.push(verified_top4(&path));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert!(sizes[2] < sizes[1], "columns alone {sizes:?}");
    let bad = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "-o",
        path_str(&dir.path().join("x.prec")),
        "--layout",
        "diagonal",
    ]);
    assert!(bad.contains("rows, both, columns"), "{bad}");
}

/// `--list-rows bitmap` writes format 1.3 posting lists that answer exactly as the u16 ones
/// (f32 values: the same additions in the same order) in a smaller file; `inspect` says which.
#[test]
fn bitmap_posting_lists_answer_as_u16_lists_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    let mut column_bytes = Vec::new();
    for (list_rows, minor) in [("u16", "1.2"), ("bitmap", "1.3")] {
        let name = format!("{list_rows}.prec");
        let path = export_model(
            dir.path(),
            &name,
            &["--layout", "columns", "--list-rows", list_rows],
        );
        let json = inspect_json(&path);
        assert_eq!(json["format_version"], version_with_blocks(&json, minor));
        assert_eq!(json["tables"][1]["list_rows"], list_rows);
        assert_eq!(json["tables"][0]["list_rows"], serde_json::Value::Null);
        column_bytes.push(json["tables"][1]["bytes"]["columns"].as_u64().unwrap());
        let text = succeeds(&["inspect", path_str(&path)]);
        assert_eq!(
            text.contains("bitmap rows"),
            list_rows == "bitmap",
            "{text}"
        );
        answers.push(verified_top4(&path));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(column_bytes.iter().all(|&b| b > 0), "{column_bytes:?}");
    let bad = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "-o",
        path_str(&dir.path().join("x.prec")),
        "--list-rows",
        "u32",
    ]);
    assert!(bad.contains("u16, bitmap"), "{bad}");
}

/// Bitmap rows are stored in blocks by default (format 1.7: one offset per 16 rows), and with
/// `--per-row-offsets` one offset a row (format 1.3 rows, for older readers): the same row
/// data, the same answers, 4 bytes a row more.
#[test]
fn bitmap_rows_in_blocks_and_per_row_offsets_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    // f32 values at full density: both tables choose bitmap rows.
    let blocks = export_model(dir.path(), "blocks.prec", &[]);
    let per_row = export_model(dir.path(), "per-row.prec", &["--per-row-offsets"]);
    let (a, b) = (inspect_json(&blocks), inspect_json(&per_row));
    for t in 0..2 {
        assert_eq!(a["tables"][t]["index"], "bitmap-blocks", "{a}");
        assert_eq!(b["tables"][t]["index"], "bitmap", "{b}");
        assert_eq!(
            a["tables"][t]["bytes"]["data"],
            b["tables"][t]["bytes"]["data"]
        );
        let rows = a["tables"][t]["rows"].as_u64().unwrap();
        let blocks_n = rows.div_ceil(16);
        assert_eq!(
            a["tables"][t]["bytes"]["offsets"].as_u64().unwrap(),
            4 * (blocks_n + 1) + 2 * blocks_n
        );
        assert_eq!(
            b["tables"][t]["bytes"]["offsets"].as_u64().unwrap(),
            4 * (rows + 1)
        );
    }
    assert_eq!(a["format_version"], "1.7");
    assert_ne!(b["format_version"], "1.7");
    assert_eq!(verified_top4(&blocks), verified_top4(&per_row));
}

/// `--sliced-rows` writes format 1.4 sliced item rows: smaller than row records, the same
/// answers (f32 values: each row's products summed in column order either way), `inspect`
/// says so; with a column layout it is refused with a message that says why.
#[test]
fn sliced_rows_answer_as_row_records_do() {
    let dir = tempfile::tempdir().unwrap();
    let rows = export_model(dir.path(), "rows.prec", &[]);
    let sliced = export_model(dir.path(), "sliced.prec", &["--sliced-rows"]);
    let json = inspect_json(&sliced);
    assert_eq!(json["format_version"], version_with_blocks(&json, "1.4"));
    assert_eq!(json["tables"][1]["layout"], "sliced-rows");
    assert_eq!(json["tables"][1]["index"], "sliced");
    assert_eq!(
        json["tables"][0]["layout"], "rows",
        "the user table keeps its records"
    );
    assert_eq!(verified_top4(&rows), verified_top4(&sliced));
    let both = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "-o",
        path_str(&dir.path().join("x.prec")),
        "--sliced-rows",
        "--layout",
        "both",
    ]);
    assert!(both.contains("column layout"), "{both}");
    assert!(
        !dir.path().join("x.prec").exists(),
        "nothing written on error"
    );
}

/// `bench --cold --json` reports every path of a `both` file with real timings and the bytes
/// the planner counts, and how much it reads to flush the caches before each query. (One run:
/// a debug-build bench spends seconds on its bandwidth buffers.)
#[test]
fn bench_reports_each_path_cold() {
    let dir = tempfile::tempdir().unwrap();
    let path = export_model(dir.path(), "both.prec", &["--layout", "both"]);
    let args = [
        "bench",
        path_str(&path),
        "--queries",
        "3",
        "-k",
        "2",
        "--json",
        "--cold",
    ];
    let json: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    assert_eq!(json["cold"], true);
    let eviction = json["eviction_bytes"].as_u64().unwrap();
    assert!(
        (256 << 20..=8 << 30).contains(&eviction),
        "eviction {eviction}"
    );
    assert_eq!(json["queries"], 3);
    assert!(json["memory_gbps"].as_f64().unwrap() > 0.0);
    let paths: Vec<&str> = json["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["rows", "columns", "auto"]);
    for p in json["paths"].as_array().unwrap() {
        let (p50, p99) = (p["p50_us"].as_f64().unwrap(), p["p99_us"].as_f64().unwrap());
        assert!(p50 > 0.0 && p99 >= p50, "{p}");
        let floor = p["floor_memory_us"].as_f64().unwrap();
        assert!(
            p["bytes_per_query"].as_f64().unwrap() > 0.0 && floor > 0.0,
            "{p}"
        );
        let ratio = p["p50_over_memory_floor"].as_f64().unwrap();
        assert!((ratio - p50 / floor).abs() <= 1e-9 * ratio.max(1.0), "{p}");
    }
}

/// `bench --against OTHER` times the same queries on both files in turn and says how many
/// answers agree: row records and a column layout of the same f32 tables give the same sums,
/// so every answer.
#[test]
fn bench_against_another_file_of_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let rows = export_model(dir.path(), "rows.prec", &["--layout", "rows"]);
    let columns = export_model(dir.path(), "columns.prec", &["--layout", "columns"]);
    let args = [
        "bench",
        path_str(&rows),
        "--queries",
        "4",
        "-k",
        "3",
        "--json",
        "--against",
        path_str(&columns),
    ];
    let json: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    let against = &json["against"];
    assert_eq!(against["file"], path_str(&columns), "{json}");
    assert_eq!(
        against["file_bytes"].as_u64().unwrap(),
        std::fs::metadata(&columns).unwrap().len()
    );
    assert_eq!(against["same_answers"], 4, "{json}");
    for (p50, p99) in [("p50_us", "p99_us"), ("other_p50_us", "other_p99_us")] {
        let (p50, p99) = (
            against[p50].as_f64().unwrap(),
            against[p99].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p99 >= p50, "{against}");
    }
    // The text names the other file, the ratio and the answers that agree.
    let mut text_args = args.to_vec();
    text_args.retain(|&a| a != "--json");
    let text = succeeds(&text_args);
    assert!(
        text.contains("against ") && text.contains("same answers for 4 of 4"),
        "{text}"
    );
}

#[test]
fn fold_in_is_written_by_default_inspected_and_used_by_recommend_items() {
    let dir = tempfile::tempdir().unwrap();
    let with = export_model(dir.path(), "with.prec", &[]);
    let json = inspect_json(&with);
    let fold_in = &json["fold_in"];
    assert_eq!(fold_in["status"], "ok", "{json}");
    assert_eq!(fold_in["chosen_by"], "default");
    let dim = json["tables"][1]["dim"].as_u64().unwrap();
    assert_eq!(fold_in["bytes"].as_u64().unwrap(), 16 + 2 * dim * (dim + 1));
    assert!(succeeds(&["inspect", path_str(&with)]).contains("fold-in: "));
    // Folded in from two items and an unknown one: those two are excluded, the unknown counted.
    let out = succeeds(&[
        "recommend",
        path_str(&with),
        "--items",
        "0,1,999999",
        "-k",
        "3",
        "--json",
    ]);
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["folded_from"], serde_json::json!([0, 1, 999999]));
    assert_eq!(answer["unknown"], 1);
    let items = answer["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["item"] != 0 && i["item"] != 1));
    // Given settings are stored as given.
    let given = export_model(
        dir.path(),
        "given.prec",
        &[
            "--fold-in-unobserved-weight",
            "0.25",
            "--fold-in-regularization",
            "2",
        ],
    );
    let json = inspect_json(&given);
    assert_eq!(json["fold_in"]["unobserved_weight"], 0.25);
    assert_eq!(json["fold_in"]["regularization"], 2.0);
    assert_eq!(json["fold_in"]["chosen_by"], "given");
    // Without the section: inspect says nothing, recommend --items says why it cannot.
    let without = export_model(dir.path(), "without.prec", &["--no-fold-in"]);
    assert!(inspect_json(&without)["fold_in"].is_null());
    let message = fails(&["recommend", path_str(&without), "--items", "0"]);
    assert!(message.contains("no fold-in section"), "{message}");
    // Bad settings are refused before anything is written.
    let message = fails(&[
        "export",
        path_str(&fixture("model.safetensors")),
        "-o",
        path_str(&dir.path().join("bad.prec")),
        "--fold-in-unobserved-weight",
        "-1",
        "--fold-in-regularization",
        "1",
    ]);
    assert!(message.contains("unobserved weight"), "{message}");
    assert!(!dir.path().join("bad.prec").exists());
    // The softmax objective instead of the Gramian: a 32-byte header alone for a catalogue
    // this small (no summary), used by recommend --items.
    let softmax = export_model(
        dir.path(),
        "softmax.prec",
        &["--fold-in-softmax", "0.1,1.2"],
    );
    let json = inspect_json(&softmax);
    assert_eq!(json["fold_in"]["objective"], "softmax", "{json}");
    assert_eq!(json["fold_in"]["bytes"], 32);
    assert_eq!(json["fold_in"]["softmax"]["clusters"], 0);
    assert_eq!(json["fold_in"]["chosen_by"], "given");
    assert!(succeeds(&["inspect", path_str(&softmax)]).contains("softmax objective"));
    succeeds(&["recommend", path_str(&softmax), "--items", "0,1", "-k", "3"]);
    // A summary of 3 clusters when asked: 3·(d + 2) + d(d + 1)/2 more f32.
    let summarised = export_model(
        dir.path(),
        "summary.prec",
        &["--fold-in-softmax", "0.1,1.2", "--fold-in-clusters", "3"],
    );
    let json = inspect_json(&summarised);
    assert_eq!(json["fold_in"]["softmax"]["clusters"], 3, "{json}");
    let dim = json["tables"][1]["dim"].as_u64().unwrap();
    let want = 32 + 4 * (3 * (dim + 2) + dim * (dim + 1) / 2);
    assert_eq!(json["fold_in"]["bytes"], want);
    assert!(succeeds(&["inspect", path_str(&summarised)]).contains("summary of 3 clusters"));
    succeeds(&["verify", path_str(&summarised)]);
    succeeds(&[
        "recommend",
        path_str(&summarised),
        "--items",
        "0,1",
        "-k",
        "3",
    ]);
    for bad in ["0.1", "0,1.2", "0.1,nan", "x,1"] {
        let message = fails(&[
            "export",
            path_str(&fixture("model.safetensors")),
            "-o",
            path_str(&dir.path().join("bad.prec")),
            "--fold-in-softmax",
            bad,
        ]);
        assert!(message.contains("fold-in-softmax"), "{bad}: {message}");
    }
    assert!(!dir.path().join("bad.prec").exists());
}

#[test]
fn string_item_ids_come_back_as_their_strings() {
    let dir = tempfile::tempdir().unwrap();
    let model_in = fixture("model.safetensors");
    let rows = Model::read(export_model(dir.path(), "probe.prec", &[]))
        .unwrap()
        .items()
        .unwrap()
        .rows();
    let names: Vec<String> = (0..rows).map(|i| format!("sku-{:05}", i * 7 + 3)).collect();
    let items = dir.path().join("item_ids.txt");
    std::fs::write(&items, names.join("\n") + "\n").unwrap();
    let with = export_model(dir.path(), "with.prec", &["--item-ids", path_str(&items)]);
    let model = Model::read(&with).unwrap();
    model.verify().unwrap();
    assert!(model.id_strings(pocketrec::Role::Item).unwrap().is_some());
    // recommend names items by their strings, in JSON and in text.
    let out = succeeds(&[
        "recommend",
        path_str(&with),
        "--user",
        "1",
        "-k",
        "3",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for item in json["items"].as_array().unwrap() {
        let name = item["item"].as_str().expect("a string id");
        assert!(names.iter().any(|n| n == name), "{name}");
    }
    let text = succeeds(&["recommend", path_str(&with), "--user", "1", "-k", "3"]);
    assert!(text.contains("sku-"), "{text}");
    // Excluding and folding in by string work as well.
    let first = json["items"][0]["item"].as_str().unwrap().to_string();
    let out = succeeds(&[
        "recommend",
        path_str(&with),
        "--user",
        "1",
        "-k",
        "3",
        "--exclude",
        &first,
        "--json",
    ]);
    assert!(!out.contains(&format!("\"{first}\"")), "{out}");
    let out = succeeds(&["recommend", path_str(&with), "--items", &first, "--json"]);
    assert!(out.contains("sku-"), "{out}");
    // Without the strings, items come back as their 64-bit hashes.
    let without = dir.path().join("without.prec");
    let args = [
        "export",
        path_str(&model_in),
        "-o",
        path_str(&without),
        "--item-ids",
        path_str(&items),
        "--no-id-strings",
        "--quiet",
    ];
    succeeds(&args);
    let out = succeeds(&[
        "recommend",
        path_str(&without),
        "--user",
        "1",
        "-k",
        "1",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let hash = json["items"][0]["item"].as_u64().expect("a hash");
    assert!(names.iter().any(|n| pocketrec::string_id(n) == hash));
}

#[test]
fn split_writes_time_ordered_periods_and_names_bad_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.csv");
    std::fs::write(
        &log,
        "user,item,rating,timestamp\n\
         u1,i1,5,2023-11-14T22:13:20Z\n\
         u2,i2,4,2023-11-14 22:20:00\n\
         u1,i2,3,2023-11-14T22:10:00+00:00\n\
         u3,i3,5,2023-11-15\n",
    )
    .unwrap();
    let out = dir.path().join("periods");
    let json = succeeds(&[
        "split",
        path_str(&log),
        "-o",
        path_str(&out),
        "--periods",
        "2",
        "--json",
    ]);
    let periods: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(periods[0]["interactions"], 2);
    assert_eq!(
        periods[1]["new_users"], 2,
        "u2 and u3 first appear in period 2"
    );
    assert_eq!(periods[0]["from"], "2023-11-14T22:10:00Z");
    // In time order, the header kept, the lines as written.
    assert_eq!(
        std::fs::read_to_string(out.join("period-01.csv")).unwrap(),
        "user,item,rating,timestamp\nu1,i2,3,2023-11-14T22:10:00+00:00\nu1,i1,5,2023-11-14T22:13:20Z\n"
    );
    // The period files train and evaluate as any log: period 2 tested against period 1.
    let text = succeeds(&[
        "split",
        path_str(&log),
        "-o",
        path_str(&out),
        "--until",
        "2023-11-14T23:00:00Z",
    ]);
    assert!(text.contains("| 2 |"), "{text}");
    assert!(
        std::fs::read_to_string(out.join("period-02.csv"))
            .unwrap()
            .ends_with("u3,i3,5,2023-11-15\n")
    );

    std::fs::write(&log, "u1\ti1\t5\t1700000000\nu2\ti2\t4\t1700000000000\n").unwrap();
    let e = fails(&[
        "split",
        path_str(&log),
        "-o",
        path_str(&out),
        "--periods",
        "2",
    ]);
    assert!(e.contains("log.csv:2: timestamp \"1700000000000\" is unix milliseconds, but line 1's was unix seconds"), "{e}");
    std::fs::write(&log, "u1\ti1\t5\t2023-02-30\n").unwrap();
    let e = fails(&[
        "split",
        path_str(&log),
        "-o",
        path_str(&out),
        "--periods",
        "2",
    ]);
    assert!(
        e.contains("log.csv:1: timestamp \"2023-02-30\" is neither"),
        "{e}"
    );
    // Training reads the same timestamps and stops at the same lines.
    let e = fails(&[
        "train",
        "--train",
        path_str(&log),
        "-o",
        path_str(&dir.path().join("m.prec")),
    ]);
    assert!(e.contains("log.csv:1: timestamp"), "{e}");
    let e = fails(&["split", path_str(&log), "-o", path_str(&out)]);
    assert!(e.contains("--periods") || e.contains("--until"), "{e}");
}

fn call(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn train_checkpoint_then_resume_on_the_next_period() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let own = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let log = p("log.tsv");
    succeeds(&[
        "generate-log",
        "-o",
        &log,
        "--periods",
        "2",
        "--users",
        "150",
        "--items",
        "100",
    ]);
    succeeds(&[
        "split",
        &log,
        "-o",
        &p("periods"),
        "--periods",
        "2",
        "--by",
        "time",
    ]);
    let (p1, p2) = (p("periods/period-01.tsv"), p("periods/period-02.tsv"));
    let small = own(&[
        "--dim",
        "8",
        "--density",
        "0.25",
        "--epochs",
        "2",
        "--threads",
        "1",
        "-q",
    ]);
    let mut first = own(&[
        "train",
        "--train",
        &p1,
        "-o",
        &p("m1.prec"),
        "--checkpoint",
        &p("c1.ckpt"),
    ]);
    first.extend(small.clone());
    succeeds(&call(&first));
    let resume = |extra: &[&str]| {
        let mut args = own(&[
            "train",
            "--resume",
            &p("c1.ckpt"),
            "--train",
            &p2,
            "-o",
            &p("m2.prec"),
            "--epochs",
            "2",
            "--threads",
            "1",
            "-q",
        ]);
        args.extend(own(extra));
        args
    };
    let out = succeeds(&call(&resume(&["--json", "--checkpoint", &p("c2.ckpt")])));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let update = &summary["update"];
    assert_eq!(update["update"], 1);
    assert!(update["new_users"].as_u64().unwrap() > 0, "{update}");
    let fraction = update["changed_fraction"].as_f64().unwrap();
    assert!(fraction > 0.0 && fraction < 1.0, "{update}");
    assert!(Path::new(&p("c2.ckpt")).exists());
    let m2 = inspect_json(Path::new(&p("m2.prec")));
    assert!(m2.to_string().contains("mf-bsl"), "{m2}");
    // Replay: a sample of the returning users' period-1 interactions, as many as the new ones
    // at most (a drawn pair may repeat a new one).
    let new = summary["interactions"].as_u64().unwrap();
    let out = succeeds(&call(&resume(&[
        "--json",
        "--replay",
        &p1,
        "--replay-share",
        "1",
    ])));
    let replayed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let with_replay = replayed["interactions"].as_u64().unwrap();
    assert!(
        with_replay > new && with_replay <= 2 * new,
        "{new} then {with_replay}"
    );
    let e = fails(&call(&resume(&["--replay-share", "1"])));
    assert!(e.contains("--replay"), "{e}");
    // Settings that contradict the checkpoint, and damaged checkpoints, are refused.
    let e = fails(&call(&resume(&["--dim", "16"])));
    assert!(e.contains("trained with --dim 8, not 16"), "{e}");
    let e = fails(&call(&resume(&["--teacher", &p("m1.prec")])));
    assert!(e.contains("--teacher"), "{e}");
    // Settings the checkpoint records are refused, not silently ignored.
    for flag in ["--negatives", "--l2", "--batch-size", "--distill-negatives"] {
        let e = fails(&call(&resume(&[flag, "4"])));
        assert!(e.contains(&format!("checkpoint's {flag}")), "{flag}: {e}");
    }
    // `--lr` sets the update's learning rate: another rate, other tables.
    succeeds(&call(&resume(&[])));
    let default_lr = std::fs::read(p("m2.prec")).unwrap();
    succeeds(&call(&resume(&["--lr", "0.001"])));
    assert_ne!(std::fs::read(p("m2.prec")).unwrap(), default_lr);
    let e = fails(&call(&resume(&["--lr", "0"])));
    assert!(e.contains("--lr must be a positive number"), "{e}");
    // With --replay, an update steps at 4 times the checkpoint's rate (BSL's 0.02) by default.
    let replay = |lr: Option<&str>| {
        let mut extra = vec!["--replay", p1.as_str(), "--replay-share", "1"];
        extra.extend(lr.map(|lr| ["--lr", lr]).into_iter().flatten());
        succeeds(&call(&resume(&extra)));
        std::fs::read(p("m2.prec")).unwrap()
    };
    let replay_default = replay(None);
    assert_eq!(replay_default, replay(Some("0.08")));
    assert_ne!(replay_default, replay(Some("0.02")));
    let bytes = std::fs::read(p("c1.ckpt")).unwrap();
    std::fs::write(p("c1.ckpt"), &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&call(&resume(&[])));
    assert!(e.contains("c1.ckpt"), "{e}");
    let mut flipped = bytes.clone();
    let at = flipped.len() - 10;
    flipped[at] ^= 1;
    std::fs::write(p("c1.ckpt"), &flipped).unwrap();
    let e = fails(&call(&resume(&[])));
    assert!(e.contains("checksum"), "{e}");
    // A checkpoint needs the dense master of a sparse model.
    let mut no_master = own(&[
        "train",
        "--train",
        &p1,
        "-o",
        &p("x.prec"),
        "--checkpoint",
        &p("x.ckpt"),
        "--no-distill",
    ]);
    no_master.extend(small);
    let e = fails(&call(&no_master));
    assert!(e.contains("dense master"), "{e}");
}
