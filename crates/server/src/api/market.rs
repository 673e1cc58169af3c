//! The market-data API: insider trades (list, one, statistics), companies, insiders and
//! congressional trades. Every route needs a principal holding `market:read`; the free tier's
//! history window is applied here, on the server, to every query.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use market::form4::Date;
use market::query::{TradeFilter, TradeSort};
use serde::Serialize;

use super::extract::{MarketRead, RequireScope};
use super::params::Params;
use super::responses::{Page, page_count};
use crate::http::json::html_safe_json;
use crate::http::{ApiError, SafeJson};
use crate::identity::Caller;
use crate::market::cache::TradePage;
use crate::market::tiers;
use crate::market::views::{CompanyRef, StatsBody, TradeBody, trade_body};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/trades", get(list_trades))
        .route("/trades/stats", get(trade_stats))
        .route("/trades/{id}", get(get_trade))
        .route("/companies", get(list_companies))
        .route("/companies/{ticker}", get(get_company))
        .route("/insiders/{cik}", get(get_insider))
        .route("/congressional-trades", get(list_congress))
}

/// Values of `acquired_disposed` (any case).
pub const ACQUIRED_DISPOSED: &[&str] = &["A", "D"];
/// Values of `chamber` (any case).
pub(crate) const CHAMBERS: &[&str] = &["house", "senate"];

/// The filters of `/trades` and `/trades/stats`.
pub const TRADE_FILTERS: &[&str] = &[
    "ticker",
    "insider_cik",
    "code",
    "acquired_disposed",
    "since",
    "until",
    "min_value",
    "max_value",
    "derivative",
];

/// The trade filters of a query (shared with the web UI's `/trades` form, which uses the same names).
pub(crate) fn read_trade_filter(params: &mut Params) -> TradeFilter {
    let filter = TradeFilter {
        ticker: params.ticker("ticker"),
        insider_cik: params.cik("insider_cik"),
        codes: params.codes("code"),
        acquired_disposed: params
            .choice("acquired_disposed", ACQUIRED_DISPOSED)
            .and_then(|c| c.chars().next()),
        since: params.date("since"),
        until: params.date("until"),
        min_value_cents: params.dollars("min_value"),
        max_value_cents: params.dollars("max_value"),
        derivative: params.boolean("derivative"),
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        params.fail_with("until", "out_of_range", "until must not be before since.");
    }
    if let (Some(min), Some(max)) = (filter.min_value_cents, filter.max_value_cents)
        && min > max
    {
        params.fail_with(
            "max_value",
            "out_of_range",
            "max_value must not be below min_value.",
        );
    }
    filter
}

/// The free tier's window, applied to a date range: `since` defaults to the window's start and
/// asking for anything before it is a 403 that says why.
pub(crate) fn apply_history_window(
    principal: &Caller,
    since: &mut Option<Date>,
    until: Option<Date>,
) -> Result<Option<Date>, ApiError> {
    let Some(start) = tiers::history_start(principal.tier, tiers::today()) else {
        return Ok(None);
    };
    if since.is_some_and(|s| s < start) || until.is_some_and(|u| u < start) {
        return Err(history_forbidden(start));
    }
    if since.is_none() {
        *since = Some(start);
    }
    Ok(Some(start))
}

fn history_forbidden(start: Date) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "history-limit",
        format!(
            "The free plan includes the last {} days of trades (from {start}); upgrade to Pro for the full history.",
            tiers::FREE_HISTORY_DAYS
        ),
    )
    .with_member("available_since", start.to_string())
}

