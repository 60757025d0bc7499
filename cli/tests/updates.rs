//! Over-the-air updates through the `pocketrec` binary: diff, patch, inspect and verify of
//! patches, keys and signatures, deterministic re-exports, and a patch killed while it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn pocketrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocketrec"))
        .args(args)
        .output()
        .expect("run pocketrec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeds(args: &[&str]) -> String {
    let out = pocketrec(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Tables in `dir/name/`, then a model exported from them with `flags`.
fn model(
    dir: &Path,
    name: &str,
    change: Option<&str>,
    users: &str,
    items: &str,
    flags: &[&str],
) -> PathBuf {
    let tables = dir.join(name);
    let mut args = vec![
        "generate",
        "-o",
        s(&tables),
        "--users",
        users,
        "--items",
        items,
        "--seed",
        "5",
    ];
    if let Some(fraction) = change {
        args.extend(["--change-rows", fraction]);
    }
    succeeds(&args);
    let out = dir.join(format!("{name}.prec"));
    let (u, i) = (tables.join("users.npy"), tables.join("items.npy"));
    let mut args = vec![
        "export",
        "--users",
        s(&u),
        "--items",
        s(&i),
        "-o",
        s(&out),
        "-q",
    ];
    args.extend(flags);
    succeeds(&args);
    out
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).expect("JSON line")
}

#[test]
fn diff_then_patch_gives_the_new_file_for_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    for (n, flags) in [
        &["--values", "f32", "--layout", "rows"][..],
        &["--values", "i8", "--layout", "columns"],
        &[
            "--values",
            "i4",
            "--layout",
            "columns",
            "--list-rows",
            "bitmap",
        ],
        &["--values", "f16", "--sliced-rows"],
        &[
            "--values",
            "i8",
            "--layout",
            "columns",
            "--block-bounds",
            "64",
        ],
        &[
            "--values",
            "bf16",
            "--layout",
            "both",
            "--scoring",
            "cosine",
        ],
    ]
    .iter()
    .enumerate()
    {
        let old = model(dir.path(), &format!("old{n}"), None, "300", "5000", flags);
        let new = model(
            dir.path(),
            &format!("new{n}"),
            Some("0.01"),
            "300",
            "5000",
            flags,
        );
        let patch = dir.path().join(format!("p{n}.precpatch"));
        let report = json(&succeeds(&[
            "diff",
            s(&old),
            s(&new),
            "-o",
            s(&patch),
            "--json",
        ]));
        assert_eq!(report["by_section"], true, "{flags:?}");
        let tables = report["tables"].as_array().unwrap();
        assert_eq!(tables[0]["changed"], 3, "{flags:?}: 1 % of 300 users");
        assert_eq!(tables[1]["changed"], 50, "{flags:?}: 1 % of 5,000 items");
        let patched = dir.path().join(format!("r{n}.prec"));
        succeeds(&["patch", s(&old), s(&patch), "-o", s(&patched)]);
        assert_eq!(
            std::fs::read(&patched).unwrap(),
            std::fs::read(&new).unwrap()
        );
        // inspect and verify read the patch.
        let info = json(&succeeds(&["inspect", s(&patch), "--json"]));
        assert_eq!(info["result_bytes"], std::fs::metadata(&new).unwrap().len());
        // The fold-in Gramian and block bounds are recomputed on the device, not carried.
        let sections = json(&succeeds(&["inspect", s(&new), "--json"]))["sections"].clone();
        let body = |kind: &str, header: u64| -> u64 {
            sections
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["kind"] == kind)
                .map(|s| s["length"].as_u64().unwrap() - header)
                .sum()
        };
        assert!(body("fold-in", 16) > 0, "{flags:?}: a fold-in section");
        // With row records too (`both`), the column layout follows from them.
        let columns = if flags.contains(&"both") {
            [
                "column-offsets",
                "column-items",
                "column-bitmaps",
                "column-values",
                "row-norms",
                "row-scales",
            ]
            .iter()
            .map(|kind| body(kind, 0))
            .sum::<u64>()
        } else {
            0
        };
        assert!(!flags.contains(&"both") || columns > 0, "{flags:?}");
        assert_eq!(
            info["recomputed_bytes"],
            body("fold-in", 16) + body("block-bounds", 24) + columns,
            "{flags:?}"
        );
        assert!(succeeds(&["verify", s(&patch)]).starts_with("OK"));
        // The patch does not apply to the new file (another base), and nothing is written.
        let out = pocketrec(&["patch", s(&new), s(&patch), "-o", s(&old)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("another base"),
            "{}",
            text(&out.stderr)
        );
        assert_ne!(std::fs::read(&old).unwrap(), std::fs::read(&new).unwrap());
    }
}

