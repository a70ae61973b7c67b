//! A streamed request body, split into its messages as the bytes arrive:
//! NDJSON (one JSON value per line; blank lines are skipped) or one JSON
//! array (each element a message, as Envoy's transcoder accepts). Nothing is
//! kept but the element in progress, and an element larger than the limit is
//! refused before it is buffered whole.

use bytes::{Buf, Bytes, BytesMut};

/// How the body separates its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON value per line.
    Ndjson,
    /// One JSON array.
    Array,
}

/// Why a body cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// One element is over the size limit.
    #[error("element {index} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The element's index.
        index: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not an array, or an array ends early or is followed by more.
    #[error("{0}")]
    Malformed(String),
}

/// Splits a body into elements.
///
/// ```
/// use bytes::Bytes;
/// use protogate::transcode::split::{Framing, Splitter};
///
/// let mut s = Splitter::new(Framing::Array, 1024);
/// s.push(Bytes::from_static(b"[{\"a\": \"x,]\"}, {\"b"));
/// assert_eq!(s.next_element().unwrap().as_deref(), Some(&b"{\"a\": \"x,]\"}"[..]));
/// assert_eq!(s.next_element().unwrap(), None); // the second is not complete
/// s.push(Bytes::from_static(b"\": [1, 2]}]"));
/// assert_eq!(s.next_element().unwrap().as_deref(), Some(&b"{\"b\": [1, 2]}"[..]));
/// assert_eq!(s.finish().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct Splitter {
    framing: Framing,
    limit: usize,
    buf: BytesMut,
    /// How far `buf` has been scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Array framing: `[` seen; `]` seen.
    opened: bool,
    closed: bool,
    index: usize,
}

impl Splitter {
    /// A splitter refusing elements over `limit` bytes.
    pub fn new(framing: Framing, limit: usize) -> Splitter {
        Splitter {
            framing,
            limit,
            buf: BytesMut::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            opened: false,
            closed: false,
            index: 0,
        }
    }

