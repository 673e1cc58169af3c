//! Market pages: the dashboard, `/trades` with every API filter, sort and page (links keep the
//! filters), and the company and insider pages with a server-rendered SVG chart. The free plan's
//! history window applies exactly as in the API (same filter parsing, same window); a request
//! outside it is shown as what the plan covers, not as an error code.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use market::query::{PageRequest, TradeFilter, TradeSort};
use store::market::query::TradeRow;

use super::context::{Layout, Page, SignedIn};
use super::pages::{FieldErrors, failure, render};
use crate::api::market::{TRADE_FILTERS, apply_history_window, read_trade_filter};
use crate::api::params::Params;
use crate::http::ApiError;
use crate::identity::Caller;
use crate::market::tiers;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/trades", get(trades))
        .route("/companies/{ticker}", get(company))
        .route("/insiders/{cik}", get(insider))
        .route("/congressional-trades", get(congress))
}

/// A trade as a table row shows it.
pub struct TradeLine {
    pub date: String,
    pub ticker: String,
    pub company: String,
    pub insider_cik: String,
    pub insider: String,
    pub code: String,
    pub buy: bool,
    pub sell: bool,
    pub shares: String,
    pub price: String,
    pub value: String,
}

impl From<TradeRow> for TradeLine {
    fn from(r: TradeRow) -> Self {
        Self {
            buy: r.code == "P",
            sell: r.code == "S",
            date: r.transaction_date,
            ticker: r.ticker.unwrap_or_default(),
            company: r.company_name,
            insider_cik: r.insider_cik,
            insider: r.insider_name,
            code: r.code,
            shares: r.shares,
            price: r.price_per_share.unwrap_or_default(),
            value: r.value.unwrap_or_default(),
        }
    }
}

async fn query_trades(
    state: &AppState,
    caller: &Caller,
    mut filter: TradeFilter,
    sort: TradeSort,
    page: PageRequest,
) -> Result<(Vec<TradeLine>, i64), ApiError> {
    apply_history_window(caller, &mut filter.since, filter.until)?;
    let listing = state
        .market
        .reads
        .trades(&filter, sort, page)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        listing.rows.iter().cloned().map(TradeLine::from).collect(),
        listing.total,
    ))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomeTemplate {
    layout: Layout,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    layout: Layout,
    latest: Vec<TradeLine>,
    buys: Vec<TradeLine>,
    sells: Vec<TradeLine>,
    watched: Vec<TradeLine>,
    watched_tickers: Vec<String>,
    history_note: Option<String>,
}

/// Days the "biggest buys and sells" cover.
const RECENT_DAYS: i64 = 30;
/// Tickers of the user's watchlists the dashboard looks at.
const WATCHED_TICKERS: usize = 10;

fn small_page(per_page: u32) -> PageRequest {
    PageRequest::new(1, per_page).unwrap_or_default()
}

