//! The streaming reader of `<ownershipDocument>` XML: one pass over quick-xml events with a
//! bounded stack of known element names, filling builders for the issuer, the current reporting
//! owner, the current table row and the current footnote, and validating each on its end tag.
//!
//! Security stance: a `<!DOCTYPE>` is refused outright (so no entity can ever be declared, let
//! alone expanded), only the five predefined entities and character references are resolved, and
//! every stack, string and list is capped by [`Limits`].

use quick_xml::XmlVersion;
use quick_xml::errors::Error as XmlError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;
use rust_decimal::Decimal;

use super::error::{ParseError, excerpt};
use super::limits::Limits;
use super::model::{
    AcquiredDisposed, Date, DerivativeTerms, DirectIndirect, Filing, Footnote, Holding, Issuer,
    ReportingOwner, Transaction,
};
use super::scalar;

/// Declares [`Tag`], the elements the parser interprets, with their XML local names.
macro_rules! tags {
    ($($variant:ident => $name:literal,)*) => {
        /// An element the parser knows, or `Other`. The stack holds these, not names, so a
        /// hostile document cannot make it store long names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Tag {
            $($variant,)*
            Other,
        }

        impl Tag {
            fn from_local_name(name: &str) -> Tag {
                match name {
                    $($name => Tag::$variant,)*
                    _ => Tag::Other,
                }
            }

            fn name(self) -> &'static str {
                match self {
                    $(Tag::$variant => $name,)*
                    Tag::Other => "(other element)",
                }
            }
        }
    };
}

tags! {
    OwnershipDocument => "ownershipDocument",
    DocumentType => "documentType",
    PeriodOfReport => "periodOfReport",
    DateOfOriginalSubmission => "dateOfOriginalSubmission",
    NotSubjectToSection16 => "notSubjectToSection16",
    Aff10b5One => "aff10b5One",
    Remarks => "remarks",
    Issuer => "issuer",
    IssuerCik => "issuerCik",
    IssuerName => "issuerName",
    IssuerTradingSymbol => "issuerTradingSymbol",
    ReportingOwner => "reportingOwner",
    ReportingOwnerId => "reportingOwnerId",
    RptOwnerCik => "rptOwnerCik",
    RptOwnerName => "rptOwnerName",
    ReportingOwnerRelationship => "reportingOwnerRelationship",
    IsDirector => "isDirector",
    IsOfficer => "isOfficer",
    IsTenPercentOwner => "isTenPercentOwner",
    IsOther => "isOther",
    OfficerTitle => "officerTitle",
    OtherText => "otherText",
    NonDerivativeTransaction => "nonDerivativeTransaction",
    NonDerivativeHolding => "nonDerivativeHolding",
    DerivativeTransaction => "derivativeTransaction",
    DerivativeHolding => "derivativeHolding",
    SecurityTitle => "securityTitle",
    Value => "value",
    FootnoteId => "footnoteId",
    TransactionDate => "transactionDate",
    DeemedExecutionDate => "deemedExecutionDate",
    TransactionCoding => "transactionCoding",
    TransactionFormType => "transactionFormType",
    TransactionCode => "transactionCode",
    EquitySwapInvolved => "equitySwapInvolved",
    TransactionShares => "transactionShares",
    TransactionPricePerShare => "transactionPricePerShare",
    TransactionAcquiredDisposedCode => "transactionAcquiredDisposedCode",
    SharesOwnedFollowingTransaction => "sharesOwnedFollowingTransaction",
    DirectOrIndirectOwnership => "directOrIndirectOwnership",
    NatureOfOwnership => "natureOfOwnership",
    ConversionOrExercisePrice => "conversionOrExercisePrice",
    ExerciseDate => "exerciseDate",
    ExpirationDate => "expirationDate",
    UnderlyingSecurityTitle => "underlyingSecurityTitle",
    UnderlyingSecurityShares => "underlyingSecurityShares",
    Footnotes => "footnotes",
    Footnote => "footnote",
}

