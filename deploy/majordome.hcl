# majordome on the cluster it manages. Two instances on different nodes: the holder of a Consul session
# lock (state.leader) acts, the other stands by warm and takes over when the lock frees. State lives in
# Consul KV (state.backend: consul), never in the PostgreSQL cluster majordome is meant to fail over.
#
# Secrets come from Consul KV under secrets/majordome/ (written once by an administrator):
#   secrets/majordome/<section>/<key>    the config's secret values (matrix/access_token, ...)
#   secrets/majordome/<file name>        TLS files for Nomad and Consul (nomad-ca.crt, ...)
# Consul ACL token of the task: read secrets/majordome/; write majordome/ (state and the leader lock);
# session write. Nomad ACL token: what the commands do (jobs, allocations, nodes).
#
# Checked by test/deploy/nomad-job.test.ts (keys against config.example.yml, health path against the
# server, kill_timeout against timings.shutdown_grace, the image's HEALTHCHECK against the check).

variable "image" {
  type        = string
  description = "The majordome image, built from the repository's Dockerfile."
  default     = "majordome:0.1.0"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "infrastructure_repository" {
  type        = string
  description = "The repository of job files that !deploy reads (go-getter source)."
  default     = "git::https://git.deuxfleurs.fr/Deuxfleurs/nixcfg.git"
}

job "majordome" {
  datacenters = var.datacenters
  type        = "service"
  priority    = 80

  # One instance at a time: the other keeps the lock (or takes it) while this one is replaced.
  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "20s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "majordome" {
    count = 2

    # A dead node must not take both instances with it.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {
        to = 9180
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "10m"
      unlimited      = true
    }

    # /health answers 200 for a healthy leader and for a healthy standby (the role is in the body).
    service {
      name = "majordome"
      port = "http"
      tags = ["chatops"]

      check {
        name     = "majordome health"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "60s"
        }
      }
    }

    task "majordome" {
      driver = "docker"

      # SIGTERM: stop taking commands, finish or hand over what is in flight, release the lock. Longer
      # than timings.shutdown_grace; Nomad clients cap it at their max_kill_timeout (30s by default).
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      config {
        image = var.image
        ports = ["http"]
        args  = ["run", "/local/config.yml"]
        # tini as PID 1: reaps the git processes and forwards signals.
        init = true
      }

      # The job files !deploy reads, fetched when the allocation starts. nomad.git_pull keeps them
      # current, but needs git in the image (not in the default one).
      artifact {
        source      = var.infrastructure_repository
        destination = "local/infrastructure"
      }

      template {
        destination = "secrets/majordome.env"
        env         = true
        splay       = "30s"
        data        = <<-EOH
          MAJORDOME_MATRIX_TOKEN={{ key "secrets/majordome/matrix/access_token" }}
          MAJORDOME_LDAP_PASSWORD={{ key "secrets/majordome/ldap/bind_password" }}
          MAJORDOME_NOMAD_TOKEN={{ key "secrets/majordome/nomad/token" }}
          MAJORDOME_CONSUL_TOKEN={{ key "secrets/majordome/consul/token" }}
          MAJORDOME_PG_PASSWORD={{ key "secrets/majordome/postgres/password" }}
          MAJORDOME_GARAGE_ADMIN_TOKEN={{ key "secrets/majordome/garage/admin_token" }}
        EOH
      }

      template {
        destination = "secrets/nomad-ca.crt"
        data        = "{{ key \"secrets/majordome/nomad-ca.crt\" }}"
      }

      template {
        destination = "secrets/nomad-client.crt"
        data        = "{{ key \"secrets/majordome/nomad-client.crt\" }}"
      }

      template {
        destination = "secrets/nomad-client.key"
        data        = "{{ key \"secrets/majordome/nomad-client.key\" }}"
        perms       = "0400"
        uid         = 1000
        gid         = 1000
      }

      template {
        destination = "secrets/consul-ca.crt"
        data        = "{{ key \"secrets/majordome/consul-ca.crt\" }}"
      }

      template {
        destination = "secrets/consul-client.crt"
        data        = "{{ key \"secrets/majordome/consul-client.crt\" }}"
      }

      template {
        destination = "secrets/consul-client.key"
        data        = "{{ key \"secrets/majordome/consul-client.key\" }}"
        perms       = "0400"
        uid         = 1000
        gid         = 1000
      }

      # The configuration (see config.example.yml for every key). ${NAME} is read from the environment
      # by majordome when it starts ($${ is HCL's escape for a literal ${).
      template {
        destination = "local/config.yml"
        splay       = "30s"
        data        = <<-EOH
          matrix:
            homeserver_url: https://matrix.deuxfleurs.fr
            access_token: $${MAJORDOME_MATRIX_TOKEN}
            user_domain: deuxfleurs.fr
            command_rooms:
              - "!ops-room-id:deuxfleurs.fr"
            alert_room: "!alerts-room-id:deuxfleurs.fr"
            encryption: false
          directory:
            kind: ldap
          ldap:
            url: ldap://bottin.service.2.cluster.deuxfleurs.fr:389
            bind_dn: cn=majordome,ou=services,ou=users,dc=deuxfleurs,dc=fr
            bind_password: $${MAJORDOME_LDAP_PASSWORD}
          nomad:
            address: https://nomad.service.2.cluster.deuxfleurs.fr:4646
            token: $${MAJORDOME_NOMAD_TOKEN}
            tls:
              ca_file: /secrets/nomad-ca.crt
              cert_file: /secrets/nomad-client.crt
              key_file: /secrets/nomad-client.key
            jobs_dir: /local/infrastructure/cluster/prod/app
            git_pull: false
          consul:
            address: https://consul.service.2.cluster.deuxfleurs.fr:8501
            token: $${MAJORDOME_CONSUL_TOKEN}
            tls:
              ca_file: /secrets/consul-ca.crt
              cert_file: /secrets/consul-client.crt
              key_file: /secrets/consul-client.key
          postgres:
            host: psql-proxy.service.2.cluster.deuxfleurs.fr
            port: 5432
            user: majordome
            password: $${MAJORDOME_PG_PASSWORD}
          garage:
            admin_url: http://garage-admin.service.2.cluster.deuxfleurs.fr:3903
            admin_token: $${MAJORDOME_GARAGE_ADMIN_TOKEN}
            s3_endpoint: https://garage.deuxfleurs.fr
          stolon:
            prefix: stolon/cluster
            clusters:
              - pg
          state:
            backend: consul
            consul_prefix: majordome/state/
            leader:
              enabled: true
              lock_key: majordome/leader
              session_ttl: 15s
              lock_delay: 15s
          http:
            # Every interface of the container: Consul's check comes through the mapped port.
            listen: 0.0.0.0:9180
          timings:
            shutdown_grace: 25s
          policies_dir: /app/policies
          log:
            level: info
        EOH
      }

      resources {
        cpu        = 200
        memory     = 256
        memory_max = 512
      }
    }
  }
}