#[utoipa::path(get, path = "/api/v1/trades", tag = "market",
    params(
        ("ticker" = Option<String>, Query, description = "Issuer ticker (case-insensitive)"),
        ("insider_cik" = Option<String>, Query, description = "Reporting owner CIK (1–10 digits)"),
        ("code" = Option<String>, Query, description = "Transaction codes, comma-separated (P,S,A,M,F,G…)"),
        ("acquired_disposed" = Option<String>, Query, description = "A or D"),
        ("since" = Option<String>, Query, description = "First transaction date, YYYY-MM-DD"),
        ("until" = Option<String>, Query, description = "Last transaction date, YYYY-MM-DD"),
        ("min_value" = Option<String>, Query, description = "Minimum value in dollars"),
        ("max_value" = Option<String>, Query, description = "Maximum value in dollars"),
        ("derivative" = Option<bool>, Query, description = "Derivative transactions only (true) or none (false)"),
        ("page" = Option<u32>, Query, description = "From 1"),
        ("per_page" = Option<u32>, Query, description = "1–200, default 50"),
        ("sort" = Option<String>, Query, description = "transaction_date, filed_at, value or ticker; prefix '-' for descending"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of trades; amounts are exact decimal strings"),
        (status = 401, description = "No valid credentials"), (status = 403, description = "Outside the free plan's 90 days"),
        (status = 422, description = "A bad parameter (each one named)")))]
async fn list_trades(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut allowed = TRADE_FILTERS.to_vec();
    allowed.extend(["page", "per_page", "sort"]);
    let mut params = Params::parse(query.as_deref(), &allowed);
    let mut filter = read_trade_filter(&mut params);
    let page = params.page();
    let sort = match params.text("sort") {
        None => TradeSort::default(),
        Some(text) => TradeSort::parse(text).unwrap_or_else(|| {
            params.fail_with(
                "sort",
                "invalid",
                format!(
                    "Sort by one of {} (prefix '-' for descending).",
                    market::query::TradeSortField::NAMES.join(", ")
                ),
            );
            TradeSort::default()
        }),
    };
    params.finish()?;
    apply_history_window(&principal, &mut filter.since, filter.until)?;
    let listing = state
        .market
        .reads
        .trades(&filter, sort, page)
        .await
        .map_err(ApiError::internal)?;
    let items = match listing.rendered.get() {
        Some(items) => items,
        None => {
            let items = render_items(&listing).map_err(ApiError::internal)?;
            listing.rendered.get_or_init(|| items)
        }
    };
    Ok(rendered_page(
        items,
        listing.total,
        page.page(),
        page.per_page(),
    ))
}

