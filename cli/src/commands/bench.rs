//! `pocketrec bench`: how fast a model answers, and how close to the memory bandwidth.
//!
//! For each way the runtime can read the item table (row scan, column scan, and the automatic
//! choice), it runs `recommend` for the same users, single-threaded, timing each query, and
//! reports p50/p99 latency, the bytes a query reads and the **bandwidth floor**: those bytes
//! divided by a read bandwidth measured in the same run. Two bandwidths are measured: streaming
//! a buffer larger than any cache (main memory), and streaming a buffer as large as the bytes
//! a query reads, again and again (what the data's cache level gives once warm).
//!
//! By default every path is warmed up first and the queries run with whatever the caches kept
//! of the model (on a machine whose last-level cache holds the model, that is all of it, and
//! the main-memory floor then says how the loop compares with memory, not what the memory
//! gave). With `cold`, the caches are flushed before each timed query by reading a buffer of
//! at least 1 GiB and at least twice the size of the largest cache ([`eviction_bytes`]), so
//! each query reads its bytes from main memory, as on a device.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use pocketrec::{Mmap, Model, Recommendation, Retrieval};
use serde::Serialize;

use pocketrec_export::open_model;

use crate::error::{CliError, Result};

/// Per-path figures.
#[derive(Clone, Debug, Serialize)]
pub struct PathReport {
    /// `rows`, `columns` or `auto`.
    pub path: String,
    /// Median latency of one `recommend`, in microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency, in microseconds.
    pub p99_us: f64,
    /// Mean bytes read per query (as the planner counts them).
    pub bytes_per_query: f64,
    /// `bytes_per_query` / main-memory bandwidth, in microseconds.
    pub floor_memory_us: f64,
    /// `bytes_per_query` / bandwidth of a buffer of that size kept warm, in microseconds.
    pub floor_cached_us: f64,
    /// `p50_us / floor_memory_us`.
    pub p50_over_memory_floor: f64,
    /// `p50_us / floor_cached_us`.
    pub p50_over_cached_floor: f64,
    /// With block bounds: the mean fraction of the item table's blocks the queries scored
    /// (the others were skipped); `None` for a path without them.
    pub blocks_scored: Option<f64>,
    /// With block bounds: the mean fraction of the scored blocks' posting lists (those of the
    /// user's non-zero dimensions) that the scan left unread, having found part way through
    /// a block that none of its rows could reach the top k; `None` for a path without them.
    pub lists_cut: Option<f64>,
    /// Every query's latency, in microseconds, fastest first (for `--plot`; not in the JSON).
    #[serde(skip)]
    pub latencies_us: Vec<f64>,
}

/// Everything `bench` reports.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Model file size.
    pub file_bytes: u64,
    /// Queries per path.
    pub queries: usize,
    /// Items returned per query.
    pub k: usize,
    /// Median time of `Model::open` (map + validate), in microseconds.
    pub open_us: f64,
    /// Main-memory read bandwidth (a buffer of 1 GiB, or twice the largest cache if larger;
    /// best of three reads before the queries and three after), GB/s.
    pub memory_gbps: f64,
    /// Whether the caches were flushed before each timed query (`--cold`).
    pub cold: bool,
    /// Bytes read to flush the caches before each timed query: the main-memory buffer, at least
    /// [`eviction_bytes`] (0 when not `cold`).
    pub eviction_bytes: u64,
    /// The SIMD kernels the runtime uses on this machine ([`pocketrec::simd_kernels`]).
    pub kernels: String,
    /// Resident size of the model's mapping after open, KiB.
    pub mapping_rss_after_open_kib: u64,
    /// Resident size of the model's mapping after all queries, KiB.
    pub mapping_rss_after_queries_kib: u64,
    /// Peak resident size of the process, KiB.
    pub peak_rss_kib: u64,
    /// One entry per path.
    pub paths: Vec<PathReport>,
    /// With `--against`: the same queries on another file, interleaved with this one's.
    pub against: Option<AgainstReport>,
}

