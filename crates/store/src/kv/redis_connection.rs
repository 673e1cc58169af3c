//! How `RedisKv` reaches Redis: one server (`redis://`, `rediss://`) through a reconnecting
//! `ConnectionManager`, or a Redis Cluster (`redis+cluster://host:port,host:port`, `rediss+cluster://`)
//! through the redis crate's cluster client, which follows the cluster's slot map and its `MOVED` and
//! `ASK` redirections. Both sit behind one `ConnectionLike`, so every command and script is written once.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use security::KvError;

use crate::url_redact::redact_url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take in all before the store is reported unreachable.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// A connection to one Redis server or to a cluster; cheap to clone (both are multiplexed).
#[derive(Clone)]
pub(super) enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// What a Redis URL names: one server, or the seed nodes of a cluster (as `redis://` or `rediss://`
/// URLs, each with the credentials, database and options of the cluster URL).
#[derive(PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

/// The URLs hold the password: shown redacted.
impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => f.debug_tuple("Single").field(&redact_url(url)).finish(),
            Self::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Reads a Redis URL. A cluster URL lists its seed nodes after the credentials, separated by commas:
/// `rediss+cluster://user:password@10.0.0.1:6379,10.0.0.2:6379`; what follows the hosts (`/0`, a
/// query, `#insecure`) applies to every node. A cluster has only database 0, so another database is
/// refused. Errors never contain the password.
pub fn parse_redis_url(url: &str) -> Result<RedisTarget, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        "a Redis URL starts with redis://, rediss:// or redis+cluster://".to_string()
    })?;
    let node_scheme = match scheme {
        "redis" | "rediss" => return Ok(RedisTarget::Single(url.to_string())),
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => {
            return Err(
                "the scheme must be redis, rediss, redis+cluster or rediss+cluster".to_string(),
            );
        }
    };
    // The last `@` ends the credentials: a password may hold `/`, `?` or `#`, a host list never `@`.
    let (credentials, after) = match rest.rsplit_once('@') {
        Some((credentials, after)) => (Some(credentials), after),
        None => (None, rest),
    };
    let split = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (hosts, suffix) = after.split_at(split);
    let path = suffix.split(['?', '#']).next().unwrap_or_default();
    if !matches!(path, "" | "/" | "/0") {
        return Err("a Redis Cluster has only database 0".to_string());
    }
    let mut nodes = vec![];
    for host in hosts.split(',') {
        if host.is_empty() || host.starts_with(':') {
            return Err("every node of a cluster URL needs a host".to_string());
        }
        let node = match credentials {
            Some(credentials) => format!("{node_scheme}://{credentials}@{host}{suffix}"),
            None => format!("{node_scheme}://{host}{suffix}"),
        };
        redis::Client::open(node.as_str())
            .map_err(|e| format!("node {}: {e}", redact_url(&node)))?;
        nodes.push(node);
    }
    Ok(RedisTarget::Cluster(nodes))
}

/// Connects with bounded timeouts. `ca_pem` replaces the public roots for `rediss` (a private CA).
pub(super) async fn connect(url: &str, ca_pem: Option<&[u8]>) -> Result<RedisConnection, KvError> {
    let shown = redact_url(url);
    let invalid = |e: String| KvError::Unavailable(format!("invalid Redis URL {shown}: {e}"));
    let certificates = |ca: &[u8]| redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    };
    let connecting = async {
        match parse_redis_url(url).map_err(invalid)? {
            RedisTarget::Single(url) => {
                let client = match ca_pem {
                    Some(ca) => redis::Client::build_with_tls(url.as_str(), certificates(ca)),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(|e| invalid(e.to_string()))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                ConnectionManager::new_with_config(client, config)
                    .await
                    .map(RedisConnection::Single)
            }
            RedisTarget::Cluster(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2);
                // Certificates switch the cluster client to TLS: only for a rediss+cluster URL, as
                // a single server ignores the CA file without TLS.
                if let Some(ca) = ca_pem.filter(|_| url.starts_with("rediss+cluster://")) {
                    builder = builder.certs(certificates(ca));
                }
                let client = builder.build().map_err(|e| invalid(e.to_string()))?;
                client
                    .get_async_connection()
                    .await
                    .map(RedisConnection::Cluster)
            }
        }
        .map_err(|e| KvError::Unavailable(format!("Redis at {shown}: {e}")))
    };
    tokio::time::timeout(CONNECT_DEADLINE, connecting)
        .await
        .map_err(|_| KvError::Unavailable(format!("Redis at {shown} did not answer")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_server_urls_pass_through() {
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://:pw@cache.example:6380/2",
        ] {
            assert_eq!(parse_redis_url(url), Ok(RedisTarget::Single(url.into())));
        }
    }

    #[test]
    fn a_cluster_url_names_every_seed_node_with_its_credentials() {
        assert_eq!(
            parse_redis_url("rediss+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001/"),
            Ok(RedisTarget::Cluster(vec![
                "rediss://app:s3cret@10.0.0.1:7000/".into(),
                "rediss://app:s3cret@10.0.0.2:7001/".into(),
            ]))
        );
        assert_eq!(
            parse_redis_url("redis+cluster://127.0.0.1:7000"),
            Ok(RedisTarget::Cluster(vec!["redis://127.0.0.1:7000".into()]))
        );
    }

    #[test]
    fn options_after_the_hosts_apply_to_every_node() {
        assert_eq!(
            parse_redis_url("rediss+cluster://:p%2Fw@a:7000,b:7001/0?protocol=resp3#insecure"),
            Ok(RedisTarget::Cluster(vec![
                "rediss://:p%2Fw@a:7000/0?protocol=resp3#insecure".into(),
                "rediss://:p%2Fw@b:7001/0?protocol=resp3#insecure".into(),
            ]))
        );
        let shown = format!("{:?}", parse_redis_url("redis+cluster://:hunter2@a:1,b:2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_the_password() {
        for url in [
            "redis+cluster://:hunter2@10.0.0.1:7000/3",
            "redis+cluster://:hunter2@10.0.0.1:7000,,10.0.0.2:7000",
            "redis+cluster://:hunter2@:7000",
            "redis+cluster://:hunter2@10.0.0.1:7000,10.0.0.2:notaport",
            "redis+cluster://:hun/ter2@10.0.0.1:7000,10.0.0.2:x/5",
            "memcached://:hunter2@10.0.0.1",
            "no scheme at all",
        ] {
            let error = parse_redis_url(url).expect_err(url);
            assert!(
                !error.contains("hunter2") && !error.contains("ter2"),
                "{error}"
            );
        }
    }
}
