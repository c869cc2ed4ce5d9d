# Least-privilege ACL policy for consul-snapshot-agent.
#   consul acl policy create -name consul-snapshot-agent -rules @consul-snapshot-agent.policy.hcl
#   consul acl token create -description "snapshot agent" -policy-name consul-snapshot-agent

# Snapshot save and restore need operator-level rights: acl = "write".
acl = "write"

# The leader lock (lock_key, default consul-snapshot/lock).
key_prefix "consul-snapshot/" {
  policy = "write"
}

# Sessions for leader election, on the node of the local Consul agent.
session_prefix "" {
  policy = "write"
}

# Registration of the service and its TTL checks.
service "consul-snapshot" {
  policy = "write"
}

# /v1/agent/self (datacenter and node name).
agent_prefix "" {
  policy = "read"
}
