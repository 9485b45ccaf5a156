//! Settings of one load-generator process: where to connect, as whom, from which source addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::ocpp::Protocol;
use crate::client::ClientError;

#[derive(Debug, Clone)]
pub struct LoadGenConfig {
    /// The server's address; loopback in the benchmark.
    pub target: SocketAddr,
    /// The OCPP URL prefix, e.g. "/ocpp": charger `i` connects to `{path_prefix}/{id_prefix}{i}`.
    pub path_prefix: String,
    pub id_prefix: String,
    /// Index of this process's first charger, so several processes use distinct ids.
    pub first_index: u64,
    /// Connections this process opens.
    pub count: usize,
    pub protocol: Protocol,
    /// Basic-auth password for every charger (security profile 1); `None` sends no credentials.
    pub password: Option<String>,
    /// Source addresses, used round-robin. Each (source, destination) pair has its own ~28k ephemeral ports,
    /// so spreading over 127.0.0.2.. lifts the 28k-connections-per-destination limit of one source address.
    /// Empty: let the kernel pick.
    pub source_ips: Vec<Ipv4Addr>,
    /// Connections in the TCP-connect / upgrade / boot stages at once; bounds the boot storm so the listen
    /// backlog does not overflow (an overflow costs a 1 s SYN retransmit and says nothing about the server).
    pub max_inflight: usize,
    /// Largest message accepted from the server.
    pub max_message: usize,
    pub vendor: String,
    pub model: String,
}

impl LoadGenConfig {
    /// A config for `count` chargers at `target` with the defaults for everything else.
    pub fn new(target: SocketAddr, count: usize) -> Self {
        Self {
            target,
            path_prefix: "/ocpp".into(),
            id_prefix: "LG".into(),
            first_index: 0,
            count,
            protocol: Protocol::Ocpp16,
            password: None,
            source_ips: Vec::new(),
            max_inflight: 512,
            max_message: 1 << 20,
            vendor: "ampgate".into(),
            model: "loadgen".into(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), ClientError> {
        if self.max_inflight == 0 {
            return Err(ClientError::Config(
                "max_inflight",
                "must be at least 1".into(),
            ));
        }
        if !self.source_ips.is_empty() && !matches!(self.target.ip(), IpAddr::V4(_)) {
            return Err(ClientError::Config(
                "source_ips",
                "source addresses are IPv4 but the target is not".into(),
            ));
        }
        let bad = |s: &str| {
            s.bytes()
                .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control())
        };
        if bad(&self.vendor) || bad(&self.model) {
            return Err(ClientError::Config(
                "vendor/model",
                "must not need JSON escaping".into(),
            ));
        }
        Ok(())
    }

    /// Charge point id of connection `i` of this process.
    pub fn charger_id(&self, i: usize) -> String {
        format!("{}{}", self.id_prefix, self.first_index + i as u64)
    }

    /// Source address of connection `i`: round-robin over `source_ips`.
    pub fn source_ip(&self, i: usize) -> Option<Ipv4Addr> {
        (!self.source_ips.is_empty()).then(|| self.source_ips[i % self.source_ips.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_round_robin() {
        let mut cfg = LoadGenConfig::new("127.0.0.1:9000".parse().unwrap(), 10);
        assert_eq!(cfg.source_ip(3), None);
        cfg.source_ips = vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
        let picked: Vec<_> = (0..5)
            .map(|i| cfg.source_ip(i).unwrap().octets()[3])
            .collect();
        assert_eq!(picked, [2, 3, 2, 3, 2]);
        cfg.first_index = 100;
        assert_eq!(cfg.charger_id(7), "LG107");
        assert!(cfg.check().is_ok());
        cfg.target = "[::1]:9000".parse().unwrap();
        assert!(cfg.check().is_err());
    }
}
