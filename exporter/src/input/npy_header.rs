//! The `.npy` header: the Python dict literal (`{'descr': '<f4', 'fortran_order': False,
//! 'shape': (5, 4), }`) and the dtype string it names.
//!
//! The literal parser understands what NumPy writes (strings, `True`/`False`/`None`, integers,
//! tuples, lists, dicts) with a nesting limit, and nothing else: it never evaluates anything.

use super::convert::{ByteOrder, FloatType, IntType, element_count};

/// Deepest nesting of tuples, lists and dicts accepted in a header.
const MAX_DEPTH: usize = 32;

/// A Python literal value from an npy header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PyValue {
    /// A string (`'...'` or `"..."`, optionally prefixed with `u` or `b`).
    Str(String),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// An integer (Python 2's `L` suffix accepted).
    Int(i128),
    /// A tuple.
    Tuple(Vec<PyValue>),
    /// A list.
    List(Vec<PyValue>),
    /// A dict with string keys.
    Dict(Vec<(String, PyValue)>),
}

impl std::fmt::Display for PyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn seq(f: &mut std::fmt::Formatter<'_>, items: &[PyValue]) -> std::fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            PyValue::Str(s) => write!(f, "{s:?}"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::None => f.write_str("None"),
            PyValue::Int(i) => write!(f, "{i}"),
            PyValue::Tuple(items) => {
                f.write_str("(")?;
                seq(f, items)?;
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            PyValue::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            PyValue::Dict(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Parses one Python literal that makes up all of `text` (surrounding whitespace allowed).
pub(crate) fn parse_literal(text: &str) -> Result<PyValue, String> {
    let mut p = LiteralParser {
        s: text.as_bytes(),
        pos: 0,
    };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!(
            "unexpected text after the header dict at byte {}",
            p.pos
        ));
    }
    Ok(v)
}

struct LiteralParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl LiteralParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", c as char)))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(c) if c.is_ascii_graphic() => {
                format!(
                    "expected {wanted} at byte {}, found '{}'",
                    self.pos, c as char
                )
            }
            Some(c) => format!(
                "expected {wanted} at byte {}, found byte {c:#04x}",
                self.pos
            ),
            None => format!("expected {wanted}, found the end of the header"),
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > MAX_DEPTH {
            return Err(format!("header nests deeper than {MAX_DEPTH} levels"));
        }
        self.skip_ws();
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(PyValue::Str),
            Some(b'u' | b'b' | b'U' | b'B')
                if matches!(self.s.get(self.pos + 1), Some(b'\'' | b'"')) =>
            {
                self.pos += 1;
                self.string().map(PyValue::Str)
            }
            Some(b'(') => self.sequence(b')', depth).map(PyValue::Tuple),
            Some(b'[') => self.sequence(b']', depth).map(PyValue::List),
            Some(b'{') => self.dict(depth),
            Some(b'-' | b'+' | b'0'..=b'9') => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    self.pos += 1;
                }
                match self.s.get(start..self.pos) {
                    Some(b"True") => Ok(PyValue::Bool(true)),
                    Some(b"False") => Ok(PyValue::Bool(false)),
                    Some(b"None") => Ok(PyValue::None),
                    _ => Err(format!(
                        "unknown name '{}' in the header at byte {start}",
                        String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or_default())
                    )),
                }
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek() else {
            return Err(self.unexpected("a string"));
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string in the header".to_string()),
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err("unterminated string in the header".to_string()),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'0') => out.push(0),
                        Some(c @ (b'\\' | b'\'' | b'"')) => out.push(c),
                        Some(c) => {
                            out.push(b'\\');
                            out.push(c);
                        }
                    }
                    self.pos += 1;
                }
                Some(b'\n') => return Err("newline inside a string in the header".to_string()),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "a string in the header is not valid UTF-8".to_string())
    }

    fn int(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = self.s.get(start..self.pos).unwrap_or_default();
        // Python 2 wrote long integers with an `L` suffix.
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(digits).unwrap_or_default();
        text.parse::<i128>()
            .map(PyValue::Int)
            .map_err(|_| format!("bad or too large integer '{text}' in the header at byte {start}"))
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<PyValue>, String> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(self.unexpected(&format!("',' or '{}'", close as char))),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, String> {
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(PyValue::Dict(entries));
            }
            let key = match self.value(depth + 1)? {
                PyValue::Str(k) => k,
                other => return Err(format!("header dict key {other} is not a string")),
            };
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }
}