    /// The index the next element will have.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: Bytes) {
        self.buf.extend_from_slice(&chunk);
    }

    /// The next complete element, `Ok(None)` when more bytes are needed.
    pub fn next_element(&mut self) -> Result<Option<Bytes>, SplitError> {
        let found = match self.framing {
            Framing::Ndjson => self.next_line(),
            Framing::Array => self.next_in_array()?,
        };
        match found {
            Some(e) if e.len() > self.limit => Err(SplitError::TooLarge {
                index: self.index - 1,
                limit: self.limit,
            }),
            Some(e) => Ok(Some(e)),
            None if self.buf.len() > self.limit => Err(SplitError::TooLarge {
                index: self.index,
                limit: self.limit,
            }),
            None => Ok(None),
        }
    }

    /// At the end of the body: the last element (an NDJSON line without
    /// its newline), or an error if the body ends inside one.
    pub fn finish(&mut self) -> Result<Option<Bytes>, SplitError> {
        match self.framing {
            Framing::Ndjson => {
                let rest = self.buf.split().freeze();
                match self.element(rest) {
                    Some(e) if e.len() > self.limit => Err(SplitError::TooLarge {
                        index: self.index - 1,
                        limit: self.limit,
                    }),
                    other => Ok(other),
                }
            }
            Framing::Array if !self.closed && (self.opened || !is_blank(&self.buf)) => {
                Err(SplitError::Malformed(format!(
                    "the array ends before its `]` (element {})",
                    self.index
                )))
            }
            Framing::Array => Ok(None),
        }
    }

    fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                return None;
            };
            let line = self.buf.split_to(self.scanned + at + 1).freeze();
            self.scanned = 0;
            if let Some(e) = self.element(line) {
                return Some(e);
            }
        }
    }

    /// Trims `raw`; blank is no element.
    fn element(&mut self, raw: Bytes) -> Option<Bytes> {
        let start = raw.iter().position(|b| !b.is_ascii_whitespace())?;
        let end = raw.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
        self.index += 1;
        Some(raw.slice(start..end))
    }

    fn next_in_array(&mut self) -> Result<Option<Bytes>, SplitError> {
        if !self.opened {
            let Some(at) = self.buf.iter().position(|b| !b.is_ascii_whitespace()) else {
                self.buf.clear();
                return Ok(None);
            };
            if self.buf[at] != b'[' {
                return Err(SplitError::Malformed(
                    "a streamed JSON body is an array of messages, or NDJSON (send content-type application/x-ndjson)".into(),
                ));
            }
            self.buf.advance(at + 1);
            self.opened = true;
        }
        if self.closed {
            return match is_blank(&self.buf) {
                true => Ok(None),
                false => Err(SplitError::Malformed(
                    "more data after the array's `]`".into(),
                )),
            };
        }
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => self.depth -= 1,
                b']' => {
                    self.closed = true;
                    return self.take(true);
                }
                b',' if self.depth == 0 => return self.take(false),
                _ => {}
            }
        }
        Ok(None)
    }

    /// The element before the separator just scanned.
    fn take(&mut self, last: bool) -> Result<Option<Bytes>, SplitError> {
        let raw = self.buf.split_to(self.scanned).freeze();
        self.scanned = 0;
        let body = raw.slice(..raw.len() - 1);
        match self.element(body) {
            Some(e) => Ok(Some(e)),
            // `[]`, or a trailing `]` after the last element's comma.
            None if last && self.index == 0 => Ok(None),
            None => Err(SplitError::Malformed(format!(
                "element {} is empty",
                self.index
            ))),
        }
    }
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(framing: Framing, chunks: &[&str]) -> Result<Vec<String>, SplitError> {
        let mut s = Splitter::new(framing, 64);
        let mut out = Vec::new();
        for c in chunks {
            s.push(Bytes::copy_from_slice(c.as_bytes()));
            while let Some(e) = s.next_element()? {
                out.push(String::from_utf8(e.to_vec()).unwrap());
            }
        }
        if let Some(e) = s.finish()? {
            out.push(String::from_utf8(e.to_vec()).unwrap());
        }
        Ok(out)
    }

    #[test]
    fn ndjson_lines_in_any_chunking() {
        let got = split(
            Framing::Ndjson,
            &["{\"a\":1}\n\n {\"b\"", ":2}\r\n", "{\"c\":3}"],
        )
        .unwrap();
        assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        assert_eq!(
            split(Framing::Ndjson, &["\n \n"]).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn arrays_in_any_chunking() {
        let body = r#" [ {"s": "a,]\"}"}, [1, [2]], "x" , 3 ] "#;
        let whole = split(Framing::Array, &[body]).unwrap();
        assert_eq!(whole, [r#"{"s": "a,]\"}"}"#, "[1, [2]]", r#""x""#, "3"]);
        let bytes: Vec<String> = body.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(split(Framing::Array, &refs).unwrap(), whole);
        assert_eq!(
            split(Framing::Array, &["[]"]).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(split(Framing::Array, &[""]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_arrays_and_large_elements() {
        assert!(matches!(
            split(Framing::Array, &["{}"]),
            Err(SplitError::Malformed(_))
        ));
        assert!(matches!(
            split(Framing::Array, &["[1, 2"]),
            Err(SplitError::Malformed(_))
        ));
        assert!(matches!(
            split(Framing::Array, &["[1,,2]"]),
            Err(SplitError::Malformed(_))
        ));
        assert!(matches!(
            split(Framing::Array, &["[1] x"]),
            Err(SplitError::Malformed(_))
        ));
        let big = format!("[1, \"{}\"]", "x".repeat(100));
        assert_eq!(
            split(Framing::Array, &[&big]),
            Err(SplitError::TooLarge {
                index: 1,
                limit: 64
            })
        );
        let long_line = "x".repeat(100);
        assert!(matches!(
            split(Framing::Ndjson, &[&long_line]),
            Err(SplitError::TooLarge { .. })
        ));
    }
}
