//! `peers.json` for recovering a Consul cluster that lost quorum with its data intact: the
//! file Raft reads from `data_dir/raft/peers.json` at start-up to replace its configuration.
//!
//! Format per Consul's outage-recovery guide and hashicorp/raft `ReadConfigJSON` (Raft
//! protocol version 3): `[{"id": "<server ID>", "address": "<ip:port>", "non_voter": false}]`.
//! The servers come from a snapshot's `meta.json` Raft configuration (raft `Configuration`:
//! Suffrage 0 voter, 1 nonvoter, 2 staging) or from `GET /v1/operator/raft/configuration`
//! (`Servers[]`: `ID`, `Node`, `Address`, `Leader`, `Voter`). Pure: no I/O.

use serde::{Deserialize, Serialize};

use crate::archive::meta::Configuration;

/// One entry of `peers.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The server's Raft ID (its node ID, a UUID, on Raft protocol 3).
    pub id: String,
    /// Its Raft RPC address, `ip:port` (port 8300 by default).
    pub address: String,
    /// A non-voting server (Enterprise read replicas, or staging).
    pub non_voter: bool,
}

/// Why no `peers.json` can be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeersError {
    #[error("the Raft configuration lists no servers")]
    Empty,
    #[error("--exclude {0}: no server has this ID or address (servers: {1})")]
    UnknownExclude(String, String),
    #[error("no voting server would be left: at least one voter is needed to elect a leader")]
    NoVoter,
    #[error("/v1/operator/raft/configuration: {0}")]
    Decode(String),
}

/// From a snapshot's Raft configuration. Staging servers (suffrage 2, deprecated) are written
/// as voters, which is what they were becoming.
pub fn from_snapshot(c: &Configuration) -> Vec<Peer> {
    c.servers
        .iter()
        .flatten()
        .map(|s| Peer {
            id: s.id.clone(),
            address: s.address.clone(),
            non_voter: s.suffrage == 1,
        })
        .collect()
}

/// The fields of `/v1/operator/raft/configuration` this needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OperatorConfiguration {
    servers: Vec<OperatorServer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OperatorServer {
    #[serde(rename = "ID")]
    id: String,
    address: String,
    #[serde(default = "yes")]
    voter: bool,
}

fn yes() -> bool {
    true
}

/// From the body of `GET /v1/operator/raft/configuration`.
///
/// # Errors
/// [`PeersError::Decode`] when the body is not that answer.
pub fn from_operator(body: &[u8]) -> Result<Vec<Peer>, PeersError> {
    let c: OperatorConfiguration =
        serde_json::from_slice(body).map_err(|e| PeersError::Decode(e.to_string()))?;
    Ok(c.servers
        .into_iter()
        .map(|s| Peer {
            id: s.id,
            address: s.address,
            non_voter: !s.voter,
        })
        .collect())
}

/// `peers` without the servers named (by ID or address) in `exclude`: the ones gone for good.
///
/// # Errors
/// An exclude that matches no server (a typo must not go unnoticed), no server at all, or no
/// voter left.
pub fn exclude(peers: Vec<Peer>, exclude: &[String]) -> Result<Vec<Peer>, PeersError> {
    if peers.is_empty() {
        return Err(PeersError::Empty);
    }
    for x in exclude {
        if !peers.iter().any(|p| p.id == *x || p.address == *x) {
            let known: Vec<String> = peers
                .iter()
                .map(|p| format!("{} {}", p.id, p.address))
                .collect();
            return Err(PeersError::UnknownExclude(x.clone(), known.join(", ")));
        }
    }
    let left: Vec<Peer> = peers
        .into_iter()
        .filter(|p| !exclude.iter().any(|x| *x == p.id || *x == p.address))
        .collect();
    if !left.iter().any(|p| !p.non_voter) {
        return Err(PeersError::NoVoter);
    }
    Ok(left)
}

/// The file's text: a JSON array, one entry per server, as Consul's guide shows it.
pub fn render(peers: &[Peer]) -> String {
    let mut s = serde_json::to_string_pretty(peers).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// The recovery steps printed beside the file, for `n` servers.
pub fn steps(peers: &[Peer]) -> String {
    let addrs: Vec<&str> = peers.iter().map(|p| p.address.as_str()).collect();
    format!(
        "Recovering quorum with peers.json ({n} server(s): {list})
  1. Stop the Consul agent on EVERY server (all of them, not only the failed ones).
  2. Put this file at <data_dir>/raft/peers.json on each of these {n} servers (the same file
     everywhere); servers not listed must stay stopped or be wiped before they rejoin.
  3. Start the servers. Each reads peers.json, replaces its Raft configuration and deletes the
     file (it is ingested once).
  4. Wait for a leader: `consul operator raft list-peers` (or curl /v1/status/leader), then
     check `consul members` and the services.
What peers.json cannot fix: it restores quorum over the data the servers still hold; it does not
bring back lost or wrongly changed data (restore a snapshot for that), and a server listed here
whose data directory was lost rejoins empty and must catch up from the leader. IDs must be the
servers' node IDs (<data_dir>/node-id) on Raft protocol 3.
",
        n = peers.len(),
        list = addrs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::meta::Server;

    fn config() -> Configuration {
        let s = |suffrage, id: &str, addr: &str| Server {
            suffrage,
            id: id.into(),
            address: addr.into(),
        };
        Configuration {
            servers: Some(vec![
                s(0, "a", "10.0.0.1:8300"),
                s(0, "b", "10.0.0.2:8300"),
                s(1, "r", "10.0.0.9:8300"),
                s(2, "c", "10.0.0.3:8300"),
            ]),
        }
    }

    #[test]
    fn voters_non_voters_and_staging_from_a_snapshot() {
        let p = from_snapshot(&config());
        let flags: Vec<(&str, bool)> = p.iter().map(|p| (p.id.as_str(), p.non_voter)).collect();
        assert_eq!(
            flags,
            [("a", false), ("b", false), ("r", true), ("c", false)]
        );
        let text = render(&p[..1]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!([{"id": "a", "address": "10.0.0.1:8300", "non_voter": false}])
        );
    }

    #[test]
    fn excludes_by_id_or_address_and_refuses_what_cannot_work() {
        let p = from_snapshot(&config());
        let left = exclude(p.clone(), &["b".into(), "10.0.0.3:8300".into()]).unwrap();
        let ids: Vec<&str> = left.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "r"]);
        assert!(matches!(
            exclude(p.clone(), &["zz".into()]),
            Err(PeersError::UnknownExclude(..))
        ));
        assert_eq!(
            exclude(p, &["a".into(), "b".into(), "c".into()]),
            Err(PeersError::NoVoter)
        );
        assert_eq!(exclude(Vec::new(), &[]), Err(PeersError::Empty));
    }

    #[test]
    fn reads_the_operator_endpoint() {
        let body = br#"{"Servers":[{"ID":"a","Node":"n1","Address":"10.0.0.1:8300","Leader":true,"Voter":true,"ProtocolVersion":"3"},{"ID":"r","Node":"n9","Address":"10.0.0.9:8300","Leader":false,"Voter":false,"ProtocolVersion":"3"}],"Index":22}"#;
        let p = from_operator(body).unwrap();
        assert_eq!(p.len(), 2);
        assert!(!p[0].non_voter && p[1].non_voter);
        assert!(from_operator(b"{}").is_err());
        assert!(from_operator(b"not json").is_err());
    }
}
