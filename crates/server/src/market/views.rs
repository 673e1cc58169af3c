//! The JSON shapes of market data shared by the API and by alert deliveries (a webhook carries
//! the same trade JSON as `GET /trades`).

use serde::Serialize;
use store::market::query::{OwnerRow, TradeRow, TradeStats};

#[derive(Debug, Serialize)]
pub struct CompanyRef {
    pub cik: String,
    pub ticker: Option<String>,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct InsiderRef {
    pub cik: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct OwnerBody {
    pub cik: String,
    pub name: String,
    pub is_director: bool,
    pub is_officer: bool,
    pub officer_title: Option<String>,
    pub is_ten_percent_owner: bool,
    pub is_other: bool,
    pub other_text: Option<String>,
}

impl From<&OwnerRow> for OwnerBody {
    fn from(o: &OwnerRow) -> Self {
        Self {
            cik: o.cik.clone(),
            name: o.name.clone(),
            is_director: o.is_director != 0,
            is_officer: o.is_officer != 0,
            officer_title: o.officer_title.clone(),
            is_ten_percent_owner: o.is_ten_percent_owner != 0,
            is_other: o.is_other != 0,
            other_text: o.other_text.clone(),
        }
    }
}

/// Trade JSON (API.md). Amounts are exact decimal strings.
#[derive(Debug, Serialize)]
pub struct TradeBody {
    pub id: String,
    pub accession_number: Option<String>,
    pub company: CompanyRef,
    pub insider: InsiderRef,
    pub reporting_owners: Vec<OwnerBody>,
    pub security_title: String,
    pub transaction_date: String,
    pub code: String,
    pub acquired_disposed: String,
    pub shares: String,
    pub price_per_share: Option<String>,
    pub value: Option<String>,
    pub shares_owned_after: Option<String>,
    pub direct_indirect: String,
    pub is_derivative: bool,
    pub filed_at: Option<String>,
}

pub fn trade_body(row: TradeRow, owners: &[OwnerRow]) -> TradeBody {
    TradeBody {
        id: row.id,
        accession_number: row.accession_number,
        company: CompanyRef {
            cik: row.company_cik,
            ticker: row.ticker,
            name: row.company_name,
        },
        insider: InsiderRef {
            cik: row.insider_cik,
            name: row.insider_name,
        },
        reporting_owners: owners.iter().map(OwnerBody::from).collect(),
        security_title: row.security_title,
        transaction_date: row.transaction_date,
        code: row.code,
        acquired_disposed: row.acquired_disposed,
        shares: row.shares,
        price_per_share: row.price_per_share,
        value: row.value,
        shares_owned_after: row.shares_owned_after,
        direct_indirect: row.direct_indirect,
        is_derivative: row.is_derivative != 0,
        filed_at: row.filed_at,
    }
}

/// `/trades/stats` (API.md): `buys` count code P and `sells` code S; values are decimal strings.
#[derive(Debug, Serialize)]
pub struct StatsBody {
    pub total: i64,
    pub buys: i64,
    pub sells: i64,
    pub buy_value: String,
    pub sell_value: String,
    pub companies: i64,
    pub insiders: i64,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
}

impl From<TradeStats> for StatsBody {
    fn from(s: TradeStats) -> Self {
        Self {
            total: s.total,
            buys: s.buys,
            sells: s.sells,
            buy_value: market::money::from_cents(s.buy_value_cents).to_string(),
            sell_value: market::money::from_cents(s.sell_value_cents).to_string(),
            companies: s.companies,
            insiders: s.insiders,
            first_date: s.first_date,
            last_date: s.last_date,
        }
    }
}
