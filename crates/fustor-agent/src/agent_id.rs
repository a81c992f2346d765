//! The agent's identity (`wire-protocol.md` §2): configured `agent_id`, else the local IPv4
//! address the OS would use to reach the first sender's host, else the hostname.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

/// Pure decision, with the two probes injected so the fallbacks can be tested.
pub fn choose_agent_id(
    configured: Option<&str>,
    endpoint: Option<&str>,
    local_ip_toward: impl Fn(&str) -> Option<IpAddr>,
    hostname: impl Fn() -> String,
) -> String {
    if let Some(id) = configured.map(str::trim).filter(|s| !s.is_empty()) {
        return id.to_string();
    }
    if let Some(ip) = endpoint.and_then(host_of).and_then(|h| local_ip_toward(&h)) {
        return ip.to_string();
    }
    hostname()
}

/// The system's answer.
pub fn resolve_agent_id(configured: Option<&str>, endpoint: Option<&str>) -> String {
    choose_agent_id(configured, endpoint, local_ipv4_toward, hostname)
}

/// Host part of a URL (`http://fusion:18888/x` → `fusion`).
pub fn host_of(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// UDP "connect" to port 80 of the host: no packet is sent, but the kernel picks the route and
/// thereby the local address.
pub fn local_ipv4_toward(host: &str) -> Option<IpAddr> {
    let target: SocketAddr = (host, 80)
        .to_socket_addrs()
        .ok()?
        .find(SocketAddr::is_ipv4)?;
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect(target).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_wins() {
        let id = choose_agent_id(Some("agent-a"), Some("http://x:1"), |_| None, || "h".into());
        assert_eq!(id, "agent-a");
    }

    #[test]
    fn local_address_toward_the_sender_host() {
        let id = choose_agent_id(
            None,
            Some("http://127.0.0.1:18888"),
            local_ipv4_toward,
            || "h".into(),
        );
        assert_eq!(id, "127.0.0.1");
    }

    #[test]
    fn hostname_when_the_host_cannot_be_resolved() {
        let id = choose_agent_id(
            Some("  "),
            Some("http://no-such-host.invalid:18888"),
            local_ipv4_toward,
            || "my-host".into(),
        );
        assert_eq!(id, "my-host");
        assert_eq!(choose_agent_id(None, None, |_| None, || "h2".into()), "h2");
        assert!(!hostname().is_empty());
    }

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(host_of("http://fusion:18888/x").as_deref(), Some("fusion"));
        assert_eq!(host_of("http://[::1]:1").as_deref(), Some("::1"));
        assert_eq!(host_of("nonsense"), None);
    }
}
