//! Free-form string properties stored in the metadata (provenance and the like).

use crate::error::{Error, Result};

/// Iterator over a model's `(key, value)` string properties, in file order.
///
/// The properties are checked when the model is opened, so iteration yields every pair.
///
/// ```
/// # fn main() -> Result<(), pocketrec::Error> {
/// # let bytes = pocketrec::builder::tiny_example_model()?;
/// let model = pocketrec::Model::from_bytes(&bytes)?;
/// for (key, value) in model.properties() {
///     println!("{key} = {value}");
/// }
/// assert_eq!(model.property("created_by"), Some("pocketrec doctest"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Properties<'a> {
    rest: &'a [u8],
    remaining: u64,
}

impl<'a> Properties<'a> {
    /// Properties encoded as a postcard sequence of `(&str, &str)` pairs (already validated).
    pub(crate) fn new(encoded: &'a [u8]) -> Self {
        match postcard::take_from_bytes::<u64>(encoded) {
            Ok((remaining, rest)) => Properties { rest, remaining },
            Err(_) => Properties {
                rest: &[],
                remaining: 0,
            },
        }
    }
}

impl<'a> Iterator for Properties<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let (pair, rest) = postcard::take_from_bytes::<(&'a str, &'a str)>(self.rest).ok()?;
        self.rest = rest;
        self.remaining -= 1;
        Some(pair)
    }
}

/// Checks that `encoded` is exactly a count followed by that many string pairs.
pub(crate) fn validate(encoded: &[u8]) -> Result<()> {
    let bad = Error::InvalidMetadata("properties do not decode");
    let (count, mut rest) = postcard::take_from_bytes::<u64>(encoded).map_err(|_| bad)?;
    for _ in 0..count {
        let (_, tail) = postcard::take_from_bytes::<(&str, &str)>(rest)
            .map_err(|_| Error::InvalidMetadata("properties do not decode"))?;
        rest = tail;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidMetadata("bytes after the properties"))
    }
}
