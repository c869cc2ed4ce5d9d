# Two agents for high availability; one holds the Consul lock and takes snapshots.
#   nomad job run deploy/nomad/consul-snapshot-agent.nomad.hcl
job "consul-snapshot-agent" {
  type = "service"

  group "agent" {
    count = 2

    network {
      port "metrics" {
        to = 9464
      }
    }

    task "agent" {
      driver = "docker"

      config {
        image = "consul-snapshot-agent:latest"
        ports = ["metrics"]
        args  = ["agent", "--config-dir", "/local", "--metrics-addr", "0.0.0.0:9464"]
      }

      template {
        destination = "local/snapshot-agent.json"
        data        = <<-JSON
          {"snapshot_agent": {"snapshot": {"interval": "1h", "retain": 48},
           "aws_storage": {"s3_bucket": "my-consul-backups", "s3_region": "eu-west-1"}}}
        JSON
      }

      template {
        destination = "secrets/env"
        env         = true
        data        = <<-ENV
          CONSUL_HTTP_ADDR=http://{{ env "attr.unique.network.ip-address" }}:8500
          CONSUL_HTTP_TOKEN={{ with nomadVar "nomad/jobs/consul-snapshot-agent" }}{{ .consul_token }}{{ end }}
        ENV
      }

      resources {
        cpu    = 500
        memory = 256
      }

      service {
        name = "consul-snapshot-agent-metrics"
        port = "metrics"
        # /health reports (alerting): 503 while the agent cannot store snapshots.
        check {
          name     = "health"
          type     = "http"
          path     = "/health"
          interval = "30s"
          timeout  = "5s"
        }
        # /live restarts: only a process that stopped answering is restarted.
        check {
          name     = "live"
          type     = "http"
          path     = "/live"
          interval = "30s"
          timeout  = "5s"
          check_restart {
            limit = 6
            grace = "60s"
          }
        }
      }
    }
  }
}
