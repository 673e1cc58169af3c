//! SEC EDGAR's daily form index (`Archives/edgar/daily-index/YYYY/QTRn/form.YYYYMMDD.idx`): where it
//! lives, and reading its fixed-width table into the ownership filings (Forms 3, 4 and 5 and their
//! amendments) it lists, one entry per accession number.
//!
//! The file is a few lines of description, a header naming the columns (`Form Type`, `Company
//! Name`, `CIK`, `Date Filed`, `File Name`), a line of dashes, then one row per filer of a filing.
//! A Form 4 is listed once for its issuer and once for each reporting owner, each row pointing at
//! the same accession under a different CIK folder, so rows are folded by accession number.
//! Column positions are taken from the header line, not assumed, and each row is checked: a
//! form type wider than its column, a non-numeric CIK, an impossible date or a file name that is
//! not `edgar/data/<cik>/<accession>.txt` makes the row rejected (counted), never guessed at.

use std::collections::HashSet;

/// The index is refused beyond this size; the largest real daily form index is a few MiB.
pub const MAX_INDEX_BYTES: usize = 32 << 20;

/// The form types an ownership sync fetches.
pub const OWNERSHIP_FORMS: [&str; 6] = ["3", "4", "5", "3/A", "4/A", "5/A"];

/// One ownership filing listed in a daily index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub form_type: String,
    /// The CIK of the first row listing this accession (issuer or reporting owner).
    pub cik: u64,
    /// `YYYY-MM-DD`.
    pub date_filed: String,
    /// Relative to `https://www.sec.gov/Archives/`: `edgar/data/<cik>/<accession>.txt`, the full
    /// submission.
    pub path: String,
    /// `0001127602-25-001055`.
    pub accession: String,
}

/// A daily index read: the ownership filings, and how many rows were not understood.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyIndex {
    pub entries: Vec<IndexEntry>,
    /// Rows after the header that could not be read (kept as a count: the operator sees it).
    pub rejected_rows: usize,
    /// Rows of other form types, skipped.
    pub other_forms: usize,
}

/// Why an index could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("the index is {0} bytes, over the {MAX_INDEX_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("the index has no column header (Form Type, Company Name, CIK, Date Filed, File Name)")]
    NoHeader,
    #[error("the quarter's index.json is not a folder listing")]
    NotAListing,
}

/// The path of a quarter's folder listing (`index.json`), which names every daily index
/// published in that quarter.
pub fn quarter_listing_path(year: i32, month: u8) -> String {
    let quarter = (month.clamp(1, 12) - 1) / 3 + 1;
    format!("Archives/edgar/daily-index/{year}/QTR{quarter}/index.json")
}

/// The listing is refused beyond this size (a quarter lists a few hundred files).
pub const MAX_LISTING_BYTES: usize = 4 << 20;

/// The days (`YYYYMMDD`) whose form index a quarter's `index.json` lists
/// (`{"directory": {"item": [{"name": "form.20250102.idx", …}, …]}}`).
pub fn listed_form_index_days(
    bytes: &[u8],
) -> Result<std::collections::BTreeSet<String>, IndexError> {
    if bytes.len() > MAX_LISTING_BYTES {
        return Err(IndexError::TooLarge(bytes.len()));
    }
    let listing: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| IndexError::NotAListing)?;
    let items = listing
        .get("directory")
        .and_then(|d| d.get("item"))
        .and_then(serde_json::Value::as_array)
        .ok_or(IndexError::NotAListing)?;
    Ok(items
        .iter()
        .filter_map(|item| item.get("name").and_then(serde_json::Value::as_str))
        .filter_map(|name| name.strip_prefix("form.")?.strip_suffix(".idx"))
        .filter(|day| day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect())
}

/// The path of the daily form index for a day, relative to `https://www.sec.gov/`. `month` is
/// 1–12; the quarter folder follows from it.
pub fn daily_index_path(year: i32, month: u8, day: u8) -> String {
    let quarter = (month.clamp(1, 12) - 1) / 3 + 1;
    format!("Archives/edgar/daily-index/{year}/QTR{quarter}/form.{year:04}{month:02}{day:02}.idx")
}

struct Columns {
    company: usize,
}

fn header_columns(line: &str) -> Option<Columns> {
    if !line.starts_with("Form Type") {
        return None;
    }
    let company = line.find("Company Name")?;
    let cik = line.find("CIK")?;
    let date = line.find("Date Filed")?;
    let file = line.find("File Name")?;
    (company < cik && cik < date && date < file).then_some(Columns { company })
}

