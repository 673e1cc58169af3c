//! Alert rules: validation, plan allowances (free: 3 alerts, email only; pro: 50 and webhooks),
//! webhook URL checks and the signing secret, which is generated here, shown once and stored
//! encrypted.

use market::alerts::{AlertRule, is_transaction_code};
use security::authz::Tier;
use store::market::alerts::AlertRecord;

use super::outbound;
use super::watchlists::clean_name;
use super::{MarketError, MarketService, tiers};

/// Associated data binding an encrypted webhook secret to its alert.
pub fn secret_aad(alert_id: &str) -> Vec<u8> {
    store::rotation::SealedColumn::WebhookSecret.aad(alert_id)
}

/// Requested values; on update `None` leaves a field unchanged and `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct AlertChange {
    pub name: Option<String>,
    pub ticker: Option<Option<String>>,
    pub insider_cik: Option<Option<String>>,
    pub codes: Option<Option<Vec<String>>>,
    pub min_value_cents: Option<Option<i64>>,
    pub channel: Option<String>,
    pub webhook_url: Option<Option<String>>,
}

/// A created alert and, for webhooks, the signing secret (shown this once).
pub struct CreatedAlert {
    pub record: AlertRecord,
    pub webhook_secret: Option<String>,
}

fn clean_ticker(ticker: Option<String>) -> Result<Option<String>, MarketError> {
    let Some(ticker) = ticker.map(|t| t.trim().to_ascii_uppercase()) else {
        return Ok(None);
    };
    if market::query::is_ticker(&ticker) {
        Ok(Some(ticker))
    } else {
        Err(MarketError::invalid(
            "ticker",
            "invalid",
            "Tickers are 1–10 of A–Z, 0–9, '.', '-'.",
        ))
    }
}

fn clean_cik(cik: Option<String>) -> Result<Option<String>, MarketError> {
    match cik {
        None => Ok(None),
        Some(cik) => market::query::normalize_cik(&cik)
            .map(Some)
            .ok_or_else(|| MarketError::invalid("insider_cik", "invalid", "A CIK is 1–10 digits.")),
    }
}

fn clean_codes(codes: Option<Vec<String>>) -> Result<Option<String>, MarketError> {
    let Some(codes) = codes else {
        return Ok(None);
    };
    if codes.len() > 20 {
        return Err(MarketError::invalid(
            "codes",
            "too_many",
            "At most 20 codes.",
        ));
    }
    let mut clean: Vec<String> = Vec::new();
    for code in codes {
        let code = code.trim().to_ascii_uppercase();
        if !is_transaction_code(&code) {
            return Err(MarketError::invalid(
                "codes",
                "invalid",
                "Codes are SEC transaction codes such as P, S, A, M, F, G.",
            ));
        }
        if !clean.contains(&code) {
            clean.push(code);
        }
    }
    Ok((!clean.is_empty()).then(|| clean.join(",")))
}

fn check_min_value(cents: Option<i64>) -> Result<Option<i64>, MarketError> {
    match cents {
        Some(c) if c < 0 => Err(MarketError::invalid(
            "min_value",
            "out_of_range",
            "min_value cannot be negative.",
        )),
        other => Ok(other),
    }
}

impl MarketService {
    fn webhook_plan_check(&self, tier: Tier) -> Result<(), MarketError> {
        if tiers::webhooks_allowed(tier) {
            Ok(())
        } else {
            Err(MarketError::PlanLimit(
                "Webhook delivery needs the Pro plan; on the free plan alerts are delivered by email."
                    .into(),
            ))
        }
    }

    /// Checks a webhook URL as typed and where it resolves now (it is checked again at every
    /// delivery). Returns the URL in normalised form.
    async fn checked_webhook_url(&self, text: &str) -> Result<String, MarketError> {
        let url = outbound::check_url(self.destinations, text).map_err(|p| {
            MarketError::invalid("webhook_url", "forbidden_url", outbound::public_message(p))
        })?;
        outbound::check_resolves_public(self.destinations, &url)
            .await
            .map_err(|p| {
                MarketError::invalid("webhook_url", "forbidden_url", outbound::public_message(p))
            })?;
        Ok(url.to_string())
    }

    fn new_secret(&self, alert_id: &str) -> Result<(String, String), MarketError> {
        let mut random = [0u8; 32];
        random.copy_from_slice(&security::random::bytes(32));
        let secret = market::webhook::format_secret(&random);
        let sealed = self
            .cipher()
            .encrypt(secret.as_bytes(), &secret_aad(alert_id))
            .map_err(anyhow::Error::from)?;
        Ok((secret, sealed))
    }

