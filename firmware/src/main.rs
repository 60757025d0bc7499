//! pocketrec on a Cortex-M4F: a `.prec` model embedded in flash, opened zero-copy with the
//! runtime's `no_std`, no-alloc build, `recommend` for one user, the top-k printed over
//! semihosting and compared with the host's answer (built in by build.rs from scripts/cross.sh).
//! Then a new user is folded in on the device from a few item ids (`Model::fold_in`, the
//! Cholesky solve on the stack at d ≤ 64) and `recommend_vector` gives their top-k, compared
//! with the host's `pocketrec recommend MODEL --items ... --json`; the same again on a second
//! model that carries the softmax fold-in section (the ascent on its catalogue summary, for
//! models trained with a softmax loss). The exit status (through
//! semihosting) is 0 when the query's items and score bits all match and the folded user's
//! items match with every score within `FOLD_TOLERANCE` of the host's.
//!
//! Then an over-the-air update: a signed patch in flash is applied to the model in flash
//! (slot A), streaming the new model into a second flash region (slot B) with no heap
//! (`patch::apply_signed` into a `Sink` that writes the slot); the new model opens only with its
//! signature checked (`Model::from_bytes_signed`) and its top-k must equal the host's answer on
//! the updated model, bit for bit. On the way, the `no_std` build must refuse an unsigned model,
//! another key and a changed byte, each with its own error, and a patch for another base.
//!
//! It also measures its stack: the free stack is painted with a pattern before the query, and
//! the deepest word overwritten afterwards gives the most stack used; the same again, painted
//! afresh, for each fold-in (open, `fold_in`, `recommend_vector`, print).
//!
//! With the `baseline` feature it is the same program without the model and the runtime, so
//! that the difference in size is the runtime's share.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

#[cfg(not(feature = "baseline"))]
include!(concat!(env!("OUT_DIR"), "/expected.rs"));

/// The model, in flash. The runtime reads it at any alignment.
#[cfg(not(feature = "baseline"))]
static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.prec"));

/// The same kind of model with the softmax fold-in section (a catalogue summary) instead of the
/// Gramian: a user folded in on it takes the softmax ascent.
#[cfg(not(feature = "baseline"))]
static SOFTMAX_MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/softmax.prec"));

/// The signed patch from `MODEL` to the updated model, in flash.
#[cfg(not(feature = "baseline"))]
static PATCH: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/update.precpatch"));

/// The public key the app trusts (32 bytes), and another one.
#[cfg(not(feature = "baseline"))]
static KEY: &[u8; 32] = include_bytes!(concat!(env!("OUT_DIR"), "/key.bin"));
#[cfg(not(feature = "baseline"))]
static OTHER_KEY: &[u8; 32] = include_bytes!(concat!(env!("OUT_DIR"), "/other.bin"));

/// Slot B: where an update writes the new model (see memory.x).
#[cfg(not(feature = "baseline"))]
mod slot {
    /// Bytes in slot B.
    pub const LEN: usize = 128 * 1024;

    #[link_section = ".slot_b"]
    static mut SLOT_B: [u8; LEN] = [0; LEN];

    /// A `Sink` that writes slot B from its start: on this QEMU board the region is writable
    /// memory; on a real part, `write` is where the flash controller programs each page.
    pub struct Writer {
        written: usize,
    }

    impl Writer {
        /// A writer at the start of the slot.
        pub fn new() -> Self {
            Writer { written: 0 }
        }
    }

    impl pocketrec::patch::Sink for Writer {
        fn write(&mut self, bytes: &[u8]) -> pocketrec::Result<()> {
            let end = self
                .written
                .checked_add(bytes.len())
                .filter(|&end| end <= LEN)
                .ok_or(pocketrec::Error::Sink("slot B is full"))?;
            let base = core::ptr::addr_of_mut!(SLOT_B).cast::<u8>();
            for (i, &b) in bytes.iter().enumerate() {
                // SAFETY: `written + i < end <= LEN`, inside the static slot; the firmware is
                // single-threaded and holds no reference into the slot while a patch writes it.
                unsafe { base.add(self.written + i).write_volatile(b) };
            }
            self.written = end;
            Ok(())
        }

        fn capacity(&self) -> Option<u64> {
            Some((LEN - self.written) as u64)
        }

        /// The whole slot: a patch that recomputes bytes (the fold-in Gramian) reads the model
        /// it has written so far back from it (flash is memory-mapped on a real part too).
        fn read_back(&self) -> Option<&[u8]> {
            // SAFETY: the slot is a static of LEN bytes, initialised; the slice lives as long
            // as this shared borrow of the writer, during which nothing writes the slot
            // (`write` takes the writer mutably, and `flip` is not called while a patch runs).
            Some(unsafe {
                core::slice::from_raw_parts(core::ptr::addr_of!(SLOT_B).cast::<u8>(), LEN)
            })
        }
    }

