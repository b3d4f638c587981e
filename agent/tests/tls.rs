//! A `https` portal: the agent speaks wss with rustls on ring.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{CancellationToken, Config, TokenSource};
use futures_util::{SinkExt, StreamExt};
use protocol::agent::{AgentMessage, PortalMessage};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const WAIT: Duration = Duration::from_secs(15);

// tungstenite's handshake callback returns its HTTP response as the error.
#[allow(clippy::result_large_err)]
#[tokio::test]
async fn the_agent_connects_over_tls_to_a_portal_it_trusts() {
    let ring = || Arc::new(rustls::crypto::ring::default_provider());
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the portal");
    let client = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = Config::new(
        format!("https://localhost:{port}").parse().expect("url"),
        TokenSource::Value("tls-token".into()),
    );
    config.tls = Some(Arc::new(client));
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));

    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the agent dials in time")
        .expect("accept");
    let tls = acceptor.accept(tcp).await.expect("TLS handshake");
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let mut socket =
        tokio_tungstenite::accept_hdr_async(tls, move |req: &Request, res: Response| {
            *record.lock().expect("lock") = Some((
                req.uri().path().to_owned(),
                req.headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
            Ok(res)
        })
        .await
        .expect("WebSocket handshake");
    assert_eq!(
        seen.lock().expect("lock").clone(),
        Some((
            protocol::agent::CONNECT_PATH.to_owned(),
            Some("Bearer tls-token".to_owned())
        ))
    );

    let welcome = serde_json::to_string(&PortalMessage::Welcome {
        heartbeat_interval_secs: 5,
    })
    .expect("json");
    socket.send(Message::text(welcome)).await.expect("send");
    let heartbeat = loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a heartbeat in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            break serde_json::from_str::<AgentMessage>(text.as_str()).expect("message");
        }
    };
    assert!(
        matches!(heartbeat, AgentMessage::Heartbeat { .. }),
        "{heartbeat:?}"
    );

    stop.cancel();
    let _ = tokio::time::timeout(WAIT, running).await.expect("stops");
}
