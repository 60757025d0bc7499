//! The `pocketrec` command-line tool; see `pocketrec --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A bug must never greet the user with a Rust panic message: say what happened instead.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "pocketrec: internal error{location}. This is a bug in pocketrec; please report it with the command you ran."
        );
    }));
    match std::panic::catch_unwind(pocketrec_export::cli::main) {
        Ok(code) => code,
        Err(_) => ExitCode::from(70),
    }
}
