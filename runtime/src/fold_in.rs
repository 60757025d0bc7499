//! Fold-in: a user's vector solved on the device from the items they interacted with, the item
//! table fixed (the per-user step of implicit ALS, Hu, Koren and Volinsky 2008; with a prior,
//! the sequential Bayesian update of LinkedIn's incremental learning).
//!
//! For interactions `(item iᵢ, weight wᵢ)`, item rows `vᵢ` as stored, the Gramian
//! `G = Σ_all items v vᵀ`, the unobserved weight `α₀`, the regularisation `λ` (both from the
//! file's fold-in section) and an optional prior `(x₀, τ)`, the folded vector minimises
//!
//! ```text
//! Σᵢ wᵢ (vᵢ·x − 1)²  +  α₀ Σ_all (v·x)²  +  λ |x|²  +  τ |x − x₀|²
//! ```
//!
//! that is, it solves `A x = b` with `A = α₀ G + Σᵢ wᵢ vᵢ vᵢᵀ + (λ + τ) I` and
//! `b = Σᵢ wᵢ vᵢ + τ x₀`. `A` is symmetric positive definite (`λ > 0`), so two solvers
//! apply: a packed Cholesky factorisation on the stack (`d ≤` [`MAX_CHOLESKY_DIM`],
//! `2·d·(d+1)` bytes) and a Jacobi-preconditioned conjugate gradient that keeps only a few
//! vectors and reads `G` from the file (`d ≤` [`crate::MAX_STACK_DIM`]). Nothing is
//! allocated.

use crate::error::{Error, Result};
use crate::format::{self, FOLD_IN_HEADER_SIZE, FoldInHeader, Role, SectionKind};
use crate::le;
use crate::model::Model;
use crate::row::sqrt;
use crate::score::MAX_STACK_DIM;
use crate::table::Table;

/// Largest dimension the Cholesky solver takes (its packed matrix, `2·d·(d+1)` bytes, lives on
/// the stack: 8,320 bytes at 64). Larger dimensions use the conjugate gradient.
pub const MAX_CHOLESKY_DIM: usize = 64;

/// The conjugate gradient stops when the residual is below this fraction of `|b|` ...
const CG_TOLERANCE: f32 = 1e-6;
/// ... or after this many iterations per dimension (exact arithmetic needs at most `d`).
const CG_ITERATIONS_PER_DIM: usize = 2;

/// Entries `start..start + out.len()` of the Gramian of `items` (packed lower triangle,
/// `G[a][b]` at `a·(a+1)/2 + b` for `b ≤ a`), added into `out`: `Σ v[a]·v[b]` over the rows as
/// a reader decodes them, each product exact in f64 and summed in row order (terms where
/// either value is zero skipped, which changes no sum). The one definition of a fold-in
/// section's Gramian: the writer calls it once with every entry, a device that recomputes the
/// section from a patched file ([`crate::patch::Op::Recompute`]) a chunk at a time, and both get
/// the same bits. `row` holds one decoded row (`items.dim()` values).
pub(crate) fn gramian_entries(
    items: &Table<'_>,
    start: usize,
    out: &mut [f64],
    row: &mut [f32],
) -> Result<()> {
    let dim = items.dim();
    let available = row.len();
    let row = row.get_mut(..dim).ok_or(Error::DimensionMismatch {
        expected: dim as u64,
        actual: available as u64,
    })?;
    let end = start.saturating_add(out.len()).min(format::packed_len(dim));
    if start >= end {
        return Ok(());
    }
    // The triangle's rows that entries `start..end` fall in.
    let first_a = triangle_row(start);
    let last_a = triangle_row(end - 1);
    for index in 0..items.rows() {
        items.decode_row(index, row)?;
        for a in first_a..=last_a {
            let va = row[a];
            if va == 0.0 {
                continue;
            }
            let base = a * (a + 1) / 2;
            let (lo, hi) = (start.max(base) - base, end.min(base + a + 1) - base);
            for (b, &vb) in row[lo..hi].iter().enumerate() {
                if vb != 0.0 {
                    out[base + lo + b - start] += f64::from(va) * f64::from(vb);
                }
            }
        }
    }
    Ok(())
}

