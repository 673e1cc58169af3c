//! The Form 3/4/5 parser against the real EDGAR filings in `tests/data/form4/` (see the README
//! there for their sources and traps): every extracted fact of every file is asserted exactly.
//! Then the parser's edges and refusals on small synthetic documents.

use std::str::FromStr;

use market::form4::{
    AcquiredDisposed::{Acquired, Disposed},
    Date, Decimal, DerivativeTerms,
    DirectIndirect::{Direct, Indirect},
    Filing, Holding, Issuer, Limits, ParseError, ReportingOwner, Transaction, current_filings,
    parse_document, parse_document_with_limits,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/form4/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(name: &str) -> Filing {
    parse_document(&data(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn issuer(cik: &str, name: &str, ticker: &str) -> Issuer {
    Issuer {
        cik: cik.into(),
        name: name.into(),
        ticker: Some(ticker.into()),
    }
}

/// An owner with every relationship flag off; tests switch on what the filing states.
fn owner(cik: &str, name: &str) -> ReportingOwner {
    ReportingOwner {
        cik: cik.into(),
        name: name.into(),
        is_director: false,
        is_officer: false,
        officer_title: None,
        is_ten_percent_owner: false,
        is_other: false,
        other_text: None,
    }
}

/// A Form 4, direct, non-derivative transaction; tests override the rest.
fn tx(title: &str, on: &str, code: &str, shares: &str, price: Option<&str>) -> Transaction {
    Transaction {
        security_title: title.into(),
        transaction_date: date(on),
        deemed_execution_date: None,
        form_type: Some("4".into()),
        code: code.into(),
        equity_swap_involved: false,
        shares: d(shares),
        price_per_share: price.map(d),
        price_footnote_ids: vec![],
        acquired_disposed: Acquired,
        shares_owned_after: None,
        direct_indirect: Direct,
        nature_of_ownership: None,
        footnote_ids: vec![],
        derivative: None,
    }
}

fn holding(title: &str, shares: Option<&str>) -> Holding {
    Holding {
        security_title: title.into(),
        shares_owned: shares.map(d),
        direct_indirect: Direct,
        nature_of_ownership: None,
        footnote_ids: vec![],
        derivative: None,
    }
}

fn value(t: &Transaction) -> Option<String> {
    t.value().map(|v| v.to_string())
}

fn footnote_ids(f: &Filing) -> Vec<&str> {
    f.footnotes.iter().map(|n| n.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The real filings

#[test]
fn snowflake_form4_exercise_sales_and_trust_holdings() {
    let f = load("snowflake-form4-20221213.xml");
    assert_eq!(f.document_type, "4");
    assert!(!f.is_amendment());
    assert_eq!(f.period_of_report, Some(date("2022-12-13")));
    assert_eq!(f.date_of_original_submission, None);
    assert_eq!(f.accession_number, None);
    assert_eq!(f.filed_at, None);
    assert!(!f.not_subject_to_section16);
    assert_eq!(f.rule_10b5_1, None, "schema X0306 has no aff10b5One");
    assert_eq!(f.remarks, None);
    assert_eq!(f.issuer, issuer("0001640147", "Snowflake Inc.", "SNOW"));
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_officer: true,
            officer_title: Some("Chief Financial Officer".into()),
            ..owner("0001402349", "Scarpelli Michael")
        }]
    );

    let class_a = "Class A Common Stock";
    let exercise = Transaction {
        shares_owned_after: Some(d("301097")),
        footnote_ids: ids(&["F1"]),
        ..tx(class_a, "2022-12-13", "M", "200000", Some("8.88"))
    };
    let sale = |shares: &str, price: &str, price_note: &str, after: &str| Transaction {
        acquired_disposed: Disposed,
        price_footnote_ids: ids(&[price_note]),
        shares_owned_after: Some(d(after)),
        footnote_ids: ids(&["F2", price_note]),
        ..tx(class_a, "2022-12-13", "S", shares, Some(price))
    };
    let option = Transaction {
        shares_owned_after: Some(d("2219299")),
        footnote_ids: ids(&["F16"]),
        derivative: Some(DerivativeTerms {
            conversion_or_exercise_price: Some(d("8.88")),
            exercise_date: None,
            expiration_date: Some(date("2029-08-26")),
            underlying_security_title: Some(class_a.into()),
            underlying_security_shares: Some(d("200000.0")),
        }),
        ..tx(
            "Stock Option (Right to Buy)",
            "2022-12-13",
            "M",
            "200000",
            Some("0"),
        )
    };
    assert_eq!(
        f.transactions,
        vec![
            exercise,
            sale("73170", "150.841", "F3", "227927"),
            sale("74907", "151.814", "F4", "153020"),
            sale("41986", "152.655", "F5", "111034"),
            sale("5496", "153.872", "F6", "105538"),
            sale("4441", "154.76", "F7", "101097"),
            option,
        ]
    );
    let values: Vec<_> = f.transactions.iter().map(value).collect();
    assert_eq!(
        values,
        [
            "1776000.00",
            "11037035.97",
            "11371931.30",
            "6409372.83",
            "845680.51",
            "687289.16",
            "0.00"
        ]
        .map(|v| Some(v.to_string()))
    );
    assert_eq!(
        f.transactions.iter().filter(|t| t.is_derivative()).count(),
        1
    );
    // The filing is internally consistent: each sale lowers the running balance by its shares.
    for pair in f.transactions[..6].windows(2) {
        assert_eq!(
            pair[0].shares_owned_after.unwrap() - pair[1].shares,
            pair[1].shares_owned_after.unwrap()
        );
    }

    let trust = |shares: &str, note: &str| Holding {
        direct_indirect: Indirect,
        nature_of_ownership: Some("Trust".into()),
        footnote_ids: ids(&[note]),
        ..holding(class_a, Some(shares))
    };
    assert_eq!(
        f.holdings,
        vec![
            trust("577218", "F8"),
            trust("178947", "F9"),
            trust("9686", "F10"),
            trust("2755", "F11"),
            trust("9686", "F12"),
            trust("2755", "F13"),
            trust("9686", "F14"),
            trust("2755", "F15"),
        ]
    );

    assert_eq!(
        footnote_ids(&f),
        (1..=16).map(|i| format!("F{i}")).collect::<Vec<_>>()
    );
    // Wrapped, indented footnote text comes out as one line.
    assert_eq!(
        f.footnote("F1").unwrap().text,
        "Includes shares to be issued in connection with the vesting of one or more restricted \
         stock units."
    );
    assert_eq!(
        f.footnote("F7").unwrap().text,
        "The price reported in Column 4 is a weighted-average price. The shares were sold in \
         multiple transactions ranging from $154.510 to $154.890, inclusive."
    );
    assert_eq!(
        f.footnote("F16").unwrap().text,
        "The shares subject to the option are immediately exercisable and vest in 48 equal \
         monthly installments beginning on August 19, 2019, subject to Reporting Person's \
         continuous service through each such vesting date."
    );
}

#[test]
fn snowflake_form3_derivative_holdings_only() {
    let f = load("snowflake-form3-20200915.xml");
    assert_eq!(f.document_type, "3");
    assert_eq!(f.period_of_report, Some(date("2020-09-15")));
    assert!(!f.not_subject_to_section16);
    assert_eq!(f.rule_10b5_1, None);
    assert_eq!(f.remarks.as_deref(), Some("Exhibit 24 - Power of Attorney"));
    assert_eq!(f.issuer, issuer("0001640147", "Snowflake Inc.", "SNOW"));
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_director: true,
            ..owner("0001246215", "GARRETT MARK")
        }]
    );
    assert_eq!(
        f.transactions,
        vec![],
        "a Form 3 reports holdings, not transactions"
    );

    let class_b = "Class B Common Stock";
    let preferred = Holding {
        direct_indirect: Indirect,
        nature_of_ownership: Some("Limited Partnership".into()),
        footnote_ids: ids(&["F1", "F2", "F3", "F4"]),
        derivative: Some(DerivativeTerms {
            conversion_or_exercise_price: None,
            exercise_date: None,
            expiration_date: None,
            underlying_security_title: Some(class_b.into()),
            underlying_security_shares: Some(d("134018.0")),
        }),
        ..holding("Series E Preferred Stock", None)
    };
    let option = |underlying: &str, trust_note: Option<&str>| Holding {
        direct_indirect: if trust_note.is_some() {
            Indirect
        } else {
            Direct
        },
        nature_of_ownership: trust_note.map(|_| "Trust".to_string()),
        footnote_ids: ["F5", "F2", "F3"]
            .into_iter()
            .chain(trust_note)
            .map(String::from)
            .collect(),
        derivative: Some(DerivativeTerms {
            conversion_or_exercise_price: Some(d("3.74")),
            exercise_date: None,
            expiration_date: Some(date("2028-04-14")),
            underlying_security_title: Some(class_b.into()),
            underlying_security_shares: Some(d(underlying)),
        }),
        ..holding("Stock Option (Right to Buy)", None)
    };
    assert_eq!(
        f.holdings,
        vec![
            preferred,
            option("383594.0", None),
            option("95898.0", Some("F6")),
            option("95898.0", Some("F7")),
            option("95898.0", Some("F8")),
            option("95898.0", Some("F9")),
        ]
    );
    assert!(f.holdings.iter().all(Holding::is_derivative));
    assert_eq!(
        f.holdings
            .iter()
            .filter(|h| h.direct_indirect == Indirect)
            .count(),
        5
    );
    // The scale is kept as filed.
    let underlying = f.holdings[0].derivative.as_ref().unwrap();
    assert_eq!(
        underlying.underlying_security_shares.unwrap().to_string(),
        "134018.0"
    );

    assert_eq!(
        footnote_ids(&f),
        ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9"]
    );
    // `&quot;` is resolved and the filer's double space collapses.
    let f2 = &f.footnote("F2").unwrap().text;
    assert!(
        f2.contains("has no expiration date. After the closing"),
        "{f2}"
    );
    assert!(
        f2.contains("except for certain \"Permitted Transfers\" described"),
        "{f2}"
    );
    assert_eq!(
        f.footnote("F4").unwrap().text,
        "The shares are held by the Garrett Family Investment Partnership, L.P. for which the \
         Reporting Person is the general partner."
    );
}

