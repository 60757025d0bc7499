//! End-to-end tests across the pocketrec crates live in `tests/`.