/// The row `a` of the packed lower triangle holding entry `p` (`a·(a+1)/2 ≤ p`).
fn triangle_row(p: usize) -> usize {
    let mut a = (sqrt(2.0 * p as f32) as usize).saturating_sub(1);
    while (a + 1) * (a + 2) / 2 <= p {
        a += 1;
    }
    while a * (a + 1) / 2 > p {
        a -= 1;
    }
    a
}

/// The solve's settings, stored in the file's fold-in section.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldInParams {
    /// `α₀ ≥ 0`: how much every item counts as an unobserved (zero) target.
    pub unobserved_weight: f32,
    /// `λ > 0`: the ridge added to the diagonal.
    pub regularization: f32,
}

impl FoldInParams {
    /// `Ok` when both values are finite, `α₀ ≥ 0` and `λ > 0`.
    pub fn check(&self) -> Result<()> {
        if !(self.unobserved_weight.is_finite() && self.unobserved_weight >= 0.0) {
            return Err(Error::InvalidInput {
                role: Some(Role::Item),
                row: None,
                column: None,
                reason: "fold-in unobserved weight must be finite and at least 0",
            });
        }
        if !(self.regularization.is_finite() && self.regularization > 0.0) {
            return Err(Error::InvalidInput {
                role: Some(Role::Item),
                row: None,
                column: None,
                reason: "fold-in regularization must be finite and above 0",
            });
        }
        Ok(())
    }
}

/// What the user already was: the current vector and how strongly to stay near it.
#[derive(Clone, Copy, Debug)]
pub struct Prior<'v> {
    /// The user's current vector (the model's dimension).
    pub vector: &'v [f32],
    /// `τ ≥ 0`: the precision of the prior (0 ignores it).
    pub precision: f32,
}

/// Which solver [`Model::fold_in_with`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Solver {
    /// Cholesky up to [`MAX_CHOLESKY_DIM`], the conjugate gradient above.
    #[default]
    Auto,
    /// Packed Cholesky on the stack (`d ≤` [`MAX_CHOLESKY_DIM`]).
    Cholesky,
    /// Jacobi-preconditioned conjugate gradient (`d ≤` [`crate::MAX_STACK_DIM`]).
    ConjugateGradient,
    /// The softmax objective's projected gradient ascent ([`crate::SoftmaxFoldIn`]), for a file
    /// with a softmax fold-in section; [`Solver::Auto`] takes it whenever the file has one.
    Softmax,
}

/// What a fold-in did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldInSummary {
    /// Interactions whose item is in the model (each counted, repeats included).
    pub used: usize,
    /// Interactions whose item id is not in the model: skipped (e.g. items dropped from the
    /// catalogue since the app recorded them).
    pub unknown: usize,
    /// The solver that ran ([`Solver::Cholesky`], [`Solver::ConjugateGradient`] or
    /// [`Solver::Softmax`]).
    pub solver: Solver,
    /// Conjugate-gradient or softmax ascent iterations (0 for Cholesky).
    pub iterations: u32,
}

/// A model's fold-in section, checked: the parameters and the packed Gramian.
#[derive(Clone, Copy, Debug)]
pub struct FoldInSection<'a> {
    dim: usize,
    params: FoldInParams,
    gramian: &'a [u8],
}

impl<'a> FoldInSection<'a> {
    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The stored solve settings.
    pub fn params(&self) -> FoldInParams {
        self.params
    }

    /// `G[a][b]` for `b ≤ a` (packed position `a·(a+1)/2 + b`), as stored.
    #[inline]
    pub fn gram(&self, packed_index: usize) -> f32 {
        le::f32_at(self.gramian, packed_index).unwrap_or(0.0)
    }