/// A page's rows as `SafeJson` would write them: the API's trade bodies, HTML-safe.
fn render_items(listing: &TradePage) -> serde_json::Result<Vec<u8>> {
    let bodies: Vec<TradeBody> = listing
        .rows
        .iter()
        .map(|row| {
            let filing_owners = listing
                .owners
                .get(&row.filing_id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            trade_body(row.clone(), filing_owners)
        })
        .collect();
    Ok(html_safe_json(&serde_json::to_vec(&bodies)?))
}

/// The `Page` document around items already serialised as HTML-safe JSON: the same bytes
/// `SafeJson(Page::new(…))` writes (the other members are numbers), without serialising and
/// escaping the items again.
fn rendered_page(items: &[u8], total: i64, page: u32, per_page: u32) -> Response {
    let pages = page_count(total, per_page);
    let mut body = Vec::with_capacity(items.len() + 96);
    body.extend_from_slice(b"{\"items\":");
    body.extend_from_slice(items);
    body.extend_from_slice(
        format!(",\"total\":{total},\"page\":{page},\"per_page\":{per_page},\"pages\":{pages}}}")
            .as_bytes(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct FilingBody {
    id: String,
    accession_number: Option<String>,
    document_type: String,
    period_of_report: Option<String>,
    filed_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct TradeDetailBody {
    #[serde(flatten)]
    trade: TradeBody,
    filing: FilingBody,
}

#[utoipa::path(get, path = "/api/v1/trades/{id}", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Trade id (UUID)")),
    responses((status = 200, description = "One trade with its company, insider, reporting owners and filing"),
        (status = 403, description = "Outside the free plan's 90 days"), (status = 404, description = "No such trade")))]
async fn get_trade(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    Path(id): Path<String>,
) -> Result<SafeJson<TradeDetailBody>, ApiError> {
    if uuid::Uuid::try_parse(&id).is_err() {
        return Err(ApiError::not_found());
    }
    let row = state
        .db
        .trade(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    if let Some(start) = tiers::history_start(principal.tier, tiers::today())
        && Date::parse_iso(&row.transaction_date).is_some_and(|d| d < start)
    {
        return Err(history_forbidden(start));
    }
    let filing = state
        .db
        .filing_detail(&row.filing_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    Ok(SafeJson(TradeDetailBody {
        trade: trade_body(row, &filing.owners),
        filing: FilingBody {
            id: filing.id,
            accession_number: filing.accession_number,
            document_type: filing.document_type,
            period_of_report: filing.period_of_report,
            filed_at: filing.filed_at,
        },
    }))
}

#[derive(Debug, Serialize)]
struct StatsResponse {
    #[serde(flatten)]
    stats: StatsBody,
    /// The first date counted when the plan limits history.
    history_since: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/trades/stats", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(
        ("ticker" = Option<String>, Query, description = "Issuer ticker (case-insensitive)"),
        ("insider_cik" = Option<String>, Query, description = "Reporting owner CIK (1–10 digits)"),
        ("code" = Option<String>, Query, description = "Transaction codes, comma-separated (P,S,A,M,F,G…)"),
        ("acquired_disposed" = Option<String>, Query, description = "A or D"),
        ("since" = Option<String>, Query, description = "First transaction date, YYYY-MM-DD"),
        ("until" = Option<String>, Query, description = "Last transaction date, YYYY-MM-DD"),
        ("min_value" = Option<String>, Query, description = "Minimum value in dollars"),
        ("max_value" = Option<String>, Query, description = "Maximum value in dollars"),
        ("derivative" = Option<bool>, Query, description = "Derivative (true) or non-derivative (false) rows only"),
    ),
    responses((status = 200, description = "{total, buys (code P), sells (code S), buy_value, sell_value, companies, insiders, first_date, last_date}"),
        (status = 403, description = "Outside the free plan's 90 days")))]
async fn trade_stats(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<StatsResponse>, ApiError> {
    let mut params = Params::parse(query.as_deref(), TRADE_FILTERS);
    let mut filter = read_trade_filter(&mut params);
    params.finish()?;
    let window = apply_history_window(&principal, &mut filter.since, filter.until)?;
    let stats = state
        .market
        .reads
        .stats(&filter)
        .await
        .map_err(ApiError::internal)?;
    Ok(SafeJson(StatsResponse {
        stats: Arc::unwrap_or_clone(stats).into(),
        history_since: window.map(|d| d.to_string()),
    }))
}

#[utoipa::path(get, path = "/api/v1/companies", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(("q" = Option<String>, Query, description = "Name contains, or ticker starts with"),
        ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "A page of {cik, ticker, name}")))]
async fn list_companies(
    State(state): State<AppState>,
    RequireScope(_principal, ..): RequireScope<MarketRead>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<CompanyRef>>, ApiError> {
    let mut params = Params::parse(query.as_deref(), &["q", "page", "per_page"]);
    let q = params.text("q").map(str::to_string);
    let page = params.page();
    params.finish()?;
    let (rows, total) = state
        .db
        .list_companies(q.as_deref(), page)
        .await
        .map_err(ApiError::internal)?;
    let items = rows
        .into_iter()
        .map(|c| CompanyRef {
            cik: c.cik,
            ticker: c.ticker,
            name: c.name,
        })
        .collect();
    Ok(SafeJson(Page::new(
        items,
        total,
        page.page(),
        page.per_page(),
    )))
}

#[derive(Debug, Serialize)]
struct CompanyBody {
    cik: String,
    ticker: Option<String>,
    name: String,
    trade_count: i64,
    /// Counts and sums of the trades the caller's plan covers.
    trades: StatsBody,
    history_since: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/companies/{ticker}", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(("ticker" = String, Path)),
    responses((status = 200, description = "The company with trade counts over the caller's history window"), (status = 404, description = "Unknown ticker")))]
