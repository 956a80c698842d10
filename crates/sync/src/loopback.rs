//! The loopback redirect: a one-shot HTTP listener on 127.0.0.1 that receives WHOOP's redirect
//! after the person authorizes in their browser.
//!
//! It answers only the callback path, and only a request whose `state` matches the pending
//! authorization ends the wait. Anything else (a stray request, a forged link) gets a harmless
//! page and the listener keeps waiting, so nobody can cancel or hijack a sign-in by guessing the
//! port.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::error::{Error, Result};

pub const CALLBACK_PATH: &str = "/oauth/whoop/callback";

/// What WHOOP put on the redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Code(String),
    /// The person chose Deny (`access_denied`).
    Denied,
    /// WHOOP refused the request itself, e.g. `invalid_scope` when the app's registration does
    /// not allow a scope it asked for.
    Refused {
        error: String,
        description: String,
    },
}

/// Reads `code`/`state`/`error` from a callback URL (loopback or deep link) and checks `state`.
pub fn parse_callback(url: &Url, expected_state: &str) -> Result<CallbackOutcome> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = String::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = v.into_owned(),
            _ => {}
        }
    }
    // Constant-time is not needed: the state is single-use and expires in minutes.
    if state.as_deref() != Some(expected_state) {
        return Err(Error::UnexpectedCallback);
    }
    match (code, error) {
        (_, Some(error)) if error == "access_denied" => Ok(CallbackOutcome::Denied),
        (_, Some(error)) => Ok(CallbackOutcome::Refused { error, description }),
        (Some(code), None) if !code.is_empty() => Ok(CallbackOutcome::Code(code)),
        _ => Err(Error::UnexpectedCallback),
    }
}

pub struct LoopbackListener {
    listener: TcpListener,
    redirect_uri: String,
}

impl LoopbackListener {
    /// Binds a free port on 127.0.0.1 (`port` 0) or the given one.
    pub async fn bind(port: u16) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                Error::Io(format!(
                    "port {port} on 127.0.0.1 is taken by another program, so the browser \
                         cannot hand the sign-in back; close it or choose another loopback port \
                         (and register its redirect URI at WHOOP)"
                ))
            } else {
                Error::Io(format!("could not listen on 127.0.0.1:{port}: {e}"))
            }
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?
            .port();
        Ok(LoopbackListener {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits until a callback with `expected_state` arrives, or `timeout` passes, and returns
    /// its URL for the engine to complete.
    pub async fn wait(self, expected_state: &str, timeout: Duration) -> Result<Url> {
        let minutes = timeout.as_secs().div_ceil(60);
        tokio::time::timeout(timeout, self.serve(expected_state))
            .await
            .map_err(|_| Error::AuthorizationTimedOut(minutes))?
    }

    async fn serve(&self, expected_state: &str) -> Result<Url> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| Error::Io(e.to_string()))?;
            let target = match read_request_target(&mut stream).await {
                Some(target) => target,
                None => continue,
            };
            let url = match Url::parse(&format!("http://127.0.0.1{target}")) {
                Ok(url) if url.path() == CALLBACK_PATH => url,
                _ => {
                    respond(&mut stream, 404, "Not found", "There is nothing here.").await;
                    continue;
                }
            };
            match parse_callback(&url, expected_state) {
                Ok(CallbackOutcome::Code(_)) => {
                    respond(
                        &mut stream,
                        200,
                        "VitalTrends is connecting",
                        "You can close this tab and return to VitalTrends.",
                    )
                    .await;
                    return Ok(url);
                }
                Ok(CallbackOutcome::Refused { .. }) => {
                    respond(
                        &mut stream,
                        200,
                        "WHOOP refused the sign-in",
                        "VitalTrends was not connected. Return to VitalTrends to see why.",
                    )
                    .await;
                    return Ok(url);
                }
                Ok(CallbackOutcome::Denied) => {
                    respond(
                        &mut stream,
                        200,
                        "Authorization cancelled",
                        "VitalTrends was not connected. You can close this tab.",
                    )
                    .await;
                    return Ok(url);
                }
                Err(_) => {
                    tracing::warn!("ignored a callback that matches no pending authorization");
                    respond(
                        &mut stream,
                        400,
                        "Link not recognised",
                        "This sign-in link does not belong to a sign-in VitalTrends started. \
                         Nothing was changed.",
                    )
                    .await;
                }
            }
        }
    }
}

/// The target of an HTTP/1 request line, read with a size cap and a short deadline.
async fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next()?.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    (method == "GET" && target.starts_with('/')).then(|| target.to_string())
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, message: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;\
         padding:0 1rem;color:#1d2330}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_must_carry_the_pending_state() {
        let ok = Url::parse("vitaltrends://oauth/whoop/callback?code=abc&state=s1234567").unwrap();
        assert_eq!(
            parse_callback(&ok, "s1234567").unwrap(),
            CallbackOutcome::Code("abc".into())
        );
        assert!(matches!(
            parse_callback(&ok, "other-state"),
            Err(Error::UnexpectedCallback)
        ));
        let denied =
            Url::parse("http://127.0.0.1:1/cb?error=access_denied&state=s1234567").unwrap();
        assert_eq!(
            parse_callback(&denied, "s1234567").unwrap(),
            CallbackOutcome::Denied
        );
        let scope = Url::parse(
            "http://127.0.0.1:1/cb?error=invalid_scope&error_description=not+allowed&state=s1234567",
        )
        .unwrap();
        assert_eq!(
            parse_callback(&scope, "s1234567").unwrap(),
            CallbackOutcome::Refused {
                error: "invalid_scope".into(),
                description: "not allowed".into()
            }
        );
        let no_state = Url::parse("http://127.0.0.1:1/cb?code=abc").unwrap();
        assert!(parse_callback(&no_state, "s1234567").is_err());
    }
}
