//! Who the client is behind a reverse proxy. A request whose peer is a trusted proxy
//! (`[connections] trusted_proxies`) names its client in `X-Forwarded-For`: each proxy appends
//! the address it got the request from, so the header reads left to right from the client
//! (as the client claims) to the last proxy's peer. Only the right end is trustworthy, so the
//! client is the rightmost address that is not itself a trusted proxy; everything left of it is
//! the client's own say and is ignored. From a peer that is not a trusted proxy the header is
//! ignored altogether: a client cannot choose the address its rate limits count.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// The client's address as the gateway counts it (rate limits): a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client of a request from `peer` with `headers`, given the trusted proxies.
pub(super) fn client(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| is_trusted(trusted, address);
    if !is_trusted(&peer) {
        return peer;
    }
    // Several header lines are one list, in order (RFC 9110, 5.3).
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { return peer };
        hops.extend(value.split(',').map(str::trim));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop the proxy wrote that does not parse: the proxy's own address is all we know.
        let Some(address) = parse_hop(hop) else { return peer };
        client = address;
        if !is_trusted(&address) {
            break;
        }
    }
    client
}

/// True when `address` is one of the trusted proxies.
pub(super) fn is_trusted(trusted: &[ipnet::IpNet], address: &IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(address))
}

/// One `X-Forwarded-For` element: an address, IPv6 possibly in brackets, either possibly with
/// a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse() {
        return Some(address);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(address, _)| address.parse().ok());
    }
    let (address, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().expect("value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(client(ip("198.51.100.1"), &spoofed, &trusted), ip("198.51.100.1"));
        assert_eq!(client(ip("10.0.0.2"), &spoofed, &trusted), ip("203.0.113.9"));
        assert_eq!(client(ip("10.0.0.2"), &spoofed, &[]), ip("10.0.0.2"), "nothing trusted");
        assert_eq!(client(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"), "no header");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net"), "192.168.1.1/32".parse().expect("net")];
        // The client claims 1.2.3.4; the real client is 203.0.113.9; two proxies of ours.
        let chain = headers(&["1.2.3.4, 203.0.113.9", "192.168.1.1"]);
        assert_eq!(client(ip("10.0.0.2"), &chain, &trusted), ip("203.0.113.9"));
        let every_hop_trusted = headers(&["10.1.1.1, 192.168.1.1"]);
        assert_eq!(client(ip("10.0.0.2"), &every_hop_trusted, &trusted), ip("10.1.1.1"));
    }

    #[test]
    fn ports_and_brackets_are_read_and_garbage_falls_back_to_the_proxy() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(client(ip("10.0.0.2"), &headers(&["203.0.113.9:4711"]), &trusted), ip("203.0.113.9"));
        assert_eq!(client(ip("10.0.0.2"), &headers(&["[2001:db8::1]:4711"]), &trusted), ip("2001:db8::1"));
        assert_eq!(client(ip("10.0.0.2"), &headers(&["2001:db8::1"]), &trusted), ip("2001:db8::1"));
        assert_eq!(client(ip("10.0.0.2"), &headers(&["1.2.3.4, unknown"]), &trusted), ip("10.0.0.2"));
        assert_eq!(client(ip("10.0.0.2"), &headers(&["unknown, 203.0.113.9"]), &trusted), ip("203.0.113.9"));
    }
}
