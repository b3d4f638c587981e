//! Each probe kind against local targets the test controls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use protocol::views::monitoring::{
    DnsProbe, DnsRecordType, Header, HttpMethod, HttpProbe, JsonExpectation, KubernetesProbe,
    Parameter, ProbeOutcome, ProbeSpec, TcpProbe, TlsProbe,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

async fn http_target() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "all ok" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/health",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"status":"degraded","checks":[{"name":"db","up":true,"ms":12}]}"#,
                )
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/ok") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/echo",
            axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
                let token = headers
                    .get("x-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                format!("{token}:{body}").into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn http(url: String) -> HttpProbe {
    HttpProbe {
        method: HttpMethod::Get,
        url,
        expected_status: None,
        body_contains: None,
        json: None,
        headers: Vec::new(),
        body: None,
        timeout_ms: 2000,
        follow_redirects: false,
    }
}

async fn run_http(probe: HttpProbe) -> ProbeOutcome {
    probes::run(&ProbeSpec::Http(probe)).await
}

#[tokio::test]
async fn http_status_body_json_redirects_and_timeouts() {
    let addr = http_target().await;
    let url = |path: &str| format!("http://{addr}{path}");

    let ok = run_http(http(url("/ok"))).await;
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.value(Parameter::HttpStatus), Some(200.0));
    assert!(ok.latency_ms.is_some_and(|l| l > 0.0 && l < 2000.0));

    let down = run_http(http(url("/down"))).await;
    assert!(!down.ok);
    assert_eq!(down.value(Parameter::HttpStatus), Some(503.0));
    assert_eq!(
        down.error.as_deref(),
        Some("expected a 2xx or 3xx status, got 503")
    );
    let expected = run_http(HttpProbe {
        expected_status: Some(200),
        ..http(url("/down"))
    })
    .await;
    assert_eq!(
        expected.error.as_deref(),
        Some("expected status 200, got 503")
    );
    let expected_503 = run_http(HttpProbe {
        expected_status: Some(503),
        ..http(url("/down"))
    })
    .await;
    assert!(expected_503.ok, "{expected_503:?}");

    let contains = run_http(HttpProbe {
        body_contains: Some("ok".into()),
        ..http(url("/ok"))
    })
    .await;
    assert!(contains.ok, "{contains:?}");
    let missing = run_http(HttpProbe {
        body_contains: Some("healthy".into()),
        ..http(url("/ok"))
    })
    .await;
    assert_eq!(
        missing.error.as_deref(),
        Some("body does not contain \"healthy\"")
    );

    let json = |path: &str, equals: &str| HttpProbe {
        json: Some(JsonExpectation {
            path: path.into(),
            equals: equals.into(),
        }),
        ..http(url("/health"))
    };
    let degraded = run_http(json("$.status", "ok")).await;
    assert!(!degraded.ok);
    assert_eq!(
        degraded.error.as_deref(),
        Some("$.status is \"degraded\", expected \"ok\"")
    );
    assert!(run_http(json("$.status", "degraded")).await.ok);
    assert!(run_http(json("$.checks[0].up", "true")).await.ok);
    assert!(run_http(json("$.checks[0].ms", "12")).await.ok);
    let absent = run_http(json("$.checks[3].up", "true")).await;
    assert_eq!(absent.error.as_deref(), Some("$.checks[3].up is missing"));
    let not_json = run_http(HttpProbe {
        json: Some(JsonExpectation {
            path: "$.a".into(),
            equals: "1".into(),
        }),
        ..http(url("/ok"))
    })
    .await;
    assert!(
        not_json
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("the body is not JSON")),
        "{not_json:?}"
    );

    let redirect = run_http(http(url("/moved"))).await;
    assert!(redirect.ok, "a 3xx counts as up: {redirect:?}");
    assert_eq!(redirect.value(Parameter::HttpStatus), Some(307.0));
    let followed = run_http(HttpProbe {
        follow_redirects: true,
        body_contains: Some("all ok".into()),
        ..http(url("/moved"))
    })
    .await;
    assert!(followed.ok, "{followed:?}");
    assert_eq!(followed.value(Parameter::HttpStatus), Some(200.0));

    let echo = run_http(HttpProbe {
        method: HttpMethod::Post,
        headers: vec![Header {
            name: "x-token".into(),
            value: "secret".into(),
        }],
        body: Some("ping".into()),
        body_contains: Some("secret:ping".into()),
        ..http(url("/echo"))
    })
    .await;
    assert!(echo.ok, "{echo:?}");

    let started = Instant::now();
    let slow = run_http(HttpProbe {
        timeout_ms: 300,
        ..http(url("/slow"))
    })
    .await;
    assert_eq!(slow.error.as_deref(), Some("timed out after 300 ms"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn http_connection_errors_read_well() {
    let closed = closed_port().await;
    let refused = run_http(http(format!("http://127.0.0.1:{closed}/"))).await;
    assert!(!refused.ok);
    assert_eq!(refused.error.as_deref(), Some("connection refused"));
    assert_eq!(refused.value(Parameter::HttpStatus), None);

    let bad = run_http(http("not a url".into())).await;
    assert!(!bad.ok);
    assert!(bad.error.is_some());
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[tokio::test]
async fn tcp_open_and_closed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tcp = |port| {
        ProbeSpec::Tcp(TcpProbe {
            host: "127.0.0.1".into(),
            port,
            timeout_ms: 1000,
        })
    };
    let open = probes::run(&tcp(port)).await;
    assert!(open.ok, "{open:?}");
    assert!(open.latency_ms.is_some());
    drop(listener);
    let closed = probes::run(&tcp(closed_port().await)).await;
    assert!(!closed.ok);
    assert_eq!(closed.error.as_deref(), Some("connection refused"));
}

/// A TLS server on 127.0.0.1 presenting a certificate for `names`, valid
/// for `days`, signed by a CA of its own.
async fn tls_target(names: &[&str], days: i64) -> u16 {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = params.signed_by(&key, &issuer).expect("leaf");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone(), ca.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    use tokio::io::AsyncWriteExt;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

fn tls(port: u16, server_name: Option<&str>) -> ProbeSpec {
    ProbeSpec::Tls(TlsProbe {
        host: "127.0.0.1".into(),
        port,
        server_name: server_name.map(str::to_owned),
        timeout_ms: 2000,
    })
}

#[tokio::test]
async fn tls_reports_expiry_name_and_an_untrusted_chain() {
    let port = tls_target(&["localhost"], 10).await;
    let outcome = probes::run(&tls(port, Some("localhost"))).await;
    let days = outcome.value(Parameter::DaysToExpiry).expect("days");
    assert!((9.9..=10.0).contains(&days), "{days}");
    assert_eq!(outcome.value(Parameter::HostnameMatch), Some(1.0));
    // The test's CA is not among the system's roots.
    assert_eq!(outcome.value(Parameter::ChainValid), Some(0.0));
    assert!(!outcome.ok);
    let error = outcome.error.expect("error");
    assert!(
        error.starts_with("certificate chain is not trusted"),
        "{error}"
    );
    assert!(outcome.latency_ms.is_some());

    let mismatch = probes::run(&tls(port, Some("example.com"))).await;
    assert_eq!(mismatch.value(Parameter::HostnameMatch), Some(0.0));
    assert!(
        mismatch
            .error
            .as_deref()
            .is_some_and(|e| e.contains("certificate does not match example.com")),
        "{mismatch:?}"
    );
    // Without server_name the host (an IP the certificate does not name) is checked.
    let by_ip = probes::run(&tls(port, None)).await;
    assert_eq!(by_ip.value(Parameter::HostnameMatch), Some(0.0));

    let short = tls_target(&["localhost"], 2).await;
    let days = probes::run(&tls(short, Some("localhost")))
        .await
        .value(Parameter::DaysToExpiry)
        .expect("days");
    assert!((1.9..=2.0).contains(&days), "{days}");
}

#[tokio::test]
async fn tls_against_a_plain_port_or_nothing_fails_clearly() {
    let closed = probes::run(&tls(closed_port().await, None)).await;
    assert_eq!(closed.error.as_deref(), Some("connection refused"));

    // A server that accepts and never speaks: bounded by the timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let silent = probes::run(&ProbeSpec::Tls(TlsProbe {
        host: "127.0.0.1".into(),
        port,
        server_name: None,
        timeout_ms: 300,
    }))
    .await;
    assert_eq!(silent.error.as_deref(), Some("timed out after 300 ms"));
}

