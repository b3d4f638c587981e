//! DNS record: one query over UDP to the given nameserver, or the first
//! nameserver in `/etc/resolv.conf`. A monitor wants to know what that
//! server answers now, so there is no cache, retry or search-domain logic.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use protocol::views::monitoring::{DnsProbe, DnsRecordType, Parameter, ProbeOutcome};
use tokio::net::UdpSocket;

const DNS_PORT: u16 = 53;
/// Plain DNS over UDP without EDNS fits in 512 bytes; leave room for
/// servers that send more anyway.
const MAX_ANSWER: usize = 4096;
const RESOLV_CONF: &str = "/etc/resolv.conf";

pub(crate) async fn run(probe: &DnsProbe) -> ProbeOutcome {
    match tokio::time::timeout(crate::limit(probe.timeout_ms), check(probe)).await {
        Err(_) => crate::timed_out(probe.timeout_ms),
        Ok(Err(error)) => ProbeOutcome::failed(error),
        Ok(Ok(outcome)) => outcome,
    }
}

fn record_type(kind: DnsRecordType) -> RecordType {
    match kind {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Txt => RecordType::TXT,
        DnsRecordType::Ns => RecordType::NS,
    }
}

/// `ip`, `ip:port` or `[v6]:port`.
pub(crate) fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| format!("nameserver {text:?} is not an IP address or ip:port"))
}

/// The first `nameserver` line of a resolv.conf.
fn system_nameserver(conf: &str) -> Option<SocketAddr> {
    conf.lines().find_map(|line| {
        let address = line.trim().strip_prefix("nameserver")?.trim();
        // Link-local IPv6 servers carry a zone (`fe80::1%eth0`) we cannot
        // use here; skip them.
        address
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
    })
}

async fn nameserver(probe: &DnsProbe) -> Result<SocketAddr, String> {
    match &probe.nameserver {
        Some(text) if !text.trim().is_empty() => parse_nameserver(text),
        _ => {
            let conf = tokio::fs::read_to_string(RESOLV_CONF)
                .await
                .map_err(|err| format!("reading {RESOLV_CONF}: {err}"))?;
            system_nameserver(&conf).ok_or_else(|| format!("no nameserver in {RESOLV_CONF}"))
        }
    }
}

async fn check(probe: &DnsProbe) -> Result<ProbeOutcome, String> {
    let server = nameserver(probe).await?;
    let name: Name = probe
        .name
        .trim()
        .parse()
        .map_err(|err| format!("{:?} is not a DNS name: {err}", probe.name))?;
    let wanted = record_type(probe.record_type);
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, wanted));
    let id = query.metadata.id;
    let packet = query
        .to_vec()
        .map_err(|err| format!("encoding the query: {err}"))?;

    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|err| format!("opening a UDP socket: {err}"))?;
    socket
        .connect(server)
        .await
        .map_err(|err| format!("{server}: {}", crate::io_message(&err)))?;
    let start = Instant::now();
    socket
        .send(&packet)
        .await
        .map_err(|err| format!("{server}: {}", crate::io_message(&err)))?;
    let mut buffer = vec![0; MAX_ANSWER];
    // Stray or spoofed datagrams with another id are skipped; the timeout
    // around the whole probe bounds the wait.
    let response = loop {
        let len = socket
            .recv(&mut buffer)
            .await
            .map_err(|err| format!("{server}: {}", crate::io_message(&err)))?;
        match Message::from_vec(&buffer[..len]) {
            Ok(message) if message.metadata.id == id => break message,
            _ => continue,
        }
    };
    let latency_ms = crate::elapsed_ms(start);

    let code = response.metadata.response_code;
    if code != ResponseCode::NoError {
        let error = if code == ResponseCode::NXDomain {
            format!("{} does not exist (NXDOMAIN)", probe.name)
        } else {
            format!("{server} answered {code}")
        };
        return Ok(ProbeOutcome {
            latency_ms: Some(latency_ms),
            values: [(Parameter::Answers, 0.0)].into(),
            ..ProbeOutcome::failed(error)
        });
    }
    let answers: Vec<String> = response
        .answers
        .iter()
        .filter(|record| record.record_type() == wanted)
        .map(|record| record.data.to_string())
        .collect();
    let error = if answers.is_empty() {
        Some(format!(
            "no {} record for {}",
            probe.record_type.as_str(),
            probe.name
        ))
    } else {
        match &probe.expected {
            Some(expected)
                if !expected.is_empty() && !answers.iter().any(|a| a.contains(expected)) =>
            {
                Some(format!(
                    "no answer contains {expected:?} (got {})",
                    answers.join(", ")
                ))
            }
            _ => None,
        }
    };
    Ok(ProbeOutcome {
        ok: error.is_none(),
        latency_ms: Some(latency_ms),
        values: [(Parameter::Answers, answers.len() as f64)].into(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_parse_with_and_without_port() {
        assert_eq!(
            parse_nameserver("1.1.1.1"),
            Ok("1.1.1.1:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("[::1]:5353"),
            Ok("[::1]:5353".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("::1"),
            Ok("[::1]:53".parse().expect("addr"))
        );
        assert!(parse_nameserver("dns.google").is_err());
    }

    #[test]
    fn resolv_conf_first_usable_nameserver() {
        let conf = "# comment\nsearch example.com\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n";
        assert_eq!(
            system_nameserver(conf),
            Some("10.0.0.2:53".parse().expect("addr"))
        );
        assert_eq!(system_nameserver("search x\n"), None);
    }
}