impl Tag {
    /// Elements whose own text the parser reads. Text anywhere else (indentation, unknown
    /// elements) is skipped without being stored.
    fn carries_text(self) -> bool {
        matches!(
            self,
            Tag::DocumentType
                | Tag::PeriodOfReport
                | Tag::DateOfOriginalSubmission
                | Tag::NotSubjectToSection16
                | Tag::Aff10b5One
                | Tag::Remarks
                | Tag::IssuerCik
                | Tag::IssuerName
                | Tag::IssuerTradingSymbol
                | Tag::RptOwnerCik
                | Tag::RptOwnerName
                | Tag::IsDirector
                | Tag::IsOfficer
                | Tag::IsTenPercentOwner
                | Tag::IsOther
                | Tag::OfficerTitle
                | Tag::OtherText
                | Tag::Value
                | Tag::TransactionFormType
                | Tag::TransactionCode
                | Tag::EquitySwapInvolved
                | Tag::Footnote
        )
    }

    fn row_kind(self) -> Option<RowKind> {
        match self {
            Tag::NonDerivativeTransaction => Some(RowKind::NonDerivativeTransaction),
            Tag::NonDerivativeHolding => Some(RowKind::NonDerivativeHolding),
            Tag::DerivativeTransaction => Some(RowKind::DerivativeTransaction),
            Tag::DerivativeHolding => Some(RowKind::DerivativeHolding),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    NonDerivativeTransaction,
    NonDerivativeHolding,
    DerivativeTransaction,
    DerivativeHolding,
}

impl RowKind {
    fn name(self) -> &'static str {
        match self {
            RowKind::NonDerivativeTransaction => "nonDerivativeTransaction",
            RowKind::NonDerivativeHolding => "nonDerivativeHolding",
            RowKind::DerivativeTransaction => "derivativeTransaction",
            RowKind::DerivativeHolding => "derivativeHolding",
        }
    }

    fn is_derivative(self) -> bool {
        matches!(
            self,
            RowKind::DerivativeTransaction | RowKind::DerivativeHolding
        )
    }

    fn is_holding(self) -> bool {
        matches!(
            self,
            RowKind::NonDerivativeHolding | RowKind::DerivativeHolding
        )
    }
}

/// One table row as read so far; validated into a [`Transaction`] or [`Holding`] at its end tag.
struct RowBuilder {
    kind: RowKind,
    security_title: Option<String>,
    transaction_date: Option<Date>,
    deemed_execution_date: Option<Date>,
    form_type: Option<String>,
    code: Option<String>,
    equity_swap_involved: Option<bool>,
    shares: Option<Decimal>,
    price_per_share: Option<Decimal>,
    price_footnote_ids: Vec<String>,
    acquired_disposed: Option<AcquiredDisposed>,
    shares_owned_after: Option<Decimal>,
    direct_indirect: Option<DirectIndirect>,
    nature_of_ownership: Option<String>,
    footnote_ids: Vec<String>,
    terms: DerivativeTerms,
}

impl RowBuilder {
    fn new(kind: RowKind) -> Self {
        RowBuilder {
            kind,
            security_title: None,
            transaction_date: None,
            deemed_execution_date: None,
            form_type: None,
            code: None,
            equity_swap_involved: None,
            shares: None,
            price_per_share: None,
            price_footnote_ids: Vec::new(),
            acquired_disposed: None,
            shares_owned_after: None,
            direct_indirect: None,
            nature_of_ownership: None,
            footnote_ids: Vec::new(),
            terms: DerivativeTerms::default(),
        }
    }

    fn missing(&self, element: &'static str) -> ParseError {
        ParseError::MissingField {
            element,
            within: self.kind.name(),
        }
    }

