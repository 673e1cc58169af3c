//! Property tests of the daily-index reader: any table of well-formed rows is read back exactly
//! (one entry per accession, in first-listed order, other forms counted), and no input panics.

use market::edgar_index::{IndexEntry, OWNERSHIP_FORMS, parse_daily_index};
use proptest::prelude::*;

const HEADER: &str = "Description:           Daily Index of EDGAR Dissemination Feed by Form Type\n\
Last Data Received:    March 3, 2025\n\n\
Form Type   Company Name                                                  CIK         Date Filed  File Name\n\
---------------------------------------------------------------------------------------------------------------------------------------------\n";

#[derive(Debug, Clone)]
struct Row {
    form: String,
    company: String,
    cik: u64,
    accession: String,
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![
            proptest::sample::select(OWNERSHIP_FORMS.to_vec()).prop_map(str::to_string),
            proptest::sample::select(vec!["8-K", "10-Q", "SC 13G/A", "144", "S-1/A"])
                .prop_map(str::to_string),
        ],
        "[A-Za-z][A-Za-z0-9 .,&'-]{0,55}",
        1u64..10_000_000_000,
        // A few accessions only, so rows often repeat one (as the filers of one Form 4 do).
        (0u32..6),
    )
        .prop_map(|(form, company, cik, n)| Row {
            form,
            company,
            cik,
            accession: format!("0000950170-25-{n:06}"),
        })
}

fn render(rows: &[Row]) -> String {
    let mut text = HEADER.to_string();
    for r in rows {
        let path = format!("edgar/data/{}/{}.txt", r.cik, r.accession);
        text += &format!(
            "{:<12}{:<62}{:<12}{:<12}{}\n",
            r.form, r.company, r.cik, "20250303", path
        );
    }
    text
}

proptest! {
    #[test]
    fn well_formed_rows_are_read_back(rows in proptest::collection::vec(row(), 0..40)) {
        let index = parse_daily_index(render(&rows).as_bytes()).unwrap();
        let mut expected: Vec<IndexEntry> = vec![];
        let mut other = 0;
        for r in &rows {
            if !OWNERSHIP_FORMS.contains(&r.form.as_str()) {
                other += 1;
            } else if !expected.iter().any(|e| e.accession == r.accession) {
                expected.push(IndexEntry {
                    form_type: r.form.clone(),
                    cik: r.cik,
                    date_filed: "2025-03-03".into(),
                    path: format!("edgar/data/{}/{}.txt", r.cik, r.accession),
                    accession: r.accession.clone(),
                });
            }
        }
        prop_assert_eq!(index.rejected_rows, 0);
        prop_assert_eq!(index.other_forms, other);
        prop_assert_eq!(index.entries, expected);
    }

    #[test]
    fn any_bytes_are_read_or_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_daily_index(&bytes);
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(&bytes);
        if let Ok(index) = parse_daily_index(&text) {
            for entry in index.entries {
                prop_assert!(entry.path.starts_with("edgar/data/"));
                prop_assert!(!entry.path.contains(".."));
            }
        }
    }
}