async fn dashboard(
    State(state): State<AppState>,
    page: Page,
    signed: Result<SignedIn, Response>,
) -> Response {
    if !page.principal.as_ref().is_some_and(|p| p.email_verified) {
        return render(
            StatusCode::OK,
            &HomeTemplate {
                layout: page.layout,
            },
        );
    }
    // A verified user: the same checks as every data page (staff need their second factor).
    let SignedIn { layout, principal } = match signed {
        Ok(signed) => signed,
        Err(refusal) => return refusal,
    };
    let page = Page {
        layout,
        principal: Some(principal.clone()),
    };
    let caller = Caller::from(principal.clone());
    let newest = TradeSort::parse("-filed_at").unwrap_or_default();
    let biggest = TradeSort::parse("-value").unwrap_or_default();
    let since = tiers::to_market_date(tiers::today() - time::Duration::days(RECENT_DAYS));
    let recent = |code: &str| TradeFilter {
        codes: vec![code.to_string()],
        since,
        ..TradeFilter::default()
    };
    let latest = query_trades(
        &state,
        &caller,
        TradeFilter::default(),
        newest,
        small_page(10),
    )
    .await;
    let buys = query_trades(&state, &caller, recent("P"), biggest, small_page(5)).await;
    let sells = query_trades(&state, &caller, recent("S"), biggest, small_page(5)).await;
    let (latest, buys, sells) = match (latest, buys, sells) {
        (Ok(l), Ok(b), Ok(s)) => (l.0, b.0, s.0),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return failure(page.layout, e),
    };
    let mut watched_tickers = match state
        .db
        .list_watchlists(&principal.user_id, crate::market::tiers::WATCHLIST_LIMIT, 0)
        .await
    {
        Ok(lists) => lists
            .into_iter()
            .flat_map(|l| serde_json::from_str::<Vec<String>>(&l.tickers).unwrap_or_default())
            .collect::<Vec<_>>(),
        Err(e) => return failure(page.layout, ApiError::internal(e)),
    };
    watched_tickers.sort();
    watched_tickers.dedup();
    watched_tickers.truncate(WATCHED_TICKERS);
    let mut watched = Vec::new();
    for ticker in &watched_tickers {
        let filter = TradeFilter {
            ticker: Some(ticker.clone()),
            ..TradeFilter::default()
        };
        match query_trades(&state, &caller, filter, newest, small_page(5)).await {
            Ok((lines, _)) => watched.extend(lines),
            Err(e) => return failure(page.layout, e),
        }
    }
    watched.sort_by(|a, b| b.date.cmp(&a.date));
    watched.truncate(10);
    let history_note = tiers::history_start(caller.tier, tiers::today()).map(|start| {
        format!(
            "Your free plan shows trades from {start} on ({} days); Pro shows the full history.",
            tiers::FREE_HISTORY_DAYS
        )
    });
    render(
        StatusCode::OK,
        &DashboardTemplate {
            layout: page.layout,
            latest,
            buys,
            sells,
            watched,
            watched_tickers,
            history_note,
        },
    )
}

/// The query without empty fields (an untouched form field) and with values trimmed, so a form
/// submission reads like an API query.
fn cleaned(query: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if !value.is_empty() {
            out.append_pair(&name, value);
        }
    }
    out.finish()
}

/// The current filters as a query string with `page` replaced.
fn with_page(query: &str, page: u32) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "page" {
            out.append_pair(&name, &value);
        }
    }
    out.append_pair("page", &page.to_string());
    out.finish()
}

/// The query strings of the previous and next pages, where they exist.
fn pager_links(query: &str, page: PageRequest, total: i64) -> (Option<String>, Option<String>) {
    let per_page = i64::from(page.per_page());
    let last = u32::try_from((total + per_page - 1) / per_page).unwrap_or(u32::MAX);
    (
        (page.page() > 1).then(|| with_page(query, page.page() - 1)),
        (page.page() < last).then(|| with_page(query, page.page() + 1)),
    )
}

/// The filter form's current values.
#[derive(Default)]
pub struct FilterValues {
    pub ticker: String,
    pub insider_cik: String,
    pub code: String,
    pub acquired_disposed: String,
    pub since: String,
    pub until: String,
    pub min_value: String,
    pub max_value: String,
    pub derivative: String,
    pub sort: String,
    pub per_page: String,
}

impl FilterValues {
    fn from_query(query: &str) -> Self {
        let mut v = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            match name.as_ref() {
                "ticker" => v.ticker = value,
                "insider_cik" => v.insider_cik = value,
                "code" => v.code = value,
                "acquired_disposed" => v.acquired_disposed = value,
                "since" => v.since = value,
                "until" => v.until = value,
                "min_value" => v.min_value = value,
                "max_value" => v.max_value = value,
                "derivative" => v.derivative = value,
                "sort" => v.sort = value,
                "per_page" => v.per_page = value,
                _ => {}
            }
        }
        v
    }
}

