//! A minimal HTTP/1.1 client for a node's JSON API: one `POST` per connection
//! (`Connection: close`), a whole-request timeout, a cap on the reply size, and bodies framed
//! by `Content-Length`, chunked encoding, or the end of the connection. Enough for bytomd and
//! bystack-node on a trusted network; no TLS, no redirects, no compression.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::work::SourceError;

/// The largest reply accepted (a get-work reply is under 1 KiB).
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// An `http://HOST:PORT[/PREFIX]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address, as given.
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path prefix without a trailing slash (`""` for none).
    pub prefix: String,
}

impl Endpoint {
    /// Parses `http://HOST:PORT[/PREFIX]`.
    ///
    /// # Errors
    /// [`SourceError::Config`] for another scheme, an empty host or a bad port.
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let bad = |reason: &str| SourceError::Config(format!("node url {url:?}: {reason}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected http://HOST:PORT (https is not supported)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|e| bad(&format!("port: {e}")))?,
            None => 80,
        };
        Ok(Self {
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// `http://host:port` (for logs and events).
    pub fn base(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.prefix)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.prefix)
        }
    }

    /// `POST`s `body` (JSON) to `PREFIX/path` and returns the status code and body of the
    /// reply, all within `timeout`.
    ///
    /// # Errors
    /// [`SourceError::Io`], [`SourceError::Timeout`], [`SourceError::Http`] for a reply that
    /// is not HTTP/1.x or is too large.
    pub async fn post(
        &self,
        path: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), SourceError> {
        tokio::time::timeout(timeout, self.post_inner(path, body))
            .await
            .map_err(|_| SourceError::Timeout {
                endpoint: self.base(),
                millis: timeout.as_millis() as u64,
            })?
    }

    async fn post_inner(&self, path: &str, body: &str) -> Result<(u16, Vec<u8>), SourceError> {
        let io = |source| SourceError::Io {
            endpoint: self.base(),
            source,
        };
        let mut stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io)?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let request = format!(
            "POST {}{} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bystack-miner/{}\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.prefix,
            path,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.len() > MAX_REPLY_BYTES {
                return Err(self.http_error(format!("reply over {MAX_REPLY_BYTES} bytes")));
            }
            // Stop as soon as a length-framed reply is complete (some servers keep the
            // connection open despite `Connection: close`).
            if let Ok(Some(done)) = parse_reply(&reply) {
                return Ok(done);
            }
        }
        match parse_reply(&reply) {
            Ok(Some(done)) => Ok(done),
            Ok(None) => Err(self.http_error(format!(
                "connection closed after {} bytes of an incomplete reply",
                reply.len()
            ))),
            Err(reason) => Err(self.http_error(reason)),
        }
        .or_else(|e| match read_to_close(&reply) {
            Some(done) => Ok(done),
            None => Err(e),
        })
    }

    fn http_error(&self, reason: String) -> SourceError {
        SourceError::Http {
            endpoint: self.base(),
            reason,
        }
    }
}

/// A reply with neither `Content-Length` nor chunked framing ends with the connection.
fn read_to_close(reply: &[u8]) -> Option<(u16, Vec<u8>)> {
    let (status, headers, body_at) = head(reply).ok()??;
    let framed = headers
        .iter()
        .any(|(k, v)| k == "content-length" || (k == "transfer-encoding" && v.contains("chunked")));
    (!framed).then(|| (status, reply[body_at..].to_vec()))
}

type Head = (u16, Vec<(String, String)>, usize);

/// The status, lower-cased headers and body offset, or `None` while the head is incomplete.
fn head(reply: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&reply[..end]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x reply: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    Ok(Some((status, headers, end + 4)))
}

/// A complete reply's status and body; `None` while more bytes are needed (or the body runs to
/// the end of the connection).
fn parse_reply(reply: &[u8]) -> Result<Option<(u16, Vec<u8>)>, String> {
    let Some((status, headers, body_at)) = head(reply)? else {
        return Ok(None);
    };
    let body = &reply[body_at..];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(dechunk(body)?.map(|b| (status, b)));
    }
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        if length > MAX_REPLY_BYTES {
            return Err(format!("content-length {length} over {MAX_REPLY_BYTES}"));
        }
        return Ok((body.len() >= length).then(|| (status, body[..length].to_vec())));
    }
    Ok(None)
}

/// Decodes a chunked body; `None` until the last chunk has arrived.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[..line_end])
            .map_err(|_| "chunk size is not UTF-8".to_string())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size > MAX_REPLY_BYTES {
            return Err(format!("chunk of {size} bytes"));
        }
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_are_config_errors() {
        let e = Endpoint::parse("http://127.0.0.1:9888").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str()),
            ("127.0.0.1", 9888, "")
        );
        let e = Endpoint::parse("http://node.example/api/").unwrap();
        assert_eq!((e.port, e.prefix.as_str()), (80, "/api"));
        let e = Endpoint::parse("http://[::1]:1234").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 1234));
        assert_eq!(e.base(), "http://[::1]:1234");
        for bad in [
            "https://a:1",
            "a:1",
            "http://:1",
            "http://a:99999",
            "http://[::1",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(SourceError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn replies_are_framed_by_length_chunks_or_refused() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_reply(r).unwrap(), Some((200, b"hello".to_vec())));
        assert_eq!(parse_reply(&r[..r.len() - 1]).unwrap(), None);
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_reply(c).unwrap(), Some((200, b"abcde".to_vec())));
        assert!(parse_reply(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_reply(b"HTTP/1.1 2xx OK\r\n\r\n").is_err());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(
            parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        let unframed = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(parse_reply(unframed).unwrap(), None);
        assert_eq!(read_to_close(unframed), Some((200, b"{}".to_vec())));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_port_is_an_io_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let e = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let err = e
            .post("/get-work-json", "{}", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SourceError::Timeout { millis: 200, .. }),
            "{err}"
        );
        hold.abort();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let e = Endpoint::parse(&format!("http://{closed_addr}")).unwrap();
        let err = e
            .post("/x", "{}", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }), "{err}");
    }
}