/// `bench --against OTHER`: this file and another answering the same queries through their
/// default path (`recommend`'s own choice), one query on each in turn (which file goes first
/// alternates), so that both see the same machine at the same moments: their ratio is the
/// figure to read on a noisy machine.
#[derive(Clone, Debug, Serialize)]
pub struct AgainstReport {
    /// The other file.
    pub file: String,
    /// Its size.
    pub file_bytes: u64,
    /// This file's median latency in the interleaved run, in microseconds.
    pub p50_us: f64,
    /// This file's 99th percentile in the interleaved run.
    pub p99_us: f64,
    /// The other file's median latency.
    pub other_p50_us: f64,
    /// The other file's 99th percentile.
    pub other_p99_us: f64,
    /// Queries whose answers (ids in order) are the same from both files.
    pub same_answers: usize,
}

/// Reads `buffer` once as u64 words (eight independent sums, so the loop is load-bound).
fn read_all(buffer: &[u64]) -> u64 {
    let mut sums = [0u64; 8];
    for chunk in buffer.chunks_exact(8) {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            *s = s.wrapping_add(x);
        }
    }
    sums.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// A buffer of at least `bytes` bytes (1024 words at least), every word written, so that its
/// pages are real rather than the shared zero page.
fn filled_buffer(bytes: usize) -> Vec<u64> {
    (0..(bytes / 8).max(1024) as u64).collect()
}

/// Best-of-`rounds` read bandwidth of `buffer` (read once before the timed rounds), in bytes
/// per second.
fn bandwidth_of(buffer: &[u64], rounds: usize) -> f64 {
    black_box(read_all(buffer));
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(read_all(black_box(buffer)));
        best = best.min(t.elapsed());
    }
    std::mem::size_of_val(buffer) as f64 / best.as_secs_f64()
}

/// Best-of-`rounds` read bandwidth of a `bytes`-byte buffer, in bytes per second.
pub fn read_bandwidth(bytes: usize, rounds: usize) -> f64 {
    bandwidth_of(&filled_buffer(bytes), rounds)
}

/// The size of the largest CPU cache this machine reports (Linux sysfs), if any.
fn largest_cache_bytes() -> Option<u64> {
    let mut largest = None;
    for index in 0..16 {
        let path = format!("/sys/devices/system/cpu/cpu0/cache/index{index}/size");
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let text = text.trim();
        let (digits, scale) = match text.strip_suffix('K') {
            Some(d) => (d, 1 << 10),
            None => match text.strip_suffix('M') {
                Some(d) => (d, 1 << 20),
                None => (text, 1),
            },
        };
        if let Ok(n) = digits.parse::<u64>() {
            largest = largest.max(Some(n * scale));
        }
    }
    largest
}

/// Bytes to read to flush the caches: twice the largest cache sysfs reports, at least 256 MiB
/// (where sysfs says nothing, or too little to trust), at most 8 GiB.
pub fn eviction_bytes() -> u64 {
    largest_cache_bytes()
        .map_or(0, |b| b.saturating_mul(2))
        .clamp(256 << 20, 8 << 30)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

/// The `Rss:` of the mapping starting at `start`, from /proc/self/smaps (0 where unavailable).
fn mapping_rss_kib(start: usize) -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((from, _)) = range.split_once('-')
            && let Ok(from) = usize::from_str_radix(from, 16)
        {
            inside = from == start;
            continue;
        }
        if inside && let Some(v) = line.strip_prefix("Rss:") {
            return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        }
    }
    0
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Dense user vectors to query with: the first `queries` non-empty rows of the user table,
/// or, without one, deterministic pseudo-random vectors at the item table's density.
fn query_vectors(model: &Model<Mmap>, queries: usize) -> Result<Vec<Vec<f32>>> {
    let items = model.items().map_err(|source| CliError::Model {
        path: "model".into(),
        source,
    })?;
    let dim = items.dim();
    let mut vectors = Vec::with_capacity(queries);
    if let Ok(users) = model.users() {
        for r in 0..users.rows() {
            if vectors.len() == queries {
                break;
            }
            let mut dense = vec![0.0f32; dim];
            if users.decode_row(r, &mut dense).is_ok() && dense.iter().any(|&x| x != 0.0) {
                vectors.push(dense);
            }
        }
    }
    let density = items.nnz() as f64 / (items.rows().max(1) * dim) as f64;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while vectors.len() < queries {
        let mut v = vec![0.0f32; dim];
        for x in &mut v {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if (state % 10_000) as f64 / 10_000.0 < density.max(1.0 / dim as f64) {
                *x = ((state >> 32) % 2000) as f32 / 1000.0 - 1.0;
            }
        }
        vectors.push(v);
    }
    Ok(vectors)
}