/// Reads a daily form index, keeping the ownership forms (`OWNERSHIP_FORMS`), each accession once,
/// in the order first listed.
pub fn parse_daily_index(bytes: &[u8]) -> Result<DailyIndex, IndexError> {
    if bytes.len() > MAX_INDEX_BYTES {
        return Err(IndexError::TooLarge(bytes.len()));
    }
    // Company names are not always UTF-8; the fields that matter are ASCII, so a stray byte in a
    // name must not cost the day.
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let columns = lines
        .by_ref()
        .find_map(header_columns)
        .ok_or(IndexError::NoHeader)?;
    let mut index = DailyIndex::default();
    let mut seen = HashSet::new();
    let mut past_rule = false;
    for line in lines {
        if !past_rule {
            // The header is followed by a rule of dashes; anything before it is not a row.
            past_rule = !line.is_empty() && line.bytes().all(|b| b == b'-');
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(line, &columns) {
            Some(row) if OWNERSHIP_FORMS.contains(&row.form_type.as_str()) => {
                if seen.insert(row.accession.clone()) {
                    index.entries.push(row);
                }
            }
            Some(_) => index.other_forms += 1,
            None => index.rejected_rows += 1,
        }
    }
    if !past_rule {
        return Err(IndexError::NoHeader);
    }
    Ok(index)
}

fn parse_row(line: &str, columns: &Columns) -> Option<IndexEntry> {
    let form_type = line.get(..columns.company)?.trim();
    if form_type.is_empty() {
        return None;
    }
    let rest = line.get(columns.company..)?;
    let mut fields = rest.split_whitespace().rev();
    let path = fields.next()?;
    let date = fields.next()?;
    let cik_text = fields.next()?;
    // What remains is the company name; it may be empty but a row needs the three trailing fields.
    let cik = parse_cik(cik_text)?;
    let date_filed = parse_date(date)?;
    let accession = accession_of_path(path, cik)?;
    Some(IndexEntry {
        form_type: form_type.to_string(),
        cik,
        date_filed,
        path: path.to_string(),
        accession,
    })
}

fn parse_cik(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|cik| *cik > 0)
}

/// `20240102` (daily indexes) or `2024-01-02` (quarterly ones) → `2024-01-02`, if a real date.
fn parse_date(text: &str) -> Option<String> {
    // The daily form's `20240102` is spelled as the quarterly form's `2024-01-02` and checked
    // against the calendar like every other date the parser reads.
    let dashed = match text.as_bytes() {
        [y1, y2, y3, y4, m1, m2, d1, d2] => [*y1, *y2, *y3, *y4, b'-', *m1, *m2, b'-', *d1, *d2],
        [_, _, _, _, b'-', _, _, b'-', _, _] => text.as_bytes().try_into().ok()?,
        _ => return None,
    };
    let date = crate::form4::Date::parse_iso(std::str::from_utf8(&dashed).ok()?)?;
    (date.year() >= 1993).then(|| date.to_string())
}

