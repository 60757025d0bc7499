//! `pocketrec frontier`: the recall-for-bytes frontier of a set of trained models, from their
//! `train --json` summaries: a Markdown table and, with `--plot`, Recall@20 and NDCG@20 against
//! the file's bytes (as a share of the dense f32 tables), one line per loss, way to sparsity
//! (dynamic sparse training or lottery tickets) and value encoding.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{CliError, Result};
use crate::plot::{Lines, Panel, write_svg};

/// One written file of one run.
#[derive(Clone, Debug, PartialEq)]
struct Point {
    loss: String,
    /// `dense`, `dst` or `lottery` (summaries written before `sparsify` existed: `dense` at
    /// density 1, else `dst`).
    method: String,
    /// The files store no user rows: users are folded in (`train --items-only`).
    items_only: bool,
    density: f64,
    values: String,
    recall: f64,
    ndcg: f64,
    bytes: u64,
    share: f64,
    train_seconds: f64,
    teacher_seconds: f64,
}

/// Reads the points of one summary; the error names the file and the missing field.
fn points(path: &Path) -> Result<Vec<Point>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let run: Value = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a `train --json` summary: {e}",
            path.display()
        ))
    })?;
    let missing = |field: &str| {
        CliError::Usage(format!(
            "{}: no {field} (a `train --json` summary of a run with --test is needed)",
            path.display()
        ))
    };
    let number = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_f64)
            .ok_or_else(|| missing(field))
    };
    let dense_bytes = number(&run, "dense_f32_bytes")?;
    let density = number(&run, "density")?;
    let method = match run.get("sparsify").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None if density >= 1.0 => "dense".into(),
        None => "dst".into(),
    };
    let files = run
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("files"))?;
    files
        .iter()
        .map(|f| {
            let eval = f.get("eval").ok_or_else(|| missing("files[].eval"))?;
            let bytes = number(f, "bytes")?;
            Ok(Point {
                loss: run
                    .get("loss")
                    .and_then(Value::as_str)
                    .unwrap_or("bpr")
                    .to_string(),
                method: method.clone(),
                items_only: run.get("user_rows").and_then(Value::as_str) == Some("folded-in"),
                density,
                values: f
                    .get("values")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("values"))?
                    .to_string(),
                recall: number(eval, "recall@20")?,
                ndcg: number(eval, "ndcg@20")?,
                bytes: bytes as u64,
                share: 100.0 * bytes / dense_bytes.max(1.0),
                train_seconds: number(&run, "train_seconds")?,
                teacher_seconds: run
                    .get("teacher_seconds")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
            })
        })
        .collect()
}

/// The Markdown table of `points`, in the order given.
fn table(points: &[Point]) -> String {
    let mut out = String::from(
        "| loss | sparsity by | density | values | Recall@20 | NDCG@20 | bytes | of dense f32 | training s | teacher s |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in points {
        out.push_str(&format!(
            "| {} | {}{} | {} | {} | {:.4} | {:.4} | {} | {:.1} % | {:.0} | {:.0} |\n",
            p.loss,
            p.method,
            if p.items_only {
                ", items only (users folded in)"
            } else {
                ""
            },
            p.density,
            p.values,
            p.recall,
            p.ndcg,
            pocketrec_export::inspect::thousands(p.bytes),
            p.share,
            p.train_seconds,
            p.teacher_seconds
        ));
    }
    out
}

