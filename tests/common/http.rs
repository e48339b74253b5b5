//! An HTTP client for tests: [`request`] and friends return a whole [`Reply`] for any status;
//! [`raw`] sends bytes over TCP; [`Jar`] keeps cookies and [`csrf_of`] reads a form's token.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .build()
}

/// Sends a request; any status is a reply (never an error); panics if nothing answers.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Sends a request; `Err` only when nothing answered.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            resp.all(&n)
                .into_iter()
                .map(|v| (n.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    if method != "HEAD" {
        resp.into_reader()
            .take(2 << 30)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// Sends raw bytes over TCP and returns everything the server answered until it closed (or 5 s).
pub fn raw(port: u16, bytes: &[u8]) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A scripted browser without a browser: keeps cookies, reads forms' CSRF tokens.
#[derive(Default)]
pub struct Jar {
    pub cookies: Vec<(String, String)>,
}

impl Jar {
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep(&mut self, reply: &Reply) {
        for set in reply.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    /// A GET as a browser (HTML Accept).
    pub fn page(&mut self, url: &str) -> Reply {
        let cookie = self.header();
        let r = request(
            "GET",
            url,
            &[("accept", "text/html,*/*"), ("cookie", &cookie)],
            None,
        );
        self.keep(&r);
        r
    }

    /// A form POST as a browser.
    pub fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        self.post_raw(url, body.join("&").as_bytes())
    }

    pub fn post_raw(&mut self, url: &str, body: &[u8]) -> Reply {
        let cookie = self.header();
        let r = request(
            "POST",
            url,
            &[
                ("accept", "text/html"),
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(body),
        );
        self.keep(&r);
        r
    }
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap_or("").to_string()
}
