# Least-privilege ACL policy for consul-snapshot-agent, checked against a real Consul 1.8.7 by
# tests/real_consul.rs (the daemon, agent --once, restore, drill and peers-json with a token
# holding only this policy).
#   consul acl policy create -name consul-snapshot-agent -rules @consul-snapshot-agent.policy.hcl
#   consul acl token create -description "snapshot agent" -policy-name consul-snapshot-agent

# GET /v1/snapshot (save) and PUT /v1/snapshot (restore, drill): acl = "write".
acl = "write"

# GET /v1/operator/raft/configuration: the drill's check that its target is not this cluster,
# and peers-json --from-consul.
operator = "read"

# The leader lock (lock_key, default consul-snapshot/lock): kv acquire, release, blocking reads.
key_prefix "consul-snapshot/" {
  policy = "write"
}

# PUT /v1/session/create, renew, destroy: sessions for leader election, on the node of the
# local Consul agent.
session_prefix "" {
  policy = "write"
}

# PUT /v1/agent/service/register, deregister, check register and update: the service and its
# TTL checks.
service "consul-snapshot" {
  policy = "write"
}

# GET /v1/agent/self (datacenter and node name).
agent_prefix "" {
  policy = "read"
}
