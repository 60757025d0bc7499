//! Full-catalogue retrieval, two ways:
//!
//! - the **row scan** reads every item row and scores it against the dense user vector;
//! - the **column scan** (tables with a column layout, format 1.1) reads, for each block of
//!   item rows, only the posting lists of the user's non-zero dimensions, accumulating partial
//!   dot products in a block-sized accumulator on the stack, then scores the block.
//!
//! Both sum each item's products in increasing dimension order from 0, so they give the same
//! scores, bit for bit, and the same top-k. [`Model::plan`] picks the one that reads fewer
//! bytes, weighted by what a byte costs each way: a byte of a `u16` posting list counts
//! [`U16_LIST_BYTE_QUARTERS`] quarters of a row byte (the column scan reads its entries faster
//! than the row scan reads its own), the bitmaps of bitmap posting lists
//! [`BITMAP_BYTE_WEIGHT`] times (their work goes with the rows they cover, not with their
//! bytes).

use crate::bounds::{BlockBounds, BoundQuery, CHUNK_BLOCKS};
use crate::columns::{ColumnView, ListRowBytes, PostingList};
use crate::error::{Error, Result};
use crate::format::{
    IndexEncoding, ListRows, OffsetWidth, SLICE_WINDOW_ROWS, Scoring, ValueEncoding,
};
use crate::kernels;
#[cfg(feature = "std")]
use crate::kernels::lanes::LANES;
use crate::le;
use crate::model::Model;
use crate::score::{MAX_STACK_DIM, Query, score_row};
use crate::sliced::{SlicedRows, window_count};
use crate::table::Table;
use crate::topk::{Recommendation, TopK};

/// Chunks of [`CHUNK_BLOCKS`] blocks whose highest bounds the bounded column scan orders on the
/// stack (8 KiB): 65,536 blocks, 16.7M rows in blocks of 256. Tables with more chunks are
/// scanned chunk by chunk in file order.
const MAX_CHUNKS: usize = 1024;

/// Rows per batch of the row-scan kernel.
const ROW_BATCH: usize = 256;

/// Rows per kernel call over bitmap rows in blocks (format 1.7): the row offsets of this many
/// rows are worked out on the stack (`4 * (KERNEL_CHUNK_ROWS + 1)` bytes), then the kernel runs
/// over them as over a table's own. One block: 68 bytes, which a microcontroller's query stack
/// carries whatever its tables (256 rows scanned about 4 % faster on x86 for 1 KiB more).
const KERNEL_CHUNK_ROWS: usize = crate::format::BITMAP_BLOCK_ROWS;

/// Largest column block the column scan accumulates on the stack (`4 * 4096` bytes); every
/// table without row records has blocks at most this large (checked at open).
pub const MAX_STACK_BLOCK_ROWS: usize = crate::format::MAX_COLUMNS_ONLY_BLOCK_ROWS as usize;

/// How `recommend` reads the item table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Retrieval {
    /// Whichever reads fewer bytes for this query, weighted by what a byte costs each way (see
    /// [`Model::plan`]).
    #[default]
    Auto,
    /// Scan every item row.
    Rows,
    /// Accumulate over the posting lists of the user's non-zero dimensions (needs a table
    /// written with a column layout).
    Columns,
}

/// How many bytes of row data each byte of a bitmap posting list (format 1.3) counts for when
/// [`Model::plan`] chooses: a bitmap costs the column scan one vector step per 16 rows of each
/// list, whatever the list's length, so a dense user costs far more than its bytes say.
/// Calibrated on 1M items at 10 %, d = 64 (docs/BENCHMARKS.md): the row scan and the bitmap
/// column scan take the same time at about 25 of 64 user dimensions with f16 values (a weight
/// of 5.9 puts the switch there) and at about 49 with f32 (2.7); 4 keeps both choices within
/// 1.35 times of the faster path.
pub const BITMAP_BYTE_WEIGHT: u64 = 4;

/// What a byte of a `u16` posting list (its rows and values) costs when [`Model::plan`]
/// chooses, in quarters of a byte of row data: 3, so a list byte counts 0.75. The column scan
/// adds a posting entry in less time than the row scan takes for a row entry, so a dense user,
/// whose lists hold 1.07 to 1.13 times the row data's bytes, is still answered faster by the
/// columns. Measured with fully dense users on 1M items at 10 %, d = 64 (docs/BENCHMARKS.md):
/// per byte read, the column scan took 0.48 (f32), 0.81 (f16), 0.83 (bf16) and 0.64 (int8)
/// times as long as the row scan, and was 1.09 to 1.94 times faster in all; weighted by 3/4,
/// all four take the columns, where counted byte for byte they took the rows. (On the AMD
/// EPYC of an earlier measurement the f16 column scan of a dense user was 3 % slower than the
/// row scan, 3.68 against 3.58 ms, and the f32 one 1.75 times faster: the weight's worst case
/// there is that 3 %.)
pub const U16_LIST_BYTE_QUARTERS: u64 = 3;

/// What a query would read each way, and the way `Auto` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    /// `Rows` or `Columns`: the cheaper way.
    pub retrieval: Retrieval,
    /// Bytes the row scan reads: row offsets, row records, biases. `None` for a table
    /// without row records.
    pub row_bytes: Option<u64>,
    /// Bytes the column scan reads: the posting lists of the user's non-zero dimensions, their
    /// offsets, and the per-row arrays it needs (biases, norms, scales). `None` without a
    /// usable column layout.
    pub column_bytes: Option<u64>,
}

/// The column layout of the item table, if it has one the column scan can use.
fn column_view<'a>(items: &Table<'a>) -> Option<ColumnView<'a>> {
    items
        .columns()
        .filter(|c| c.block_rows <= MAX_STACK_BLOCK_ROWS)
}

fn row_bytes(items: &Table<'_>) -> u64 {
    (items.offsets_bytes() + items.data_bytes() + items.bias_bytes()) as u64
}

/// The bitmap bytes among [`column_bytes`] (0 for u16 lists).
fn bitmap_bytes(columns: &ColumnView<'_>, query: &Query<'_>) -> u64 {
    match columns.list_rows {
        ListRows::U16 => 0,
        ListRows::Bitmap => {
            let active = query.vector.iter().filter(|x| **x != 0.0).count() as u64;
            active * columns.blocks as u64 * (columns.block_rows / 8) as u64
        }
    }
}