/// One series per (loss, method, user rows, values), in order of first appearance, points by
/// increasing bytes; dense models and dynamic sparse training share a line (`bsl f32`),
/// lottery tickets have their own (`bsl lottery f32`), and so do files without user rows
/// (`bsl items-only f32`).
fn series(points: &[Point], metric: fn(&Point) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for p in points {
        let method = match p.method.as_str() {
            "dense" | "dst" => String::new(),
            method => format!(" {method}"),
        };
        let users = if p.items_only { " items-only" } else { "" };
        let name = format!("{}{method}{users} {}", p.loss, p.values);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push((p.share, metric(p))),
            None => out.push((name, vec![(p.share, metric(p))])),
        }
    }
    for (_, v) in &mut out {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Runs `pocketrec frontier`.
/// `values`, when not empty, keeps only the files with those encodings.
pub fn run(summaries: &[PathBuf], plot: Option<&Path>, values: &[String]) -> Result<()> {
    if summaries.is_empty() {
        return Err(CliError::Usage(
            "give at least one `train --json` summary".into(),
        ));
    }
    let mut all = Vec::new();
    for path in summaries {
        all.extend(
            points(path)?
                .into_iter()
                .filter(|p| values.is_empty() || values.contains(&p.values)),
        );
    }
    if all.is_empty() {
        return Err(CliError::Usage(format!(
            "no file with values {} in these summaries",
            values.join(",")
        )));
    }
    print!("{}", table(&all));
    if let Some(path) = plot {
        let x_label = "file bytes, % of the dense f32 tables".to_string();
        write_svg(
            path,
            &[
                Panel::Lines(Lines {
                    title: "Recall@20 against file size".into(),
                    series: series(&all, |p| p.recall),
                    x_label: x_label.clone(),
                    y_label: "Recall@20".into(),
                }),
                Panel::Lines(Lines {
                    title: "NDCG@20 against file size".into(),
                    series: series(&all, |p| p.ndcg),
                    x_label,
                    y_label: "NDCG@20".into(),
                }),
            ],
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(
        dir: &Path,
        name: &str,
        loss: &str,
        density: f64,
        files: &[(&str, u64, f64)],
    ) -> PathBuf {
        let files: Vec<Value> = files
            .iter()
            .map(|(values, bytes, recall)| {
                serde_json::json!({"values": values, "bytes": bytes,
                    "eval": {"recall@20": recall, "ndcg@20": recall / 2.0}})
            })
            .collect();
        let run = serde_json::json!({"loss": loss, "density": density, "dense_f32_bytes": 1000,
            "train_seconds": 12.0, "teacher_seconds": null, "files": files});
        let path = dir.join(name);
        std::fs::write(&path, run.to_string()).unwrap();
        path
    }

    #[test]
    fn runs_become_a_table_and_sorted_series() {
        let dir = tempfile::tempdir().unwrap();
        let a = summary(
            dir.path(),
            "a.json",
            "bsl",
            1.0,
            &[("f16", 500, 0.18), ("i8", 250, 0.179)],
        );
        let b = summary(
            dir.path(),
            "b.json",
            "bsl",
            0.1,
            &[("f16", 90, 0.16), ("i8", 60, 0.159)],
        );
        let points: Vec<Point> = [a, b].iter().flat_map(|p| points(p).unwrap()).collect();
        let t = table(&points);
        assert!(
            t.contains("| bsl | dst | 0.1 | i8 | 0.1590 | 0.0795 | 60 | 6.0 % | 12 | 0 |"),
            "{t}"
        );
        let s = series(&points, |p| p.recall);
        assert_eq!(
            s[0],
            ("bsl f16".to_string(), vec![(9.0, 0.16), (50.0, 0.18)])
        );
        assert_eq!(s[1].0, "bsl i8");
        let svg = dir.path().join("f.svg");
        run(&[dir.path().join("a.json")], Some(&svg), &[]).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("Recall@20"));
        let e = run(&[dir.path().join("a.json")], None, &["i4".into()]).unwrap_err();
        assert!(e.to_string().contains("i4"), "{e}");
    }

    #[test]
    fn lottery_tickets_get_their_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.json");
        let run = serde_json::json!({"loss": "bsl", "sparsify": "lottery", "density": 0.1,
            "dense_f32_bytes": 1000, "train_seconds": 30.0,
            "files": [{"values": "f32", "bytes": 100,
                "eval": {"recall@20": 0.15, "ndcg@20": 0.1}}]});
        std::fs::write(&path, run.to_string()).unwrap();
        let points = points(&path).unwrap();
        assert!(table(&points).contains("| bsl | lottery | 0.1 | f32 |"));
        assert_eq!(
            series(&points, |p| p.recall)[0],
            ("bsl lottery f32".to_string(), vec![(10.0, 0.15)])
        );
    }

    #[test]
    fn files_without_user_rows_get_their_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.json");
        let run = serde_json::json!({"loss": "bsl", "sparsify": "dst", "density": 0.2,
            "user_rows": "folded-in", "dense_f32_bytes": 1000, "train_seconds": 30.0,
            "files": [{"values": "i4", "bytes": 40,
                "eval": {"recall@20": 0.17, "ndcg@20": 0.14}}]});
        std::fs::write(&path, run.to_string()).unwrap();
        let points = points(&path).unwrap();
        let t = table(&points);
        assert!(
            t.contains("| bsl | dst, items only (users folded in) | 0.2 | i4 | 0.1700 |"),
            "{t}"
        );
        assert_eq!(
            series(&points, |p| p.recall)[0],
            ("bsl items-only i4".to_string(), vec![(4.0, 0.17)])
        );
    }

    #[test]
    fn a_summary_without_evaluation_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, r#"{"dense_f32_bytes": 10, "density": 1, "train_seconds": 1, "files": [{"values": "f32", "bytes": 4}]}"#).unwrap();
        let e = points(&path).unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("eval"), "{e}");
    }
}
