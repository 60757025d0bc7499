//! One module a command: each turns its parsed arguments into calls of the libraries and prints
//! the result. Commands do not call each other; what they share lives beside them
//! ([`crate::output`], [`crate::progress`], [`crate::recommendations`]) or in the libraries.

pub mod bench;
pub mod demo;
pub mod eval;
pub mod export;
pub mod frontier;
pub mod generate;
pub mod inspect;
pub mod recommend;
pub mod split;
pub mod train;
pub mod update;
pub mod verify;