async fn get_company(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    Path(ticker): Path<String>,
) -> Result<SafeJson<CompanyBody>, ApiError> {
    let ticker = ticker.to_ascii_uppercase();
    if !market::query::is_ticker(&ticker) {
        return Err(ApiError::not_found());
    }
    let since = tiers::history_start(principal.tier, tiers::today());
    let detail = state
        .market
        .reads
        .company(&ticker, since)
        .await
        .map_err(ApiError::internal)?
        .map(Arc::unwrap_or_clone)
        .ok_or_else(ApiError::not_found)?;
    Ok(SafeJson(CompanyBody {
        cik: detail.company.cik,
        ticker: detail.company.ticker,
        name: detail.company.name,
        trade_count: detail.stats.total,
        trades: detail.stats.into(),
        history_since: since.map(|d| d.to_string()),
    }))
}

#[derive(Debug, Serialize)]
struct RelationshipBody {
    company: CompanyRef,
    is_director: bool,
    is_officer: bool,
    officer_title: Option<String>,
    is_ten_percent_owner: bool,
    is_other: bool,
    other_text: Option<String>,
    as_of: Option<String>,
}

#[derive(Debug, Serialize)]
struct InsiderBody {
    cik: String,
    name: String,
    trade_count: i64,
    relationships: Vec<RelationshipBody>,
}

#[utoipa::path(get, path = "/api/v1/insiders/{cik}", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(("cik" = String, Path)),
    responses((status = 200, description = "The insider with relationships (director, officer title, ten-percent owner)"), (status = 404, description = "Unknown CIK")))]