/// The bytes the column scan reads for `query`: (the posting lists, everything else).
fn column_bytes(items: &Table<'_>, columns: &ColumnView<'_>, query: &Query<'_>) -> (u64, u64) {
    let active = query.vector.iter().filter(|x| **x != 0.0).count() as u64;
    let mut lists = 0u64;
    for block in 0..columns.blocks {
        for (dim, x) in query.vector.iter().enumerate() {
            if *x != 0.0 {
                lists += columns.list_bytes(block, dim);
            }
        }
    }
    let offsets = columns.blocks as u64 * active * 2 * items.offset_width().bytes() as u64;
    let rest = offsets + columns.per_row_bytes() + items.bias_bytes() as u64;
    (lists, rest)
}

impl<S: AsRef<[u8]>> Model<S> {
    /// How `recommend` would answer for the dense user vector `user_vector`: the bytes each way
    /// would read and the way it takes.
    pub fn plan(&self, user_vector: &[f32]) -> Result<QueryPlan> {
        let items = self.items()?;
        let query = Query::new(user_vector, 0.0);
        Ok(self.plan_query(&items, &query))
    }

    /// Never inlined: its column view and counts stay off the stack of the row scan that
    /// follows it (the Cortex-M4F firmware measures that stack).
    #[inline(never)]
    pub(crate) fn plan_query(&self, items: &Table<'_>, query: &Query<'_>) -> QueryPlan {
        let row_bytes = items.has_rows().then(|| row_bytes(items));
        // (bytes, weighted bytes)
        let columns = column_view(items).map(|c| {
            let (lists, rest) = column_bytes(items, &c, query);
            let bytes = lists.saturating_add(rest);
            let cost = match c.list_rows {
                ListRows::U16 => rest.saturating_add(lists / 4 * U16_LIST_BYTE_QUARTERS),
                ListRows::Bitmap => bytes.saturating_add(
                    (BITMAP_BYTE_WEIGHT - 1).saturating_mul(bitmap_bytes(&c, query)),
                ),
            };
            (bytes, cost)
        });
        let (column_bytes, column_cost) = (columns.map(|c| c.0), columns.map(|c| c.1));
        let retrieval = match (row_bytes, column_cost) {
            (Some(r), Some(c)) if c < r => Retrieval::Columns,
            (None, Some(_)) => Retrieval::Columns,
            _ => Retrieval::Rows,
        };
        QueryPlan {
            retrieval,
            row_bytes,
            column_bytes,
        }
    }

    /// Top-k over the whole item table for `query`, the way `retrieval` says.
    pub(crate) fn scan(
        &self,
        query: &Query<'_>,
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
        retrieval: Retrieval,
    ) -> Result<usize> {
        self.scan_counting(
            query,
            k,
            exclude,
            out,
            retrieval,
            &mut ScanStats::default(),
            false,
        )
    }