#[test]
fn snowflake_form5_gift_and_holdings() {
    let f = load("snowflake-form5-20220131.xml");
    assert_eq!(f.document_type, "5");
    assert_eq!(f.period_of_report, Some(date("2022-01-31")));
    assert!(!f.not_subject_to_section16);
    assert_eq!(f.rule_10b5_1, None);
    assert_eq!(f.remarks, None);
    assert_eq!(f.issuer, issuer("0001640147", "Snowflake Inc.", "SNOW"));
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_director: true,
            ..owner("0001397798", "McMahon John Dennis")
        }]
    );
    let class_a = "Class A Common Stock";
    assert_eq!(
        f.transactions,
        vec![Transaction {
            form_type: Some("5".into()),
            acquired_disposed: Disposed,
            shares_owned_after: Some(d("54666")),
            footnote_ids: ids(&["F1", "F2"]),
            ..tx(class_a, "2021-12-23", "G", "61386", Some("0"))
        }]
    );
    assert_eq!(value(&f.transactions[0]).as_deref(), Some("0.00"));
    let trust = |shares: &str, note: &str| Holding {
        direct_indirect: Indirect,
        nature_of_ownership: Some("Trust".into()),
        footnote_ids: ids(&[note]),
        ..holding(class_a, Some(shares))
    };
    assert_eq!(
        f.holdings,
        vec![trust("151188", "F3"), trust("125737", "F4")]
    );
    assert_eq!(footnote_ids(&f), ["F1", "F2", "F3", "F4"]);
    assert_eq!(
        f.footnote("F1").unwrap().text,
        "Represents shares that the Reporting Person transferred for no consideration."
    );
}

