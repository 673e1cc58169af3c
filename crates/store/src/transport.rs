//! How a configured PostgreSQL or Redis URL will actually connect, read with the drivers' own parsers so
//! that configuration checks see what the driver will do (the last of repeated parameters, `host=`
//! overrides, `#insecure`), not what the URL appears to say.

use std::net::IpAddr;
use std::str::FromStr;

use redis::{ConnectionAddr, IntoConnectionInfo};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Where a connection goes and whether it is protected by verified TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// Loopback address, `localhost` or a Unix socket.
    pub local: bool,
    /// TLS that the driver will insist on (no plaintext fallback) with certificate checks.
    pub tls: bool,
}

/// `localhost` or a loopback address (brackets around IPv6 allowed).
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The transport of a `postgres://` URL, or `None` if the driver would not accept it.
pub fn postgres(url: &str) -> Option<Transport> {
    let options = PgConnectOptions::from_str(url).ok()?;
    let local = options.get_socket().is_some()
        || options.get_host().starts_with('/')
        || is_loopback(options.get_host());
    let tls = matches!(
        options.get_ssl_mode(),
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    );
    Some(Transport { local, tls })
}

/// The transport of a `redis://`/`rediss://` URL; `rediss` with `#insecure` (no certificate check) does
/// not count as TLS. A cluster is never local, whatever its seed nodes: the client goes on to the
/// addresses the cluster announces, which may be anywhere; it uses TLS only if every seed does.
pub fn redis(url: &str) -> Option<Transport> {
    match crate::kv::redis_connection::parse_redis_url(url).ok()? {
        crate::kv::redis_connection::RedisTarget::Single(url) => redis_node(&url),
        crate::kv::redis_connection::RedisTarget::Cluster(nodes) => nodes.iter().try_fold(
            Transport {
                local: false,
                tls: true,
            },
            |all, node| {
                Some(Transport {
                    local: false,
                    tls: all.tls && redis_node(node)?.tls,
                })
            },
        ),
    }
}

fn redis_node(url: &str) -> Option<Transport> {
    let info = url.into_connection_info().ok()?;
    Some(match info.addr() {
        ConnectionAddr::Tcp(host, _) => Transport {
            local: is_loopback(host),
            tls: false,
        },
        ConnectionAddr::TcpTls { host, insecure, .. } => Transport {
            local: is_loopback(host),
            tls: !insecure,
        },
        ConnectionAddr::Unix(_) => Transport {
            local: true,
            tls: false,
        },
        _ => Transport {
            local: false,
            tls: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_reads_what_the_driver_reads() {
        let t = postgres("postgres://u:p@db.internal/ts?sslmode=verify-full").expect("parses");
        assert_eq!(
            t,
            Transport {
                local: false,
                tls: true
            }
        );
        // The driver applies the last sslmode.
        let t =
            postgres("postgres://db.internal/ts?sslmode=require&sslmode=disable").expect("parses");
        assert!(!t.tls);
        // host= overrides the authority.
        let t = postgres("postgres://localhost/ts?host=db.remote").expect("parses");
        assert!(!t.local);
        assert!(postgres("postgres://127.0.0.1/ts").expect("parses").local);
        assert!(
            postgres("postgres://db/ts?ssl-mode=require")
                .expect("parses")
                .tls
        );
    }

    #[test]
    fn redis_insecure_tls_is_not_tls() {
        assert_eq!(
            redis("rediss://cache.internal:6380").expect("parses"),
            Transport {
                local: false,
                tls: true
            }
        );
        assert!(
            !redis("rediss://cache.internal:6380/#insecure")
                .expect("parses")
                .tls
        );
        assert_eq!(
            redis("redis://127.0.0.1:6379").expect("parses"),
            Transport {
                local: true,
                tls: false
            }
        );
        assert!(redis("not a url").is_none());
    }

    #[test]
    fn a_cluster_is_as_safe_as_its_least_safe_seed_and_never_local() {
        let t = |url| redis(url).expect("parses");
        assert_eq!(
            t("rediss+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000"),
            Transport {
                local: false,
                tls: true
            }
        );
        assert!(!t("redis+cluster://10.0.0.1:7000").tls);
        assert!(!t("rediss+cluster://a:7000,a:7001/#insecure").tls);
        assert!(!t("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").local);
        assert!(redis("redis+cluster://10.0.0.1:7000/5").is_none());
    }
}