    /// [`Self::scan`], counting the blocks of the column scan in `stats` (and, with
    /// `count_bytes`, the bytes a bounded scan reads).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan_counting(
        &self,
        query: &Query<'_>,
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
        retrieval: Retrieval,
        stats: &mut ScanStats,
        count_bytes: bool,
    ) -> Result<usize> {
        let available = out.len() as u64;
        let out = out.get_mut(..k).ok_or(Error::BufferTooSmall {
            needed: k as u64,
            actual: available,
        })?;
        let items = self.items()?;
        if query.vector.len() != items.dim() {
            return Err(Error::DimensionMismatch {
                expected: items.dim() as u64,
                actual: query.vector.len() as u64,
            });
        }
        if k == 0 {
            return Ok(0);
        }
        let retrieval = match retrieval {
            // Without row records there is nothing to weigh: the columns it is (and no pass
            // over the list offsets to count their bytes).
            Retrieval::Auto if !items.has_rows() => Retrieval::Columns,
            Retrieval::Auto => self.plan_query(&items, query).retrieval,
            other => other,
        };
        match retrieval {
            Retrieval::Columns => {
                let columns =
                    column_view(&items).ok_or(Error::MissingTable("column layout for the item"))?;
                match items.bounds() {
                    Some(bounds) if bounds.block_rows == columns.block_rows => self
                        .scan_columns_bounded(
                            &items,
                            &columns,
                            &bounds,
                            query,
                            exclude,
                            TopK::new(out),
                            stats,
                            count_bytes,
                        ),
                    _ => {
                        stats.blocks = columns.blocks;
                        stats.blocks_scored = columns.blocks;
                        self.scan_columns(&items, &columns, query, exclude, TopK::new(out))
                    }
                }
            }
            _ if !items.has_rows() => Err(Error::RowsNotStored { role: items.role() }),
            _ => match items.sliced() {
                Some(sliced) => self.scan_sliced(&items, &sliced, query, exclude, TopK::new(out)),
                None => self.scan_rows(&items, query, exclude, TopK::new(out)),
            },
        }
    }

    /// Always inlined into [`Self::scan`]: its frame (the batch of dot products) then shares
    /// the caller's, which keeps the firmware's measured stack down (280 B when LTO chose
    /// otherwise).
    #[inline(always)]
    fn scan_rows(
        &self,
        items: &Table<'_>,
        query: &Query<'_>,
        exclude: &[u64],
        mut top: TopK<'_>,
    ) -> Result<usize> {
        let (scoring, global_bias) = (self.scoring(), self.global_bias());
        let kernel = row_kernel(scoring, items);
        if let Some(kernel) = kernel {
            // Dot products a batch at a time from the row-scan kernel, then scores.
            let mut dots = [0.0f32; ROW_BATCH];
            let mut first = 0;
            while first < items.rows() {
                let batch = &mut dots[..ROW_BATCH.min(items.rows() - first)];
                prefetch_rows(items, first, first + batch.len());
                run_row_kernel(kernel, query.vector, items, first, batch).map_err(
                    |bad| match items.row(bad) {
                        Err(e) => e,
                        Ok(_) => Error::CorruptRow {
                            role: items.role(),
                            row: bad as u64,
                            reason: "row offsets are out of order or past the row data",
                        },
                    },
                )?;
                let pass = finish_scores(batch, query, items.raw_bias(), first, global_bias);
                offer_all(&mut top, items, exclude, first, batch, pass)?;
                first += batch.len();
            }
            return Ok(top.finish());
        }
        for index in 0..items.rows() {
            let row = items.row(index)?;
            let score = score_row(scoring, query, &row, items.bias(index)?, global_bias);
            offer_all(&mut top, items, exclude, index, &[score], Finish::Done)?;
        }
        Ok(top.finish())
    }

    /// Whether [`Self::scan`] would answer `query` with a row scan under [`Retrieval::Auto`]:
    /// then [`Self::scan_rows_many`] may answer it beside other users.
    #[cfg(feature = "std")]
    pub(crate) fn scans_rows(&self, items: &Table<'_>, query: &Query<'_>) -> bool {
        items.has_rows()
            && query.vector.len() == items.dim()
            && self.plan_query(items, query).retrieval == Retrieval::Rows
    }

    /// The row scan of [`Self::scan`] for several users at once: each batch of item rows is
    /// read from memory once and scored for every user while it is in the cache, by the same
    /// kernels in the same order as one user's scan, so each user's top-k in `tops` is the one
    /// [`Self::scan`] gives them, bit for bit. A large item table is read once per group of
    /// users instead of once per user: what makes `eval` of a dense model fast.
    ///
    /// `queries[g]` (each of the item table's dimension, see [`Self::scans_rows`]) excludes
    /// `excludes[g]` and fills `tops[g]`, a buffer of its `k` slots; returns the count of each
    /// in `counts`.
    #[cfg(feature = "std")]
    pub(crate) fn scan_rows_many(
        &self,
        items: &Table<'_>,
        queries: &[Query<'_>],
        excludes: &[&[u64]],
        tops: &mut [&mut [Recommendation]],
        counts: &mut [usize],
    ) -> Result<()> {
        let (scoring, global_bias) = (self.scoring(), self.global_bias());
        let kernel = row_kernel(scoring, items);
        let mut selections: std::vec::Vec<TopK<'_>> =
            tops.iter_mut().map(|t| TopK::new(t)).collect();
        if let Some(sliced) = items.sliced() {
            let mut dots = [0.0f32; SLICE_WINDOW_ROWS];
            for window in 0..window_count(items.rows()) {
                let first = window * SLICE_WINDOW_ROWS;
                for ((query, top), exclude) in queries.iter().zip(&mut selections).zip(excludes) {
                    let batch = &mut dots[..sliced.window_rows(window)];
                    match scoring {
                        Scoring::Dot => sliced.dots(window, query.vector, batch)?,
                        Scoring::Cosine => {
                            sliced.cosines(window, query.vector, query.norm, batch)?
                        }
                    }
                    let pass = finish_scores(batch, query, items.raw_bias(), first, global_bias);
                    offer_all(top, items, exclude, first, batch, pass)?;
                }
            }
        } else if let Some(kernel) = kernel {
            // f32 rows: the users in SIMD lanes ([`kernels::lanes`]), each batch of rows
            // decoded once. Other encodings: the single-user kernel per user, while the batch
            // is in the cache.
            let lane_groups: std::vec::Vec<std::vec::Vec<[f32; LANES]>> =
                if items.value_encoding() == ValueEncoding::F32 {
                    queries.chunks(LANES).map(transpose).collect()
                } else {
                    std::vec::Vec::new()
                };
            let mut dots = std::vec![[0.0f32; ROW_BATCH]; queries.len()];
            let mut entries = DecodedRows::default();
            let mut first = 0;
            while first < items.rows() {
                let rows = ROW_BATCH.min(items.rows() - first);
                prefetch_rows(items, first, first + rows);
                let bad_row = |bad: usize| match items.row(bad) {
                    Err(e) => e,
                    Ok(_) => Error::CorruptRow {
                        role: items.role(),
                        row: bad as u64,
                        reason: "row offsets are out of order or past the row data",
                    },
                };
                for (g, (query, batch)) in queries.iter().zip(&mut dots).enumerate() {
                    if g > 0 && !lane_groups.is_empty() {
                        break;
                    }
                    // With lanes, the first user's kernel run checks the batch's rows as a
                    // scan of its own would (its dot products are computed again below).
                    run_row_kernel(kernel, query.vector, items, first, &mut batch[..rows])
                        .map_err(bad_row)?;
                }
                if !lane_groups.is_empty() {
                    entries.decode(items, first, rows)?;
                    for (group, lanes) in lane_groups.iter().enumerate() {
                        let users = &mut dots[group * LANES..];
                        for r0 in (0..rows).step_by(4) {
                            let four = kernels::lanes::dots4(
                                lanes,
                                core::array::from_fn(|r| entries.row(r0 + r)),
                            );
                            for (r, sums) in four.iter().enumerate().take(rows - r0) {
                                for (user, &sum) in users.iter_mut().zip(sums) {
                                    user[r0 + r] = sum;
                                }
                            }
                        }
                    }
                }
                for (((query, top), exclude), batch) in queries
                    .iter()
                    .zip(&mut selections)
                    .zip(excludes)
                    .zip(&mut dots)
                {
                    let batch = &mut batch[..rows];
                    let pass = finish_scores(batch, query, items.raw_bias(), first, global_bias);
                    offer_all(top, items, exclude, first, batch, pass)?;
                }
                first += rows;
            }
        } else {
            for ((query, top), exclude) in queries.iter().zip(&mut selections).zip(excludes) {
                for index in 0..items.rows() {
                    let row = items.row(index)?;
                    let score = score_row(scoring, query, &row, items.bias(index)?, global_bias);
                    offer_all(top, items, exclude, index, &[score], Finish::Done)?;
                }
            }
        }
        for (top, count) in selections.into_iter().zip(counts) {
            *count = top.finish();
        }
        Ok(())
    }

    /// The row scan of a table of sliced rows (format 1.4): a batch of rows at a time, each
    /// slice's sixteen dot products from [`SlicedRows::dots`] (or its cosines), then scores.
    #[inline(never)]
    fn scan_sliced(
        &self,
        items: &Table<'_>,
        sliced: &SlicedRows<'_>,
        query: &Query<'_>,
        exclude: &[u64],
        mut top: TopK<'_>,
    ) -> Result<usize> {
        let (scoring, global_bias) = (self.scoring(), self.global_bias());
        let mut dots = [0.0f32; SLICE_WINDOW_ROWS];
        for window in 0..window_count(items.rows()) {
            let first = window * SLICE_WINDOW_ROWS;
            let batch = &mut dots[..sliced.window_rows(window)];
            match scoring {
                Scoring::Dot => sliced.dots(window, query.vector, batch)?,
                Scoring::Cosine => sliced.cosines(window, query.vector, query.norm, batch)?,
            }
            let pass = finish_scores(batch, query, items.raw_bias(), first, global_bias);
            offer_all(&mut top, items, exclude, first, batch, pass)?;
        }
        Ok(top.finish())
    }

    /// Never inlined: its accumulator block (16 KiB) is on the stack only while it runs, not
    /// in the frame of every query that scans rows.
    #[inline(never)]
    fn scan_columns(
        &self,
        items: &Table<'_>,
        columns: &ColumnView<'_>,
        query: &Query<'_>,
        exclude: &[u64],
        mut top: TopK<'_>,
    ) -> Result<usize> {
        let mut active_dims = [0u16; MAX_STACK_DIM];
        let mut n_active = 0;
        for (dim, x) in query.vector.iter().enumerate() {
            if *x != 0.0 {
                // The vector's length is the table's dimension, at most MAX_STACK_DIM here.
                *active_dims
                    .get_mut(n_active)
                    .ok_or(Error::DimensionTooLarge {
                        dim: query.vector.len() as u64,
                        max: MAX_STACK_DIM as u64,
                    })? = dim as u16;
                n_active += 1;
            }
        }
        let active_dims = &active_dims[..n_active];
        let mut accumulator = [0.0f32; MAX_STACK_BLOCK_ROWS];
        for block in 0..columns.blocks {
            let block = ColumnBlock { columns, block };
            self.score_column_block(
                items,
                block,
                active_dims,
                query,
                exclude,
                &mut top,
                &mut accumulator,
                true,
                None,
                None,
            )?;
        }
        Ok(top.finish())
    }

    /// Scores block `block` of the column layout and offers its rows (`in_order`: no block
    /// after it has been offered yet, so a tie with the k-th score cannot enter).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn score_column_block(
        &self,
        items: &Table<'_>,
        block: ColumnBlock<'_, '_>,
        active_dims: &[u16],
        query: &Query<'_>,
        exclude: &[u64],
        top: &mut TopK<'_>,
        accumulator: &mut [f32; MAX_STACK_BLOCK_ROWS],
        in_order: bool,
        bytes_read: Option<&mut u64>,
        cutoff: Option<(&BlockCutoff<'_>, &mut usize)>,
    ) -> Result<()> {
        let ColumnBlock { columns, block } = block;
        let (scoring, global_bias) = (self.scoring(), self.global_bias());
        let acc = accumulator
            .get_mut(..columns.rows_in_block(block))
            .ok_or(corrupt_entry(columns))?;
        let (complete, lists) = match (columns.list_rows, cutoff) {
            (ListRows::U16, Some((cutoff, cut))) => {
                let mut lists = active_dims.len();
                let complete =
                    add_u16_lists_until(acc, columns, block, active_dims, query, |at, acc| {
                        let go_on = cutoff.reachable(at, largest(acc), top.threshold());
                        if !go_on {
                            lists = at + 1;
                        }
                        go_on
                    })?;
                *cut += active_dims.len() - lists;
                (complete, lists)
            }
            (ListRows::U16, None) => {
                add_u16_lists(acc, columns, block, active_dims, query)?;
                (true, active_dims.len())
            }
            (ListRows::Bitmap, _) => {
                add_bitmap_lists(acc, columns, block, active_dims, query)?;
                (true, active_dims.len())
            }
        };
        if let Some(bytes) = bytes_read {
            let offsets = 2 * columns.offset_width.bytes() as u64;
            for &dim in &active_dims[..lists] {
                *bytes += columns.list_bytes(block, usize::from(dim)) + offsets;
            }
        }
        if !complete {
            return Ok(()); // no row of the block can reach the k-th score
        }
        let base = block * columns.block_rows;
        block_similarities(acc, base, columns, query, scoring)?;
        let pass = finish_scores(acc, query, items.raw_bias(), base, global_bias);
        offer(top, items, exclude, base, acc, pass, in_order)
    }

    /// The column scan with block bounds: the bounds computed [`CHUNK_BLOCKS`] blocks at a
    /// time; the chunks taken from the highest bound down (up to [`MAX_CHUNKS`] of them, in
    /// file order past that), the first one's blocks from the highest bound down, and every
    /// block whose bound is not below the k-th score found so far scored; a chunk whose
    /// highest bound is below it ends the scan: no block left can then hold a top-k item.
    /// Each bound is computed once, and again for the few chunks that are scored.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn scan_columns_bounded(
        &self,
        items: &Table<'_>,
        columns: &ColumnView<'_>,
        bounds: &BlockBounds<'_>,
        query: &Query<'_>,
        exclude: &[u64],
        mut top: TopK<'_>,
        stats: &mut ScanStats,
        count_bytes: bool,
    ) -> Result<usize> {
        let dim = query.vector.len();
        let too_large = || Error::DimensionTooLarge {
            dim: dim as u64,
            max: MAX_STACK_DIM as u64,
        };
        let mut dims = [0u16; MAX_STACK_DIM];
        let mut weights = [0.0f32; MAX_STACK_DIM];
        let mut active = 0;
        for (j, &x) in query.vector.iter().enumerate() {
            if x != 0.0 {
                *dims.get_mut(active).ok_or_else(too_large)? = j as u16;
                weights[active] = x * bounds.scale(j);
                active += 1;
            }
        }
        let cosine = self.scoring() == Scoring::Cosine;
        let fixed_bias = query.bias + self.global_bias();
        let bound_query = BoundQuery {
            dims: &dims[..active],
            weights: &weights[..active],
            divisor: if cosine { query.norm } else { 1.0 },
            fixed_bias,
            fixed_bias_magnitude: magnitude(query.bias) + magnitude(self.global_bias()),
            relative_error: crate::bounds::relative_error(dim),
        };
        let mut accumulator = [0.0f32; MAX_STACK_BLOCK_ROWS];
        let active_dims = &dims[..active];
        stats.blocks = columns.blocks;
        // The bounds of the query's dimensions: two codes a block each.
        stats.bounded_bytes = (active * (2 * bounds.blocks + 4)) as u64;
        let mut uncounted = 0u64;
        let counted = if count_bytes {
            &mut stats.bounded_bytes
        } else {
            &mut uncounted
        };
        let usable = !(cosine && !(query.norm > 0.0 && query.norm.is_finite()))
            && fixed_bias.is_finite()
            && bounds.blocks == columns.blocks;
        if !usable {
            for block in 0..columns.blocks {
                let block = ColumnBlock { columns, block };
                self.score_column_block(
                    items,
                    block,
                    active_dims,
                    query,
                    exclude,
                    &mut top,
                    &mut accumulator,
                    true,
                    Some(&mut *counted).filter(|_| count_bytes),
                    None,
                )?;
            }
            stats.blocks_scored = columns.blocks;
            return Ok(top.finish());
        }
        // Every chunk's highest bound, then the chunks from the highest down: the first ones
        // raise the k-th score early, and a chunk whose highest bound is below it ends the
        // scan. Past MAX_CHUNKS chunks (a bounded stack), the chunks in file order instead.
        let chunks = columns.blocks.div_ceil(CHUNK_BLOCKS);
        let ordered = chunks <= MAX_CHUNKS;
        let mut order = [(0.0f32, 0u32); MAX_CHUNKS];
        let mut chunk = [0.0f32; CHUNK_BLOCKS];
        let size = |c: usize| CHUNK_BLOCKS.min(columns.blocks - c * CHUNK_BLOCKS);
        if ordered {
            for (c, slot) in order.iter_mut().enumerate().take(chunks) {
                let chunk = &mut chunk[..size(c)];
                bounds.chunk(&bound_query, c * CHUNK_BLOCKS, chunk);
                let highest = chunk.iter().fold(f32::NEG_INFINITY, |m, &b| m.max(b));
                *slot = (highest, c as u32);
            }
            order[..chunks].sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        }
        // Dot-product models with float values can also give a block up part way through its
        // lists (see [`BlockCutoff`]).
        let cutoff_applies = columns.list_rows == ListRows::U16
            && !cosine
            && matches!(
                columns.encoding,
                ValueEncoding::F32 | ValueEncoding::F16 | ValueEncoding::Bf16
            );
        let magnitude = bound_query.magnitude();
        let mut rest = [0.0f32; MAX_STACK_DIM];
        let mut lists_cut = 0;
        let mut scored = 0;
        for i in 0..chunks {
            let (highest, c) = match order.get(i).filter(|_| ordered) {
                Some(&(highest, c)) => (highest, c as usize),
                None => (f32::INFINITY, i),
            };
            if top.threshold().is_some_and(|t| highest < t) {
                break; // every later chunk's bounds are lower still
            }
            let n = size(c);
            // This chunk's list offsets (the first visit), and the next chunk's, are asked for
            // now: a block's lists are found through them.
            if i == 0 {
                prefetch_chunk_offsets(columns, c, active_dims);
            }
            if let Some(&(_, next)) = order.get(i + 1).filter(|_| ordered && i + 1 < chunks) {
                prefetch_chunk_offsets(columns, next as usize, active_dims);
            }
            let chunk = &mut chunk[..n];
            bounds.chunk(&bound_query, c * CHUNK_BLOCKS, chunk);
            // The first chunk's blocks highest bound first, to set the k-th score; the others'
            // in file order (sorting them costs more than it saves).
            let mut blocks = [0u8; CHUNK_BLOCKS];
            for (k, slot) in blocks.iter_mut().enumerate() {
                *slot = k as u8;
            }
            let blocks = &mut blocks[..n];
            if i == 0 {
                blocks.sort_unstable_by(|&a, &b| {
                    chunk[usize::from(b)]
                        .total_cmp(&chunk[usize::from(a)])
                        .then(a.cmp(&b))
                });
            }
            // The blocks that can still be scored (the k-th score only rises): their lists are
            // asked for LOOKAHEAD_BLOCKS blocks ahead of the one being scored, so that the
            // misses of several blocks overlap instead of each block waiting for its own.
            let passes = |bound: f32, threshold: Option<f32>| threshold.is_none_or(|t| bound >= t);
            let threshold = top.threshold();
            let mut candidates = 0;
            for slot in 0..blocks.len() {
                let k = blocks[slot];
                if !passes(chunk[usize::from(k)], threshold) {
                    if i == 0 {
                        break; // sorted: the rest are lower
                    }
                    continue;
                }
                blocks[candidates] = k;
                candidates += 1;
            }
            let blocks = &blocks[..candidates];
            let base_block = c * CHUNK_BLOCKS;
            // The lists of a block that will likely be read: with a cutoff, those up to the
            // first after which even a partial sum of 0 would give the block up (a hint only).
            let likely_read = |block: usize, rest: &mut [f32], threshold: Option<f32>| -> usize {
                let cutoff = match threshold {
                    Some(_) if cutoff_applies => {
                        BlockCutoff::new(bounds, &bound_query, magnitude, block, rest)
                    }
                    _ => None,
                };
                cutoff
                    .and_then(|c| (0..active).find(|&at| !c.reachable(at, 0.0, threshold)))
                    .map_or(active, |at| (at + 2).min(active))
            };
            for &k in blocks.iter().take(LOOKAHEAD_BLOCKS) {
                let block = base_block + usize::from(k);
                let lists = likely_read(block, &mut rest[..active], top.threshold());
                prefetch_block_lists(columns, block, &active_dims[..lists]);
            }
            for (position, &k) in blocks.iter().enumerate() {
                if let Some(&ahead) = blocks.get(position + LOOKAHEAD_BLOCKS) {
                    let block = base_block + usize::from(ahead);
                    let lists = likely_read(block, &mut rest[..active], top.threshold());
                    prefetch_block_lists(columns, block, &active_dims[..lists]);
                }
                if !passes(chunk[usize::from(k)], top.threshold()) {
                    continue;
                }
                let block = base_block + usize::from(k);
                let cutoff = if cutoff_applies {
                    BlockCutoff::new(bounds, &bound_query, magnitude, block, &mut rest[..active])
                } else {
                    None
                };
                self.score_column_block(
                    items,
                    ColumnBlock { columns, block },
                    active_dims,
                    query,
                    exclude,
                    &mut top,
                    &mut accumulator,
                    false,
                    Some(&mut *counted).filter(|_| count_bytes),
                    cutoff.as_ref().map(|c| (c, &mut lists_cut)),
                )?;
                scored += 1;
            }
        }
        stats.blocks_scored = scored;
        stats.lists_cut = lists_cut;
        Ok(top.finish())
    }
}