/// Runs the benchmark on the model at `path`.
///
/// With `cold`, the caches are flushed before each timed query (see the module's text).
pub fn run(
    path: &Path,
    queries: usize,
    k: usize,
    cold: bool,
    against: Option<&Path>,
) -> Result<BenchReport> {
    let model_error = |source| CliError::Model {
        path: path.to_path_buf(),
        source,
    };
    let mut open_times = Vec::new();
    for _ in 0..51 {
        let t = Instant::now();
        let model = open_model(path)?;
        open_times.push(t.elapsed());
        black_box(&model);
    }
    open_times.sort();
    let model = open_model(path)?;
    let start = model.bytes().as_ptr() as usize;
    let rss_after_open = mapping_rss_kib(start);
    let vectors = query_vectors(&model, queries)?;
    let items = model.items().map_err(model_error)?;
    let mut paths = Vec::new();
    if items.has_rows() {
        paths.push(Retrieval::Rows);
    }
    if items.has_columns() {
        paths.push(Retrieval::Columns);
        paths.push(Retrieval::Auto);
    }
    let evict_bytes = if cold { eviction_bytes() } else { 0 };
    // One buffer larger than any cache: main-memory bandwidth before and after the queries,
    // and, with `cold`, the read that flushes the caches before each timed query.
    let memory_buffer = filled_buffer((1usize << 30).max(evict_bytes as usize));
    let memory_before = bandwidth_of(&memory_buffer, 3);
    let mut out = vec![Recommendation::default(); k];
    let mut reports = Vec::new();
    for retrieval in paths {
        let mut bytes = 0.0;
        let (mut scored, mut cut, mut bounded) = (0.0, 0.0, false);
        for v in &vectors {
            let plan = model.plan(v).map_err(model_error)?;
            let chosen = match retrieval {
                Retrieval::Auto => plan.retrieval,
                other => other,
            };
            let read = match chosen {
                Retrieval::Columns if items.has_block_bounds() => {
                    // What the bounded scan read: the planner's count is that of every block.
                    let (_, stats) = model
                        .recommend_vector_stats(v, k, &[], &mut out)
                        .map_err(model_error)?;
                    scored += stats.blocks_scored as f64 / stats.blocks.max(1) as f64;
                    let active = v.iter().filter(|&&x| x != 0.0).count();
                    cut += stats.lists_cut as f64 / (stats.blocks_scored * active).max(1) as f64;
                    bounded = true;
                    Some(stats.bounded_bytes)
                }
                Retrieval::Columns => plan.column_bytes,
                _ => plan.row_bytes,
            };
            bytes += read.unwrap_or(0) as f64;
        }
        bytes /= vectors.len().max(1) as f64;
        let blocks_scored = bounded.then(|| scored / vectors.len().max(1) as f64);
        let lists_cut = bounded.then(|| cut / vectors.len().max(1) as f64);
        // Warm up: one pass over every query.
        for v in &vectors {
            black_box(
                model
                    .recommend_vector_with(v, k, &[], &mut out, retrieval)
                    .map_err(model_error)?,
            );
        }
        let mut times = Vec::with_capacity(vectors.len());
        for v in &vectors {
            if cold {
                black_box(read_all(black_box(&memory_buffer)));
            }
            let t = Instant::now();
            black_box(
                model
                    .recommend_vector_with(v, k, &[], &mut out, retrieval)
                    .map_err(model_error)?,
            );
            times.push(t.elapsed());
        }
        times.sort();
        let cached = read_bandwidth(bytes as usize, 20);
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        let floor_cached = bytes / cached * 1e6;
        reports.push(PathReport {
            path: match retrieval {
                Retrieval::Rows => "rows",
                Retrieval::Columns => "columns",
                _ => "auto",
            }
            .to_string(),
            p50_us: p50,
            p99_us: p99,
            bytes_per_query: bytes,
            // Set below, once the bandwidth after the queries is known.
            floor_memory_us: 0.0,
            floor_cached_us: floor_cached,
            p50_over_memory_floor: 0.0,
            p50_over_cached_floor: p50 / floor_cached,
            blocks_scored,
            lists_cut,
            latencies_us: times.iter().map(|t| t.as_secs_f64() * 1e6).collect(),
        });
    }
    // Measured again after the queries, and the faster of the two kept: a neighbour's burst
    // during one measurement (seen on shared machines: 7.0 against 15.0 GB/s) would otherwise
    // loosen every floor of the run.
    let memory = memory_before.max(bandwidth_of(&memory_buffer, 3));
    for p in &mut reports {
        p.floor_memory_us = p.bytes_per_query / memory * 1e6;
        p.p50_over_memory_floor = p.p50_us / p.floor_memory_us;
    }
    let against = match against {
        Some(other) => Some(interleaved(
            &model,
            path,
            other,
            &vectors,
            k,
            cold,
            &memory_buffer,
        )?),
        None => None,
    };
    Ok(BenchReport {
        file_bytes: model.bytes().len() as u64,
        queries: vectors.len(),
        k,
        open_us: percentile(&open_times, 0.5),
        memory_gbps: memory / 1e9,
        cold,
        eviction_bytes: if cold {
            std::mem::size_of_val(memory_buffer.as_slice()) as u64
        } else {
            0
        },
        kernels: pocketrec::simd_kernels().to_string(),
        mapping_rss_after_open_kib: rss_after_open,
        mapping_rss_after_queries_kib: mapping_rss_kib(start),
        peak_rss_kib: peak_rss_kib(),
        paths: reports,
        against,
    })
}