#[test]
fn vertex_derivative_only_with_fractional_units() {
    let f = load("vertex-form4-20201015.xml");
    assert_eq!(f.document_type, "4");
    assert_eq!(f.period_of_report, Some(date("2020-10-15")));
    assert_eq!(f.rule_10b5_1, None);
    assert_eq!(f.remarks, None);
    assert_eq!(
        f.issuer,
        issuer("0000875320", "VERTEX PHARMACEUTICALS INC / MA", "VRTX")
    );
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_director: true,
            ..owner("0001197036", "SACHS BRUCE I")
        }]
    );
    assert_eq!(
        f.transactions,
        vec![Transaction {
            shares_owned_after: Some(d("12629.042")),
            footnote_ids: ids(&["F1"]),
            derivative: Some(DerivativeTerms {
                conversion_or_exercise_price: None,
                exercise_date: None,
                expiration_date: None,
                underlying_security_title: Some("Common Stock".into()),
                underlying_security_shares: Some(d("196.356")),
            }),
            ..tx(
                "Deferred Stock Units",
                "2020-10-15",
                "A",
                "196.356",
                Some("222.81")
            )
        }]
    );
    assert_eq!(value(&f.transactions[0]).as_deref(), Some("43750.08"));
    assert_eq!(f.holdings, vec![]);
    assert_eq!(footnote_ids(&f), ["F1"]);
}

#[test]
fn water374_word_booleans_and_option_grant() {
    let f = load("374water-form4-20250430.xml");
    assert_eq!(f.document_type, "4");
    assert_eq!(f.period_of_report, Some(date("2025-04-30")));
    assert!(!f.not_subject_to_section16);
    assert_eq!(f.rule_10b5_1, Some(false), "aff10b5One is `false`");
    assert_eq!(f.issuer, issuer("0000933972", "374Water Inc.", "SCWO"));
    // Only isOfficer is present (as `true`); the absent flags are false.
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_officer: true,
            officer_title: Some("Chief Technology Officer".into()),
            ..owner("0002064133", "Melkote Rajesh Ramaswamy")
        }]
    );
    let rsu = Transaction {
        shares_owned_after: Some(d("757756")),
        footnote_ids: ids(&["F1"]),
        ..tx(
            "Common Stock (restricted stock units)",
            "2025-04-30",
            "A",
            "757756",
            Some("0"),
        )
    };
    // The filing's own inconsistency is kept as filed: 757576 granted and underlying, 757756
    // owned afterwards.
    let option = Transaction {
        shares_owned_after: Some(d("757756")),
        footnote_ids: ids(&["F1"]),
        derivative: Some(DerivativeTerms {
            conversion_or_exercise_price: Some(d("0.33")),
            exercise_date: None,
            expiration_date: Some(date("2035-04-29")),
            underlying_security_title: Some("Common Stock".into()),
            underlying_security_shares: Some(d("757576")),
        }),
        ..tx(
            "Stock options (right to buy)",
            "2025-04-30",
            "A",
            "757576",
            Some("0"),
        )
    };
    assert_eq!(f.transactions, vec![rsu, option]);
    assert_eq!(f.holdings, vec![]);
    assert_eq!(footnote_ids(&f), ["F1"]);
    assert!(
        f.footnotes[0]
            .text
            .starts_with("Vesting commencement date is March 31, 2025.")
    );
}