    /// Parses and checks the section's bytes against the item table: length, table index,
    /// dimension, parameters; the Gramian's values are checked by [`FoldInSection::verify`].
    pub(crate) fn parse(bytes: &'a [u8], item_table: u32, dim: usize) -> Result<Self> {
        let corrupt = |reason| Error::CorruptTable {
            role: Role::Item,
            reason,
        };
        let header: &FoldInHeader = bytes
            .get(..FOLD_IN_HEADER_SIZE)
            .and_then(|b| bytemuck::try_from_bytes(b).ok())
            .ok_or(corrupt("fold-in section shorter than its header"))?;
        if header.table.get() != item_table {
            return Err(corrupt("fold-in section names another table"));
        }
        if header.dim.get() as usize != dim {
            return Err(corrupt(
                "fold-in section's dimension differs from the item table's",
            ));
        }
        if Some(bytes.len()) != format::fold_in_section_len(dim) {
            return Err(corrupt(
                "fold-in section's length is not 16 + 2·d·(d+1) bytes",
            ));
        }
        let params = FoldInParams {
            unobserved_weight: header.unobserved_weight.get(),
            regularization: header.regularization.get(),
        };
        params
            .check()
            .map_err(|_| corrupt("fold-in parameters out of range"))?;
        Ok(FoldInSection {
            dim,
            params,
            gramian: &bytes[FOLD_IN_HEADER_SIZE..],
        })
    }

    /// Checks every Gramian value: finite, a non-negative diagonal, and
    /// `G[a][b]² ≤ G[a][a]·G[b][b]` (with a little room for rounding), as for any `VᵀV`.
    pub fn verify(&self) -> Result<()> {
        let corrupt = |reason| Error::CorruptTable {
            role: Role::Item,
            reason,
        };
        for a in 0..self.dim {
            let row = a * (a + 1) / 2;
            let gaa = self.gram(row + a);
            if !(gaa.is_finite() && gaa >= 0.0) {
                return Err(corrupt(
                    "fold-in Gramian has a negative or non-finite diagonal",
                ));
            }
            for b in 0..a {
                let gab = self.gram(row + b);
                let gbb = self.gram(b * (b + 1) / 2 + b);
                let bound = gaa * gbb * (1.0 + 1e-4) + f32::MIN_POSITIVE;
                if !gab.is_finite() || gab * gab > bound {
                    return Err(corrupt("fold-in Gramian is not the Gramian of any table"));
                }
            }
        }
        Ok(())
    }
}