/// The `--against` run: `vectors` on `model` and on the file at `other` in turn (see
/// [`AgainstReport`]), after one warm-up pass on each.
fn interleaved(
    model: &Model<Mmap>,
    path: &Path,
    other: &Path,
    vectors: &[Vec<f32>],
    k: usize,
    cold: bool,
    memory_buffer: &[u64],
) -> Result<AgainstReport> {
    let other_model = open_model(other)?;
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Model { path, source }
    };
    let dim = |m: &Model<Mmap>, path: &Path| m.items().map(|t| t.dim()).map_err(error(path));
    let (ours, theirs) = (dim(model, path)?, dim(&other_model, other)?);
    if ours != theirs {
        return Err(CliError::Usage(format!(
            "--against {}: its items have dimension {theirs}, this model's {ours}",
            other.display()
        )));
    }
    let mut out = vec![Recommendation::default(); k];
    let mut answer = |m: &Model<Mmap>, v: &[f32], path: &Path| -> Result<(Duration, Vec<u64>)> {
        if cold {
            black_box(read_all(black_box(memory_buffer)));
        }
        let t = Instant::now();
        let n = black_box(
            m.recommend_vector(v, k, &[], &mut out)
                .map_err(error(path))?,
        );
        let elapsed = t.elapsed();
        Ok((elapsed, out[..n].iter().map(|r| r.id).collect()))
    };
    for v in vectors {
        answer(model, v, path)?;
        answer(&other_model, v, other)?;
    }
    let (mut mine, mut others, mut same) = (Vec::new(), Vec::new(), 0);
    for (i, v) in vectors.iter().enumerate() {
        let (a, b) = if i % 2 == 0 {
            let a = answer(model, v, path)?;
            (a, answer(&other_model, v, other)?)
        } else {
            let b = answer(&other_model, v, other)?;
            (answer(model, v, path)?, b)
        };
        same += usize::from(a.1 == b.1);
        mine.push(a.0);
        others.push(b.0);
    }
    mine.sort();
    others.sort();
    Ok(AgainstReport {
        file: other.display().to_string(),
        file_bytes: other_model.bytes().len() as u64,
        p50_us: percentile(&mine, 0.5),
        p99_us: percentile(&mine, 0.99),
        other_p50_us: percentile(&others, 0.5),
        other_p99_us: percentile(&others, 0.99),
        same_answers: same,
    })
}

