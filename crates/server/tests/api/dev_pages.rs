//! Development pages for a newcomer: the outbox at `/dev/outbox` lists the mail the instance would
//! have sent with its links clickable — only to a request made on this machine straight to the
//! instance with the key printed at start, never cached, and not at all once an SMTP relay is set or
//! the instance is not on loopback.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn outbox_path(app: &TestApp) -> String {
    format!("/dev/outbox?key={}", app.state.dev_outbox_key)
}

backend_test!(
    the_outbox_page_shows_the_verification_link_on_this_machine_only,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let empty = app.get(&outbox_path(&app)).await;
        assert_eq!(empty.status(), 200);
        assert!(empty.text().await.expect("page").contains("No mail yet"));

        app.register_verified("newcomer@example.com").await;
        let mail = app.mail_to("newcomer@example.com").await;
        let link = mail
            .split_whitespace()
            .find(|w| w.contains("token="))
            .expect("a link in the mail")
            .to_string();
        let response = app.get(&outbox_path(&app)).await;
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
        assert!(page.contains(&format!("<a href=\"{link}\">")), "{page}");
        assert!(page.contains("newcomer@example.com"));

        // Without the key, with a wrong one, or through anything that forwards: the usual 404.
        let wrong = format!("/dev/outbox?key={}x", app.state.dev_outbox_key);
        for path in ["/dev/outbox", "/dev/outbox?key=", wrong.as_str()] {
            assert_eq!(app.get(path).await.status(), 404, "{path}");
        }
        for (name, value) in [
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
            ("via", "1.1 proxy"),
        ] {
            let forwarded = app
                .client
                .get(app.url(&outbox_path(&app)))
                .header(name, value)
                .send()
                .await
                .expect("request");
            assert_eq!(forwarded.status(), 404, "{name}");
        }
    }
);

/// A proxy on this machine (a trusted proxy at 127.0.0.1) connects from loopback: whatever it
/// forwards, or omits, is not this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_proxy_is_not_this_machine() {
    let app = TestApp::spawn_with(
        Backend::Embedded,
        Options {
            env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
            ..Options::default()
        },
    )
    .await;
    assert_eq!(app.get(&outbox_path(&app)).await.status(), 404);
}

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
    assert_eq!(app.get(&outbox_path(&app)).await.status(), 404);
}