/// How many blocks ahead of the one it scores the bounded column scan asks for the posting
/// lists of the blocks it will score next.
const LOOKAHEAD_BLOCKS: usize = 4;

/// Asks the CPU to bring in the start of each posting list of `block` in `dims` (a hint: a
/// list that cannot be found is left to the scan, which reports it).
fn prefetch_block_lists(columns: &ColumnView<'_>, block: usize, dims: &[u16]) {
    for &dim in dims {
        if let Ok(list) = columns.list(block, usize::from(dim)) {
            if let ListRowBytes::U16(rows) = list.rows {
                kernels::prefetch_all(rows);
            }
            kernels::prefetch_all(list.values);
        }
    }
}

/// Asks the CPU to bring in the list offsets of chunk `chunk`'s blocks in `dims` (dimension-
/// major lists; a no-op for block-major ones).
fn prefetch_chunk_offsets(columns: &ColumnView<'_>, chunk: usize, dims: &[u16]) {
    for &dim in dims {
        if let Some(offsets) =
            columns.offsets_of_blocks(chunk * CHUNK_BLOCKS, CHUNK_BLOCKS, usize::from(dim))
        {
            kernels::prefetch_all(offsets);
        }
    }
}

/// What lets the bounded column scan give a block up part way through its lists, for
/// dot-product models with float values (whose accumulated sums are the scores before the
/// biases): after the lists of the query's first dimensions, in the scan's order, the block's
/// best partial sum plus the largest terms the remaining dimensions can add (from the block
/// bounds) is bounded as a whole block's bound is (`BoundQuery::bound`); below the k-th
/// score, no row of the block can reach the top k and its remaining lists are not read. The
/// sums stay those of the exhaustive scan (the same dimensions in the same order).
///
/// Why it is safe: a row's exact score is at most its exact partial sum plus the exact rest
/// bound; the scan's final sum, its partial sum and the bound's own evaluation each err by at
/// most a rounding error of `dim` terms of total magnitude at most `T`, and the bound is raised
/// by `c·T`, eight times that error.
struct BlockCutoff<'q> {
    /// `rest[i]`: the sum of the best terms of the query's dimensions after its `i`-th.
    rest: &'q [f32],
    /// The block's bias maximum (0 without biases).
    bias: f32,
    /// `T` without the block's bias ([`BoundQuery::magnitude`]).
    magnitude: f32,
    query: &'q BoundQuery<'q>,
}