#[test]
fn aar_edgar_submission_txt() {
    let f = load("aar-form4-20250110.txt");
    assert_eq!(f.accession_number.as_deref(), Some("0001127602-25-001055"));
    assert_eq!(f.filed_at, Some(date("2025-01-10")));
    assert_eq!(f.document_type, "4");
    assert_eq!(f.period_of_report, Some(date("2025-01-10")));
    assert_eq!(f.rule_10b5_1, Some(false));
    assert_eq!(f.issuer, issuer("0000001750", "AAR CORP", "AIR"));
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_officer: true,
            officer_title: Some("Senior VP, GC, CAO & Secretary".into()),
            ..owner("0001806647", "Garascia Jessica A.")
        }]
    );
    assert_eq!(
        f.transactions,
        vec![Transaction {
            acquired_disposed: Disposed,
            price_footnote_ids: ids(&["F1"]),
            shares_owned_after: Some(d("37565")),
            footnote_ids: ids(&["F1"]),
            ..tx("Common Stock", "2025-01-10", "S", "1500", Some("66.903"))
        }]
    );
    assert_eq!(value(&f.transactions[0]).as_deref(), Some("100354.50"));
    assert_eq!(f.holdings, vec![]);
    assert_eq!(footnote_ids(&f), ["F1"]);
    assert!(
        f.footnotes[0]
            .text
            .starts_with("The price reported in Column 4 is a weighted average price.")
    );
}

#[test]
fn aar_wrapper_and_extracted_xml_agree() {
    // The XML inside the .txt, parsed bare, gives the same facts minus the header's.
    let txt = data("aar-form4-20250110.txt");
    let text = std::str::from_utf8(&txt).unwrap();
    let start = text.find("<XML>\n").unwrap() + "<XML>\n".len();
    let end = text.find("</XML>").unwrap();
    let bare = parse_document(&txt[start..end]).unwrap();
    let wrapped = load("aar-form4-20250110.txt");
    assert_eq!(
        Filing {
            accession_number: None,
            filed_at: None,
            ..wrapped
        },
        bare
    );
}

#[test]
fn flowers_three_ten_percent_owners() {
    let f = load("1800flowers-form4-20250424.xml");
    assert_eq!(f.document_type, "4");
    assert_eq!(f.period_of_report, Some(date("2025-04-24")));
    assert!(!f.not_subject_to_section16);
    assert_eq!(f.rule_10b5_1, Some(false));
    assert_eq!(
        f.issuer,
        issuer("0001084869", "1 800 FLOWERS COM INC", "FLWS")
    );
    let ten_percent = |cik: &str, name: &str| ReportingOwner {
        is_ten_percent_owner: true,
        ..owner(cik, name)
    };
    assert_eq!(
        f.owners,
        vec![
            ten_percent("0001959730", "Fund 1 Investments, LLC"),
            ten_percent("0002052009", "PLP Funds Master Fund LP"),
            ten_percent("0001580144", "Pleasant Lake Partners LLC"),
        ]
    );
    let purchase = |on: &str, shares: &str, price: &str, after: &str| Transaction {
        shares_owned_after: Some(d(after)),
        direct_indirect: Indirect,
        nature_of_ownership: Some("See Footnotes".into()),
        footnote_ids: ids(&["F1", "F2"]),
        ..tx(
            "Class A Common Stock, $0.01 par value",
            on,
            "P",
            shares,
            Some(price),
        )
    };
    assert_eq!(
        f.transactions,
        vec![
            purchase("2025-04-24", "16000", "5.3569", "8536067"),
            purchase("2025-04-24", "16847", "5.4231", "8552914"),
            purchase("2025-04-25", "100000", "5.4598", "8652914"),
            purchase("2025-04-28", "35000", "5.4173", "8687914"),
        ]
    );
    let values: Vec<_> = f.transactions.iter().map(value).collect();
    assert_eq!(
        values,
        ["85710.40", "91362.97", "545980.00", "189605.50"].map(|v| Some(v.to_string()))
    );
    assert_eq!(f.holdings, vec![]);
    assert_eq!(footnote_ids(&f), ["F1", "F2"]);
    assert!(
        f.footnotes[0]
            .text
            .contains("PLP Funds Master Fund LP (the \"Master Fund\")")
    );
    assert_eq!(
        f.footnotes[1].text,
        "Securities held for the account of Master Fund."
    );
}

#[test]
fn turtle_beach_director_purchase_with_footnoted_price() {
    let f = load("turtlebeach-form4-20230511.xml");
    assert_eq!(f.document_type, "4");
    assert_eq!(f.period_of_report, Some(date("2023-05-11")));
    assert_eq!(f.rule_10b5_1, Some(false));
    assert_eq!(f.issuer, issuer("0001493761", "Turtle Beach Corp", "HEAR"));
    assert_eq!(
        f.owners,
        vec![ReportingOwner {
            is_director: true,
            ..owner("0001777906", "SZE JULIA")
        }]
    );
    assert_eq!(
        f.transactions,
        vec![Transaction {
            price_footnote_ids: ids(&["F1"]),
            shares_owned_after: Some(d("18453")),
            footnote_ids: ids(&["F1"]),
            ..tx("Common Stock", "2023-05-11", "P", "5000", Some("11.03"))
        }]
    );
    assert_eq!(value(&f.transactions[0]).as_deref(), Some("55150.00"));
    assert_eq!(f.holdings, vec![]);
    assert_eq!(footnote_ids(&f), ["F1"]);
}

