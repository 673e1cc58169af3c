//! Which alerts a group's new trades trigger: the candidate alerts loaded once per group, and the
//! matching (alert, trade) pairs, queued as pending deliveries with the group's other rows.

use market::alerts::{AlertRule, TradeFacts};
use market::form4::Filing;
use sqlx::{Any, AnyConnection, FromRow};

use super::ingest::IngestContext;
use super::ingest_rows::Delivery;
use crate::db::StoreError;
use crate::sql::Sql;

#[derive(FromRow)]
pub(super) struct CandidateAlert {
    id: String,
    channel: String,
    ticker: Option<String>,
    insider_cik: Option<String>,
    codes: Option<String>,
    min_value_cents: Option<i64>,
    tier: String,
    /// The alert's place among its owner's alerts, oldest first (1-based).
    alert_rank: i64,
}

/// The alerts that may match a trade of any filing in `group`, loaded once per group: those naming
/// one of the group's tickers (as filed, or as the issuers' stored tickers) or no ticker, and one
/// of its insiders or none. Each comes with its place among its owner's alerts (oldest first), so
/// a plan's limit can be applied.
pub(super) async fn group_alerts(
    conn: &mut AnyConnection,
    group: &[(&Filing, &str)],
) -> Result<Vec<CandidateAlert>, StoreError> {
    let mut tickers: Vec<String> = group
        .iter()
        .filter_map(|(f, _)| f.issuer.ticker.clone())
        .collect();
    tickers.sort_unstable();
    tickers.dedup();
    let mut ciks: Vec<String> = group.iter().map(|(f, _)| f.issuer.cik.clone()).collect();
    ciks.sort_unstable();
    ciks.dedup();
    let mut owners: Vec<String> = group
        .iter()
        .filter_map(|(f, _)| f.owners.first().map(|o| o.cik.clone()))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    let mut sql = Sql::new(
        "SELECT id, channel, ticker, insider_cik, codes, min_value_cents, tier, alert_rank FROM ( \
           SELECT a.id, a.channel, a.ticker, a.insider_cik, a.codes, a.min_value_cents, u.tier, \
           ROW_NUMBER() OVER (PARTITION BY a.user_id ORDER BY a.created_at, a.id) AS alert_rank \
           FROM alerts a JOIN users u ON u.id = a.user_id WHERE u.disabled_at IS NULL \
         ) ranked WHERE (ticker IS NULL OR ticker IN ",
    );
    push_in_list(&mut sql, &tickers);
    sql.push(" OR ticker IN (SELECT ticker FROM companies WHERE cik IN ");
    push_in_list(&mut sql, &ciks);
    sql.push(")) AND (insider_cik IS NULL OR insider_cik IN ");
    push_in_list(&mut sql, &owners);
    sql.push(")");
    let (text, args) = sql.finish()?;
    Ok(sqlx::query_as_with::<Any, CandidateAlert, _>(text, args)
        .fetch_all(&mut *conn)
        .await?)
}

/// `(v1, v2, …)`, or `(NULL)` (matches nothing) for an empty list.
pub(super) fn push_in_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        sql.push("(NULL)");
        return;
    }
    sql.push("(");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(value.clone());
    }
    sql.push(")");
}

/// The deliveries to queue for a filing's trades: every (alert, trade) pair that matches. The
/// candidate alerts were narrowed in SQL by ticker and insider; codes, minimum value, the plan's
/// alert limit and the free tier's window are applied here by the domain rule.
pub(super) fn matching_deliveries(
    filing: &Filing,
    ticker: Option<&str>,
    insider_cik: &str,
    trade_ids: &[String],
    context: IngestContext,
    candidates: &[CandidateAlert],
) -> Vec<Delivery> {
    let mut deliveries = vec![];
    for alert in candidates {
        if alert.alert_rank > (context.alert_limit)(&alert.tier) {
            continue;
        }
        let rule = AlertRule {
            ticker: alert.ticker.clone(),
            insider_cik: alert.insider_cik.clone(),
            codes: alert
                .codes
                .as_deref()
                .map(market::alerts::split_codes)
                .unwrap_or_default(),
            min_value_cents: alert.min_value_cents,
        };
        for (t, trade_id) in filing.transactions.iter().zip(trade_ids) {
            if alert.tier == "free"
                && context
                    .free_since
                    .is_some_and(|since| t.transaction_date < since)
            {
                continue;
            }
            let facts = TradeFacts {
                ticker,
                insider_cik,
                code: &t.code,
                value_cents: t.value().and_then(market::money::trade_value_cents),
            };
            if rule.matches(&facts) {
                deliveries.push(Delivery {
                    alert_id: alert.id.clone(),
                    trade_id: trade_id.clone(),
                    channel: alert.channel.clone(),
                });
            }
        }
    }
    deliveries
}
