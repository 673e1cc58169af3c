//! Why a document was refused. Every variant names its context (which element, which limit) but
//! never carries more than a short, sanitised excerpt of the input, so an error can be logged or
//! returned without echoing an attacker's megabytes.

/// A document the parser refused. `element` fields are local names of ownership XML elements
/// (`"transactionShares"`), or `"(other element)"` for one the parser does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("document is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("document is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("document type declarations (<!DOCTYPE>) are refused")]
    Dtd,
    #[error("entity declarations (<!ENTITY>) are refused")]
    EntityDeclaration,
    #[error("reference to an undefined entity in <{element}>")]
    UndefinedEntity { element: &'static str },
    #[error("malformed XML in <{element}> at byte {position}: {detail}")]
    Malformed {
        element: &'static str,
        position: u64,
        /// The XML reader's message, cut to a short length.
        detail: String,
    },
    #[error("document ends inside <{element}>")]
    Truncated { element: &'static str },
    #[error("document has no root element")]
    NoRootElement,
    #[error("root element is <{found}>, not <ownershipDocument>")]
    WrongRoot {
        /// The root's name, cut to a short length.
        found: String,
    },
    #[error("elements nested deeper than {limit} levels (at <{element}>)")]
    TooDeep { element: &'static str, limit: usize },
    #[error("more than {limit} <{element}> elements")]
    TooMany { element: &'static str, limit: usize },
    #[error("text of <{element}> is longer than {limit} bytes")]
    TextTooLong { element: &'static str, limit: usize },
    #[error("<{element}> is missing in <{within}>")]
    MissingField {
        element: &'static str,
        within: &'static str,
    },
    #[error("<{element}> is not {expected}")]
    InvalidValue {
        element: &'static str,
        expected: &'static str,
    },
    #[error("<{element}> is not allowed inside <{within}>")]
    Unexpected {
        element: &'static str,
        within: &'static str,
    },
    #[error("EDGAR submission contains no ownership XML document")]
    NoOwnershipDocument,
    #[error("EDGAR submission header field {field} is invalid")]
    InvalidHeader { field: &'static str },
}

/// At most `max` characters of `text`, control characters replaced, for error messages.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}