    /// A `<value>` inside the field element `field`.
    fn set_value(&mut self, field: Tag, text: String) -> Result<(), ParseError> {
        let element = field.name();
        match field {
            Tag::SecurityTitle => self.security_title = scalar::non_empty(text),
            Tag::TransactionDate => self.transaction_date = scalar::date(&text, element)?,
            Tag::DeemedExecutionDate => {
                self.deemed_execution_date = scalar::date(&text, element)?;
            }
            Tag::TransactionShares => self.shares = scalar::decimal(&text, element)?,
            Tag::TransactionPricePerShare => {
                self.price_per_share = scalar::decimal(&text, element)?;
            }
            Tag::TransactionAcquiredDisposedCode => {
                self.acquired_disposed = scalar::acquired_disposed(&text, element)?;
            }
            Tag::SharesOwnedFollowingTransaction => {
                self.shares_owned_after = scalar::decimal(&text, element)?;
            }
            Tag::DirectOrIndirectOwnership => {
                self.direct_indirect = scalar::direct_indirect(&text, element)?;
            }
            Tag::NatureOfOwnership => self.nature_of_ownership = scalar::non_empty(text),
            Tag::ConversionOrExercisePrice => {
                self.terms.conversion_or_exercise_price = scalar::decimal(&text, element)?;
            }
            Tag::ExerciseDate => self.terms.exercise_date = scalar::date(&text, element)?,
            Tag::ExpirationDate => self.terms.expiration_date = scalar::date(&text, element)?,
            Tag::UnderlyingSecurityTitle => {
                self.terms.underlying_security_title = scalar::non_empty(text);
            }
            Tag::UnderlyingSecurityShares => {
                self.terms.underlying_security_shares = scalar::decimal(&text, element)?;
            }
            // Values the model does not keep (transactionTimeliness, valueOwnedFollowing…).
            _ => {}
        }
        Ok(())
    }

    fn add_footnote_ref(
        &mut self,
        id: String,
        on_price: bool,
        limits: &Limits,
    ) -> Result<(), ParseError> {
        let too_many = ParseError::TooMany {
            element: "footnoteId",
            limit: limits.max_footnote_refs,
        };
        if on_price && !self.price_footnote_ids.contains(&id) {
            if self.price_footnote_ids.len() >= limits.max_footnote_refs {
                return Err(too_many);
            }
            self.price_footnote_ids.push(id.clone());
        }
        if !self.footnote_ids.contains(&id) {
            if self.footnote_ids.len() >= limits.max_footnote_refs {
                return Err(too_many);
            }
            self.footnote_ids.push(id);
        }
        Ok(())
    }

    fn into_transaction(self) -> Result<Transaction, ParseError> {
        Ok(Transaction {
            security_title: self
                .security_title
                .clone()
                .ok_or_else(|| self.missing("securityTitle"))?,
            transaction_date: self
                .transaction_date
                .ok_or_else(|| self.missing("transactionDate"))?,
            code: self
                .code
                .clone()
                .ok_or_else(|| self.missing("transactionCode"))?,
            shares: self
                .shares
                .ok_or_else(|| self.missing("transactionShares"))?,
            acquired_disposed: self
                .acquired_disposed
                .ok_or_else(|| self.missing("transactionAcquiredDisposedCode"))?,
            direct_indirect: self
                .direct_indirect
                .ok_or_else(|| self.missing("directOrIndirectOwnership"))?,
            deemed_execution_date: self.deemed_execution_date,
            form_type: self.form_type,
            equity_swap_involved: self.equity_swap_involved.unwrap_or(false),
            price_per_share: self.price_per_share,
            price_footnote_ids: self.price_footnote_ids,
            shares_owned_after: self.shares_owned_after,
            nature_of_ownership: self.nature_of_ownership,
            footnote_ids: self.footnote_ids,
            derivative: self.kind.is_derivative().then_some(self.terms),
        })
    }

