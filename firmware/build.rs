//! Puts memory.x on the linker path, and brings in the model and the expected answer:
//! `POCKETREC_FW_MODEL` (a .prec file, embedded in flash) and `POCKETREC_FW_EXPECT` (a text
//! file: `user ID`, `k K`, optional `exclude ID...`, then `item ID SCORE_BITS` lines, the
//! host's answer to the query; then `fold ID...`, the items a user is folded in from, and
//! `folded ID SCORE_BITS` lines, the host's `pocketrec recommend --items` answer for that user,
//! the same k), both set by scripts/cross.sh. `POCKETREC_FW_UPDATE`: a directory with the
//! over-the-air update the firmware applies (`update.precpatch`, a signed patch from the model
//! to an updated, signed model; `key.bin` and `other.bin`, the signing key's and another key's
//! 32-byte public keys; `expect.txt`, `item ID SCORE_BITS` lines of the host's answer on the
//! updated model, same user, k and exclusions). `POCKETREC_FW_SOFTMAX_MODEL`: the same kind of
//! model carrying the softmax fold-in section (with a catalogue summary) instead of the Gramian;
//! the expected file's `softmax ID SCORE_BITS` lines are the host's `recommend --items` answer
//! on it for the same `fold` items and k.
use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=POCKETREC_FW_MODEL");
    println!("cargo:rerun-if-env-changed=POCKETREC_FW_EXPECT");
    println!("cargo:rerun-if-env-changed=POCKETREC_FW_UPDATE");
    println!("cargo:rerun-if-env-changed=POCKETREC_FW_SOFTMAX_MODEL");
    if env::var_os("CARGO_FEATURE_BASELINE").is_some() {
        return;
    }
    let model = env::var("POCKETREC_FW_MODEL")
        .expect("set POCKETREC_FW_MODEL to the .prec file to embed (scripts/cross.sh does)");
    let expect = env::var("POCKETREC_FW_EXPECT")
        .expect("set POCKETREC_FW_EXPECT to the expected answer (scripts/cross.sh does)");
    println!("cargo:rerun-if-changed={model}");
    println!("cargo:rerun-if-changed={expect}");
    fs::copy(&model, out.join("model.prec")).expect("cannot copy the model");
    let softmax_model = env::var("POCKETREC_FW_SOFTMAX_MODEL").expect(
        "set POCKETREC_FW_SOFTMAX_MODEL to the softmax fold-in model (scripts/cross.sh does)",
    );
    println!("cargo:rerun-if-changed={softmax_model}");
    fs::copy(&softmax_model, out.join("softmax.prec")).expect("cannot copy the softmax model");

    let text = fs::read_to_string(&expect).expect("cannot read the expected answer");
    let (mut user, mut k, mut exclude, mut items) = (None, None, Vec::new(), Vec::new());
    let (mut fold, mut folded, mut softmax) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |w: &str| -> u64 {
            match w.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => w.parse(),
            }
            .unwrap_or_else(|_| panic!("bad number {w:?} in {expect}"))
        };
        match words[0] {
            "user" => user = Some(number(words[1])),
            "k" => k = Some(number(words[1])),
            "exclude" => exclude.extend(words[1..].iter().map(|w| number(w))),
            "item" => items.push((number(words[1]), number(words[2]))),
            "fold" => fold.extend(words[1..].iter().map(|w| number(w))),
            "folded" => folded.push((number(words[1]), number(words[2]))),
            "softmax" => softmax.push((number(words[1]), number(words[2]))),
            other => panic!("unknown line {other:?} in {expect}"),
        }
    }
    let mut code = String::new();
    writeln!(
        code,
        "/// The user asked for.\nconst USER: u64 = {};",
        user.expect("user line")
    )
    .unwrap();
    writeln!(
        code,
        "/// How many items.\nconst K: usize = {};",
        k.expect("k line")
    )
    .unwrap();
    writeln!(
        code,
        "/// Items never to recommend.\nconst EXCLUDE: [u64; {}] = {exclude:?};",
        exclude.len()
    )
    .unwrap();
    write!(
        code,
        "/// The host's answer: (item id, score bits).\nconst EXPECTED: [(u64, u32); {}] = [",
        items.len()
    )
    .unwrap();
    for (id, bits) in &items {
        write!(code, "({id}, {bits:#010x}), ").unwrap();
    }
    code.push_str("];\n");
    assert!(!fold.is_empty(), "no `fold` line in {expect}");
    writeln!(
        code,
        "/// The items the user is folded in from (also excluded from the answer).\n\
         const FOLD_ITEMS: [u64; {}] = {fold:?};",
        fold.len()
    )
    .unwrap();
    write!(
        code,
        "/// The host's answer for the folded user: (item id, score bits).\n\
         const FOLD_EXPECTED: [(u64, u32); {}] = [",
        folded.len()
    )
    .unwrap();
    for (id, bits) in &folded {
        write!(code, "({id}, {bits:#010x}), ").unwrap();
    }
    code.push_str("];\n");
    assert!(!softmax.is_empty(), "no `softmax` line in {expect}");
    write!(
        code,
        "/// The host's answer for the user folded in by softmax ascent on the softmax model:\n\
         /// (item id, score bits).\nconst SOFTMAX_EXPECTED: [(u64, u32); {}] = [",
        softmax.len()
    )
    .unwrap();
    for (id, bits) in &softmax {
        write!(code, "({id}, {bits:#010x}), ").unwrap();
    }
    code.push_str("];\n");
    update(&out, &mut code);
    fs::write(out.join("expected.rs"), code).expect("cannot write expected.rs");
}

/// The over-the-air update's files, copied next to the model, and its expected answer.
fn update(out: &std::path::Path, code: &mut String) {
    let dir = PathBuf::from(
        env::var("POCKETREC_FW_UPDATE")
            .expect("set POCKETREC_FW_UPDATE to the update's directory (scripts/cross.sh does)"),
    );
    for name in ["update.precpatch", "key.bin", "other.bin", "expect.txt"] {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        fs::copy(&path, out.join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
    }
    let text = fs::read_to_string(dir.join("expect.txt")).expect("cannot read expect.txt");
    let mut items = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "item", "unknown line {line:?} in expect.txt");
        let bits = u32::from_str_radix(words[2].trim_start_matches("0x"), 16).expect("bits");
        items.push((words[1].parse::<u64>().expect("item id"), bits));
    }
    write!(
        code,
        "/// The host's answer on the updated model: (item id, score bits).\n\
         const UPDATED_EXPECTED: [(u64, u32); {}] = [",
        items.len()
    )
    .unwrap();
    for (id, bits) in &items {
        write!(code, "({id}, {bits:#010x}), ").unwrap();
    }
    code.push_str("];\n");
}
