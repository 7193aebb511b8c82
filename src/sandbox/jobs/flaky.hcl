# A service whose restart policy allows many restarts: `sim: restart-loop flaky` makes it loop.
job "flaky" {
  datacenters = ["dc1"]
  type        = "service"

  group "app" {
    count = 1

    restart {
      attempts = 10
      interval = "30m"
      delay    = "5s"
      mode     = "fail"
    }

    task "app" {
      driver = "docker"

      config {
        image = "ghcr.io/example/flaky:1.0"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