#[derive(Template)]
#[template(path = "trades.html")]
struct TradesTemplate {
    layout: Layout,
    values: FilterValues,
    errors: FieldErrors,
    notice: Option<String>,
    lines: Vec<TradeLine>,
    total: i64,
    page: u32,
    previous: Option<String>,
    next: Option<String>,
}

async fn trades(
    State(state): State<AppState>,
    SignedIn { layout, principal }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query = cleaned(query.as_deref());
    let mut allowed = TRADE_FILTERS.to_vec();
    allowed.extend(["page", "per_page", "sort"]);
    let mut params = Params::parse(Some(&query), &allowed);
    let filter = read_trade_filter(&mut params);
    let page = params.page();
    let sort = params
        .text("sort")
        .map(|s| s.to_string())
        .map(|s| TradeSort::parse(&s));
    if let Some(None) = sort {
        params.fail_with("sort", "invalid", "Choose a sort order from the list.");
    }
    let sort = sort.flatten().unwrap_or_default();
    let mut template = TradesTemplate {
        layout,
        values: FilterValues::from_query(&query),
        errors: FieldErrors::default(),
        notice: None,
        lines: vec![],
        total: 0,
        page: page.page(),
        previous: None,
        next: None,
    };
    if let Err(e) = params.finish() {
        template.errors = FieldErrors::from_api(&e);
        template.notice = Some("Correct the marked filters.".into());
        return render(StatusCode::UNPROCESSABLE_ENTITY, &template);
    }
    match query_trades(&state, &Caller::from(principal), filter, sort, page).await {
        Ok((lines, total)) => {
            (template.previous, template.next) = pager_links(&query, page, total);
            template.lines = lines;
            template.total = total;
            render(StatusCode::OK, &template)
        }
        Err(e) if e.status() == StatusCode::FORBIDDEN => {
            template.notice = Some(e.detail().to_string());
            render(StatusCode::OK, &template)
        }
        Err(e) => failure(template.layout, e),
    }
}

/// One month's bars of the chart.
pub struct ChartBar {
    pub label: String,
    pub x: u32,
    pub buy_y: u32,
    pub buy_height: u32,
    pub sell_y: u32,
    pub sell_height: u32,
    pub buys: String,
    pub sells: String,
}

const CHART_HEIGHT: u32 = 120;
const BAR_WIDTH: u32 = 20;
const BAR_GAP: u32 = 40;

/// Monthly buy (P) and sell (S) values as bars, buys above sells (inline SVG, no script).
fn chart(lines: &[TradeLine]) -> (Vec<ChartBar>, u32) {
    let mut months: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for line in lines {
        let Some(month) = line.date.get(..7) else {
            continue;
        };
        let value = line.value.parse::<f64>().unwrap_or(0.0);
        let entry = months.entry(month.to_string()).or_default();
        if line.buy {
            entry.0 += value;
        } else if line.sell {
            entry.1 += value;
        }
    }
    let max = months
        .values()
        .map(|(b, s)| b.max(*s))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let half = f64::from(CHART_HEIGHT / 2);
    let bars: Vec<ChartBar> = months
        .into_iter()
        .enumerate()
        .map(|(i, (label, (buys, sells)))| {
            let buy_height = ((buys / max) * half).round() as u32;
            let sell_height = ((sells / max) * half).round() as u32;
            let i = u32::try_from(i).unwrap_or(0);
            ChartBar {
                label,
                x: 30 + i * (BAR_WIDTH + BAR_GAP),
                buy_y: CHART_HEIGHT / 2 - buy_height,
                buy_height,
                sell_y: CHART_HEIGHT / 2,
                sell_height,
                buys: format!("{buys:.0}"),
                sells: format!("{sells:.0}"),
            }
        })
        .collect();
    let width = 40 + u32::try_from(bars.len()).unwrap_or(0) * (BAR_WIDTH + BAR_GAP);
    (bars, width.max(400))
}