#[test]
fn a_re_export_of_the_same_tables_is_a_patch_of_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let first = model(dir.path(), "t", None, "200", "3000", &["--values", "i8"]);
    let again = dir.path().join("again.prec");
    let t = dir.path().join("t");
    succeeds(&[
        "export",
        "--users",
        s(&t.join("users.npy")),
        "--items",
        s(&t.join("items.npy")),
        "-o",
        s(&again),
        "-q",
        "--values",
        "i8",
    ]);
    let patch = dir.path().join("none.precpatch");
    let report = json(&succeeds(&[
        "diff",
        s(&first),
        s(&again),
        "-o",
        s(&patch),
        "--json",
    ]));
    assert_eq!(report["carried_bytes"], 0, "{report}");
    assert_eq!(report["changed_row_bytes"], 0);
    assert!(report["patch_bytes"].as_u64().unwrap() < 160, "{report}");
}

#[test]
fn signatures_refuse_unsigned_files_other_keys_and_changed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let old = model(dir.path(), "old", None, "100", "2000", &[]);
    let new = model(dir.path(), "new", Some("0.05"), "100", "2000", &[]);
    let key = dir.path().join("app");
    let other = dir.path().join("other");
    assert!(succeeds(&["keygen", "-o", s(&key)]).contains("key id"));
    succeeds(&["keygen", "-o", s(&other)]);
    let (secret, public) = (key.with_extension("key"), key.with_extension("pub"));
    let other_public = other.with_extension("pub");
    // A signed model verifies with its key, and only with it.
    let signed = dir.path().join("signed.prec");
    succeeds(&["sign", s(&new), "--key", s(&secret), "-o", s(&signed)]);
    assert!(succeeds(&["verify", s(&signed), "--key", s(&public)]).contains("signature checked"));
    let refused = |file: &Path, key: &Path, what: &str| {
        let out = pocketrec(&["verify", s(file), "--key", s(key)]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let said = text(&out.stdout);
        assert!(said.contains(what), "expected '{what}': {said}");
    };
    refused(&new, &public, "unsigned");
    refused(&signed, &other_public, "wrong key");
    let mut bytes = std::fs::read(&signed).unwrap();
    bytes[200] ^= 1;
    let tampered = dir.path().join("tampered.prec");
    std::fs::write(&tampered, &bytes).unwrap();
    refused(&tampered, &public, "tampered");
    // Patches: a signed patch between signed models applies with the key; an unsigned one is
    // refused when a key is required.
    let signed_old = dir.path().join("signed-old.prec");
    succeeds(&["sign", s(&old), "--key", s(&secret), "-o", s(&signed_old)]);
    let patch = dir.path().join("u.precpatch");
    succeeds(&["diff", s(&signed_old), s(&signed), "-o", s(&patch)]);
    let target = dir.path().join("device.prec");
    let apply = |key: &Path| {
        pocketrec(&[
            "patch",
            s(&signed_old),
            s(&patch),
            "-o",
            s(&target),
            "--key",
            s(key),
        ])
    };
    let out = apply(&public);
    assert!(
        text(&out.stderr).contains("unsigned"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());
    succeeds(&["sign", s(&patch), "--key", s(&secret)]);
    let out = apply(&public);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signature checked"));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&signed).unwrap()
    );
    assert!(succeeds(&["verify", s(&target), "--key", s(&public)]).starts_with("OK"));
    let out = apply(&other_public);
    assert!(
        text(&out.stderr).contains("wrong key"),
        "{}",
        text(&out.stderr)
    );
}