impl<S: AsRef<[u8]>> Model<S> {
    /// The model's fold-in section, checked against the item table; [`Error::NoFoldIn`] when
    /// the file has none.
    pub fn fold_in_section(&self) -> Result<FoldInSection<'_>> {
        let bytes = self
            .only_section(SectionKind::FoldIn, "second fold-in section")?
            .ok_or(Error::NoFoldIn)?;
        FoldInSection::parse(bytes, self.item_table_index()?, self.items()?.dim())
    }

    /// The bytes of the file's one section of `kind` (a fold-in section), `None` without one;
    /// a second one is refused with `second`.
    pub(crate) fn only_section(
        &self,
        kind: SectionKind,
        second: &'static str,
    ) -> Result<Option<&[u8]>> {
        let mut found = None;
        for index in 0..self.section_count() {
            let section = self.section(index)?;
            if section.kind == kind {
                if found.is_some() {
                    return Err(Error::InvalidSection {
                        index,
                        reason: second,
                    });
                }
                found = Some(section);
            }
        }
        let Some(section) = found else {
            return Ok(None);
        };
        let start = section.offset as usize;
        self.bytes()
            .get(start..start.saturating_add(section.length as usize))
            .map(Some)
            .ok_or(Error::InvalidSection {
                index: section.index,
                reason: "section extends past the end of the file",
            })
    }

    /// The fold-in settings stored in the file.
    pub fn fold_in_params(&self) -> Result<FoldInParams> {
        Ok(self.fold_in_section()?.params())
    }

    /// Solves a user's vector into `out[..d]` from the items they interacted with
    /// (`items`, external ids, with `weights`, one per item, or all 1 when `weights` is empty)
    /// and an optional `prior`; see the module docs for the objective. Then
    /// [`Model::recommend_vector`] recommends for it.
    ///
    /// Item ids the model does not have are skipped and counted in
    /// [`FoldInSummary::unknown`]; a repeated id counts each time. Errors: [`Error::NoFoldIn`]
    /// for a model without the section; [`Error::InvalidQuery`] for a negative or non-finite
    /// weight or precision, `weights` of another length than `items`, or nothing to solve from
    /// (no known item and no prior); [`Error::DimensionMismatch`] when `out` or the prior's
    /// vector is not of the model's dimension. Allocates nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// use pocketrec::builder::{FoldInParams, ModelBuilder, SparseMatrix, TableSpec};
    /// use pocketrec::{Model, Recommendation, Role};
    ///
    /// let items = SparseMatrix::from_dense(3, 2, &[1.0, 0.0, 0.0, 1.0, 0.7, 0.7])?;
    /// let users = SparseMatrix::from_dense(1, 2, &[1.0, 0.0])?;
    /// let bytes = ModelBuilder::new()
    ///     .table(TableSpec::new("users", Role::User, users))
    ///     .table(TableSpec::new("items", Role::Item, items))
    ///     .fold_in(FoldInParams { unobserved_weight: 0.1, regularization: 0.1 })
    ///     .build()?;
    /// let model = Model::from_bytes(&bytes)?;
    ///
    /// let mut user = [0.0f32; 2];
    /// let summary = model.fold_in(&[1, 2], &[], None, &mut user)?; // liked items 1 and 2
    /// assert_eq!(summary.used, 2);
    /// let mut top = [Recommendation::default(); 1];
    /// model.recommend_vector(&user, 1, &[1, 2], &mut top)?;
    /// assert_eq!(top[0].id, 0);
    /// # Ok(()) }
    /// ```
    pub fn fold_in(
        &self,
        items: &[u64],
        weights: &[f32],
        prior: Option<Prior<'_>>,
        out: &mut [f32],
    ) -> Result<FoldInSummary> {
        self.fold_in_with(items, weights, prior, out, Solver::Auto)
    }

    /// [`Model::fold_in`] with a chosen solver (the answers agree to rounding).
    pub fn fold_in_with(
        &self,
        items: &[u64],
        weights: &[f32],
        prior: Option<Prior<'_>>,
        out: &mut [f32],
        solver: Solver,
    ) -> Result<FoldInSummary> {
        // The softmax section, read once: asked for, or found by `Auto`.
        let softmax = match solver {
            Solver::Softmax => Some(self.softmax_section()?.ok_or(Error::NoFoldIn)?),
            Solver::Auto => self.softmax_section()?,
            _ => None,
        };
        if let Some(section) = softmax {
            return self.fold_in_by_softmax(section, items, weights, prior, out);
        }
        let section = self.fold_in_section()?;
        let table = self.items()?;
        let dim = section.dim();
        if out.len() != dim {
            return Err(Error::DimensionMismatch {
                expected: dim as u64,
                actual: out.len() as u64,
            });
        }
        let problem = Problem::new(&section, &table, items, weights, prior)?;
        let solver = match solver {
            Solver::Auto if dim <= MAX_CHOLESKY_DIM => Solver::Cholesky,
            Solver::Auto => Solver::ConjugateGradient,
            chosen => chosen,
        };
        let iterations = match solver {
            Solver::Cholesky => {
                if dim > MAX_CHOLESKY_DIM {
                    return Err(Error::DimensionTooLarge {
                        dim: dim as u64,
                        max: MAX_CHOLESKY_DIM as u64,
                    });
                }
                solve_cholesky(&problem, out)?;
                0
            }
            _ => {
                if dim > MAX_STACK_DIM {
                    return Err(Error::DimensionTooLarge {
                        dim: dim as u64,
                        max: MAX_STACK_DIM as u64,
                    });
                }
                solve_conjugate_gradient(&problem, out)?
            }
        };
        Ok(FoldInSummary {
            used: problem.used,
            unknown: items.len() - problem.used,
            solver,
            iterations,
        })
    }

    /// The position of the item table in the metadata's tables.
    pub(crate) fn item_table_index(&self) -> Result<u32> {
        self.layout_table_index(Role::Item)
            .ok_or(Error::MissingTable(Role::Item.name()))
    }
}

