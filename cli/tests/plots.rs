//! `--plot` of inspect, eval and bench: each writes an SVG that renders (resvg) to a picture
//! that is not blank: a good share of its pixels are not background, in more than one colour.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pocketrec(args: &[&std::ffi::OsStr]) {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketrec"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn eval_case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../train/tests/fixtures/eval")
        .join(name)
}

/// Renders the SVG at `path`; returns (pixels, non-white pixels, distinct non-white colours).
fn render(path: &Path) -> (usize, usize, usize) {
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0;
    for p in pixmap.pixels() {
        let rgb = (p.red(), p.green(), p.blue());
        if p.alpha() > 0 && rgb != (255, 255, 255) {
            inked += 1;
            colours.insert(rgb);
        }
    }
    (pixmap.pixels().len(), inked, colours.len())
}

fn assert_drawn(path: &Path, min_share: f64) {
    let (pixels, inked, colours) = render(path);
    let share = inked as f64 / pixels as f64;
    assert!(
        share >= min_share && colours >= 2,
        "{}: {inked} of {pixels} pixels drawn ({share:.3}), {colours} colours",
        path.display()
    );
}

#[test]
fn inspect_eval_and_bench_plots_render_to_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("case.prec");
    let os = |s: &str| std::ffi::OsString::from(s);
    let p = |p: &Path| p.as_os_str().to_owned();
    let run = |args: Vec<std::ffi::OsString>| {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        pocketrec(&refs);
    };
    run(vec![
        os("export"),
        os("--users"),
        p(&eval_case("users.npy")),
        os("--items"),
        p(&eval_case("items.npy")),
        os("--user-ids"),
        p(&eval_case("user_ids.txt")),
        os("--item-ids"),
        p(&eval_case("item_ids.txt")),
        os("-o"),
        p(&model),
        os("--quiet"),
    ]);
    let inspect = dir.path().join("inspect.svg");
    run(vec![os("inspect"), p(&model), os("--plot"), p(&inspect)]);
    assert_drawn(&inspect, 0.02);
    let eval = dir.path().join("eval.svg");
    run(vec![
        os("eval"),
        p(&model),
        os("--train"),
        p(&eval_case("train.txt")),
        os("--test"),
        p(&eval_case("test.txt")),
        os("-k"),
        os("3"),
        os("--quiet"),
        os("--plot"),
        p(&eval),
    ]);
    assert_drawn(&eval, 0.02);
    let bench = dir.path().join("bench.svg");
    run(vec![
        os("bench"),
        p(&model),
        os("--queries"),
        os("20"),
        os("--plot"),
        p(&bench),
    ]);
    assert_drawn(&bench, 0.01);
    // A blank picture fails the check.
    let blank = dir.path().join("blank.svg");
    std::fs::write(
        &blank,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="white"/></svg>"#,
    )
    .unwrap();
    let (_, inked, _) = render(&blank);
    assert_eq!(inked, 0);
}
