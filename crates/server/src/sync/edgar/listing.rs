//! Telling a weekday without an EDGAR index (EDGAR was closed) from one whose index is not
//! published yet, by the quarter's folder listing (`index.json`) rather than by the calendar.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use market::edgar_index;
use time::Date;

use super::{EdgarSync, Halt, halt};
use crate::sync::fetch::Fetched;

pub(super) enum Listed {
    Yes,
    /// EDGAR was closed that day (a holiday, a day of mourning): the quarter lists a later day,
    /// or the quarter is over.
    NoneThatDay,
    /// Nothing later is listed yet: the index may still come.
    NotYet,
}

/// The quarters' folder listings read in this run, to tell a day without an index from one whose
/// index is not published yet — by what EDGAR lists, not by guessing from the calendar.
#[derive(Default)]
pub(super) struct Listings(HashMap<(i32, u8), BTreeSet<String>>);

impl Listings {
    pub(super) async fn has_index(
        &mut self,
        sync: &EdgarSync<'_>,
        day: Date,
        today: Date,
    ) -> Result<Listed, Halt> {
        let month = u8::from(day.month());
        let quarter = (month - 1) / 3 + 1;
        let quarter_over = {
            let (year, next_quarter) = if quarter == 4 {
                (day.year() + 1, 1)
            } else {
                (day.year(), quarter + 1)
            };
            let first_month =
                time::Month::try_from(3 * (next_quarter - 1) + 1).unwrap_or(time::Month::January);
            Date::from_calendar_date(year, first_month, 1).is_ok_and(|start| today >= start)
        };
        let days = match self.0.entry((day.year(), quarter)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let url = sync
                    .base
                    .join(&edgar_index::quarter_listing_path(day.year(), month))
                    .map_err(|e| Halt::Failed(format!("cannot build the listing URL: {e}")))?;
                let days = match sync
                    .client
                    .get(&url, None, edgar_index::MAX_LISTING_BYTES, sync.stop)
                    .await
                {
                    Ok(Fetched::Body { bytes, .. }) => edgar_index::listed_form_index_days(&bytes)
                        .map_err(|e| Halt::Failed(format!("{url}: {e}")))?,
                    // A quarter without any index yet (its first days).
                    Ok(Fetched::NotFound) if !quarter_over => Default::default(),
                    Ok(_) => return Err(Halt::Failed(format!("{url} is missing"))),
                    Err(error) => return Err(halt(sync.stop, error)),
                };
                slot.insert(days)
            }
        };
        let wanted = format!("{:04}{:02}{:02}", day.year(), month, day.day());
        Ok(if days.contains(&wanted) {
            Listed::Yes
        } else if quarter_over || days.last().is_some_and(|latest| *latest > wanted) {
            Listed::NoneThatDay
        } else {
            Listed::NotYet
        })
    }
}
