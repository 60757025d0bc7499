//! Measures what opening a model costs in resident memory: a fresh process maps a 40k-item
//! and a 1M-item f16 model (d = 64, 10 % density), and reports VmRSS growth after
//! `Model::open` and after one row lookup, against the file size.
//!
//! `cargo run --release -p pocketrec-tests --example open_rss [DIR]`
//! (Linux only: reads /proc/self/status.)

use std::path::{Path, PathBuf};
use std::process::Command;

use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Model, Role, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 64;

fn write_model(path: &Path, items: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(items as u64);
    let mut table = |rows: usize| {
        let data: Vec<f32> = (0..rows * DIM)
            .map(|_| {
                if rng.random_bool(0.1) {
                    rng.random_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            })
            .collect();
        SparseMatrix::from_dense(rows, DIM, &data).unwrap()
    };
    let bytes = ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, table(1000)).values(ValueEncoding::F16))
        .table(TableSpec::new("items", Role::Item, table(items)).values(ValueEncoding::F16))
        .build()
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Resident KiB of the mapping that starts at `start` (its `Rss:` line in /proc/self/smaps):
/// the model's own pages, not the program's code or heap.
fn mapping_rss_kib(start: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_mapping = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((from, _)) = range.split_once('-')
            && let Ok(from) = usize::from_str_radix(from, 16)
        {
            in_mapping = from == start;
            continue;
        }
        if in_mapping && let Some(v) = line.strip_prefix("Rss:") {
            return v.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    panic!("mapping at {start:#x} not found")
}

/// The whole process's resident memory, in KiB.
fn process_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn measure(path: &Path, random: bool) {
    let size = std::fs::metadata(path).unwrap().len();
    let process_before = process_rss_kib();
    let t = std::time::Instant::now();
    // SAFETY: the file was written by this program and is not modified while mapped.
    let model = unsafe { Model::open(path) }.unwrap();
    let open_time = t.elapsed();
    let start = model.bytes().as_ptr() as usize;
    let after_open = mapping_rss_kib(start);
    if random {
        // Tell the kernel not to read ahead for the lookup: each fault brings in one page.
        model.storage().advise(memmap2::Advice::Random).unwrap();
    }
    let items = model.items().unwrap();
    let row = items.row_by_id(items.rows() as u64 / 2).unwrap();
    std::hint::black_box(row.nnz());
    let after_lookup = mapping_rss_kib(start);
    let process_after = process_rss_kib();
    println!(
        "{:>10} bytes file{}: the model's mapping is resident for {} KiB after open, {} KiB after one lookup ({} pages); whole process +{} KiB; open took {:?}",
        size,
        if random {
            ", MADV_RANDOM before the lookup"
        } else {
            ""
        },
        after_open,
        after_lookup,
        after_lookup.div_ceil(4),
        process_after.saturating_sub(process_before),
        open_time
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure(
            Path::new(&args[2]),
            args.get(3).map(String::as_str) == Some("random"),
        );
        return;
    }
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for items in [40_000usize, 1_000_000] {
        let path = dir.join(format!("open-rss-{items}.prec"));
        if !path.exists() {
            write_model(&path, items);
        }
        // A fresh process, so nothing of the writing is resident.
        let status = Command::new(std::env::current_exe().unwrap())
            .arg("--measure")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