// ---------------------------------------------------------------------------------------------
// Edges and refusals, on small documents

/// A minimal Form 4 with `rows` inside the non-derivative table and `owner_rel` as the owner's
/// relationship elements.
fn doc(owner_rel: &str, rows: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<ownershipDocument>\
         <documentType>4</documentType><periodOfReport>2024-01-02</periodOfReport>\
         <issuer><issuerCik>320193</issuerCik><issuerName>Apple Inc.</issuerName>\
         <issuerTradingSymbol> aapl </issuerTradingSymbol></issuer>\
         <reportingOwner><reportingOwnerId><rptOwnerCik>1</rptOwnerCik>\
         <rptOwnerName>Doe Jane</rptOwnerName></reportingOwnerId>\
         <reportingOwnerRelationship>{owner_rel}</reportingOwnerRelationship></reportingOwner>\
         <nonDerivativeTable>{rows}</nonDerivativeTable>\
         <footnotes><footnote id=\"F1\">Weighted average.</footnote></footnotes>\
         </ownershipDocument>"
    )
}

/// A sale row with `price` as the inside of `transactionPricePerShare`.
fn sale_row(price: &str) -> String {
    format!(
        "<nonDerivativeTransaction><securityTitle><value>Common Stock</value></securityTitle>\
         <transactionDate><value>2024-01-02</value></transactionDate>\
         <transactionCoding><transactionFormType>4</transactionFormType>\
         <transactionCode>S</transactionCode></transactionCoding>\
         <transactionAmounts><transactionShares><value>10</value></transactionShares>\
         <transactionPricePerShare>{price}</transactionPricePerShare>\
         <transactionAcquiredDisposedCode><value>D</value></transactionAcquiredDisposedCode>\
         </transactionAmounts>\
         <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership>\
         </ownershipNature></nonDerivativeTransaction>"
    )
}

fn parse_str(xml: &str) -> Result<Filing, ParseError> {
    parse_document(xml.as_bytes())
}

#[test]
fn minimal_document_defaults() {
    let f = parse_str(&doc("", &sale_row("<value>1.005</value>"))).unwrap();
    assert_eq!(f.issuer.cik, "0000320193");
    assert_eq!(
        f.issuer.ticker.as_deref(),
        Some("AAPL"),
        "trimmed, upper-cased"
    );
    assert_eq!(f.owners[0].cik, "0000000001");
    assert_eq!(f.transactions[0].value().unwrap().to_string(), "10.05");
    assert_eq!(f.transactions[0].form_type.as_deref(), Some("4"));
}

#[test]
fn relationship_booleans_in_both_spellings() {
    for (t, f_) in [("1", "0"), ("true", "false")] {
        let rel = format!(
            "<isDirector>{t}</isDirector><isOfficer>{f_}</isOfficer>\
             <isTenPercentOwner>{t}</isTenPercentOwner><isOther>{t}</isOther>\
             <otherText> Member of  13(d) group </otherText>"
        );
        let owner = &parse_str(&doc(&rel, "")).unwrap().owners[0];
        assert!(owner.is_director && owner.is_ten_percent_owner && owner.is_other);
        assert!(!owner.is_officer);
        assert_eq!(owner.other_text.as_deref(), Some("Member of 13(d) group"));
    }
    let empty = parse_str(&doc("<isDirector/><isOfficer></isOfficer>", "")).unwrap();
    assert!(!empty.owners[0].is_director && !empty.owners[0].is_officer);
    assert_eq!(
        parse_str(&doc("<isDirector>yes</isDirector>", "")).unwrap_err(),
        ParseError::InvalidValue {
            element: "isDirector",
            expected: "a boolean (1, 0, true or false)"
        }
    );
}

#[test]
fn missing_price_has_no_value() {
    for price in ["", "<value></value>", "<value/>", "<footnoteId id=\"F1\"/>"] {
        let f = parse_str(&doc("", &sale_row(price))).unwrap();
        let t = &f.transactions[0];
        assert_eq!(t.price_per_share, None, "{price:?}");
        assert_eq!(t.value(), None, "{price:?}");
    }
    // Footnoted and no value: the footnote is still referenced.
    let f = parse_str(&doc("", &sale_row("<footnoteId id=\"F1\"/>"))).unwrap();
    assert_eq!(f.transactions[0].price_footnote_ids, ["F1"]);
}