/// A UDP DNS server answering from a fixed zone: A and MX for
/// `example.test`, TXT for `txt.example.test`, NXDOMAIN for the rest.
async fn dns_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buffer = vec![0; 1024];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let mut response = Message::response(request.metadata.id, request.metadata.op_code);
            let Some(query) = request.queries.first().cloned() else {
                continue;
            };
            let name = query.name().clone();
            let zone = Name::from_ascii("example.test.").expect("name");
            let txt = Name::from_ascii("txt.example.test.").expect("name");
            let records: Vec<Record> = match query.query_type() {
                RecordType::A if name == zone => vec![
                    Record::from_rdata(name.clone(), 60, RData::A(A::new(192, 0, 2, 1))),
                    Record::from_rdata(name.clone(), 60, RData::A(A::new(192, 0, 2, 2))),
                ],
                RecordType::MX if name == zone => vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::MX(MX::new(
                        10,
                        Name::from_ascii("mail.example.test.").expect("mx"),
                    )),
                )],
                RecordType::TXT if name == txt => vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
                )],
                _ => Vec::new(),
            };
            if name != zone && name != txt {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            response.add_query(query);
            response.add_answers(records);
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    addr
}

fn dns(
    server: SocketAddr,
    name: &str,
    record_type: DnsRecordType,
    expected: Option<&str>,
) -> ProbeSpec {
    ProbeSpec::Dns(DnsProbe {
        name: name.into(),
        record_type,
        expected: expected.map(str::to_owned),
        nameserver: Some(server.to_string()),
        timeout_ms: 1000,
    })
}

