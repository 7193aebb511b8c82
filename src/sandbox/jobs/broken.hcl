# A service whose image cannot be pulled: the sandbox makes every placement of it fail.
job "broken" {
  datacenters = ["dc1"]
  type        = "service"

  group "app" {
    count = 1
    task "app" {
      driver = "docker"
      config {
        image = "registry.example.org/does-not-exist:latest"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
