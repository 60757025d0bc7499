//! The `pocketrec` command-line tool.
fn main() {}