    /// The first `len` bytes of the slot, once written.
    pub fn contents(len: usize) -> &'static [u8] {
        let len = len.min(LEN);
        // SAFETY: the slot is a static of LEN bytes, initialised (zeros, then what a patch
        // wrote); no write happens while the returned slice is in use (the callers write only
        // through `flip`, which they call with no slice alive).
        unsafe { core::slice::from_raw_parts(core::ptr::addr_of!(SLOT_B).cast::<u8>(), len) }
    }

    /// Flips one bit of byte `at` (to tamper with the slot, and to undo it).
    pub fn flip(at: usize) {
        if at < LEN {
            let base = core::ptr::addr_of_mut!(SLOT_B).cast::<u8>();
            // SAFETY: inside the slot; no slice into it is alive (see `contents`).
            unsafe {
                let p = base.add(at);
                p.write_volatile(p.read_volatile() ^ 1);
            }
        }
    }
}

/// Applies the signed patch into slot B, opens the result only with its signature, compares
/// its top-k with the host's, and checks the refusals.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
fn run_update() -> bool {
    use pocketrec::patch::{self, Patch};
    use pocketrec::{Error, Model, Recommendation};

    let mut ok = true;
    let mut expect = |cond: bool, what: &str| {
        hprintln!("{} {}", if cond { "ok  " } else { "FAIL" }, what);
        ok &= cond;
    };
    let Ok(size) = Patch::parse(PATCH).map(|p| p.header().result_size as usize) else {
        hprintln!("FAIL: the patch does not parse");
        return false;
    };
    // Refusals before anything is written: another key, then the right one.
    let mut writer = slot::Writer::new();
    let refused = patch::apply_signed(MODEL, PATCH, OTHER_KEY, &mut writer);
    expect(
        matches!(refused, Err(Error::WrongKey { .. })),
        "a patch checked with another key: wrong key",
    );
    let mut writer = slot::Writer::new();
    let applied = patch::apply_signed(MODEL, PATCH, KEY, &mut writer);
    hprintln!(
        "update: patch {} bytes applied to the model in flash ({} bytes) -> slot B, {} bytes",
        PATCH.len(),
        MODEL.len(),
        size
    );
    let summary = match applied {
        Ok(summary) => summary,
        Err(e) => {
            hprintln!("FAIL: the patch does not apply: {}", e);
            return false;
        }
    };
    expect(
        summary.result_size as usize == size,
        "the patch wrote the size it names, its SHA-256 checked",
    );
    hprintln!(
        "update: {} bytes carried by the patch, {} bytes recomputed here (what follows from the tables)",
        summary.carried,
        summary.derived
    );
    expect(
        summary.derived > 0,
        "what follows from the tables recomputed on the device, not carried",
    );
    let new = slot::contents(size);
    // A patch for another base is refused (check runs what apply runs, writing nothing).
    let wrong = patch::check(new, PATCH);
    expect(
        matches!(wrong, Err(Error::WrongBase { .. })),
        "the patch applied to another base: wrong base",
    );
    // The signature refusals, in the no_std build.
    expect(
        matches!(Model::from_bytes_signed(MODEL, KEY), Err(Error::Unsigned)),
        "the unsigned model in slot A, opened signed: unsigned",
    );
    expect(
        matches!(
            Model::from_bytes_signed(new, OTHER_KEY),
            Err(Error::WrongKey { .. })
        ),
        "slot B opened with another key: wrong key",
    );
    slot::flip(size / 2);
    let tampered = matches!(
        Model::from_bytes_signed(slot::contents(size), KEY),
        Err(Error::Tampered(_))
    );
    slot::flip(size / 2);
    expect(tampered, "slot B with one bit changed: tampered");
    let Ok(model) = Model::from_bytes_signed(slot::contents(size), KEY) else {
        hprintln!("FAIL: slot B does not open with its signature");
        return false;
    };
    let mut top = [Recommendation::default(); K];
    let Ok(n) = model.recommend(USER, K, &EXCLUDE, &mut top) else {
        hprintln!("FAIL: recommend on slot B failed");
        return false;
    };
    let mut same = n == UPDATED_EXPECTED.len();
    for (rank, rec) in top[..n].iter().enumerate() {
        same &= UPDATED_EXPECTED.get(rank) == Some(&(rec.id, rec.score.to_bits()));
    }
    expect(
        same,
        "slot B, opened signed: top-k equals the host's on the updated model, every bit",
    );
    ok
}

/// Stack measurement by painting.
mod stack {
    /// The pattern painted on the unused stack.
    const PAINT: u32 = 0xC0DE_5AFE;
    /// Words just below the current stack pointer left alone while painting (this function's
    /// own frame lives above the stack pointer; the margin covers what it may still push).
    const MARGIN: usize = 256;