    fn into_holding(self) -> Result<Holding, ParseError> {
        Ok(Holding {
            security_title: self
                .security_title
                .clone()
                .ok_or_else(|| self.missing("securityTitle"))?,
            direct_indirect: self
                .direct_indirect
                .ok_or_else(|| self.missing("directOrIndirectOwnership"))?,
            shares_owned: self.shares_owned_after,
            nature_of_ownership: self.nature_of_ownership,
            footnote_ids: self.footnote_ids,
            derivative: self.kind.is_derivative().then_some(self.terms),
        })
    }
}

#[derive(Default)]
struct OwnerBuilder {
    cik: Option<String>,
    name: Option<String>,
    is_director: bool,
    is_officer: bool,
    officer_title: Option<String>,
    is_ten_percent_owner: bool,
    is_other: bool,
    other_text: Option<String>,
}

impl OwnerBuilder {
    fn build(self) -> Result<ReportingOwner, ParseError> {
        let missing = |element| ParseError::MissingField {
            element,
            within: "reportingOwner",
        };
        Ok(ReportingOwner {
            cik: self.cik.ok_or_else(|| missing("rptOwnerCik"))?,
            name: self.name.ok_or_else(|| missing("rptOwnerName"))?,
            is_director: self.is_director,
            is_officer: self.is_officer,
            officer_title: self.officer_title,
            is_ten_percent_owner: self.is_ten_percent_owner,
            is_other: self.is_other,
            other_text: self.other_text,
        })
    }
}

/// Everything read so far.
struct State<'l> {
    limits: &'l Limits,
    /// Open elements, innermost last; never longer than `limits.max_depth`.
    stack: Vec<Tag>,
    /// Text of the innermost open text-carrying element.
    text: String,
    seen_root: bool,
    root_closed: bool,
    /// Byte offset just after the event being handled, for error context.
    position: u64,

    document_type: Option<String>,
    period_of_report: Option<Date>,
    date_of_original_submission: Option<Date>,
    not_subject_to_section16: Option<bool>,
    rule_10b5_1: Option<bool>,
    remarks: Option<String>,
    issuer_cik: Option<String>,
    issuer_name: Option<String>,
    issuer_ticker: Option<String>,

    owner: Option<OwnerBuilder>,
    row: Option<RowBuilder>,
    footnote_id: Option<String>,

    owners: Vec<ReportingOwner>,
    transactions: Vec<Transaction>,
    holdings: Vec<Holding>,
    footnotes: Vec<Footnote>,
}