/// One fold-in: the section, the item table and the checked arguments.
struct Problem<'p> {
    section: &'p FoldInSection<'p>,
    table: &'p Table<'p>,
    items: &'p [u64],
    weights: &'p [f32],
    prior: Option<Prior<'p>>,
    /// Interactions with a known item.
    used: usize,
}

impl<'p> Problem<'p> {
    fn new(
        section: &'p FoldInSection<'p>,
        table: &'p Table<'p>,
        items: &'p [u64],
        weights: &'p [f32],
        prior: Option<Prior<'p>>,
    ) -> Result<Self> {
        let used = check_arguments(section.dim(), table, items, weights, prior)?;
        Ok(Problem {
            section,
            table,
            items,
            weights,
            prior,
            used,
        })
    }

    fn weight(&self, i: usize) -> f32 {
        self.weights.get(i).copied().unwrap_or(1.0)
    }

    /// `λ + τ`, the diagonal's ridge.
    fn ridge(&self) -> f32 {
        self.section.params().regularization + self.prior.map_or(0.0, |p| p.precision)
    }

    /// Calls `f(weight, row, nonzero columns)` for each known interaction, the row decoded into
    /// `row` and its non-zero columns listed in `columns[..n]`.
    fn for_each_row(
        &self,
        row: &mut [f32],
        columns: &mut [u16],
        mut f: impl FnMut(f32, &[f32], &[u16]),
    ) -> Result<()> {
        for (i, &id) in self.items.iter().enumerate() {
            let index = match self.table.find(id) {
                Ok(index) => index,
                Err(Error::IdNotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            self.table.decode_row(index, row)?;
            let mut n = 0;
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    columns[n] = c as u16;
                    n += 1;
                }
            }
            f(self.weight(i), row, &columns[..n]);
        }
        Ok(())
    }

    /// `b = Σ wᵢ vᵢ + τ x₀` into `b[..d]`.
    fn right_hand_side(&self, b: &mut [f32], row: &mut [f32], columns: &mut [u16]) -> Result<()> {
        match self.prior {
            Some(p) => {
                for (b, &x) in b.iter_mut().zip(p.vector) {
                    *b = p.precision * x;
                }
            }
            None => b.fill(0.0),
        }
        self.for_each_row(row, columns, |w, v, cols| {
            for &c in cols {
                b[c as usize] += w * v[c as usize];
            }
        })
    }
}

