//! Development pages for a newcomer: the outbox at `/dev/outbox` lists the mail the instance would
//! have sent with its links clickable, to loopback clients only, never cached, and not at all once an
//! SMTP relay is configured.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

backend_test!(
    the_outbox_page_shows_the_verification_link_to_this_machine_only,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
                ..Options::default()
            },
        )
        .await;
        let empty = app.get("/dev/outbox").await;
        assert_eq!(empty.status(), 200);
        assert!(empty.text().await.expect("page").contains("No mail yet"));

        app.register_verified("newcomer@example.com").await;
        let mail = app.mail_to("newcomer@example.com").await;
        let link = mail
            .split_whitespace()
            .find(|w| w.contains("token="))
            .expect("a link in the mail")
            .to_string();
        let response = app.get("/dev/outbox").await;
        assert_eq!(response.status(), 200);
        let cache = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(cache.contains("no-store"), "{cache}");
        assert!(response.headers().contains_key("content-security-policy"));
        let page = response.text().await.expect("page");
        let escaped = link.replace('&', "&amp;");
        assert!(
            page.contains(&format!("<a href=\"{escaped}\">"))
                || page.contains(&format!("<a href=\"{link}\">")),
            "{page}"
        );
        assert!(page.contains("newcomer@example.com"));

        // Another machine (through the trusted proxy) sees nothing there.
        let remote = app
            .client
            .get(app.url("/dev/outbox"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .expect("remote");
        assert_eq!(remote.status(), 404);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_smtp_relay_there_is_no_outbox_page() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Embedded,
        Options {
            env: vec![(
                "TRADESIGNAL_SMTP_URL",
                format!("smtp://127.0.0.1:{}", sink.addr.port()),
            )],
            ..Options::default()
        },
    )
    .await;
    assert_eq!(app.get("/dev/outbox").await.status(), 404);
}
