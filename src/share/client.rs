//! Who is asking: the client's address and user agent, as access lines and events record them.

/// The client address of a request, as events record it.
pub fn client_of(session: &pingora::protocols::http::ServerSession) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The request's `User-Agent`, cut to 512 characters, as events record it.
pub fn user_agent_of(session: &pingora::protocols::http::ServerSession) -> Option<String> {
    session
        .req_header()
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect())
}

/// The request's path as access lines record it, with nothing secret in it: the token of
/// `/s/{token}/…` becomes `…`, so does any other segment that could be a token or a legacy
/// URL's hash (22 or more characters of the base64url alphabet, percent-decoded or not), and the
/// query keeps its parameter names only (`?download&doc`), never their values (a legacy
/// `secure_link` URL carries its hash there). At most 256 characters.
pub fn loggable_path(uri: &http::Uri) -> String {
    let mut out = String::new();
    for (i, segment) in uri.path().split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let secret_like = segment.len() >= 22
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'%' | b'='));
        if (i == 2 && uri.path().starts_with("/s/")) || secret_like {
            out.push('…');
        } else {
            out.extend(segment.chars().filter(|c| !c.is_control()));
        }
    }
    if let Some(query) = uri.query() {
        let names: Vec<&str> = query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .filter(|name| !name.is_empty())
            .collect();
        out.push('?');
        out.push_str(&names.join("&"));
    }
    out.chars().take(256).collect()
}

#[cfg(test)]
mod loggable_path_tests {
    use super::loggable_path;

    fn path(s: &str) -> String {
        loggable_path(&s.parse::<http::Uri>().unwrap())
    }

    #[test]
    fn tokens_hashes_and_query_values_never_reach_the_log() {
        let token = "AQJrMa2hbP4HGICxIaCpYtHCmzROaoA-LK_RO2AToyzcyt-eOeLz2vmtfSqoOgmK54Mzig";
        assert_eq!(path(&format!("/s/{token}")), "/s/…");
        assert_eq!(path(&format!("/s/{token}/report.pdf")), "/s/…/report.pdf");
        assert_eq!(
            path(&format!("/s/{token}?download&doc=2")),
            "/s/…?download&doc"
        );
        assert_eq!(path("/s/short"), "/s/…", "even a forged short token");
        assert_eq!(
            path("/dl/files/a.pdf?md5=XbS2lWe1pIYfRy3a_V9H4g&expires=2147483647"),
            "/dl/files/a.pdf?md5&expires"
        );
        assert_eq!(
            path("/p/5e8ff9bf55ba3508199d22e984129be6/files/a.pdf"),
            "/p/…/files/a.pdf"
        );
        assert_eq!(path("/"), "/");
        assert_eq!(path("/favicon.ico"), "/favicon.ico");
        assert!(path(&format!("/x/{}", "a/".repeat(300))).chars().count() <= 256);
    }
}
