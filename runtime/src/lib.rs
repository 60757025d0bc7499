//! pocketrec runtime.
#![no_std]