#[derive(Template)]
#[template(path = "entity.html")]
struct EntityTemplate {
    layout: Layout,
    heading: String,
    subheading: String,
    facts: Vec<(String, String)>,
    notice: Option<String>,
    lines: Vec<TradeLine>,
    bars: Vec<ChartBar>,
    chart_width: u32,
    chart_height: u32,
    bar_width: u32,
}

/// Rows the entity pages show (and chart).
const ENTITY_ROWS: u32 = 200;

async fn company(
    State(state): State<AppState>,
    SignedIn { layout, principal }: SignedIn,
    Path(ticker): Path<String>,
) -> Response {
    let ticker = ticker.to_ascii_uppercase();
    if !market::query::is_ticker(&ticker) {
        return failure(layout, ApiError::not_found());
    }
    let caller = Caller::from(principal);
    let since = tiers::history_start(caller.tier, tiers::today());
    let detail = match state.market.reads.company(&ticker, since).await {
        Ok(Some(detail)) => Arc::unwrap_or_clone(detail),
        Ok(None) => return failure(layout, ApiError::not_found()),
        Err(e) => return failure(layout, ApiError::internal(e)),
    };
    let filter = TradeFilter {
        ticker: Some(ticker.clone()),
        ..TradeFilter::default()
    };
    let lines = match query_trades(
        &state,
        &caller,
        filter,
        TradeSort::default(),
        small_page(ENTITY_ROWS),
    )
    .await
    {
        Ok((lines, _)) => lines,
        Err(e) => return failure(layout, e),
    };
    let (bars, chart_width) = chart(&lines);
    let stats = detail.stats;
    render(
        StatusCode::OK,
        &EntityTemplate {
            layout,
            heading: detail.company.name,
            subheading: format!("{ticker} · CIK {}", detail.company.cik),
            facts: vec![
                ("Trades".into(), stats.total.to_string()),
                ("Buys (P)".into(), stats.buys.to_string()),
                ("Sells (S)".into(), stats.sells.to_string()),
                ("Insiders".into(), stats.insiders.to_string()),
            ],
            notice: since.map(|s| format!("Counts and trades from {s} on (free plan).")),
            lines,
            bars,
            chart_width,
            chart_height: CHART_HEIGHT,
            bar_width: BAR_WIDTH,
        },
    )
}

async fn insider(
    State(state): State<AppState>,
    SignedIn { layout, principal }: SignedIn,
    Path(cik): Path<String>,
) -> Response {
    let Some(cik) = market::query::normalize_cik(&cik) else {
        return failure(layout, ApiError::not_found());
    };
    let caller = Caller::from(principal);
    let since = tiers::history_start(caller.tier, tiers::today());
    let detail = match state.market.reads.insider(&cik, since).await {
        Ok(Some(detail)) => Arc::unwrap_or_clone(detail),
        Ok(None) => return failure(layout, ApiError::not_found()),
        Err(e) => return failure(layout, ApiError::internal(e)),
    };
    let filter = TradeFilter {
        insider_cik: Some(cik.clone()),
        ..TradeFilter::default()
    };
    let lines = match query_trades(
        &state,
        &caller,
        filter,
        TradeSort::default(),
        small_page(ENTITY_ROWS),
    )
    .await
    {
        Ok((lines, _)) => lines,
        Err(e) => return failure(layout, e),
    };
    let (bars, chart_width) = chart(&lines);
    let facts = detail
        .relationships
        .iter()
        .map(|r| {
            let mut roles = vec![];
            if r.is_director != 0 {
                roles.push("director".to_string());
            }
            if r.is_officer != 0 {
                roles.push(r.officer_title.clone().unwrap_or_else(|| "officer".into()));
            }
            if r.is_ten_percent_owner != 0 {
                roles.push("10% owner".into());
            }
            if r.is_other != 0 {
                roles.push(r.other_text.clone().unwrap_or_else(|| "other".into()));
            }
            (r.company_name.clone(), roles.join(", "))
        })
        .collect();
    render(
        StatusCode::OK,
        &EntityTemplate {
            layout,
            heading: detail.name,
            subheading: format!("Insider · CIK {cik} · {} trades", detail.trades),
            facts,
            notice: since.map(|s| format!("Trades from {s} on (free plan).")),
            lines,
            bars,
            chart_width,
            chart_height: CHART_HEIGHT,
            bar_width: BAR_WIDTH,
        },
    )
}

