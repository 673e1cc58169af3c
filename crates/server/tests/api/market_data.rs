//! Shared fixtures of the market tests: the real filings, synthetic recent filings, and a local
//! webhook receiver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::helpers::TestApp;

pub fn form4_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../market/tests/data/form4")
}

pub fn congress_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../market/tests/data/congress")
        .join(name)
}

/// Ingests the eight real filings (17 trades) through the service.
pub async fn ingest_real(app: &TestApp) {
    let (files, _, failed) = server::market::ingest::collect_files(&[form4_dir()]);
    assert!(failed.is_empty());
    let summary =
        server::ingest_cli::ingest_files(&app.state.db, files, &indicatif::ProgressBar::hidden())
            .await
            .expect("ingest");
    assert_eq!((summary.filings, summary.trades), (8, 17), "{summary:?}");
}

/// Stores one document through the service, as the admin endpoint does.
pub async fn ingest_text(app: &TestApp, text: &str) -> server::market::ingest::DocumentOutcome {
    server::market::ingest::ingest_bytes(
        &app.state.db,
        bytes::Bytes::from(text.to_string()),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .await
    .expect("ingest")
}

/// `days` ago (UTC) as YYYY-MM-DD.
pub fn days_ago(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() - time::Duration::days(days);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A minimal Form 4 with one non-derivative transaction.
#[derive(Clone)]
pub struct Synthetic<'a> {
    pub document_type: &'a str,
    pub ticker: &'a str,
    pub issuer_cik: &'a str,
    pub owner_cik: &'a str,
    pub owner_name: &'a str,
    pub date: String,
    pub code: &'a str,
    pub shares: &'a str,
    pub price: &'a str,
    pub original: Option<&'a str>,
}

impl Default for Synthetic<'_> {
    fn default() -> Self {
        Self {
            document_type: "4",
            ticker: "TSTX",
            issuer_cik: "0000990001",
            owner_cik: "0000880001",
            owner_name: "Doe Jane",
            date: days_ago(10),
            code: "P",
            shares: "1000",
            price: "25.50",
            original: None,
        }
    }
}

impl Synthetic<'_> {
    pub fn xml(&self) -> String {
        let acquired = if self.code == "S" { "D" } else { "A" };
        let original = self
            .original
            .map(|d| format!("<dateOfOriginalSubmission>{d}</dateOfOriginalSubmission>"))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\"?>\n<ownershipDocument><schemaVersion>X0508</schemaVersion>\
             <documentType>{doc}</documentType><periodOfReport>{date}</periodOfReport>{original}\
             <issuer><issuerCik>{issuer}</issuerCik><issuerName>Test &amp; Co</issuerName>\
             <issuerTradingSymbol>{ticker}</issuerTradingSymbol></issuer>\
             <reportingOwner><reportingOwnerId><rptOwnerCik>{owner}</rptOwnerCik><rptOwnerName>{name}</rptOwnerName>\
             </reportingOwnerId><reportingOwnerRelationship><isDirector>1</isDirector></reportingOwnerRelationship></reportingOwner>\
             <nonDerivativeTable><nonDerivativeTransaction><securityTitle><value>Common Stock</value></securityTitle>\
             <transactionDate><value>{date}</value></transactionDate>\
             <transactionCoding><transactionFormType>4</transactionFormType><transactionCode>{code}</transactionCode>\
             <equitySwapInvolved>0</equitySwapInvolved></transactionCoding>\
             <transactionAmounts><transactionShares><value>{shares}</value></transactionShares>\
             <transactionPricePerShare><value>{price}</value></transactionPricePerShare>\
             <transactionAcquiredDisposedCode><value>{acquired}</value></transactionAcquiredDisposedCode></transactionAmounts>\
             <postTransactionAmounts><sharesOwnedFollowingTransaction><value>5000</value></sharesOwnedFollowingTransaction></postTransactionAmounts>\
             <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership></ownershipNature>\
             </nonDerivativeTransaction></nonDerivativeTable></ownershipDocument>\n",
            doc = self.document_type,
            date = self.date,
            issuer = self.issuer_cik,
            ticker = self.ticker,
            owner = self.owner_cik,
            name = self.owner_name,
            code = self.code,
            shares = self.shares,
            price = self.price,
        )
    }

    /// The document inside an EDGAR submission with this accession number and filing date.
    pub fn submission(&self, accession: &str, filed: &str) -> String {
        let compact = filed.replace('-', "");
        format!(
            "<SEC-DOCUMENT>{accession}.txt : {compact}\n<SEC-HEADER>{accession}.hdr.sgml : {compact}\n\
             ACCESSION NUMBER:\t\t{accession}\nCONFORMED SUBMISSION TYPE:\t{doc}\nPUBLIC DOCUMENT COUNT:\t\t1\n\
             FILED AS OF DATE:\t\t{compact}\n</SEC-HEADER>\n<DOCUMENT>\n<TYPE>{doc}\n<SEQUENCE>1\n<TEXT>\n<XML>\n{xml}</XML>\n\
             </TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n",
            doc = self.document_type,
            xml = self.xml(),
        )
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// A plain-HTTP webhook endpoint on 127.0.0.1 that records requests. `/ok` answers 204, `/fail`
/// 500, `/redirect` 302 to `/ok`, `/slow` answers after 8 s.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = |status: StatusCode| {
            let received = received.clone();
            move |uri: axum::http::Uri, headers: HeaderMap, body: bytes::Bytes| {
                let received = received.clone();
                async move {
                    received.lock().expect("lock").push(Received {
                        path: uri.path().to_string(),
                        signature: headers
                            .get("x-tradesignal-signature")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        body: body.to_vec(),
                    });
                    if status == StatusCode::FOUND {
                        return (status, [("location", "/ok")]).into_response_parts();
                    }
                    (status, [("x-test", "1")]).into_response_parts()
                }
            }
        };
        let slow = {
            let received = received.clone();
            move |uri: axum::http::Uri| {
                let received = received.clone();
                async move {
                    received.lock().expect("lock").push(Received {
                        path: uri.path().to_string(),
                        signature: None,
                        body: vec![],
                    });
                    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
                    StatusCode::NO_CONTENT
                }
            }
        };
        let router = Router::new()
            .route("/ok", post(record(StatusCode::NO_CONTENT)))
            .route("/fail", post(record(StatusCode::INTERNAL_SERVER_ERROR)))
            .route("/redirect", post(record(StatusCode::FOUND)))
            .route("/slow", post(slow));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl<const N: usize> IntoParts for (StatusCode, [(&'static str, &'static str); N]) {
    fn into_response_parts(self) -> axum::response::Response {
        use axum::response::IntoResponse;
        self.into_response()
    }
}
