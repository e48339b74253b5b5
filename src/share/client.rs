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
