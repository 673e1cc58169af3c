//! Security notifications: sent through the real SMTP transport to a server running inside the test
//! (headers, envelope and body checked), and the new-device rule (a browser without a device cookie,
//! but not an account's very first sign-in).

use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

/// The body of a received message, decoded from whichever transfer encoding the mailer chose.
fn decoded_body(mail: &ReceivedMail) -> String {
    use base64::Engine;
    let (headers, body) = mail
        .data
        .split_once("\r\n\r\n")
        .unwrap_or((mail.data.as_str(), ""));
    let encoding = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-transfer-encoding:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "7bit".into());
    match encoding.as_str() {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .expect("base64 body"),
            )
            .expect("utf-8 body")
        }
        "quoted-printable" => {
            let soft = body.replace("=\r\n", "");
            let mut out = Vec::new();
            let bytes = soft.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("qp escape"));
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).expect("utf-8 body")
        }
        _ => body.to_string(),
    }
}

fn header<'a>(mail: &'a ReceivedMail, name: &str) -> Option<&'a str> {
    let headers = mail.data.split("\r\n\r\n").next()?;
    headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_notices_go_out_over_real_smtp() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Embedded,
        Options {
            env: vec![
                (
                    "TRADESIGNAL_SMTP_URL",
                    format!("smtp://127.0.0.1:{}", sink.addr.port()),
                ),
                (
                    "TRADESIGNAL_MAIL_FROM",
                    "TradeSignal <security@tradesignal.test>".into(),
                ),
                ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    app.create_user("zoe@example.com", "user").await;
    // The first sign-in of an account is no news; a second browser is.
    let first = app.login("zoe@example.com").await;
    assert_eq!(sink.count(), 0, "no notice for an account's first sign-in");
    let agent = "NoticeTest/1.0 (X11; Linux)";
    let second = reqwest::Client::builder()
        .user_agent(agent)
        .cookie_store(true)
        .build()
        .expect("client");
    let response = app
        .post_json(
            &second,
            "/api/v1/auth/login",
            json!({"email": "zoe@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let mail = sink
        .mail_containing("New sign-in to your TradeSignal account")
        .await;
    assert_eq!(
        mail.to,
        vec!["zoe@example.com".to_string()],
        "envelope recipient"
    );
    assert_eq!(mail.from, "security@tradesignal.test", "envelope sender");
    assert_eq!(header(&mail, "To"), Some("zoe@example.com"));
    assert_eq!(
        header(&mail, "From"),
        Some("TradeSignal <security@tradesignal.test>")
    );
    assert_eq!(
        header(&mail, "Subject"),
        Some("New sign-in to your TradeSignal account")
    );
    assert!(
        header(&mail, "Date").is_some() && header(&mail, "Message-ID").is_some(),
        "{}",
        mail.data
    );
    assert!(header(&mail, "Content-Type").is_some_and(|v| v.starts_with("text/plain")));
    let body = decoded_body(&mail);
    assert!(body.contains("IP address: 127.0.0.1"), "{body}");
    assert!(body.contains(&format!("Device: {agent}")), "{body}");
    assert!(
        body.contains(&format!("{}/account/security", app.base)),
        "{body}"
    );
    assert!(body.contains("When: 20"), "{body}");

    // An API key's creation is announced with its prefix, never the key.
    let response = app
        .post_as(
            &first,
            "/api/v1/api-keys",
            json!({"name": "notebook", "scopes": ["market:read"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.expect("json");
    let key = created["key"].as_str().expect("key");
    let mail = sink.mail_containing("An API key was created").await;
    let body = decoded_body(&mail);
    assert!(
        body.contains(created["prefix"].as_str().expect("prefix")),
        "{body}"
    );
    assert!(
        !mail.data.contains(&key[17..]),
        "the key itself is never mailed"
    );

    // A lock sends the unlock link (each guess from its own address, as a botnet would).
    for i in 0..5 {
        let response = browser()
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"email": "zoe@example.com", "password": "Wrong-Password-123!"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
    }
    let mail = sink
        .mail_containing("Your TradeSignal account was locked")
        .await;
    let body = decoded_body(&mail);
    assert!(
        body.contains(&format!("{}/unlock?token=", app.base)),
        "{body}"
    );
    assert!(body.contains("IP address: 198.51.100.4"), "{body}");
}

backend_test!(new_devices_are_announced_known_ones_are_not, |backend| {
    let app = TestApp::spawn(backend).await;
    app.create_user("yan@example.com", "user").await;
    let browser_a = browser();
    let login = |client: reqwest::Client| {
        let app = &app;
        async move {
            app.post_json(
                &client,
                "/api/v1/auth/login",
                json!({"email": "yan@example.com", "password": PASSWORD}),
            )
            .await
        }
    };
    assert_eq!(login(browser_a.clone()).await.status(), 200);
    // The same browser again presents its device cookie: nothing to announce.
    assert_eq!(login(browser_a.clone()).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("yan@example.com"), 0);
    // Another browser is new.
    assert_eq!(login(browser()).await.status(), 200);
    let mail = app.mail_containing("yan@example.com", "New sign-in").await;
    assert!(mail.contains("/account/security"));
    assert_eq!(app.mails_to("yan@example.com"), 1);
});