/// Checks a fold-in's arguments (every objective's): `weights` empty or one per item, each
/// finite and `≥ 0`; the prior of dimension `dim`, finite, with a finite precision `≥ 0`; at
/// least one known item or a prior with a positive precision. Returns the interactions whose
/// item the table has.
pub(crate) fn check_arguments(
    dim: usize,
    table: &Table<'_>,
    items: &[u64],
    weights: &[f32],
    prior: Option<Prior<'_>>,
) -> Result<usize> {
    if !weights.is_empty() && weights.len() != items.len() {
        return Err(Error::InvalidQuery {
            index: None,
            reason: "weights must be empty (all 1) or one per item",
        });
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(Error::InvalidQuery {
            index: Some(i as u64),
            reason: "a weight is negative or not finite",
        });
    }
    if let Some(prior) = prior {
        if prior.vector.len() != dim {
            return Err(Error::DimensionMismatch {
                expected: dim as u64,
                actual: prior.vector.len() as u64,
            });
        }
        if !(prior.precision.is_finite() && prior.precision >= 0.0) {
            return Err(Error::InvalidQuery {
                index: None,
                reason: "the prior's precision is negative or not finite",
            });
        }
        if let Some(i) = prior.vector.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidQuery {
                index: Some(i as u64),
                reason: "the prior's vector has a value that is not finite",
            });
        }
    }
    let mut used = 0;
    for &id in items {
        match table.find(id) {
            Ok(_) => used += 1,
            Err(Error::IdNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if used == 0 && prior.is_none_or(|p| p.precision == 0.0) {
        return Err(Error::InvalidQuery {
            index: None,
            reason: "no interaction with a known item and no prior: nothing to solve from",
        });
    }
    Ok(used)
}

/// True for a finite value above 0 (false for NaN).
fn positive_finite(x: f32) -> bool {
    x.is_finite() && x > 0.0
}

fn not_positive_definite() -> Error {
    Error::CorruptTable {
        role: Role::Item,
        reason: "fold-in system is not positive definite (damaged Gramian or values too large)",
    }
}

/// Builds `A` packed on the stack, factors it `A = L Lᵀ` in place, and solves.
#[inline(never)]
fn solve_cholesky(problem: &Problem<'_>, out: &mut [f32]) -> Result<()> {
    let dim = out.len();
    let mut packed = [0.0f32; format::packed_len(MAX_CHOLESKY_DIM)];
    let a = &mut packed[..format::packed_len(dim)];
    let mut row = [0.0f32; MAX_CHOLESKY_DIM];
    let mut columns = [0u16; MAX_CHOLESKY_DIM];
    let (row, columns) = (&mut row[..dim], &mut columns[..dim]);
    let alpha0 = problem.section.params().unobserved_weight;
    for (k, slot) in a.iter_mut().enumerate() {
        *slot = alpha0 * problem.section.gram(k);
    }
    let ridge = problem.ridge();
    for j in 0..dim {
        a[j * (j + 1) / 2 + j] += ridge;
    }
    problem.for_each_row(row, columns, |w, v, cols| {
        for (n, &p) in cols.iter().enumerate() {
            let (p, wp) = (p as usize, w * v[p as usize]);
            let base = p * (p + 1) / 2;
            // cols is increasing, so cols[..=n] are the columns q ≤ p.
            for &q in &cols[..=n] {
                a[base + q as usize] += wp * v[q as usize];
            }
        }
    })?;
    problem.right_hand_side(out, row, columns)?;
    // A = L Lᵀ, L overwriting the lower triangle (row-major packed).
    for j in 0..dim {
        let rj = j * (j + 1) / 2;
        let mut s = a[rj + j];
        for k in 0..j {
            s -= a[rj + k] * a[rj + k];
        }
        if !positive_finite(s) {
            return Err(not_positive_definite());
        }
        let ljj = sqrt(s);
        a[rj + j] = ljj;
        for i in j + 1..dim {
            let ri = i * (i + 1) / 2;
            let mut s = a[ri + j];
            for k in 0..j {
                s -= a[ri + k] * a[rj + k];
            }
            a[ri + j] = s / ljj;
        }
    }
    // L y = b, then Lᵀ x = y, in place in `out`.
    for i in 0..dim {
        let ri = i * (i + 1) / 2;
        let mut s = out[i];
        for k in 0..i {
            s -= a[ri + k] * out[k];
        }
        out[i] = s / a[ri + i];
    }
    for i in (0..dim).rev() {
        let mut s = out[i];
        for k in i + 1..dim {
            s -= a[k * (k + 1) / 2 + i] * out[k];
        }
        out[i] = s / a[i * (i + 1) / 2 + i];
    }
    if out.iter().any(|x| !x.is_finite()) {
        return Err(not_positive_definite());
    }
    Ok(())
}

/// `y = A p` without forming `A`: `α₀ G p` from the section, `(λ + τ) p`, and each known
/// interaction's `w v (v·p)` from its decoded row.
fn apply(
    problem: &Problem<'_>,
    p: &[f32],
    y: &mut [f32],
    row: &mut [f32],
    columns: &mut [u16],
) -> Result<()> {
    let dim = p.len();
    let alpha0 = problem.section.params().unobserved_weight;
    let ridge = problem.ridge();
    for (y, &p) in y.iter_mut().zip(p) {
        *y = ridge * p;
    }
    if alpha0 != 0.0 {
        for a in 0..dim {
            let ra = a * (a + 1) / 2;
            let mut s = 0.0f32;
            for b in 0..a {
                let g = alpha0 * problem.section.gram(ra + b);
                s += g * p[b];
                y[b] += g * p[a];
            }
            y[a] += s + alpha0 * problem.section.gram(ra + a) * p[a];
        }
    }
    problem.for_each_row(row, columns, |w, v, cols| {
        let dot: f32 = cols.iter().map(|&c| v[c as usize] * p[c as usize]).sum();
        let wd = w * dot;
        for &c in cols {
            y[c as usize] += wd * v[c as usize];
        }
    })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Jacobi-preconditioned conjugate gradient from `x = 0`; returns the iterations run.
#[inline(never)]
fn solve_conjugate_gradient(problem: &Problem<'_>, out: &mut [f32]) -> Result<u32> {
    let dim = out.len();
    let mut storage = [[0.0f32; MAX_STACK_DIM]; 5];
    let [r, z, p, ap, inverse_diagonal] = &mut storage;
    let (r, z, p, ap, inverse_diagonal) = (
        &mut r[..dim],
        &mut z[..dim],
        &mut p[..dim],
        &mut ap[..dim],
        &mut inverse_diagonal[..dim],
    );
    let mut row = [0.0f32; MAX_STACK_DIM];
    let mut columns = [0u16; MAX_STACK_DIM];
    let (row, columns) = (&mut row[..dim], &mut columns[..dim]);
    // The diagonal of A, for the preconditioner.
    let alpha0 = problem.section.params().unobserved_weight;
    let ridge = problem.ridge();
    for (a, d) in inverse_diagonal.iter_mut().enumerate() {
        *d = alpha0 * problem.section.gram(a * (a + 1) / 2 + a) + ridge;
    }
    problem.for_each_row(row, columns, |w, v, cols| {
        for &c in cols {
            inverse_diagonal[c as usize] += w * v[c as usize] * v[c as usize];
        }
    })?;
    for d in inverse_diagonal.iter_mut() {
        if !positive_finite(*d) {
            return Err(not_positive_definite());
        }
        *d = 1.0 / *d;
    }
    problem.right_hand_side(r, row, columns)?;
    out.fill(0.0);
    let target = CG_TOLERANCE * sqrt(dot(r, r));
    for ((z, &r), &m) in z.iter_mut().zip(r.iter()).zip(inverse_diagonal.iter()) {
        *z = m * r;
    }
    p.copy_from_slice(z);
    let mut rz = dot(r, z);
    let mut iterations = 0u32;
    while iterations < (CG_ITERATIONS_PER_DIM * dim) as u32 && sqrt(dot(r, r)) > target {
        apply(problem, p, ap, row, columns)?;
        let pap = dot(p, ap);
        if !positive_finite(pap) {
            return Err(not_positive_definite());
        }
        let step = rz / pap;
        for i in 0..dim {
            out[i] += step * p[i];
            r[i] -= step * ap[i];
        }
        for i in 0..dim {
            z[i] = inverse_diagonal[i] * r[i];
        }
        let rz_next = dot(r, z);
        let beta = rz_next / rz;
        rz = rz_next;
        for i in 0..dim {
            p[i] = z[i] + beta * p[i];
        }
        iterations += 1;
        if rz == 0.0 {
            break;
        }
    }
    if out.iter().any(|x| !x.is_finite()) {
        return Err(not_positive_definite());
    }
    Ok(iterations)
}
