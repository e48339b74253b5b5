//! OpenTelemetry traces (`[tracing]`) from the real binary to a real OTLP/HTTP receiver served by
//! the test: the export requests are decoded with the `opentelemetry-proto` types (protobuf, as
//! a collector does), not taken from a mock of the exporter.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// An OTLP/HTTP receiver (`POST /v1/traces`, `application/x-protobuf`) on a free port; keeps
/// every span it was sent, with its service name.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (s, r) = (spans.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &s, &r));
            }
        });
        Receiver {
            port,
            spans,
            requests,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }

    /// Polls (every 50 ms, at most `limit`) until `found` picks something from the spans.
    fn wait_for<T>(
        &self,
        limit: Duration,
        mut found: impl FnMut(&[(String, Span)]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = found(&self.spans()) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "not received in {limit:?}: {:#?}",
                self.spans()
                    .iter()
                    .map(|(_, s)| s.name.clone())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One kept-alive connection: each request's protobuf body is decoded and answered `200`.
fn serve(conn: TcpStream, spans: &Mutex<Vec<(String, Span)>>, requests: &Mutex<usize>) {
    let Ok(writer) = conn.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        let mut length = 0usize;
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        assert_eq!(content_type, "application/x-protobuf");
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP request");
        *requests.lock().unwrap() += 1;
        for resource in export.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.lock().unwrap().push((service.clone(), span));
                }
            }
        }
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            AnyValue::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

/// Every string in a span: its name, attributes, events' names and attributes, status message.
fn all_text(span: &Span) -> String {
    let mut text = format!("{} {:?}", span.name, span.attributes);
    for event in &span.events {
        text.push_str(&format!(" {} {:?}", event.name, event.attributes));
    }
    if let Some(status) = &span.status {
        text.push_str(&status.message);
    }
    text
}

fn gateway_tracing_to(origin: &Origin, receiver: &Receiver) -> Gateway {
    Gateway::start_with(GatewayOptions {
        extra: format!(
            "[tracing]\nendpoint = \"{}\"\nservice_name = \"linkgate-under-test\"\nsampling_ratio = 1.0\nexport_timeout_ms = 3000\n",
            receiver.endpoint()
        ),
        ..GatewayOptions::for_origin(origin)
    })
}

#[test]
fn a_download_is_one_request_span_with_link_store_and_origin_children_and_no_token() {
    let origin = Origin::start();
    let body = pseudo_random(200_000, 7);
    origin.put("traced.bin", &body);
    let receiver = Receiver::start();
    let gw = gateway_tracing_to(&origin, &receiver);
    let (id, url) = gw.admin().share("traced.bin", Some(3));
    let token = url
        .rsplit("/s/")
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(token.len() > 10, "{url}");
    // The client's traceparent is not joined: a new trace, the client's context as a link.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reply = request(
        "GET",
        &url,
        &[(
            "traceparent",
            &format!("00-{client_trace}-00f067aa0ba902b7-01"),
        )],
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body);

    let root = receiver.wait_for(Duration::from_secs(20), |spans| {
        spans
            .iter()
            .find(|(_, s)| s.name == "GET /s/{token}")
            .cloned()
    });
    let (service, root) = root;
    assert_eq!(service, "linkgate-under-test");
    assert!(root.parent_span_id.is_empty(), "a root span");
    assert_eq!(root.kind, 2, "a server span");
    assert_ne!(
        hex(&root.trace_id),
        client_trace,
        "the client's trace is not joined"
    );
    assert_eq!(root.links.len(), 1);
    assert_eq!(hex(&root.links[0].trace_id), client_trace);
    assert_eq!(
        attribute(&root, "linkgate.link_id").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        attribute(&root, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(&root, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute(&root, "http.route").as_deref(),
        Some("/s/{token}")
    );
    assert_eq!(
        attribute(&root, "linkgate.outcome").as_deref(),
        Some("served")
    );
    assert_eq!(
        attribute(&root, "linkgate.bytes_sent").as_deref(),
        Some(body.len().to_string().as_str())
    );

    // Its children: the link store's draw (a limited link) and the origin's request, whose
    // events say when it connected, answered and finished sending.
    let children = receiver.wait_for(Duration::from_secs(20), |spans| {
        let children: Vec<Span> = spans
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.trace_id == root.trace_id && s.parent_span_id == root.span_id)
            .cloned()
            .collect();
        (children.iter().any(|s| s.name.starts_with("link_store."))
            && children.iter().any(|s| s.name == "document_store.request"))
        .then_some(children)
    });
    let draw = children
        .iter()
        .find(|s| s.name == "link_store.draw")
        .expect("a draw span");
    assert!(draw.start_time_unix_nano >= root.start_time_unix_nano);
    assert!(draw.end_time_unix_nano <= root.end_time_unix_nano);
    let origin_span = children
        .iter()
        .find(|s| s.name == "document_store.request")
        .unwrap();
    assert_eq!(origin_span.kind, 3, "a client span");
    assert_eq!(
        attribute(origin_span, "linkgate.store").as_deref(),
        Some("docs")
    );
    let events: Vec<&str> = origin_span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        events,
        ["connected", "response head", "body sent"],
        "{origin_span:#?}"
    );
    assert!(origin_span.end_time_unix_nano <= root.end_time_unix_nano);

    // The admin API's requests are spans of their own (the share's creation above).
    receiver.wait_for(Duration::from_secs(20), |spans| {
        spans
            .iter()
            .find(|(_, s)| s.name == "POST /v1/links")
            .cloned()
    });

    // A forged token's request is traced too (its outcome, no link), without the forgery.
    let forged = "forgedTOKENforgedTOKENforged";
    assert_eq!(get(&gw.url(&format!("/s/{forged}/name.bin"))).status, 404);
    let refused = receiver.wait_for(Duration::from_secs(20), |spans| {
        spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| attribute(s, "linkgate.outcome").as_deref() == Some("bad_token"))
            .cloned()
    });
    assert_eq!(refused.name, "GET /s/{token}");
    assert_eq!(attribute(&refused, "linkgate.link_id"), None);

    // No span of any request names a token.
    for (_, span) in receiver.spans() {
        let text = all_text(&span);
        assert!(
            !text.contains(&token) && !text.contains(forged),
            "{span:#?}"
        );
    }
}

