//! A scriptable HTTP/1.1 server on 127.0.0.1 standing in for SEC EDGAR and the congressional feeds:
//! each path answers a scripted sequence of replies (the last one repeats), including what a real
//! server does on a bad day: 429 and 503 with `Retry-After`, and a body cut off before its declared
//! length. Written on raw TCP so a cut-off body is really cut off. Every request is recorded with
//! its `User-Agent` and arrival time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub enum Reply {
    Ok(Vec<u8>),
    /// 200 with this `ETag`; 304 when the request sends it back in `If-None-Match`.
    Tagged {
        body: Vec<u8>,
        etag: String,
    },
    Status {
        code: u16,
        retry_after: Option<u64>,
    },
    /// Declares the whole length, sends half, closes.
    Truncated(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub user_agent: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    exact: HashMap<String, VecDeque<Reply>>,
    /// Paths starting with the prefix answer this (after exact paths).
    prefixes: Vec<(String, Reply)>,
}

pub struct FakeSource {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSource {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let script = Arc::new(Mutex::new(Script::default()));
        let seen = Arc::new(Mutex::new(vec![]));
        let task = tokio::spawn({
            let (script, seen) = (script.clone(), seen.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(answer(socket, script.clone(), seen.clone()));
                }
            }
        });
        Self {
            addr,
            script,
            seen,
            task,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `path` answers `replies` in turn, the last one from then on.
    pub fn on(&self, path: &str, replies: Vec<Reply>) {
        self.script
            .lock()
            .unwrap()
            .exact
            .insert(path.to_string(), replies.into());
    }

    pub fn on_prefix(&self, prefix: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .prefixes
            .push((prefix.to_string(), reply));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

impl Drop for FakeSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut socket: tokio::net::TcpStream,
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let header = |name: &str| {
        text.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        user_agent: header("user-agent"),
        at: Instant::now(),
    });
    let reply = {
        let mut script = script.lock().unwrap();
        match script.exact.get_mut(&path) {
            Some(replies) if replies.len() > 1 => replies.pop_front(),
            Some(replies) => replies.front().cloned(),
            None => script
                .prefixes
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, reply)| reply.clone()),
        }
    };
    let response = match reply {
        None => plain(404, "Not Found", &[], b"not found"),
        Some(Reply::Ok(body)) => plain(200, "OK", &[], &body),
        Some(Reply::Tagged { body, etag }) => {
            if header("if-none-match").as_deref() == Some(etag.as_str()) {
                plain(304, "Not Modified", &[("ETag", &etag)], b"")
            } else {
                plain(200, "OK", &[("ETag", &etag)], &body)
            }
        }
        Some(Reply::Status { code, retry_after }) => {
            let after = retry_after.map(|s| s.to_string());
            let headers: Vec<(&str, &str)> = after
                .as_deref()
                .map(|a| vec![("Retry-After", a)])
                .unwrap_or_default();
            plain(
                code,
                "Unavailable",
                &headers,
                b"<html>Request Rate Threshold Exceeded</html>",
            )
        }
        Some(Reply::Truncated(body)) => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body[..body.len() / 2]);
            out
        }
    };
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

fn plain(code: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
