//! pocketrec on a Cortex-M4F: a `.prec` model embedded in flash, opened zero-copy with the
//! runtime's `no_std`, no-alloc build, `recommend` for one user, the top-k printed over
//! semihosting and compared with the host's answer (built in by build.rs from scripts/cross.sh).
//! The exit status (through semihosting) is 0 when every item and every score bit matches.
//!
//! It also measures its stack: the free stack is painted with a pattern before the query, and
//! the deepest word overwritten afterwards gives the most stack used.
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