/// `edgar/data/<cik>/<accession>.txt` with the row's own CIK → the accession number.
fn accession_of_path(path: &str, cik: u64) -> Option<String> {
    let rest = path.strip_prefix("edgar/data/")?;
    let (folder, file) = rest.split_once('/')?;
    if parse_cik(folder)? != cik {
        return None;
    }
    let accession = file.strip_suffix(".txt")?;
    let bytes = accession.as_bytes();
    let shaped = bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, b)| match i {
            10 | 13 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped.then(|| accession.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Description:           Daily Index of EDGAR Dissemination Feed by Form Type\n\
Last Data Received:    January 10, 2025\n\
Comments:              webmaster@sec.gov\n\
Anonymous FTP:         ftp://ftp.sec.gov/edgar/\n\
\n\
\n\
\n\
\n\
Form Type   Company Name                                                  CIK         Date Filed  File Name\n\
---------------------------------------------------------------------------------------------------------------------------------------------\n";

    fn row(form: &str, company: &str, cik: &str, date: &str, path: &str) -> String {
        format!("{form:<12}{company:<62}{cik:<12}{date:<12}{path}\n")
    }

    #[test]
    fn ownership_rows_are_kept_once_per_accession() {
        let mut text = HEADER.to_string();
        text += &row(
            "4",
            "AAR CORP",
            "1750",
            "20250110",
            "edgar/data/1750/0001127602-25-001055.txt",
        );
        text += &row(
            "4",
            "Garascia Jessica A.",
            "1806647",
            "20250110",
            "edgar/data/1806647/0001127602-25-001055.txt",
        );
        text += &row(
            "8-K",
            "SOME   SPACED    NAME INC",
            "320193",
            "20250110",
            "edgar/data/320193/0000320193-25-000001.txt",
        );
        text += &row(
            "4/A",
            "",
            "1640147",
            "20250110",
            "edgar/data/1640147/0001640147-25-000002.txt",
        );
        let index = parse_daily_index(text.as_bytes()).unwrap();
        assert_eq!(index.other_forms, 1);
        assert_eq!(index.rejected_rows, 0);
        assert_eq!(
            index.entries,
            vec![
                IndexEntry {
                    form_type: "4".into(),
                    cik: 1750,
                    date_filed: "2025-01-10".into(),
                    path: "edgar/data/1750/0001127602-25-001055.txt".into(),
                    accession: "0001127602-25-001055".into(),
                },
                IndexEntry {
                    form_type: "4/A".into(),
                    cik: 1_640_147,
                    date_filed: "2025-01-10".into(),
                    path: "edgar/data/1640147/0001640147-25-000002.txt".into(),
                    accession: "0001640147-25-000002".into(),
                },
            ]
        );
    }

    #[test]
    fn a_form_type_with_a_space_is_read_from_its_column() {
        let mut text = HEADER.to_string();
        text += &row(
            "SC 13G/A",
            "X",
            "1",
            "20250110",
            "edgar/data/1/0000000001-25-000001.txt",
        );
        let index = parse_daily_index(text.as_bytes()).unwrap();
        assert_eq!((index.other_forms, index.rejected_rows), (1, 0));
    }

    #[test]
    fn rows_that_do_not_add_up_are_rejected_not_guessed() {
        let mut text = HEADER.to_string();
        for bad in [
            // CIK folder differs from the row's CIK.
            row(
                "4",
                "A",
                "1750",
                "20250110",
                "edgar/data/1751/0001127602-25-001055.txt",
            ),
            // Impossible date.
            row(
                "4",
                "A",
                "1750",
                "20250230",
                "edgar/data/1750/0001127602-25-001055.txt",
            ),
            // Path escaping the archive.
            row(
                "4",
                "A",
                "1750",
                "20250110",
                "edgar/data/1750/../../etc/passwd.txt",
            ),
            // Not an accession.
            row(
                "4",
                "A",
                "1750",
                "20250110",
                "edgar/data/1750/0001127602-25-00105.txt",
            ),
            // CIK not a number.
            row(
                "4",
                "A",
                "17x0",
                "20250110",
                "edgar/data/17x0/0001127602-25-001055.txt",
            ),
            // Truncated row.
            "4           AAR CORP\n".to_string(),
        ] {
            text += &bad;
        }
        let index = parse_daily_index(text.as_bytes()).unwrap();
        assert!(index.entries.is_empty());
        assert_eq!(index.rejected_rows, 6);
    }

    #[test]
    fn a_document_without_the_table_is_an_error() {
        assert_eq!(
            parse_daily_index(b"<html>Request Rate Threshold Exceeded</html>"),
            Err(IndexError::NoHeader)
        );
        // A header cut off before its rule is not a table either.
        let cut = HEADER.lines().take(9).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_daily_index(cut.as_bytes()), Err(IndexError::NoHeader));
        assert_eq!(parse_daily_index(&[0xff, 0xfe]), Err(IndexError::NoHeader));
        let huge = vec![b' '; MAX_INDEX_BYTES + 1];
        assert_eq!(
            parse_daily_index(&huge),
            Err(IndexError::TooLarge(MAX_INDEX_BYTES + 1))
        );
    }

    #[test]
    fn a_name_that_is_not_utf8_does_not_cost_its_row() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"4           Soci\xe9t\xe9 G\xe9n\xe9rale                                            1750        20250110    edgar/data/1750/0001127602-25-001055.txt\n");
        let index = parse_daily_index(&text).unwrap();
        assert_eq!(index.entries.len(), 1);
        assert_eq!(index.rejected_rows, 0);
    }

    #[test]
    fn a_quarter_listing_names_the_days_with_an_index() {
        let json = br#"{"directory":{"name":"/Archives/edgar/daily-index/2025/QTR1/","item":[
            {"last-modified":"01/02/2025 10:00:00 PM","name":"company.20250102.idx","type":"file"},
            {"name":"form.20250102.idx","type":"file"},
            {"name":"form.20250103.idx","type":"file"},
            {"name":"form.2025010.idx"},
            {"name":"master.20250103.idx"}]}}"#;
        let days = listed_form_index_days(json).unwrap();
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            ["20250102", "20250103"]
        );
        assert_eq!(
            listed_form_index_days(b"<html>not json</html>"),
            Err(IndexError::NotAListing)
        );
        assert_eq!(
            listed_form_index_days(br#"{"directory":{}}"#),
            Err(IndexError::NotAListing)
        );
        assert_eq!(
            quarter_listing_path(2025, 5),
            "Archives/edgar/daily-index/2025/QTR2/index.json"
        );
    }

    #[test]
    fn the_path_follows_the_quarter() {
        assert_eq!(
            daily_index_path(2025, 1, 10),
            "Archives/edgar/daily-index/2025/QTR1/form.20250110.idx"
        );
        assert_eq!(
            daily_index_path(2024, 12, 31),
            "Archives/edgar/daily-index/2024/QTR4/form.20241231.idx"
        );
        assert_eq!(
            daily_index_path(2024, 4, 1),
            "Archives/edgar/daily-index/2024/QTR2/form.20240401.idx"
        );
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert_eq!(parse_date("20240229").as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("20230229"), None);
        assert_eq!(parse_date("2024x02x29"), None);
        assert_eq!(parse_date("20241301"), None);
        assert_eq!(parse_date("2024010"), None);
    }
}