    extern "C" {
        /// The end of .bss/.uninit: the lowest address the stack may reach (cortex-m-rt).
        static __sheap: u32;
        /// The initial stack pointer, the top of RAM (cortex-m-rt).
        static _stack_start: u32;
    }

    fn bottom() -> usize {
        // Only the address of the linker symbol is taken (safe), never its value.
        core::ptr::addr_of!(__sheap) as usize
    }

    /// The initial stack pointer.
    pub fn top() -> usize {
        core::ptr::addr_of!(_stack_start) as usize
    }

    /// Paints the free stack below the current stack pointer; returns how many bytes.
    #[inline(never)]
    pub fn paint() -> usize {
        let sp = cortex_m::register::msp::read() as usize;
        let (start, end) = (bottom(), sp - MARGIN);
        let mut at = start;
        while at < end {
            // SAFETY: [__sheap, sp - MARGIN) is RAM between the end of the statics and the
            // live stack: no object lives there, and this function's frame is above `sp`.
            unsafe { (at as *mut u32).write_volatile(PAINT) };
            at += 4;
        }
        end - start
    }

    /// The deepest the stack has been since `paint`, in bytes from its top.
    pub fn used() -> usize {
        let mut at = bottom();
        // SAFETY: reads of RAM words between the end of the statics and the stack top.
        while at < top() && unsafe { (at as *const u32).read_volatile() } == PAINT {
            at += 4;
        }
        top() - at
    }
}

/// Runs the query and compares it with the host's answer.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
fn run() -> bool {
    use pocketrec::{Model, Recommendation};

    let Ok(model) = Model::from_bytes(MODEL) else {
        hprintln!("FAIL: the model does not open");
        return false;
    };
    let mut top = [Recommendation::default(); K];
    let Ok(n) = model.recommend(USER, K, &EXCLUDE, &mut top) else {
        hprintln!("FAIL: recommend failed");
        return false;
    };
    hprintln!(
        "pocketrec on cortex-m4f: model {} bytes in flash, top {} for user {}",
        MODEL.len(),
        n,
        USER
    );
    let mut ok = n == EXPECTED.len();
    for (rank, rec) in top[..n].iter().enumerate() {
        let bits = rec.score.to_bits();
        let same = EXPECTED.get(rank) == Some(&(rec.id, bits));
        ok &= same;
        let milli = (rec.score * 1000.0) as i32;
        hprintln!(
            "{:>3}  item {:>8}  score {:#010x} ({}{}.{:03})  {}",
            rank + 1,
            rec.id,
            bits,
            if milli < 0 { "-" } else { "" },
            milli.unsigned_abs() / 1000,
            milli.unsigned_abs() % 1000,
            if same { "= host" } else { "!= host" }
        );
    }
    ok && option_env!("POCKETREC_FW_FORCE_FAIL").is_none()
}

/// How far the folded user's scores may be from the host's: `|device − host| ≤ 1e-4 × m`,
/// `m` the largest `|score|` of the host's top-k; the items must be equal, in order.
///
/// Why not bit equality, as for the query: the runtime promises equal bits for scoring (its
/// SIMD kernels are bit-identical twins of the scalar loops this part runs), but not for the
/// fold-in solve, a few thousand f32 operations whose answer its docs promise only "to
/// rounding". Today the host (x86_64) and this Cortex-M4F agree bit for bit (the solve is
/// scalar f32 in the same order on both, Rust fuses no multiply-add into an FMA unasked, both
/// square roots are correctly rounded; the log says "every bit" per score), but a reordered
/// loop on one target would move the last bits: with the conjugate gradient, for one, the
/// scores land 1 to 2 ulp from the Cholesky ones on this model. 1e-4 leaves room for that
/// (a reordered f32 sum of `n` terms moves by about `n · 2⁻²⁴` of their magnitudes, under
/// 4e-6 at d = 64) and still catches any real error (a wrong row, Gramian or solve is off in
/// the first digits).
/// Relative to the largest score rather than to each: a score near zero (a dot product
/// cancelling against an item bias) can have a large relative error from a tiny absolute one.
#[cfg(not(feature = "baseline"))]
const FOLD_TOLERANCE: f32 = 1e-4;