async fn get_insider(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    Path(cik): Path<String>,
) -> Result<SafeJson<InsiderBody>, ApiError> {
    let cik = market::query::normalize_cik(&cik).ok_or_else(ApiError::not_found)?;
    let since = tiers::history_start(principal.tier, tiers::today());
    let insider = state
        .market
        .reads
        .insider(&cik, since)
        .await
        .map_err(ApiError::internal)?
        .map(Arc::unwrap_or_clone)
        .ok_or_else(ApiError::not_found)?;
    Ok(SafeJson(InsiderBody {
        cik: insider.cik,
        name: insider.name,
        trade_count: insider.trades,
        relationships: insider
            .relationships
            .into_iter()
            .map(|r| RelationshipBody {
                company: CompanyRef {
                    cik: r.company_cik,
                    ticker: r.ticker,
                    name: r.company_name,
                },
                is_director: r.is_director != 0,
                is_officer: r.is_officer != 0,
                officer_title: r.officer_title,
                is_ten_percent_owner: r.is_ten_percent_owner != 0,
                is_other: r.is_other != 0,
                other_text: r.other_text,
                as_of: r.as_of,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize)]
struct CongressBody {
    id: String,
    member: String,
    chamber: String,
    ticker: Option<String>,
    asset_description: String,
    #[serde(rename = "type")]
    kind: String,
    amount_low: String,
    /// `null` for open-ended ranges ("Over $50,000,000").
    amount_high: Option<String>,
    transaction_date: String,
    disclosure_date: Option<String>,
    owner: Option<String>,
    link: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/congressional-trades", tag = "market", security(("bearer" = []), ("api_key" = [])),
    params(("ticker" = Option<String>, Query), ("member" = Option<String>, Query, description = "Name contains"),
        ("chamber" = Option<String>, Query, description = "house or senate"), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "A page of disclosures; amount ranges as low/high decimal strings (high null when open-ended)"),
        (status = 403, description = "Outside the free plan's 90 days")))]
async fn list_congress(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<MarketRead>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<CongressBody>>, ApiError> {
    let mut params = Params::parse(
        query.as_deref(),
        &[
            "ticker", "member", "chamber", "since", "until", "page", "per_page",
        ],
    );
    let mut filter = store::market::congress::CongressFilter {
        ticker: params.ticker("ticker"),
        member: params.text("member").map(str::to_string),
        chamber: params.choice("chamber", CHAMBERS).map(str::to_string),
        since: params.date("since"),
        until: params.date("until"),
    };
    let page = params.page();
    params.finish()?;
    apply_history_window(&principal, &mut filter.since, filter.until)?;
    let (rows, total) = state
        .db
        .list_congress_trades(&filter, page)
        .await
        .map_err(ApiError::internal)?;
    let items = rows
        .into_iter()
        .map(|r| CongressBody {
            id: r.id,
            member: r.member,
            chamber: r.chamber,
            ticker: r.ticker,
            asset_description: r.asset_description,
            kind: r.kind,
            amount_low: market::money::from_cents(r.amount_low_cents).to_string(),
            amount_high: r
                .amount_high_cents
                .map(|c| market::money::from_cents(c).to_string()),
            transaction_date: r.transaction_date,
            disclosure_date: r.disclosure_date,
            owner: r.owner,
            link: r.link,
        })
        .collect();
    Ok(SafeJson(Page::new(
        items,
        total,
        page.page(),
        page.per_page(),
    )))
}

/// The market part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_trades, get_trade, trade_stats, list_companies, get_company, get_insider, list_congress),
    tags((name = "market", description = "Insider and congressional trades (needs market:read; free plan: last 90 days)"))
)]
pub struct MarketApi;

#[cfg(test)]
mod tests {
    use store::market::query::{OwnerRow, TradeRow};

    use super::*;

    fn row(i: usize) -> TradeRow {
        TradeRow {
            id: format!("id-{i}"),
            filing_id: "f1".into(),
            accession_number: Some("0001-23-000001".into()),
            company_cik: "0000000001".into(),
            ticker: Some("ACME".into()),
            company_name: "Acme <script>alert(1)</script> & Co".into(),
            insider_cik: "0000000002".into(),
            insider_name: "O'Brien \"Jr\" > \u{202e}x".into(),
            security_title: "Common Stock".into(),
            transaction_date: "2024-01-02".into(),
            code: "P".into(),
            acquired_disposed: "A".into(),
            shares: "100".into(),
            price_per_share: Some("1.50".into()),
            value: None,
            shares_owned_after: None,
            direct_indirect: "D".into(),
            is_derivative: 0,
            filed_at: None,
        }
    }

    async fn bytes_of(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    }

    /// The pre-rendered page is byte for byte what `SafeJson(Page)` writes, hostile text included.
    #[tokio::test]
    async fn a_rendered_page_is_the_page_document() {
        let owners = [OwnerRow {
            cik: "0000000002".into(),
            name: "<b>owner</b>".into(),
            is_director: 1,
            is_officer: 0,
            officer_title: None,
            is_ten_percent_owner: 0,
            is_other: 0,
            other_text: None,
        }];
        for (rows, total, page, per_page) in [(3, 103, 2, 50), (0, 0, 1, 50), (1, 1, 1, 1)] {
            let listing = TradePage::new(
                (0..rows).map(row).collect(),
                total,
                [("f1".to_string(), owners.to_vec())].into_iter().collect(),
            );
            let bodies: Vec<TradeBody> = (0..rows).map(|i| trade_body(row(i), &owners)).collect();
            let expected =
                bytes_of(SafeJson(Page::new(bodies, total, page, per_page)).into_response()).await;
            let items = render_items(&listing).expect("render");
            let text = String::from_utf8_lossy(&items);
            assert!(!text.contains("<script"), "{text}");
            assert_eq!(text.contains("\\u003cscript"), rows > 0, "{text}");
            let rendered = rendered_page(&items, total, page, per_page);
            assert_eq!(
                rendered.headers().get("content-type").map(|v| v.as_bytes()),
                Some(&b"application/json"[..])
            );
            assert_eq!(bytes_of(rendered).await, expected);
        }
    }
}