#[test]
fn footnoted_price() {
    let f = parse_str(&doc(
        "",
        &sale_row("<value>12.345</value><footnoteId id=\" F1 \"/><footnoteId id=\"F1\"/>"),
    ))
    .unwrap();
    let t = &f.transactions[0];
    assert_eq!(t.price_per_share, Some(d("12.345")));
    assert_eq!(t.price_footnote_ids, ["F1"], "trimmed and not repeated");
    assert_eq!(t.footnote_ids, ["F1"]);
    assert_eq!(t.value().unwrap().to_string(), "123.45");
}

#[test]
fn value_rounds_half_away_from_zero_to_the_cent() {
    let cases = [
        ("10", "0.0005", "0.01"),
        ("3", "0.335", "1.01"),
        ("1", "0.125", "0.13"),
        ("0.1", "0.1", "0.01"),
        ("1000000000", "1234.5678", "1234567800000.00"),
    ];
    for (shares, price, want) in cases {
        let mut t = parse_str(&doc("", &sale_row("<value>1</value>")))
            .unwrap()
            .transactions
            .remove(0);
        t.shares = d(shares);
        t.price_per_share = Some(d(price));
        assert_eq!(t.value().unwrap().to_string(), want, "{shares} × {price}");
    }
}

#[test]
fn refuses_doctype() {
    let xml = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE ownershipDocument SYSTEM \"x.dtd\">{}",
        doc("", "").split_once("?>").unwrap().1
    );
    assert_eq!(parse_str(&xml).unwrap_err(), ParseError::Dtd);
}

#[test]
fn refuses_entity_declarations() {
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
               <ownershipDocument><remarks>&xxe;</remarks></ownershipDocument>";
    assert_eq!(parse_str(xxe).unwrap_err(), ParseError::EntityDeclaration);
    let laughs = "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
                  <ownershipDocument>&lol2;</ownershipDocument>";
    assert_eq!(
        parse_str(laughs).unwrap_err(),
        ParseError::EntityDeclaration
    );
    // Without a DTD no entity can exist: a reference to one is refused, never expanded.
    let undeclared = doc("<officerTitle>&xxe;</officerTitle>", "");
    assert_eq!(
        parse_str(&undeclared).unwrap_err(),
        ParseError::UndefinedEntity {
            element: "officerTitle"
        }
    );
    // An entity declaration outside any DOCTYPE is no better.
    let stray = "<!ENTITY x \"y\"><ownershipDocument/>";
    assert!(matches!(
        parse_str(stray).unwrap_err(),
        ParseError::EntityDeclaration | ParseError::Malformed { .. }
    ));
}

#[test]
fn predefined_entities_and_character_references_resolve() {
    let f = parse_str(&doc(
        "<officerTitle>VP &amp; GC &#x2014; R&amp;D &lt;US&gt; &#65;</officerTitle>",
        "",
    ))
    .unwrap();
    assert_eq!(
        f.owners[0].officer_title.as_deref(),
        Some("VP & GC \u{2014} R&D <US> A")
    );
    assert!(matches!(
        parse_str(&doc("<officerTitle>&#0;</officerTitle>", "")).unwrap_err(),
        ParseError::InvalidValue { .. }
    ));
    assert!(matches!(
        parse_str(&doc("<officerTitle>&#x1;</officerTitle>", "")).unwrap_err(),
        ParseError::InvalidValue { .. }
    ));
}

#[test]
fn size_limit() {
    let limit = Limits::DEFAULT.max_input_bytes;
    let mut big = doc("", "").into_bytes();
    let filler = limit + 1 - big.len();
    let at = big.len() - "</ownershipDocument>".len();
    big.splice(at..at, std::iter::repeat_n(b' ', filler));
    assert_eq!(big.len(), limit + 1);
    assert_eq!(
        parse_document(&big).unwrap_err(),
        ParseError::TooLarge {
            size: limit + 1,
            limit
        }
    );
    // One byte less is fine.
    big.remove(at);
    assert!(parse_document(&big).is_ok());
}

#[test]
fn depth_text_and_count_limits() {
    let deep = format!(
        "<ownershipDocument>{}{}</ownershipDocument>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert_eq!(
        parse_str(&deep).unwrap_err(),
        ParseError::TooDeep {
            element: "(other element)",
            limit: 64
        }
    );
    let long = doc(
        &format!("<officerTitle>{}</officerTitle>", "x".repeat(64 * 1024 + 1)),
        "",
    );
    assert_eq!(
        parse_str(&long).unwrap_err(),
        ParseError::TextTooLong {
            element: "officerTitle",
            limit: 64 * 1024
        }
    );
    // Long text in an element the parser does not read is skipped, not stored or refused.
    let ignored = doc(
        &format!("<unknownThing>{}</unknownThing>", "x".repeat(200_000)),
        "",
    );
    assert!(parse_str(&ignored).is_ok());

    // 10,001 footnotes fit in the size limit (a table row would not: 10,001 rows exceed 5 MiB).
    let many_notes = doc("", "").replace(
        "<footnotes>",
        &format!(
            "<footnotes>{}",
            "<footnote id=\"F9\">x</footnote>".repeat(10_000)
        ),
    );
    assert_eq!(
        parse_str(&many_notes).unwrap_err(),
        ParseError::TooMany {
            element: "footnote",
            limit: 10_000
        }
    );
    let limits = Limits {
        max_items: 2,
        max_footnote_refs: 1,
        ..Limits::DEFAULT
    };
    let three_rows = doc("", &sale_row("<value>1</value>").repeat(3));
    assert!(matches!(
        parse_document_with_limits(three_rows.as_bytes(), &limits),
        Err(ParseError::TooMany { limit: 2, .. })
    ));
    let two_refs = doc(
        "",
        &sale_row("<footnoteId id=\"F1\"/><footnoteId id=\"F2\"/>"),
    );
    assert_eq!(
        parse_document_with_limits(two_refs.as_bytes(), &limits).unwrap_err(),
        ParseError::TooMany {
            element: "footnoteId",
            limit: 1
        }
    );
    let long_id = doc(
        "",
        &sale_row(&format!("<footnoteId id=\"{}\"/>", "F".repeat(65))),
    );
    assert_eq!(
        parse_str(&long_id).unwrap_err(),
        ParseError::TextTooLong {
            element: "footnoteId",
            limit: 64
        }
    );
}