/// Folds a user in from `FOLD_ITEMS` with `model`'s own fold-in (the Cholesky solve on the
/// Gramian for `MODEL`, the softmax ascent on the catalogue summary for `SOFTMAX_MODEL`; `solver`
/// says which it must be), recommends `K` items for them (the folded-from items excluded, as the
/// host's CLI does) and compares with the host's answer `expected`.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
fn run_fold_in(model: &[u8], solver: pocketrec::Solver, expected: &[(u64, u32)]) -> bool {
    use pocketrec::{Model, Recommendation, MAX_CHOLESKY_DIM};

    let abs = |x: f32| if x < 0.0 { -x } else { x };
    let Ok(model) = Model::from_bytes(model) else {
        hprintln!("FAIL: the model does not open");
        return false;
    };
    let dim = match model.dim() {
        Some(dim) if dim <= MAX_CHOLESKY_DIM => dim,
        _ => {
            hprintln!("FAIL: the firmware folds in up to d = {}", MAX_CHOLESKY_DIM);
            return false;
        }
    };
    let mut user = [0.0f32; MAX_CHOLESKY_DIM];
    let user = &mut user[..dim];
    let summary = match model.fold_in(&FOLD_ITEMS, &[], None, user) {
        Ok(summary) => summary,
        Err(_) => {
            hprintln!("FAIL: fold_in failed");
            return false;
        }
    };
    let mut top = [Recommendation::default(); K];
    let Ok(n) = model.recommend_vector(user, K, &FOLD_ITEMS, &mut top) else {
        hprintln!("FAIL: recommend_vector failed");
        return false;
    };
    hprintln!(
        "fold-in: a user from {} items ({} in the model, {} unknown), solver {:?}, d = {}; top {}",
        FOLD_ITEMS.len(),
        summary.used,
        summary.unknown,
        summary.solver,
        dim,
        n
    );
    let largest = expected
        .iter()
        .map(|&(_, bits)| abs(f32::from_bits(bits)))
        .fold(0.0f32, |a, b| if b > a { b } else { a });
    let allowed = FOLD_TOLERANCE * largest;
    let mut ok = n == expected.len() && summary.unknown == 0 && summary.solver == solver;
    for (rank, rec) in top[..n].iter().enumerate() {
        let bits = rec.score.to_bits();
        let verdict = match expected.get(rank) {
            Some(&(id, host)) if id == rec.id && host == bits => "= host, every bit",
            Some(&(id, host))
                if id == rec.id && abs(rec.score - f32::from_bits(host)) <= allowed =>
            {
                "= host within 1e-4 of the top score"
            }
            _ => {
                ok = false;
                "!= host"
            }
        };
        let milli = (rec.score * 1000.0) as i32;
        hprintln!(
            "{:>3}  item {:>8}  score {:#010x} ({}{}.{:03})  {}",
            rank + 1,
            rec.id,
            bits,
            if milli < 0 { "-" } else { "" },
            milli.unsigned_abs() / 1000,
            milli.unsigned_abs() % 1000,
            verdict
        );
    }
    ok
}

/// Runs [`run_fold_in`] on a stack painted afresh, so that its figure does not include the
/// query's (`query_used` bytes), and prints the figure under `label`.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
fn measure_fold_in(
    label: &str,
    model: &[u8],
    solver: pocketrec::Solver,
    expected: &[(u64, u32)],
    query_used: usize,
) -> bool {
    let painted = stack::paint();
    let ok = run_fold_in(model, solver, expected);
    let used = stack::used();
    hprintln!(
        "{} stack: {} bytes used at most (of {} painted), {} bytes beyond the query",
        label,
        used,
        painted,
        used as isize - query_used as isize
    );
    ok
}

/// The baseline: the same scaffolding, no model, no runtime.
#[cfg(feature = "baseline")]
#[inline(never)]
fn run() -> bool {
    hprintln!("baseline: no model, no runtime");
    true
}

#[entry]
fn main() -> ! {
    let painted = stack::paint();
    let ok = run();
    let used = stack::used();
    hprintln!(
        "stack: {} bytes used at most (of {} painted below the top at {:#010x})",
        used,
        painted,
        stack::top()
    );
    // Each fold-in path on its own: the Cholesky solve on the model's Gramian, then the
    // softmax ascent on the second model's catalogue summary.
    #[cfg(not(feature = "baseline"))]
    let ok = {
        use pocketrec::Solver;
        let gramian = measure_fold_in("fold-in", MODEL, Solver::Cholesky, &FOLD_EXPECTED, used);
        let softmax = measure_fold_in(
            "softmax fold-in",
            SOFTMAX_MODEL,
            Solver::Softmax,
            &SOFTMAX_EXPECTED,
            used,
        );
        ok & gramian & softmax
    };
    // The update path on its own, painted afresh.
    #[cfg(not(feature = "baseline"))]
    let ok = {
        let painted = stack::paint();
        let updated = run_update();
        let update_used = stack::used();
        hprintln!(
            "update stack: {} bytes used at most (of {} painted)",
            update_used,
            painted
        );
        ok & updated
    };
    hprintln!("-> {}", if ok { "PASS" } else { "FAIL" });
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic -> FAIL");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