    /// Validates the whole rule and fills in the webhook fields; returns a fresh secret when the
    /// alert needs one.
    async fn settle(
        &self,
        record: &mut AlertRecord,
        tier: Tier,
        channel_changed: bool,
        url_changed: bool,
    ) -> Result<Option<String>, MarketError> {
        let rule = AlertRule {
            ticker: record.ticker.clone(),
            insider_cik: record.insider_cik.clone(),
            codes: record
                .codes
                .as_deref()
                .map(market::alerts::split_codes)
                .unwrap_or_default(),
            min_value_cents: record.min_value_cents,
        };
        if !rule.is_narrowed() {
            return Err(MarketError::invalid(
                "ticker",
                "required",
                "Name at least one of ticker, insider_cik, codes or min_value.",
            ));
        }
        match record.channel.as_str() {
            "email" => {
                if record.webhook_url.is_some() && url_changed {
                    return Err(MarketError::invalid(
                        "webhook_url",
                        "not_allowed",
                        "Email alerts take no webhook_url.",
                    ));
                }
                record.webhook_url = None;
                record.webhook_secret = None;
                Ok(None)
            }
            "webhook" => {
                if channel_changed || url_changed {
                    self.webhook_plan_check(tier)?;
                }
                let Some(url) = record.webhook_url.clone() else {
                    return Err(MarketError::invalid(
                        "webhook_url",
                        "required",
                        "Webhook alerts need a webhook_url (https).",
                    ));
                };
                if url_changed || channel_changed {
                    record.webhook_url = Some(self.checked_webhook_url(&url).await?);
                }
                if record.webhook_secret.is_none() {
                    let (secret, sealed) = self.new_secret(&record.id)?;
                    record.webhook_secret = Some(sealed);
                    return Ok(Some(secret));
                }
                Ok(None)
            }
            _ => Err(MarketError::invalid(
                "channel",
                "invalid",
                "channel is \"email\" or \"webhook\".",
            )),
        }
    }

    pub async fn create_alert(
        &self,
        user_id: &str,
        tier: Tier,
        change: AlertChange,
        now: i64,
    ) -> Result<CreatedAlert, MarketError> {
        let mut record = AlertRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name: clean_name("name", change.name.as_deref().unwrap_or(""))?,
            ticker: clean_ticker(change.ticker.flatten())?,
            insider_cik: clean_cik(change.insider_cik.flatten())?,
            codes: clean_codes(change.codes.flatten())?,
            min_value_cents: check_min_value(change.min_value_cents.flatten())?,
            channel: change.channel.ok_or_else(|| {
                MarketError::invalid(
                    "channel",
                    "required",
                    "channel is \"email\" or \"webhook\".",
                )
            })?,
            webhook_url: change.webhook_url.flatten(),
            webhook_secret: None,
            created_at: now,
            updated_at: now,
        };
        let url_given = record.webhook_url.is_some();
        let webhook_secret = self.settle(&mut record, tier, true, url_given).await?;
        let limit = tiers::alert_limit(tier);
        if !self.db.insert_alert(&record, limit).await? {
            return Err(MarketError::PlanLimit(format!(
                "Your plan allows {limit} alerts; delete one or upgrade to add more."
            )));
        }
        Ok(CreatedAlert {
            record,
            webhook_secret,
        })
    }

    pub async fn update_alert(
        &self,
        user_id: &str,
        tier: Tier,
        id: &str,
        change: AlertChange,
        now: i64,
    ) -> Result<CreatedAlert, MarketError> {
        let mut record = self
            .db
            .alert(user_id, id)
            .await?
            .ok_or(MarketError::NotFound)?;
        if let Some(name) = change.name {
            record.name = clean_name("name", &name)?;
        }
        if let Some(ticker) = change.ticker {
            record.ticker = clean_ticker(ticker)?;
        }
        if let Some(cik) = change.insider_cik {
            record.insider_cik = clean_cik(cik)?;
        }
        if let Some(codes) = change.codes {
            record.codes = clean_codes(codes)?;
        }
        if let Some(min) = change.min_value_cents {
            record.min_value_cents = check_min_value(min)?;
        }
        let channel_changed = change
            .channel
            .as_ref()
            .is_some_and(|c| *c != record.channel);
        if let Some(channel) = change.channel {
            record.channel = channel;
        }
        let url_changed = change.webhook_url.is_some();
        if let Some(url) = change.webhook_url {
            record.webhook_url = url;
        }
        if channel_changed {
            // A new channel gets a new secret; the old one (if any) stops being valid.
            record.webhook_secret = None;
        }
        let webhook_secret = self
            .settle(&mut record, tier, channel_changed, url_changed)
            .await?;
        record.updated_at = now;
        if !self.db.update_alert(&record).await? {
            return Err(MarketError::NotFound);
        }
        Ok(CreatedAlert {
            record,
            webhook_secret,
        })
    }
}