#[test]
fn truncated_documents() {
    let whole = data("turtlebeach-form4-20230511.xml");
    let text = std::str::from_utf8(&whole).unwrap();
    let cut = text.find("<transactionAmounts>").unwrap();
    assert!(matches!(
        parse_document(&whole[..cut]).unwrap_err(),
        ParseError::Truncated { .. }
    ));
    // Cut in the middle of a tag.
    assert!(matches!(
        parse_document(&whole[..cut + 5]).unwrap_err(),
        ParseError::Truncated { .. }
    ));
    // Every prefix fails cleanly (and none panics).
    for end in 0..whole.len() {
        let result = parse_document(&whole[..end]);
        assert!(result.is_err(), "prefix of {end} bytes parsed");
    }
    assert_eq!(parse_document(b"").unwrap_err(), ParseError::NoRootElement);
    assert_eq!(
        parse_document(b"  \n").unwrap_err(),
        ParseError::NoRootElement
    );
    // A truncated EDGAR submission: the XML block never closes.
    let txt = data("aar-form4-20250110.txt");
    let cut = std::str::from_utf8(&txt).unwrap().find("</XML>").unwrap();
    assert_eq!(
        parse_document(&txt[..cut]).unwrap_err(),
        ParseError::Truncated { element: "XML" }
    );
}

#[test]
fn not_utf8() {
    let mut xml = doc("<officerTitle>CFO</officerTitle>", "").into_bytes();
    let at = xml.windows(3).position(|w| w == b"CFO").unwrap();
    xml[at] = 0xC3; // a lone UTF-8 lead byte (Latin-1 "Ã")
    assert_eq!(
        parse_document(&xml).unwrap_err(),
        ParseError::NotUtf8 { offset: at }
    );
    assert!(matches!(
        parse_document(&[0xFF, 0xFE, b'<', 0, b'o', 0]).unwrap_err(),
        ParseError::NotUtf8 { .. }
    ));
}

#[test]
fn wrong_root_element() {
    assert_eq!(
        parse_str("<?xml version=\"1.0\"?><html><body/></html>").unwrap_err(),
        ParseError::WrongRoot {
            found: "html".into()
        }
    );
    let long = format!("<{}/>", "a".repeat(10_000));
    match parse_str(&long).unwrap_err() {
        ParseError::WrongRoot { found } => assert!(found.chars().count() <= 65, "not echoed"),
        other => panic!("{other:?}"),
    }
    // A second root after the first is refused too.
    let twice = format!("{}<ownershipDocument/>", doc("", ""));
    assert!(matches!(
        parse_str(&twice).unwrap_err(),
        ParseError::Unexpected { .. }
    ));
}

#[test]
fn malformed_xml_and_missing_facts_carry_context() {
    let mismatched = doc("<isDirector>1</isOfficer>", "");
    match parse_str(&mismatched).unwrap_err() {
        ParseError::Malformed { element, .. } => assert_eq!(element, "isDirector"),
        other => panic!("{other:?}"),
    }
    let no_shares = doc(
        "",
        &sale_row("<value>1</value>").replace("<value>10</value>", ""),
    );
    assert_eq!(
        parse_str(&no_shares).unwrap_err(),
        ParseError::MissingField {
            element: "transactionShares",
            within: "nonDerivativeTransaction"
        }
    );
    let bad_date = doc(
        "",
        &sale_row("<value>1</value>").replace("2024-01-02", "2024-02-30"),
    );
    assert_eq!(
        parse_str(&bad_date).unwrap_err(),
        ParseError::InvalidValue {
            element: "transactionDate",
            expected: "a YYYY-MM-DD date"
        }
    );
    let bad_price = doc("", &sale_row("<value>1,000.00</value>"));
    assert_eq!(
        parse_str(&bad_price).unwrap_err(),
        ParseError::InvalidValue {
            element: "transactionPricePerShare",
            expected: "a decimal number"
        }
    );
    let other_form = doc("", "").replace(
        "<documentType>4</documentType>",
        "<documentType>13F-HR</documentType>",
    );
    assert!(matches!(
        parse_str(&other_form).unwrap_err(),
        ParseError::InvalidValue {
            element: "documentType",
            ..
        }
    ));
    let no_owner = doc("", "").replace(
        &doc("", "")[doc("", "").find("<reportingOwner>").unwrap()
            ..doc("", "").find("<nonDerivativeTable>").unwrap()],
        "",
    );
    assert_eq!(
        parse_str(&no_owner).unwrap_err(),
        ParseError::MissingField {
            element: "reportingOwner",
            within: "ownershipDocument"
        }
    );
    // Errors print without the offending input.
    let message = ParseError::WrongRoot { found: "x".into() }.to_string();
    assert_eq!(message, "root element is <x>, not <ownershipDocument>");
}