impl<'q> BlockCutoff<'q> {
    /// The cutoff of block `block` for `query` (whose [`BoundQuery::magnitude`] is
    /// `magnitude`), its rest bounds written into `rest` (one per dimension of the query);
    /// `None` when the bounds cannot give them.
    fn new(
        bounds: &BlockBounds<'_>,
        query: &'q BoundQuery<'q>,
        magnitude: f32,
        block: usize,
        rest: &'q mut [f32],
    ) -> Option<Self> {
        if !bounds.terms(query, block, rest) {
            return None;
        }
        // From each dimension's best term to the sum of the best terms after it.
        let mut after = 0.0f32;
        for r in rest.iter_mut().rev() {
            (*r, after) = (after, after + *r);
        }
        Some(BlockCutoff {
            rest,
            bias: bounds.bias_max(block),
            magnitude,
            query,
        })
    }

    /// Whether a row of the block can still reach `threshold` once the lists of the query's
    /// dimensions up to its `at`-th are added and the best partial sum is `best_partial`.
    #[inline]
    fn reachable(&self, at: usize, best_partial: f32, threshold: Option<f32>) -> bool {
        let (Some(threshold), Some(&rest)) = (threshold, self.rest.get(at)) else {
            return true;
        };
        let bound = self
            .query
            .bound(best_partial + rest, self.bias, self.magnitude);
        // A NaN bound (a NaN partial sum) is no reason to give the block up.
        bound >= threshold || bound.is_nan()
    }
}

