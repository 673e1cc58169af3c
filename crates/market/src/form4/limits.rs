//! The resource limits the parser enforces, so that no input, however hostile, makes it allocate
//! without bound or recurse without bound. Every collection and every string it builds has a cap
//! here; the caps are generous for real filings (the largest real Form 4s have a few hundred rows).

/// Caps applied while parsing one document. [`Limits::DEFAULT`] is what
/// [`parse_document`](super::parse_document) uses; callers may tighten (or, for tests, shrink) them
/// with [`parse_document_with_limits`](super::parse_document_with_limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole input, bare XML or EDGAR `.txt`, in bytes.
    pub max_input_bytes: usize,
    /// Element nesting depth (real documents nest 6 deep).
    pub max_depth: usize,
    /// Each of: reporting owners, transactions, holdings, footnotes.
    pub max_items: usize,
    /// Text of one element, in bytes, before whitespace is collapsed.
    pub max_text_bytes: usize,
    /// Distinct footnote references in one table row.
    pub max_footnote_refs: usize,
    /// One footnote id (`F1`), in bytes.
    pub max_id_bytes: usize,
}

impl Limits {
    /// The limits [`parse_document`](super::parse_document) applies.
    pub const DEFAULT: Limits = Limits {
        max_input_bytes: 5 * 1024 * 1024,
        max_depth: 64,
        max_items: 10_000,
        max_text_bytes: 64 * 1024,
        max_footnote_refs: 256,
        max_id_bytes: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