/// What kind of element an npy dtype string describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NpyKind {
    /// A float type the exporter converts.
    Float(FloatType, ByteOrder),
    /// An integer type (sparse indices, shapes).
    Int(IntType, ByteOrder),
    /// Fixed-length bytes (`S`), e.g. scipy's `format` member.
    Bytes,
    /// Fixed-length UCS-4 text (`U`).
    Unicode(ByteOrder),
    /// Anything else (bool, complex, objects, datetimes, void, float128, structured).
    Other,
}

/// A parsed npy dtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Descr {
    /// The dtype as the file spells it (for messages).
    pub text: String,
    /// What it is.
    pub kind: NpyKind,
    /// Bytes per element (0 when unknown, for [`NpyKind::Other`] only).
    pub itemsize: usize,
}

impl Descr {
    /// A description of a dtype the exporter does not convert to f32, with a hint where one helps.
    pub(crate) fn unsupported_text(&self) -> String {
        match (self.text.as_bytes().first(), self.text.get(1..)) {
            (Some(b'<' | b'>' | b'|' | b'='), Some("V2")) => format!(
                "{} (2-byte raw data, e.g. an ml_dtypes bfloat16 array: .npy does not record \
                 that it is bfloat16, so save it as safetensors, or as float32/float16)",
                self.text
            ),
            _ => self.text.clone(),
        }
    }
}

/// Parses the `descr` value of an npy header. Errors are messages for a Parse error.
pub(crate) fn parse_descr(value: &PyValue) -> Result<Descr, String> {
    let text = match value {
        PyValue::Str(s) => s.clone(),
        // Structured dtypes are lists of (name, dtype[, shape]) tuples.
        PyValue::List(_) => {
            let mut text = format!("structured {value}");
            if text.len() > 120 {
                let cut = (0..=117)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push_str("...");
            }
            return Ok(Descr {
                text,
                kind: NpyKind::Other,
                itemsize: 0,
            });
        }
        other => return Err(format!("'descr' is {other}, not a dtype string")),
    };
    let bytes = text.as_bytes();
    let (order_char, rest) = match bytes.first() {
        Some(c @ (b'<' | b'>' | b'|' | b'=')) => (Some(*c), bytes.get(1..).unwrap_or_default()),
        _ => (None, bytes),
    };
    let Some((&kind, size_text)) = rest.split_first() else {
        return Err(format!("dtype '{text}' is empty"));
    };
    // Datetimes carry a unit, e.g. `<M8[ns]`; anything after the digits makes the type "other".
    let digits_end = size_text
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(size_text.len());
    let (digits, suffix) = size_text.split_at(digits_end);
    let size: Option<usize> = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok());
    let other = |itemsize: usize| Descr {
        text: text.clone(),
        kind: NpyKind::Other,
        itemsize,
    };
    let Some(size) = size else {
        // NumPy always writes a size; a bare code like '<f' is not something it produces.
        return Ok(other(0));
    };
    if !suffix.is_empty() {
        return Ok(other(size));
    }
    let order = match order_char {
        Some(b'<') => Some(ByteOrder::Little),
        Some(b'>') => Some(ByteOrder::Big),
        // '=' and no prefix at all (hand-written headers) mean native order, as in NumPy.
        Some(b'=') | None => Some(ByteOrder::NATIVE),
        // '|' means "not applicable": fine for 1-byte types and byte strings only.
        _ => None,
    };
    let need_order = |order: Option<ByteOrder>| -> Result<ByteOrder, String> {
        match (order, size) {
            (Some(o), _) => Ok(o),
            (None, 1) => Ok(ByteOrder::Little),
            (None, _) => Err(format!(
                "dtype '{text}' has no byte order ('<' or '>') but {size}-byte elements"
            )),
        }
    };
    let kind = match (kind, size) {
        (b'f', 2) => NpyKind::Float(FloatType::F16, need_order(order)?),
        (b'f', 4) => NpyKind::Float(FloatType::F32, need_order(order)?),
        (b'f', 8) => NpyKind::Float(FloatType::F64, need_order(order)?),
        (b'i' | b'u', 1 | 2 | 4 | 8) => NpyKind::Int(
            IntType {
                signed: kind == b'i',
                size,
            },
            need_order(order)?,
        ),
        (b'S' | b'a', _) => NpyKind::Bytes,
        (b'U', _) => NpyKind::Unicode(order.unwrap_or(ByteOrder::Little)),
        _ => NpyKind::Other,
    };
    let itemsize = match kind {
        NpyKind::Unicode(_) => size.checked_mul(4).ok_or("dtype size too large")?,
        _ => size,
    };
    Ok(Descr {
        text,
        kind,
        itemsize,
    })
}