#[test]
fn holdings_are_not_transactions() {
    let holding_row = "<nonDerivativeHolding><securityTitle><value>Common Stock</value>\
        </securityTitle><postTransactionAmounts><sharesOwnedFollowingTransaction><value>5\
        </value></sharesOwnedFollowingTransaction></postTransactionAmounts><ownershipNature>\
        <directOrIndirectOwnership><value>I</value></directOrIndirectOwnership>\
        <natureOfOwnership><value>By  spouse</value></natureOfOwnership></ownershipNature>\
        </nonDerivativeHolding>";
    let f = parse_str(&doc("", holding_row)).unwrap();
    assert_eq!(f.transactions, vec![]);
    assert_eq!(
        f.holdings,
        vec![Holding {
            direct_indirect: Indirect,
            nature_of_ownership: Some("By spouse".into()),
            ..holding("Common Stock", Some("5"))
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Amendments

/// The Turtle Beach filing as an EDGAR submission filed on `filed`, optionally as a 4/A of the
/// filing made on `original`, with `shares` as the purchase size.
fn turtle_submission(accession: &str, filed: &str, original: Option<&str>, shares: &str) -> Filing {
    let xml = String::from_utf8(data("turtlebeach-form4-20230511.xml")).unwrap();
    let mut xml = xml.replace("<value>5000</value>", &format!("<value>{shares}</value>"));
    if let Some(original) = original {
        xml = xml.replace(
            "<documentType>4</documentType>",
            "<documentType>4/A</documentType>",
        );
        xml = xml.replace(
            "<periodOfReport>2023-05-11</periodOfReport>",
            &format!(
                "<periodOfReport>2023-05-11</periodOfReport>\
                 <dateOfOriginalSubmission>{original}</dateOfOriginalSubmission>"
            ),
        );
    }
    let compact = filed.replace('-', "");
    let txt = format!(
        "<SEC-DOCUMENT>{accession}.txt : {compact}\n<SEC-HEADER>{accession}.hdr.sgml : {compact}\n\
         ACCESSION NUMBER:\t\t{accession}\nCONFORMED SUBMISSION TYPE:\t4\n\
         FILED AS OF DATE:\t\t{compact}\n</SEC-HEADER>\n<DOCUMENT>\n<TYPE>4\n<TEXT>\n<XML>\n\
         {xml}\n</XML>\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n"
    );
    parse_document(txt.as_bytes()).unwrap()
}

#[test]
fn amendments_supersede_what_they_amend() {
    let original = turtle_submission("0000929638-23-001482", "2023-05-15", None, "5000");
    let amendment = turtle_submission(
        "0000929638-23-001500",
        "2023-05-17",
        Some("2023-05-15"),
        "5100",
    );
    let second = turtle_submission(
        "0000929638-23-001600",
        "2023-05-20",
        Some("2023-05-15"),
        "5200",
    );
    assert!(amendment.is_amendment());
    assert_eq!(amendment.base_form(), "4");
    assert_eq!(
        amendment.date_of_original_submission,
        Some(date("2023-05-15"))
    );
    assert!(amendment.supersedes(&original));
    assert!(!original.supersedes(&amendment));
    assert!(second.supersedes(&amendment), "the later amendment wins");
    assert!(!amendment.supersedes(&second));
    assert!(!amendment.supersedes(&amendment));

    let current = current_filings(vec![original.clone(), amendment.clone(), second.clone()]);
    assert_eq!(current, vec![second.clone()]);
    assert_eq!(current[0].transactions[0].shares, d("5200"));

    // An amendment of a different filing day, issuer or owner leaves the original alone.
    let elsewhere = turtle_submission(
        "0000929638-23-001700",
        "2023-05-21",
        Some("2023-05-16"),
        "1",
    );
    assert!(!elsewhere.supersedes(&original));
    let mut other_owner = amendment.clone();
    other_owner.owners[0].cik = "0000000042".into();
    assert!(!other_owner.supersedes(&original));
    // Bare XML has no filing date, so nothing can be matched to it: both are kept.
    let bare_original = Filing {
        filed_at: None,
        accession_number: None,
        ..original.clone()
    };
    assert_eq!(
        current_filings(vec![bare_original.clone(), amendment.clone()]),
        vec![bare_original, amendment]
    );
}