/// One block of a column layout.
#[derive(Clone, Copy)]
struct ColumnBlock<'c, 'a> {
    columns: &'c ColumnView<'a>,
    block: usize,
}

/// `|x|` (without `std`).
fn magnitude(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// What a scan did, for `bench` and the tests ([`Model::recommend_vector_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Blocks of the item table's column layout (0 for a row scan).
    pub blocks: usize,
    /// Blocks scored; the others were skipped by their bounds.
    pub blocks_scored: usize,
    /// With block bounds: the bytes the scan read, the bounds of the query's dimensions and
    /// the posting lists (rows, values and offsets) of the blocks it scored (0 otherwise).
    pub bounded_bytes: u64,
    /// With block bounds: the posting lists of scored blocks that the scan did not read,
    /// because the lists before them showed that no row of their block could reach the top k
    /// (dot-product models with float values; 0 otherwise).
    pub lists_cut: usize,
}

/// Blocks of at most this many rows (those of tables with block bounds) have lists of a few
/// entries, and a bounded scan jumps between blocks: [`add_u16_lists`] then asks for no next
/// list ahead.
const SHORT_LIST_BLOCK_ROWS: usize = 256;

/// The column scan's dot products for block `block` from `u16` posting lists: zeros, then
/// each list of the user's non-zero dimensions `active_dims` scattered into `acc` in turn
/// (asking for the next list ahead, in blocks above [`SHORT_LIST_BLOCK_ROWS`]).
pub(crate) fn add_u16_lists(
    acc: &mut [f32],
    columns: &ColumnView<'_>,
    block: usize,
    active_dims: &[u16],
    query: &Query<'_>,
) -> Result<()> {
    add_u16_lists_until(acc, columns, block, active_dims, query, |_, _| true).map(|_| ())
}

