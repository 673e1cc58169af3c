//! Readiness follows the dependencies: cut PostgreSQL or Redis (through a proxy, so the shared servers
//! keep running) and `/readyz` says 503; restore them and it recovers without a restart.

use std::time::Duration;

use crate::helpers::*;

async fn wait_for_status(app: &TestApp, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get("/readyz").await.status().as_u16();
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_redis_down_and_recovers() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let redis = test_redis_url().expect("redis url");
    let proxy = FaultProxy::start(socket_of(&redis)).await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            redis_proxy: Some(proxy.addr),
            ..Options::default()
        },
    )
    .await;
    wait_for_status(&app, 200).await;
    proxy.cut();
    wait_for_status(&app, 503).await;
    let response = app.get("/readyz").await;
    let body = problem(response).await;
    assert!(
        !body.to_string().to_lowercase().contains("redis"),
        "readiness does not name internals: {body}"
    );
    // Liveness is unaffected.
    assert_eq!(app.get("/healthz").await.status(), 200);
    proxy.restore();
    wait_for_status(&app, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_postgres_down_and_recovers() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let database = test_database_url().expect("database url");
    let proxy = FaultProxy::start(socket_of(&database)).await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            database_proxy: Some(proxy.addr),
            ..Options::default()
        },
    )
    .await;
    wait_for_status(&app, 200).await;
    proxy.cut();
    wait_for_status(&app, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    proxy.restore();
    wait_for_status(&app, 200).await;
}