/// Parses one `<ownershipDocument>` (already known to be UTF-8 and within the size limit).
pub(crate) fn parse_ownership_xml(xml: &str, limits: &Limits) -> Result<Filing, ParseError> {
    let mut reader = Reader::from_str(xml);
    let config = reader.config_mut();
    // `<a/>` becomes Start + End, so empty elements need no separate handling.
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    config.trim_text(false);

    let mut state = State::new(limits);
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => return Err(state.xml_error(&error, reader.error_position(), xml)),
        };
        state.position = reader.buffer_position();
        match event {
            Event::Start(start) => state.start(&start)?,
            // Not produced with `expand_empty_elements`, handled alike for robustness.
            Event::Empty(start) => {
                state.start(&start)?;
                state.end()?;
            }
            Event::End(_) => state.end()?,
            Event::Text(text) => state.text(&text)?,
            Event::CData(text) => state.text(&text)?,
            Event::GeneralRef(reference) => state.reference(&reference)?,
            Event::DocType(doctype) => {
                return Err(if doctype.contains("<!ENTITY") {
                    ParseError::EntityDeclaration
                } else {
                    ParseError::Dtd
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    state.finish()
}

impl<'l> State<'l> {
    fn new(limits: &'l Limits) -> Self {
        State {
            limits,
            stack: Vec::new(),
            text: String::new(),
            seen_root: false,
            root_closed: false,
            position: 0,
            document_type: None,
            period_of_report: None,
            date_of_original_submission: None,
            not_subject_to_section16: None,
            rule_10b5_1: None,
            remarks: None,
            issuer_cik: None,
            issuer_name: None,
            issuer_ticker: None,
            owner: None,
            row: None,
            footnote_id: None,
            owners: Vec::new(),
            transactions: Vec::new(),
            holdings: Vec::new(),
            footnotes: Vec::new(),
        }
    }

    /// Name of the innermost open element, for error context.
    fn current(&self) -> &'static str {
        self.stack.last().map_or("(document)", |t| t.name())
    }

    fn xml_error(&self, error: &XmlError, position: u64, xml: &str) -> ParseError {
        match error {
            // quick-xml reports a syntax error only when the input ends inside markup.
            XmlError::Syntax(_) => {
                // Why look at the input: `<!ENTITY …>` outside a DOCTYPE is also a syntax error
                // to quick-xml, and deserves to be named for what it is.
                let at = usize::try_from(position).ok().and_then(|p| xml.get(p..));
                if at.is_some_and(|rest| rest.starts_with("<!ENTITY")) {
                    ParseError::EntityDeclaration
                } else {
                    ParseError::Truncated {
                        element: self.current(),
                    }
                }
            }
            XmlError::Escape(_) => ParseError::UndefinedEntity {
                element: self.current(),
            },
            _ => ParseError::Malformed {
                element: self.current(),
                position,
                detail: excerpt(&error.to_string(), 160),
            },
        }
    }

    fn parent(&self) -> Option<Tag> {
        self.stack
            .len()
            .checked_sub(2)
            .and_then(|i| self.stack.get(i))
            .copied()
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), ParseError> {
        let local = start.local_name();
        let tag = Tag::from_local_name(local.as_ref());
        if self.root_closed {
            return Err(ParseError::Unexpected {
                element: tag.name(),
                within: "(after the root element)",
            });
        }
        if !self.seen_root {
            if tag != Tag::OwnershipDocument {
                return Err(ParseError::WrongRoot {
                    found: excerpt(start.name().as_ref(), 64),
                });
            }
            self.seen_root = true;
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(ParseError::TooDeep {
                element: tag.name(),
                limit: self.limits.max_depth,
            });
        }
        let parent = self.stack.last().copied();
        self.stack.push(tag);
        if tag.carries_text() {
            self.text.clear();
        }

        if let Some(kind) = tag.row_kind() {
            if self.row.is_some() || self.owner.is_some() {
                return Err(self.unexpected(tag, parent));
            }
            let count = if kind.is_holding() {
                self.holdings.len()
            } else {
                self.transactions.len()
            };
            self.check_count(count, tag)?;
            self.row = Some(RowBuilder::new(kind));
            return Ok(());
        }
        match tag {
            Tag::ReportingOwner => {
                if self.row.is_some() || self.owner.is_some() {
                    return Err(self.unexpected(tag, parent));
                }
                self.check_count(self.owners.len(), tag)?;
                self.owner = Some(OwnerBuilder::default());
            }
            // Footnote references outside table rows (e.g. on a whole table) are not kept.
            Tag::FootnoteId if self.row.is_some() => {
                let id = self.id_attribute(start, tag)?;
                let on_price = parent == Some(Tag::TransactionPricePerShare);
                if let Some(row) = self.row.as_mut() {
                    row.add_footnote_ref(id, on_price, self.limits)?;
                }
            }
            Tag::Footnote if parent == Some(Tag::Footnotes) => {
                self.check_count(self.footnotes.len(), tag)?;
                self.footnote_id = Some(self.id_attribute(start, tag)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn unexpected(&self, tag: Tag, parent: Option<Tag>) -> ParseError {
        ParseError::Unexpected {
            element: tag.name(),
            within: parent.map_or("ownershipDocument", Tag::name),
        }
    }

    fn check_count(&self, count: usize, tag: Tag) -> Result<(), ParseError> {
        if count >= self.limits.max_items {
            return Err(ParseError::TooMany {
                element: tag.name(),
                limit: self.limits.max_items,
            });
        }
        Ok(())
    }

    /// The `id` attribute of a `footnote` or `footnoteId`, trimmed and length-capped.
    fn id_attribute(&self, start: &BytesStart<'_>, tag: Tag) -> Result<String, ParseError> {
        let element = tag.name();
        let attribute = start
            .try_get_attribute("id")
            .map_err(|error| ParseError::Malformed {
                element,
                position: self.position,
                detail: excerpt(&error.to_string(), 160),
            })?
            .ok_or(ParseError::MissingField {
                element: "id attribute",
                within: element,
            })?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|_| ParseError::UndefinedEntity { element })?;
        let id = value.trim();
        if id.is_empty() {
            return Err(ParseError::MissingField {
                element: "id attribute",
                within: element,
            });
        }
        if id.len() > self.limits.max_id_bytes {
            return Err(ParseError::TextTooLong {
                element,
                limit: self.limits.max_id_bytes,
            });
        }
        Ok(id.to_owned())
    }

    fn end(&mut self) -> Result<(), ParseError> {
        let parent = self.parent();
        let Some(tag) = self.stack.pop() else {
            // quick-xml checks end names, so this means an end tag with no start.
            return Err(ParseError::Unexpected {
                element: "(end tag)",
                within: "(document)",
            });
        };
        if tag.carries_text() {
            let raw = std::mem::take(&mut self.text);
            self.assign_text(tag, parent, scalar::normalize_text(&raw))?;
        }
        match tag {
            Tag::ReportingOwner => {
                if let Some(owner) = self.owner.take() {
                    self.owners.push(owner.build()?);
                }
            }
            Tag::NonDerivativeTransaction
            | Tag::NonDerivativeHolding
            | Tag::DerivativeTransaction
            | Tag::DerivativeHolding => {
                if let Some(row) = self.row.take() {
                    if row.kind.is_holding() {
                        self.holdings.push(row.into_holding()?);
                    } else {
                        self.transactions.push(row.into_transaction()?);
                    }
                }
            }
            Tag::OwnershipDocument if self.stack.is_empty() => self.root_closed = true,
            _ => {}
        }
        Ok(())
    }

    /// Appends to the current text if the innermost element carries text; drops it otherwise.
    fn push_text(&mut self, text: &str) -> Result<(), ParseError> {
        let Some(&tag) = self.stack.last() else {
            return Ok(());
        };
        if !tag.carries_text() {
            return Ok(());
        }
        if self.text.len().saturating_add(text.len()) > self.limits.max_text_bytes {
            return Err(ParseError::TextTooLong {
                element: tag.name(),
                limit: self.limits.max_text_bytes,
            });
        }
        self.text.push_str(text);
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), ParseError> {
        self.push_text(text)
    }

    /// `&name;` or `&#n;`: only XML's five predefined entities and character references exist,
    /// since no DTD is ever accepted to declare more.
    fn reference(&mut self, reference: &BytesRef<'_>) -> Result<(), ParseError> {
        let element = self.current();
        let resolved = match reference.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => c,
            Ok(Some(_)) | Err(_) => {
                return Err(ParseError::InvalidValue {
                    element,
                    expected: "a valid XML character reference",
                });
            }
            Ok(None) => match &**reference {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => return Err(ParseError::UndefinedEntity { element }),
            },
        };
        let mut buf = [0u8; 4];
        self.push_text(resolved.encode_utf8(&mut buf))
    }

    /// Routes the finished text of `tag` (whose parent is `parent`) to its field.
    fn assign_text(
        &mut self,
        tag: Tag,
        parent: Option<Tag>,
        text: String,
    ) -> Result<(), ParseError> {
        let element = tag.name();
        match (parent, tag) {
            (Some(Tag::OwnershipDocument), Tag::DocumentType) => {
                self.document_type = scalar::non_empty(text);
            }
            (Some(Tag::OwnershipDocument), Tag::PeriodOfReport) => {
                self.period_of_report = scalar::date(&text, element)?;
            }
            (Some(Tag::OwnershipDocument), Tag::DateOfOriginalSubmission) => {
                self.date_of_original_submission = scalar::date(&text, element)?;
            }
            (Some(Tag::OwnershipDocument), Tag::NotSubjectToSection16) => {
                self.not_subject_to_section16 = scalar::boolean(&text, element)?;
            }
            (Some(Tag::OwnershipDocument), Tag::Aff10b5One) => {
                self.rule_10b5_1 = scalar::boolean(&text, element)?;
            }
            (Some(Tag::OwnershipDocument), Tag::Remarks) => self.remarks = scalar::non_empty(text),
            (Some(Tag::Issuer), Tag::IssuerCik) => self.issuer_cik = scalar::cik(&text, element)?,
            (Some(Tag::Issuer), Tag::IssuerName) => self.issuer_name = scalar::non_empty(text),
            (Some(Tag::Issuer), Tag::IssuerTradingSymbol) => {
                self.issuer_ticker = scalar::ticker(&text);
            }
            (Some(Tag::ReportingOwnerId), Tag::RptOwnerCik | Tag::RptOwnerName)
            | (Some(Tag::ReportingOwnerRelationship), _) => {
                if let Some(owner) = self.owner.as_mut() {
                    set_owner_field(owner, tag, text)?;
                }
            }
            (Some(Tag::TransactionCoding), _) => {
                if let Some(row) = self.row.as_mut() {
                    match tag {
                        Tag::TransactionFormType => row.form_type = scalar::non_empty(text),
                        Tag::TransactionCode => {
                            row.code = scalar::transaction_code(&text, element)?
                        }
                        Tag::EquitySwapInvolved => {
                            row.equity_swap_involved = scalar::boolean(&text, element)?;
                        }
                        _ => {}
                    }
                }
            }
            (Some(field), Tag::Value) => {
                if let Some(row) = self.row.as_mut() {
                    row.set_value(field, text)?;
                }
            }
            (Some(Tag::Footnotes), Tag::Footnote) => {
                if let Some(id) = self.footnote_id.take() {
                    self.footnotes.push(Footnote { id, text });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Filing, ParseError> {
        if !self.seen_root {
            return Err(ParseError::NoRootElement);
        }
        if !self.root_closed {
            return Err(ParseError::Truncated {
                element: self.current(),
            });
        }
        let missing = |element| ParseError::MissingField {
            element,
            within: "ownershipDocument",
        };
        let document_type = self
            .document_type
            .ok_or_else(|| missing("documentType"))
            .and_then(|t| scalar::document_type(&t, "documentType"))?;
        let issuer = Issuer {
            cik: self.issuer_cik.ok_or(ParseError::MissingField {
                element: "issuerCik",
                within: "issuer",
            })?,
            name: self.issuer_name.ok_or(ParseError::MissingField {
                element: "issuerName",
                within: "issuer",
            })?,
            ticker: self.issuer_ticker,
        };
        if self.owners.is_empty() {
            return Err(missing("reportingOwner"));
        }
        Ok(Filing {
            document_type,
            period_of_report: self.period_of_report,
            date_of_original_submission: self.date_of_original_submission,
            accession_number: None,
            filed_at: None,
            not_subject_to_section16: self.not_subject_to_section16.unwrap_or(false),
            rule_10b5_1: self.rule_10b5_1,
            issuer,
            owners: self.owners,
            transactions: self.transactions,
            holdings: self.holdings,
            footnotes: self.footnotes,
            remarks: self.remarks,
        })
    }
}

fn set_owner_field(owner: &mut OwnerBuilder, tag: Tag, text: String) -> Result<(), ParseError> {
    let element = tag.name();
    let flag = |text: &str| scalar::boolean(text, element).map(|b| b.unwrap_or(false));
    match tag {
        Tag::RptOwnerCik => owner.cik = scalar::cik(&text, element)?,
        Tag::RptOwnerName => owner.name = scalar::non_empty(text),
        Tag::IsDirector => owner.is_director = flag(&text)?,
        Tag::IsOfficer => owner.is_officer = flag(&text)?,
        Tag::IsTenPercentOwner => owner.is_ten_percent_owner = flag(&text)?,
        Tag::IsOther => owner.is_other = flag(&text)?,
        Tag::OfficerTitle => owner.officer_title = scalar::non_empty(text),
        Tag::OtherText => owner.other_text = scalar::non_empty(text),
        _ => {}
    }
    Ok(())
}

/// XML 1.0's `Char` production: what a character reference may name.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