/// [`add_u16_lists`], asking `go_on(position, acc)` after each list but the last whether to
/// add the next ones (the list at `position` of `active_dims` added): `Ok(false)` when it
/// said no, with `acc` holding the lists added so far.
#[inline(always)]
fn add_u16_lists_until(
    acc: &mut [f32],
    columns: &ColumnView<'_>,
    block: usize,
    active_dims: &[u16],
    query: &Query<'_>,
    mut go_on: impl FnMut(usize, &[f32]) -> bool,
) -> Result<bool> {
    acc.fill(0.0);
    let prefetch = columns.block_rows > SHORT_LIST_BLOCK_ROWS;
    for (position, &dim) in active_dims.iter().enumerate() {
        let dim = usize::from(dim);
        let list = columns.list(block, dim)?;
        // Ask for the next list's first bytes while this one is added up.
        let next = match active_dims.get(position + 1) {
            _ if !prefetch => None,
            Some(&d) => Some(columns.list(block, usize::from(d))),
            None => match active_dims.first() {
                Some(&d) if block + 1 < columns.blocks => {
                    Some(columns.list(block + 1, usize::from(d)))
                }
                _ => Some(Ok(list)),
            },
        };
        let mut ahead = match next {
            Some(Ok(PostingList {
                rows: ListRowBytes::U16(items),
                values,
                ..
            })) => kernels::Prefetch::new(items, values),
            _ => kernels::Prefetch::default(),
        };
        let ListRowBytes::U16(items) = list.rows else {
            return Err(corrupt_entry(columns));
        };
        let weight = query.vector[dim];
        if !kernels::scatter_add_from(
            acc,
            weight,
            items,
            list.values,
            list.first % 2,
            columns.encoding,
            &mut ahead,
        ) {
            return Err(corrupt_entry(columns));
        }
        if position + 1 < active_dims.len() && !go_on(position, acc) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The largest of `values` (`f32::NEG_INFINITY` for none; NaNs are passed over), sixteen
/// lanes at a time so that the compiler vectorises it.
fn largest(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut groups = values.chunks_exact(LANES);
    for group in &mut groups {
        for (lane, &x) in lanes.iter_mut().zip(group) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let rest = groups.remainder().iter();
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// The column scan's dot products for block `block` from bitmap posting lists (format 1.3):
/// [`kernels::bitmap_add`] over the lists of the user's non-zero dimensions `active_dims`, a
/// group of lists at a time.
pub(crate) fn add_bitmap_lists(
    acc: &mut [f32],
    columns: &ColumnView<'_>,
    block: usize,
    active_dims: &[u16],
    query: &Query<'_>,
) -> Result<()> {
    const GROUP: usize = 8;
    if active_dims.is_empty() {
        acc.fill(0.0);
    }
    for (group, dims) in active_dims.chunks(GROUP).enumerate() {
        let mut lists = [kernels::BitmapList::default(); GROUP];
        for (slot, &dim) in lists.iter_mut().zip(dims) {
            let dim = usize::from(dim);
            let list = columns.list(block, dim)?;
            let ListRowBytes::Bitmap(words) = list.rows else {
                return Err(corrupt_entry(columns));
            };
            *slot = kernels::BitmapList {
                weight: query.vector[dim],
                words,
                values: list.values,
                int4_first: list.first % 2,
                int4_len: list.len(),
                tail: columns.values_from(&list),
            };
        }
        if !kernels::bitmap_add(acc, &lists[..dims.len()], group == 0, columns.encoding) {
            return Err(corrupt_entry(columns));
        }
    }
    Ok(())
}

/// Asks the CPU for the bytes of rows `first..end` (their offsets and records) just before the
/// row kernel reads them. The kernel does much work per load, so on its own it has few loads in
/// flight and reads memory the caches do not hold at a fraction of the bandwidth; a burst of
/// prefetches puts the whole batch (about 6 KB of f16 rows at 10 % density) in flight at once.
/// `pocketrec bench --cold`, 1M items, d = 64, 10 %: f16 rows 7.95-8.73 -> 4.86-5.06 ms, f32 rows 11.3 to
/// 12.0 -> 9.0 ms (docs/BENCHMARKS.md). A hint only: offsets out of order or past the data
/// prefetch nothing, and the kernel reports them.
#[inline(always)]
fn prefetch_rows(items: &Table<'_>, first: usize, end: usize) {
    let (offsets, data) = items.raw_rows();
    if let Some(blocks) = items.bitmap_blocks() {
        let (start, stop) = blocks.data_range(first, end);
        kernels::prefetch_all(data.get(start..stop).unwrap_or(&[]));
        return;
    }
    if let (Some(start), Some(stop)) = (le::u32_at(offsets, first), le::u32_at(offsets, end)) {
        kernels::prefetch_all(data.get(start as usize..stop as usize).unwrap_or(&[]));
    }
    kernels::prefetch_all(offsets.get(4 * first..4 * end + 4).unwrap_or(&[]));
}

/// The batch row kernel for `items` under `scoring`, if one applies: dot scoring over u8-list
/// or bitmap rows with `u32` offsets.
#[inline(always)]
fn row_kernel(scoring: Scoring, items: &Table<'_>) -> Option<kernels::RowDots> {
    match (scoring, items.index_encoding(), items.offset_width()) {
        (Scoring::Dot, IndexEncoding::U8List, OffsetWidth::U32) => Some(kernels::u8_list_dots),
        (Scoring::Dot, IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks, OffsetWidth::U32) => {
            Some(kernels::bitmap_dots)
        }
        _ => None,
    }
}

/// Runs `kernel` on rows `first..first + out.len()` of `items`: over its own row offsets, or,
/// for bitmap rows in blocks (format 1.7), a block at a time over the offsets the block's walk
/// gives (68 bytes on the stack). On a corrupt row, returns its number.
#[inline(always)]
fn run_row_kernel(
    kernel: kernels::RowDots,
    query: &[f32],
    items: &Table<'_>,
    first: usize,
    out: &mut [f32],
) -> core::result::Result<(), usize> {
    let (offsets, data) = items.raw_rows();
    let encoding = items.value_encoding();
    if !items.has_bitmap_blocks() {
        return kernel(query, offsets, data, first, out, encoding);
    }
    let blocks = items.bitmap_blocks().ok_or(first)?;
    let mut local = [0u8; 4 * (KERNEL_CHUNK_ROWS + 1)];
    let mut row = first;
    for chunk in out.chunks_mut(KERNEL_CHUNK_ROWS) {
        blocks.row_offsets(row, chunk.len(), &mut local)?;
        kernel(query, &local, data, 0, chunk, encoding).map_err(|bad| row + bad)?;
        row += chunk.len();
    }
    Ok(())
}

/// The error of a posting list whose rows do not fit its block or its values.
fn corrupt_entry(columns: &ColumnView<'_>) -> Error {
    Error::CorruptTable {
        role: columns.role,
        reason: "a column entry's row is past its block",
    }
}

/// What is left to do to a block's scores after [`finish_scores`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    /// The scores are final.
    Done,
    /// Every bias is +0.0, so `((x + 0) + 0) + 0` is `x + 0.0`, which only turns -0.0 into
    /// +0.0: [`offer_all`] adds the 0.0 to the few scores it offers instead of a pass over all.
    AddZero,
}

/// Turns dot products of rows `first..` into scores, in the order of [`score_row`]:
/// `((sim + user_bias) + item_bias) + global_bias`, or leaves the `+ 0.0` of a model without
/// biases to [`offer_all`] (see [`Finish::AddZero`]); either way, the same bits.
#[inline]
fn finish_scores(
    scores: &mut [f32],
    query: &Query<'_>,
    bias: Option<&[u8]>,
    first: usize,
    global_bias: f32,
) -> Finish {
    if bias.is_none() && query.bias.to_bits() == 0 && global_bias.to_bits() == 0 {
        return Finish::AddZero;
    }
    let bias = bias.and_then(|b| b.get(4 * first..4 * (first + scores.len())));
    kernels::finish_scores(scores, query.bias, bias, global_bias);
    Finish::Done
}

/// Turns a block's accumulated dot products into similarities: the int8 or int4 scale, then
/// cosine
/// normalisation (as [`score_row`] computes them).
pub(crate) fn block_similarities(
    acc: &mut [f32],
    base: usize,
    columns: &ColumnView<'_>,
    query: &Query<'_>,
    scoring: Scoring,
) -> Result<()> {
    if let Some(scales) = columns.scales_of(base, acc.len())? {
        for (x, s) in acc.iter_mut().zip(scales.chunks_exact(2)) {
            *x *= kernels::scalar::f16_to_f32(u16::from_le_bytes([s[0], s[1]]));
        }
    }
    if scoring == Scoring::Cosine {
        let norms = columns.norms_of(base, acc.len())?;
        for (x, n) in acc.iter_mut().zip(norms.chunks_exact(4)) {
            let norm = f32::from_le_bytes([n[0], n[1], n[2], n[3]]);
            *x = if query.norm == 0.0 || norm == 0.0 {
                0.0
            } else {
                *x / (query.norm * norm)
            };
        }
    }
    Ok(())
}

/// [`offer_all`], or, when blocks are offered out of row order (`in_order` false), with the
/// skip threshold lowered by one step so that a score equal to the k-th still reaches
/// [`TopK::accepts`], which lets an earlier row win the tie.
#[inline]
fn offer(
    top: &mut TopK<'_>,
    items: &Table<'_>,
    exclude: &[u64],
    first: usize,
    scores: &[f32],
    finish: Finish,
    in_order: bool,
) -> Result<()> {
    if in_order {
        offer_all(top, items, exclude, first, scores, finish)
    } else {
        offer_with(top, items, exclude, first, scores, finish, just_below)
    }
}

/// The largest f32 below `t` (for a finite `t`; others as they are).
fn just_below(t: f32) -> f32 {
    if !t.is_finite() {
        t
    } else if t == 0.0 {
        -f32::from_bits(1)
    } else if t > 0.0 {
        f32::from_bits(t.to_bits() - 1)
    } else {
        f32::from_bits(t.to_bits() + 1)
    }
}

/// Offers rows `first..first + scores.len()` with their scores to the selection, jumping with
/// [`kernels::first_candidate`] over the scores that cannot enter it (every finite score
/// enters while it is not full; once full, only scores above its worst, since ties go to the
/// earlier row). With [`Finish::AddZero`], each offered score gets its `+ 0.0` here.
#[inline]
fn offer_all(
    top: &mut TopK<'_>,
    items: &Table<'_>,
    exclude: &[u64],
    first: usize,
    scores: &[f32],
    finish: Finish,
) -> Result<()> {
    offer_with(top, items, exclude, first, scores, finish, |t| t)
}

/// [`offer_all`] with the skip threshold `lower(k-th score)`.
#[inline(always)]
fn offer_with(
    top: &mut TopK<'_>,
    items: &Table<'_>,
    exclude: &[u64],
    first: usize,
    scores: &[f32],
    finish: Finish,
    lower: impl Fn(f32) -> f32,
) -> Result<()> {
    let mut position = 0;
    while position < scores.len() {
        let threshold = top.threshold().map_or(f32::NEG_INFINITY, &lower);
        position += kernels::first_candidate(&scores[position..], threshold);
        let Some(&score) = scores.get(position) else {
            break;
        };
        let score = match finish {
            Finish::Done => score,
            Finish::AddZero => score + 0.0,
        };
        let index = first + position;
        if !score.is_finite() {
            return Err(Error::NonFiniteScore {
                item_row: index as u64,
            });
        }
        if top.accepts(score, index) {
            let id = items.id(index)?;
            if !exclude.contains(&id) {
                top.push(Recommendation { id, index, score });
            }
        }
        position += 1;
    }
    Ok(())
}

/// The users of a lane group, transposed: dimension by dimension, a lane per user (0 for
/// lanes past the group).
#[cfg(feature = "std")]
fn transpose(group: &[Query<'_>]) -> std::vec::Vec<[f32; LANES]> {
    let dim = group.first().map_or(0, |q| q.vector.len());
    (0..dim)
        .map(|c| core::array::from_fn(|l| group.get(l).map_or(0.0, |q| q.vector[c])))
        .collect()
}

/// A batch of f32 rows decoded once for every lane group: row `r`'s entries are
/// `columns[bounds[r]..bounds[r + 1]]` and the values beside them.
#[cfg(feature = "std")]
#[derive(Default)]
struct DecodedRows {
    columns: std::vec::Vec<u16>,
    values: std::vec::Vec<f32>,
    bounds: std::vec::Vec<usize>,
}

#[cfg(feature = "std")]
impl DecodedRows {
    /// Decodes rows `first..first + rows` of `items`.
    fn decode(&mut self, items: &Table<'_>, first: usize, rows: usize) -> Result<()> {
        self.columns.clear();
        self.values.clear();
        self.bounds.clear();
        self.bounds.push(0);
        for index in first..first + rows {
            let row = items.row(index)?;
            self.columns.reserve(row.nnz());
            self.values.reserve(row.nnz());
            row.for_each_nonzero(|c, v| {
                self.columns.push(c as u16);
                self.values.push(v);
            });
            self.bounds.push(self.columns.len());
        }
        Ok(())
    }

    /// Row `r` of the batch (no entries past its end).
    fn row(&self, r: usize) -> kernels::lanes::RowEntries<'_> {
        match (self.bounds.get(r), self.bounds.get(r + 1)) {
            (Some(&s), Some(&e)) => (&self.columns[s..e], &self.values[s..e]),
            _ => (&[], &[]),
        }
    }
}