impl BenchReport {
    /// The latency distribution of each path, as `bench --plot` draws it: for each latency, the
    /// fraction of queries at most that long.
    pub fn latency_panel(&self) -> crate::plot::Panel {
        crate::plot::Panel::Lines(crate::plot::Lines {
            title: format!(
                "recommend latency, {} queries per path, k = {}{}",
                self.queries,
                self.k,
                if self.cold { ", cold caches" } else { "" }
            ),
            series: self
                .paths
                .iter()
                .map(|p| {
                    let n = p.latencies_us.len().max(1) as f64;
                    let points = p
                        .latencies_us
                        .iter()
                        .enumerate()
                        .map(|(i, &us)| (us, (i + 1) as f64 / n))
                        .collect();
                    (p.path.clone(), points)
                })
                .collect(),
            x_label: "latency (us)".into(),
            y_label: "fraction of queries".into(),
        })
    }

    /// The text printed without `--json`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} bytes, {} queries, k = {}; open {:.1} us (median of 51); main-memory read bandwidth {:.1} GB/s; kernels {}\n",
            self.file_bytes, self.queries, self.k, self.open_us, self.memory_gbps, self.kernels
        );
        if self.cold {
            s.push_str(&format!(
                "cold: the caches flushed before each query by reading {} MiB\n",
                self.eviction_bytes >> 20
            ));
        }
        s.push_str(&format!(
            "mapping resident: {} KiB after open, {} KiB after the queries; peak process RSS {} KiB\n\n",
            self.mapping_rss_after_open_kib, self.mapping_rss_after_queries_kib, self.peak_rss_kib
        ));
        s.push_str("path        p50 us     p99 us   bytes/query   floor(mem) us   p50/floor   floor(cache) us   p50/floor\n");
        for p in &self.paths {
            s.push_str(&format!(
                "{:<8} {:>9.1}  {:>9.1}  {:>12.0}  {:>14.1}  {:>10.2}  {:>16.1}  {:>10.2}\n",
                p.path,
                p.p50_us,
                p.p99_us,
                p.bytes_per_query,
                p.floor_memory_us,
                p.p50_over_memory_floor,
                p.floor_cached_us,
                p.p50_over_cached_floor
            ));
        }
        for p in &self.paths {
            if let Some(scored) = p.blocks_scored {
                s.push_str(&format!(
                    "{}: block bounds skipped {:.1} % of the item blocks (scored {:.1} %)",
                    p.path,
                    100.0 * (1.0 - scored),
                    100.0 * scored
                ));
                if let Some(cut) = p.lists_cut.filter(|&c| c > 0.0) {
                    s.push_str(&format!(
                        "; {:.1} % of the scored blocks' lists left unread",
                        100.0 * cut
                    ));
                }
                s.push('\n');
            }
        }
        if let Some(a) = &self.against {
            s.push_str(&format!(
                "\nagainst {} ({} bytes), the same {} queries in turn, each file's default path:\n\
                 this file p50 {:.1} us, p99 {:.1} us; the other p50 {:.1} us, p99 {:.1} us; \
                 the other / this: p50 {:.2}x, p99 {:.2}x; same answers for {} of {} queries\n",
                a.file,
                a.file_bytes,
                self.queries,
                a.p50_us,
                a.p99_us,
                a.other_p50_us,
                a.other_p99_us,
                a.other_p50_us / a.p50_us,
                a.other_p99_us / a.p99_us,
                a.same_answers,
                self.queries
            ));
        }
        s
    }
}