/// A process killed at random points while it applies a patch leaves the target as the old file
/// or the new one, never a mix.
#[cfg(unix)]
#[test]
fn a_patch_killed_while_it_writes_leaves_the_old_file_or_the_new_one() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--values", "f32", "--layout", "rows"];
    let old = model(dir.path(), "old", None, "1000", "200000", &flags);
    let new = model(dir.path(), "new", Some("0.01"), "1000", "200000", &flags);
    let patch = dir.path().join("u.precpatch");
    succeeds(&["diff", s(&old), s(&new), "-o", s(&patch)]);
    let (old_bytes, new_bytes) = (std::fs::read(&old).unwrap(), std::fs::read(&new).unwrap());
    let target = dir.path().join("device.prec");
    // How long an uninterrupted apply takes here.
    std::fs::write(&target, &old_bytes).unwrap();
    let start = Instant::now();
    succeeds(&["patch", s(&target), s(&patch), "-o", s(&target)]);
    let full = start.elapsed();
    assert_eq!(std::fs::read(&target).unwrap(), new_bytes);
    // Kill points spread over 0 .. 1.2 x that (a fixed sequence: the test is reproducible up to
    // the machine's timing).
    let (mut killed, mut old_left, mut new_left, mut mid_write) = (0, 0, 0, 0);
    for k in 0..24u32 {
        std::fs::write(&target, &old_bytes).unwrap();
        let delay = full.mul_f64(f64::from((k * 7) % 24) / 20.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pocketrec"))
            .args(["patch", s(&target), s(&patch), "-o", s(&target)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
        // A run killed while writing leaves its temporary file (never the target) behind.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".tmp") {
                mid_write += 1;
                std::fs::remove_file(path).unwrap();
            }
        }
        let now = std::fs::read(&target).unwrap();
        if now == old_bytes {
            old_left += 1;
        } else if now == new_bytes {
            new_left += 1;
        } else {
            panic!("run {k}: killed after {delay:?}, the target is neither file");
        }
    }
    assert!(
        killed > 0,
        "no run was killed before it finished ({full:?} a run)"
    );
    eprintln!(
        "{killed} of 24 killed ({mid_write} while writing); old file left {old_left} times, new {new_left}"
    );
}

/// With block bounds the item rows are clustered: a few changed rows can move every row after
/// them, unless the update is written with `--update-of`, which keeps the earlier row order.
#[test]
fn update_of_keeps_clustered_rows_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--values",
        "f16",
        "--layout",
        "columns",
        "--block-bounds",
        "64",
        "--no-fold-in",
    ];
    let old = model(dir.path(), "old", None, "300", "8000", &flags);
    let moved = model(dir.path(), "moved", Some("0.01"), "300", "8000", &flags);
    let t = dir.path().join("moved");
    let kept = dir.path().join("kept.prec");
    let (users, items) = (t.join("users.npy"), t.join("items.npy"));
    let mut args = vec![
        "export",
        "--users",
        s(&users),
        "--items",
        s(&items),
        "-o",
        s(&kept),
        "-q",
        "--update-of",
        s(&old),
    ];
    args.extend(flags);
    succeeds(&args);
    assert!(succeeds(&["verify", s(&kept)]).starts_with("OK"));
    let size = |new: &Path, name: &str| {
        let patch = dir.path().join(name);
        let report = json(&succeeds(&[
            "diff",
            s(&old),
            s(new),
            "-o",
            s(&patch),
            "--json",
        ]));
        (
            report["patch_bytes"].as_u64().unwrap(),
            report["changed_row_bytes"].as_u64().unwrap(),
        )
    };
    let (without, changed) = size(&moved, "moved.precpatch");
    let (with, same_rows) = size(&kept, "kept.precpatch");
    assert_eq!(changed, same_rows, "the same rows changed");
    assert!(
        with < 4 * changed + 1024,
        "--update-of: {with} bytes for {changed} changed"
    );
    assert!(
        with * 4 < without,
        "--update-of {with} bytes, without {without}"
    );
    // Both files hold the same model: the same answers.
    let answer = |m: &Path| succeeds(&["recommend", s(m), "--user", "7", "-k", "10", "--json"]);
    assert_eq!(answer(&moved), answer(&kept));
}