/// A congressional disclosure as a row.
pub struct CongressLine {
    pub date: String,
    pub member: String,
    pub chamber: String,
    pub ticker: String,
    pub asset: String,
    pub kind: String,
    pub amount: String,
    pub disclosed: String,
    pub link: Option<String>,
}

#[derive(Template)]
#[template(path = "congress.html")]
struct CongressTemplate {
    layout: Layout,
    ticker: String,
    member: String,
    chamber: String,
    errors: FieldErrors,
    notice: Option<String>,
    lines: Vec<CongressLine>,
    total: i64,
    page: u32,
    previous: Option<String>,
    next: Option<String>,
}

async fn congress(
    State(state): State<AppState>,
    SignedIn { layout, principal }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query = cleaned(query.as_deref());
    let mut params = Params::parse(
        Some(&query),
        &[
            "ticker", "member", "chamber", "since", "until", "page", "per_page",
        ],
    );
    let mut filter = store::market::congress::CongressFilter {
        ticker: params.ticker("ticker"),
        member: params.text("member").map(str::to_string),
        chamber: params
            .choice("chamber", crate::api::market::CHAMBERS)
            .map(str::to_string),
        since: params.date("since"),
        until: params.date("until"),
    };
    let page = params.page();
    let mut template = CongressTemplate {
        layout,
        ticker: filter.ticker.clone().unwrap_or_default(),
        member: filter.member.clone().unwrap_or_default(),
        chamber: filter.chamber.clone().unwrap_or_default(),
        errors: FieldErrors::default(),
        notice: None,
        lines: vec![],
        total: 0,
        page: page.page(),
        previous: None,
        next: None,
    };
    if let Err(e) = params.finish() {
        template.errors = FieldErrors::from_api(&e);
        template.notice = Some("Correct the marked filters.".into());
        return render(StatusCode::UNPROCESSABLE_ENTITY, &template);
    }
    let caller = Caller::from(principal);
    if let Err(e) = apply_history_window(&caller, &mut filter.since, filter.until) {
        template.notice = Some(e.detail().to_string());
        return render(StatusCode::OK, &template);
    }
    match state.db.list_congress_trades(&filter, page).await {
        Ok((rows, total)) => {
            (template.previous, template.next) = pager_links(&query, page, total);
            template.total = total;
            template.lines = rows
                .into_iter()
                .map(|r| CongressLine {
                    amount: match r.amount_high_cents {
                        Some(high) => format!(
                            "${} – ${}",
                            market::money::from_cents(r.amount_low_cents),
                            market::money::from_cents(high)
                        ),
                        None => format!("over ${}", market::money::from_cents(r.amount_low_cents)),
                    },
                    date: r.transaction_date,
                    member: r.member,
                    chamber: r.chamber,
                    ticker: r.ticker.unwrap_or_default(),
                    asset: r.asset_description,
                    kind: r.kind,
                    disclosed: r.disclosure_date.unwrap_or_default(),
                    // Disclosure links come from the data source: shown as links only when http(s).
                    link: r.link.filter(|l| super::lists::is_web_link(l)),
                })
                .collect();
            render(StatusCode::OK, &template)
        }
        Err(e) => failure(template.layout, ApiError::internal(e)),
    }
}
