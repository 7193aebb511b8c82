# Three groups: an API, a queue worker and a scheduler. Used by the deploy benchmark too.
job "worker" {
  datacenters = ["dc1"]
  type        = "service"

  group "api" {
    count = 2
    task "api" {
      driver = "docker"
      config {
        image = "ghcr.io/example/api:2.4.1"
      }
      resources {
        cpu    = 300
        memory = 256
      }
    }
  }

  group "queue" {
    count = 1
    task "worker" {
      driver = "docker"
      config {
        image = "ghcr.io/example/worker:2.4.1"
      }
      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  group "cron" {
    count = 1
    task "scheduler" {
      driver = "docker"
      config {
        image = "ghcr.io/example/scheduler:2.4.1"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