/// A parsed npy header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NpyHeader {
    /// The element type.
    pub descr: Descr,
    /// Whether the data is in column-major (Fortran) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Number of elements (product of `shape`).
    pub count: usize,
    /// Number of data bytes the header claims (`count * itemsize`).
    pub data_len: usize,
}

/// Parses the text of an npy header dict. Errors are messages for a Parse error.
pub(crate) fn parse_header(text: &str) -> Result<NpyHeader, String> {
    let PyValue::Dict(entries) = parse_literal(text)? else {
        return Err("the header is not a dict".to_string());
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in &entries {
        let slot = match key.as_str() {
            "descr" => descr.replace(value).is_some(),
            "fortran_order" => fortran.replace(value).is_some(),
            "shape" => shape.replace(value).is_some(),
            other => return Err(format!("unexpected key '{other}' in the header")),
        };
        if slot {
            return Err(format!("key '{key}' appears twice in the header"));
        }
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err("the header lacks one of 'descr', 'fortran_order', 'shape'".to_string());
    };
    let descr = parse_descr(descr)?;
    let PyValue::Bool(fortran_order) = *fortran else {
        return Err(format!("'fortran_order' is {fortran}, not True or False"));
    };
    let PyValue::Tuple(dims) = shape else {
        return Err(format!("'shape' is {shape}, not a tuple"));
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            PyValue::Int(n) => usize::try_from(*n)
                .map_err(|_| format!("shape {shape} has an entry that is negative or too large")),
            _ => Err(format!("shape {shape} has a non-integer entry")),
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let count = element_count(&shape).ok_or_else(|| {
        format!(
            "shape {} has too many elements",
            super::convert::shape_str(&shape)
        )
    })?;
    let data_len = count.checked_mul(descr.itemsize).ok_or_else(|| {
        format!(
            "shape {} of {} is too large",
            super::convert::shape_str(&shape),
            descr.text
        )
    })?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        count,
        data_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_header() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), }  \n")
            .unwrap();
        assert_eq!(h.shape, vec![5, 4]);
        assert_eq!(
            h.descr.kind,
            NpyKind::Float(FloatType::F32, ByteOrder::Little)
        );
        assert_eq!(h.data_len, 80);
        assert!(!h.fortran_order);
    }

    #[test]
    fn python2_longs_and_double_quotes() {
        let h = parse_header("{\"descr\": \">f8\", \"fortran_order\": True, \"shape\": (3L,)}")
            .unwrap();
        assert_eq!(h.shape, vec![3]);
        assert_eq!(h.descr.kind, NpyKind::Float(FloatType::F64, ByteOrder::Big));
        assert!(h.fortran_order);
    }

    #[test]
    fn kinds() {
        let k = |s: &str| parse_descr(&PyValue::Str(s.to_string())).unwrap().kind;
        assert_eq!(k("<f2"), NpyKind::Float(FloatType::F16, ByteOrder::Little));
        assert_eq!(
            k("<i8"),
            NpyKind::Int(
                IntType {
                    signed: true,
                    size: 8
                },
                ByteOrder::Little
            )
        );
        assert_eq!(
            k("|u1"),
            NpyKind::Int(
                IntType {
                    signed: false,
                    size: 1
                },
                ByteOrder::Little
            )
        );
        assert_eq!(k("|S3"), NpyKind::Bytes);
        assert_eq!(k("<U3"), NpyKind::Unicode(ByteOrder::Little));
        for other in ["|b1", "<c8", "|O", "<M8[ns]", "<f16", "<V2", "|V2"] {
            assert_eq!(k(other), NpyKind::Other, "{other}");
        }
        assert!(parse_descr(&PyValue::Str("|f4".to_string())).is_err());
        assert_eq!(k("f4"), NpyKind::Float(FloatType::F32, ByteOrder::NATIVE));
        assert_eq!(k("=f8"), NpyKind::Float(FloatType::F64, ByteOrder::NATIVE));
        let structured = parse_literal("[('a', '<f4'), ('b', '<i4')]").unwrap();
        let d = parse_descr(&structured).unwrap();
        assert_eq!(d.kind, NpyKind::Other);
        assert!(d.text.starts_with("structured"), "{}", d.text);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "{",
            "{'descr': '<f4'}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (1, 4)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), 'x': 1}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 4)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4)} x",
            "{'descr': __import__('os'), 'fortran_order': False, 'shape': (1, 4)}",
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "(".repeat(100_000);
        assert!(parse_literal(&text).is_err());
        let text = "[".repeat(100_000);
        assert!(parse_literal(&text).is_err());
    }
}
