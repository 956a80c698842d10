//! Who the client is, for rate limits and logs. Behind a reverse proxy every TCP peer is the
//! proxy, so all clients would share one rate-limit bucket; but `X-Forwarded-For` is whatever the
//! sender wrote, so it is only believed when the peer is a proxy the operator named
//! (`--trusted-proxy`). Then the header is read from the right: each hop a trusted proxy added is
//! skipped, and the first address not in a trusted range is the client. Everything left of it
//! could have been made up by that client. Without trusted proxies the peer address counts.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::server::AppState;

/// The address rate limits and logs use for a request; put in the request's extensions by
/// [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single host).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("not an address or CIDR range: {s:?}"))
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// The client behind `peer`: the peer itself unless it is a trusted proxy, else the rightmost
/// `X-Forwarded-For` hop that is not one. A malformed hop ends the walk at the last hop that
/// was trusted, so garbage cannot pick someone else's bucket.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

/// Middleware: works out the request's [`ClientIp`] once, for every handler and the log line.
pub async fn resolve(
    State(app): State<std::sync::Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let ip = client_ip(peer, req.headers(), &app.config.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_cidr(s).expect("cidr")).collect()
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_cidr(" fd00::/8 ").unwrap().to_string(), "fd00::/8");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("proxy.example").is_err());
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.7"), &h, &[]), ip("198.51.100.7"));
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &proxies),
            ip("198.51.100.7"),
            "a peer outside the trusted ranges cannot pick its address"
        );
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_hop() {
        let proxies = nets(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_ip(peer, &xff(&["203.0.113.9"]), &proxies),
            ip("203.0.113.9")
        );
        // The client wrote the first entry itself; only the hops our proxies added count.
        assert_eq!(
            client_ip(peer, &xff(&["6.6.6.6, 203.0.113.9, 10.1.1.1"]), &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["6.6.6.6", "203.0.113.9:4711"]), &proxies),
            ip("203.0.113.9"),
            "several headers are one list; a port is dropped"
        );
        assert_eq!(
            client_ip(peer, &xff(&["[2001:db8::1]:443"]), &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn missing_or_malformed_header_falls_back_to_the_last_trusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies), peer);
        assert_eq!(
            client_ip(peer, &xff(&["203.0.113.9, garbage"]), &proxies),
            peer
        );
        assert_eq!(
            client_ip(peer, &xff(&["garbage, 10.9.9.9"]), &proxies),
            ip("10.9.9.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["10.3.3.3, 10.9.9.9"]), &proxies),
            ip("10.3.3.3"),
            "all hops trusted: the leftmost is as far as anyone vouches"
        );
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let proxies = nets(&["127.0.0.1"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &xff(&["203.0.113.9"]), &proxies),
            ip("203.0.113.9")
        );
    }
}
