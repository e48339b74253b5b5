//! S3-compatible stores: objects of one bucket, every upstream request signed with AWS SigV4
//! (the `aws-sigv4` crate; no hand-rolled crypto).
//!
//! [`S3Store::sign`] signs any method, path and headers (the payload is sent `UNSIGNED-PAYLOAD`,
//! so a streamed upload can be signed the same way). An S3 `NoSuchKey` (404) or `AccessDenied`
//! (403) reaches a recipient as the uniform 404; the proxy logs the store's status for operators.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use super::http::peer_for;
use super::{encoded_path, probe, FORWARDED_REQUEST_HEADERS};
use crate::docstore::settings::S3StoreConfig;
use crate::metrics::{metrics, StoreSeries};

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("request cannot be signed: {0}")]
    Signing(String),
    #[error("signed header is invalid: {0}")]
    Header(String),
}

pub struct S3Store {
    pub config: S3StoreConfig,
    pub metrics: &'static StoreSeries,
    peer: HttpPeer,
    identity: Identity,
}

impl S3Store {
    pub fn new(config: S3StoreConfig) -> S3Store {
        let peer = peer_for(&config.origin, config.connect_timeout, config.read_timeout);
        let c = &config.credentials;
        let identity = aws_credential_types::Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "linkgate",
        )
        .into();
        let metrics = metrics().store(&config.name);
        S3Store {
            config,
            metrics,
            peer,
            identity,
        }
    }

    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }

    /// The origin-form path of an object (bucket and prefix included).
    pub fn path_of(&self, key: &str) -> String {
        let key = key.strip_prefix('/').unwrap_or(key);
        if self.config.prefix.is_empty() {
            encoded_path(&self.config.origin.base_path, key)
        } else {
            encoded_path(
                &self.config.origin.base_path,
                &format!("{}{key}", self.config.prefix),
            )
        }
    }

    /// Signs `req` (method, path with query, and every header it carries, `Host` included) and
    /// adds `Authorization`, `X-Amz-Date`, `X-Amz-Content-Sha256` and, with temporary
    /// credentials, `X-Amz-Security-Token`.
    pub fn sign(&self, req: &mut RequestHeader, at: SystemTime) -> Result<(), SignError> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.config.region)
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .map_err(|e| SignError::Signing(e.to_string()))?
            .into();
        let uri = req
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let method = req.method.as_str().to_string();
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_string(), v.to_string()))
            })
            .collect();
        let signable = SignableRequest::new(
            &method,
            uri,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| SignError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SignError::Signing(e.to_string()))?
            .into_parts();
        let (signed_headers, _params) = instructions.into_parts();
        for h in signed_headers {
            let mut value = ::http::HeaderValue::from_str(h.value())
                .map_err(|e| SignError::Header(e.to_string()))?;
            value.set_sensitive(h.sensitive());
            req.insert_header(h.name(), value)
                .map_err(|e| SignError::Header(e.to_string()))?;
        }
        Ok(())
    }

    /// A signed request for `key` carrying the whitelisted client headers.
    pub fn request(
        &self,
        method: &::http::Method,
        key: &str,
        client: &RequestHeader,
    ) -> pingora::Result<RequestHeader> {
        let path = self.path_of(key);
        let mut out = RequestHeader::build(method.clone(), path.as_bytes(), Some(12))?;
        out.insert_header(
            ::http::header::HOST,
            self.config.origin.host_header.as_str(),
        )?;
        for name in FORWARDED_REQUEST_HEADERS {
            for value in client.headers.get_all(name) {
                out.append_header(name, value.clone())?;
            }
        }
        self.sign(&mut out, SystemTime::now()).map_err(|e| {
            pingora::Error::explain(pingora::ErrorType::InternalError, e.to_string())
        })?;
        Ok(out)
    }

    fn bare(&self, method: ::http::Method, path: &str) -> Option<RequestHeader> {
        let mut req = RequestHeader::build(method, path.as_bytes(), Some(6)).ok()?;
        req.insert_header(
            ::http::header::HOST,
            self.config.origin.host_header.as_str(),
        )
        .ok()?;
        self.sign(&mut req, SystemTime::now()).ok()?;
        Some(req)
    }

    pub async fn meta_of(&self, key: &str) -> Option<super::ObjectMeta> {
        let req = self.bare(::http::Method::HEAD, &self.path_of(key))?;
        let resp = probe(&self.peer, req, Duration::from_secs(2)).await.ok()?;
        resp.status
            .is_success()
            .then(|| super::ObjectMeta::of_response(&resp))
    }

    /// Ready when a signed `HEAD` of the bucket succeeds (so endpoint, bucket and credentials work).
    pub async fn ready(&self) -> Result<(), String> {
        let req = self
            .bare(::http::Method::HEAD, &self.config.origin.base_path)
            .ok_or("cannot sign a request")?;
        let resp = probe(&self.peer, req, Duration::from_secs(2)).await?;
        match resp.status.as_u16() {
            200..=299 => Ok(()),
            status => Err(format!(
                "HEAD of bucket `{}` answered {status}",
                self.config.bucket
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docstore::settings::{OriginConfig, S3Credentials};

    fn store() -> S3Store {
        S3Store::new(S3StoreConfig {
            name: "b".into(),
            origin: OriginConfig {
                tls: false,
                ca: None,
                host_header: "127.0.0.1:9000".into(),
                sni: "127.0.0.1".into(),
                addr: "127.0.0.1:9000".parse().unwrap(),
                base_path: "/docs/".into(),
            },
            region: "us-east-1".into(),
            bucket: "docs".into(),
            prefix: "shares/".into(),
            credentials: S3Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn requests_are_signed_for_their_path_and_headers() {
        let s = store();
        assert_eq!(s.path_of("a b/c.pdf"), "/docs/shares/a%20b/c.pdf");
        let mut client = RequestHeader::build("GET", b"/s/token", None).unwrap();
        client.insert_header("range", "bytes=0-9").unwrap();
        client.insert_header("cookie", "secret=1").unwrap();
        let req = s
            .request(&::http::Method::GET, "a b/c.pdf", &client)
            .unwrap();
        assert_eq!(req.uri.path(), "/docs/shares/a%20b/c.pdf");
        assert!(req.headers.get("cookie").is_none());
        let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert_eq!(
            req.headers.get("x-amz-content-sha256").unwrap(),
            "UNSIGNED-PAYLOAD"
        );
        // The same request at the same instant signs the same; another path does not.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signed = |path: &str| {
            let mut r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
            r.insert_header("host", "127.0.0.1:9000").unwrap();
            s.sign(&mut r, at).unwrap();
            r.headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(signed("/docs/a"), signed("/docs/a"));
        assert_ne!(signed("/docs/a"), signed("/docs/b"));
    }
}
