//! Upstream HTTP stores: where a link's object lives and how a request for it is built.
//!
//! Only the object key a link was created with (and so signed) chooses the upstream path. Keys are
//! checked at creation (no empty, `.` or `..` segments, no control characters) and every segment is
//! percent-encoded on the way out, so no key can leave the store's base path.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pingora::upstreams::peer::HttpPeer;

use crate::config::HttpStoreConfig;

/// Everything but RFC 3986 unreserved characters is encoded (including `%`, so nothing is decoded twice).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Request headers passed to the origin; everything else the client sent (cookies, authorization,
/// forwarding headers) stays at the gateway.
pub const FORWARDED_REQUEST_HEADERS: [&str; 7] = [
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "accept",
];

/// Why an object key is refused.
pub fn check_object_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > 1024 {
        return Err("must be 1 to 1024 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters");
    }
    if key.contains('\\') {
        return Err("must not contain a backslash");
    }
    let key = key.strip_prefix('/').unwrap_or(key);
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("must not contain empty, `.` or `..` path segments");
        }
    }
    Ok(())
}

pub struct HttpUpstream {
    pub config: HttpStoreConfig,
    peer: HttpPeer,
}

impl HttpUpstream {
    pub fn new(config: HttpStoreConfig) -> HttpUpstream {
        let mut peer = HttpPeer::new(config.addr, config.tls, config.sni.clone());
        peer.options.connection_timeout = Some(config.connect_timeout);
        peer.options.total_connection_timeout = Some(config.connect_timeout * 2);
        peer.options.read_timeout = Some(config.read_timeout);
        peer.options.write_timeout = Some(config.read_timeout);
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        HttpUpstream { config, peer }
    }

    /// A peer for one request (keep-alive connections are pooled by Pingora per peer).
    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }

    /// The origin-form path of an object: base path plus the encoded key.
    pub fn path_of(&self, key: &str) -> String {
        let key = key.strip_prefix('/').unwrap_or(key);
        let mut out = String::with_capacity(self.config.base_path.len() + key.len() + 16);
        out.push_str(&self.config.base_path);
        for (i, segment) in key.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.extend(utf8_percent_encode(segment, SEGMENT));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn upstream(base: &str) -> HttpUpstream {
        HttpUpstream::new(HttpStoreConfig {
            name: "t".into(),
            tls: false,
            host_header: "h".into(),
            sni: "h".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            base_path: base.into(),
            auth_header: None,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn keys_are_encoded_under_the_base() {
        let u = upstream("/files/");
        assert_eq!(u.path_of("a/b c.pdf"), "/files/a/b%20c.pdf");
        assert_eq!(u.path_of("%2e%2e/x"), "/files/%252e%252e/x");
        assert_eq!(u.path_of("ü?#.txt"), "/files/%C3%BC%3F%23.txt");
    }

    #[test]
    fn escaping_keys_are_refused() {
        for bad in ["", "../x", "a/../b", "a//b", "./a", "a/.", "a\\..\\b", "a\nb", "a/"] {
            assert!(check_object_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "/a/b.pdf", "..a", "a..b/c", "%2e%2e"] {
            assert!(check_object_key(good).is_ok(), "{good:?}");
        }
    }
}