#[tokio::test]
async fn dns_answers_expectations_and_failures() {
    let server = dns_server().await;
    let a = probes::run(&dns(server, "example.test", DnsRecordType::A, None)).await;
    assert!(a.ok, "{a:?}");
    assert_eq!(a.value(Parameter::Answers), Some(2.0));
    assert!(a.latency_ms.is_some());

    let expected = probes::run(&dns(
        server,
        "example.test",
        DnsRecordType::A,
        Some("192.0.2.2"),
    ))
    .await;
    assert!(expected.ok, "{expected:?}");
    let wrong = probes::run(&dns(
        server,
        "example.test",
        DnsRecordType::A,
        Some("198.51.100.7"),
    ))
    .await;
    assert!(!wrong.ok);
    assert_eq!(
        wrong.error.as_deref(),
        Some("no answer contains \"198.51.100.7\" (got 192.0.2.1, 192.0.2.2)")
    );

    let mx = probes::run(&dns(
        server,
        "example.test",
        DnsRecordType::Mx,
        Some("mail.example.test"),
    ))
    .await;
    assert!(mx.ok, "{mx:?}");
    let txt = probes::run(&dns(
        server,
        "txt.example.test",
        DnsRecordType::Txt,
        Some("spf1"),
    ))
    .await;
    assert!(txt.ok, "{txt:?}");

    let none = probes::run(&dns(server, "example.test", DnsRecordType::Aaaa, None)).await;
    assert!(!none.ok);
    assert_eq!(none.value(Parameter::Answers), Some(0.0));
    assert_eq!(
        none.error.as_deref(),
        Some("no AAAA record for example.test")
    );

    let nx = probes::run(&dns(server, "nope.test", DnsRecordType::A, None)).await;
    assert_eq!(
        nx.error.as_deref(),
        Some("nope.test does not exist (NXDOMAIN)")
    );

    // Nobody answers on this port: the probe ends at its timeout.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let started = Instant::now();
    let quiet = probes::run(&ProbeSpec::Dns(DnsProbe {
        name: "example.test".into(),
        record_type: DnsRecordType::A,
        expected: None,
        nameserver: Some(silent.local_addr().expect("addr").to_string()),
        timeout_ms: 300,
    }))
    .await;
    assert_eq!(quiet.error.as_deref(), Some("timed out after 300 ms"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn portal_only_kinds_fail_on_their_own() {
    let outcome = probes::run(&ProbeSpec::Kubernetes(KubernetesProbe {
        workspace: protocol::ids::WorkspaceId(uuid_v7()),
        namespace: None,
        timeout_ms: 1000,
    }))
    .await;
    assert!(!outcome.ok);
    assert!(outcome.error.is_some_and(|e| e.contains("portal only")));
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