#[test]
fn a_dir_store_download_has_a_read_span_under_its_request_span() {
    let origin = Origin::start();
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::write(files.path().join("local.txt"), b"from a folder").expect("write");
    let receiver = Receiver::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n[tracing]\nendpoint = \"{}\"\n",
            files.path().display(),
            receiver.endpoint()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    let link = gw
        .admin()
        .create(serde_json::json!({ "store": "files", "object": "local.txt" }));
    let url = link["url"].as_str().expect("url");
    assert_eq!(get(url).body, b"from a folder");
    let (root, read) = receiver.wait_for(Duration::from_secs(20), |spans| {
        let root = spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == "GET /s/{token}")?;
        let read = spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == "document_store.read" && s.parent_span_id == root.span_id)?;
        Some((root.clone(), read.clone()))
    });
    assert_eq!(read.trace_id, root.trace_id);
    assert_eq!(attribute(&read, "linkgate.store").as_deref(), Some("files"));
    assert_eq!(attribute(&root, "linkgate.store").as_deref(), Some("files"));
}

#[test]
fn spans_still_queued_at_sigterm_are_sent_before_the_exit() {
    let origin = Origin::start();
    origin.put("last.txt", b"last");
    let receiver = Receiver::start();
    let mut gw = gateway_tracing_to(&origin, &receiver);
    let (_, url) = gw.admin().share("last.txt", None);
    assert_eq!(get(&url).body, b"last");
    gw.signal("TERM");
    let status = gw
        .wait_exit_status(Duration::from_secs(30))
        .expect("the gateway exits");
    assert!(status.success(), "{status}");
    assert!(
        receiver
            .spans()
            .iter()
            .any(|(_, s)| s.name == "GET /s/{token}"),
        "the last request's span was sent before the exit: {}",
        gw.log()
    );
}

#[test]
fn with_tracing_off_the_receiver_gets_nothing() {
    let origin = Origin::start();
    origin.put("quiet.txt", b"quiet");
    let receiver = Receiver::start();
    // The default: no [tracing] table. (The receiver listens all the same.)
    let mut gw = Gateway::start(&origin);
    let (_, url) = gw.admin().share("quiet.txt", Some(2));
    assert_eq!(get(&url).body, b"quiet");
    // At stop a gateway sends whatever spans it still holds: after the exit nothing can come.
    gw.signal("TERM");
    assert!(gw.wait_exit_status(Duration::from_secs(30)).is_some());
    assert_eq!(*receiver.requests.lock().unwrap(), 0);
    assert!(receiver.spans().is_empty());
    assert!(!gw.log().contains("traces exported"), "{}", gw.log());
}

#[test]
fn a_bad_tracing_table_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let origin_url = "http://127.0.0.1:9/";
    let gw_config = dir.path().join("linkgate.toml");
    std::fs::write(
        &gw_config,
        format!(
            r#"[server]
listen = "127.0.0.1:{}"
public_url = "http://127.0.0.1"
[admin]
listen = "127.0.0.1:{}"
token = "{ADMIN_TOKEN}"
[keys]
signing = "k1"
[keys.secrets]
k1 = "{SECRET_K1}"
[state]
backend = "embedded"
path = "{}"
[stores.docs]
kind = "http"
url = "{origin_url}"
[tracing]
endpoint = "http://127.0.0.1:4318/v1/traces"
sampling_ratio = 2.0
"#,
            free_port(),
            free_port(),
            dir.path().join("db").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&gw_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tracing.sampling_ratio"), "{text}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
