# The backend's metrics into CloudWatch: a CloudWatch agent sidecar in the
# backend task scrapes the backend's Prometheus /metrics over the task's
# shared network namespace (localhost) every 60 s and writes them as embedded
# metric format (EMF) events to the metrics log group, from which CloudWatch
# Logs extracts the metrics the agent's metric_declaration selects, into
# var.metrics_namespace with an Environment dimension (plus one label where a
# declaration names it). Counters arrive as per-scrape deltas; histograms are
# dropped by the agent. The alarms (monitoring module) use these names;
# docs/deploy.md, "Metrics", describes the pipeline.

locals {
  metrics_scrape_job = "workspaced-backend"

  # Minified, and validated as JSON at plan time.
  cloudwatch_agent_config = jsonencode(jsondecode(templatefile("${path.module}/templates/cloudwatch-agent.json.tftpl", {
    aws_region        = var.aws_region
    cluster_name      = var.cluster_name
    log_group_name    = var.metrics_log_group
    metrics_namespace = var.metrics_namespace
    scrape_job        = local.metrics_scrape_job
  })))

  # Prometheus scrape configuration (JSON is YAML).
  prometheus_scrape_config = jsonencode(jsondecode(templatefile("${path.module}/templates/prometheus-scrape.json.tftpl", {
    scrape_job   = local.metrics_scrape_job
    backend_port = local.backend_port
    environment  = var.environment
  })))

  cloudwatch_agent_container = {
    name  = "cloudwatch-agent"
    image = var.cloudwatch_agent_image
    # Not essential: a broken agent must not take the API down; the
    # metrics-missing alarm reports it, and ECS restarts it in place.
    essential         = false
    cpu               = var.cloudwatch_agent_cpu
    memory            = var.cloudwatch_agent_memory
    memoryReservation = var.cloudwatch_agent_memory_reservation
    restartPolicy     = { enabled = true, restartAttemptPeriod = 60 }
    privileged        = false
    # The agent writes its translated configuration and the Prometheus
    # configuration (from the environment) under /opt/aws/amazon-cloudwatch-agent.
    readonlyRootFilesystem = false
    linuxParameters = {
      capabilities       = { drop = ["ALL"] }
      initProcessEnabled = false
    }
    dockerSecurityOptions = ["no-new-privileges:true"]
    environment = [
      { name = "CW_CONFIG_CONTENT", value = local.cloudwatch_agent_config },
      { name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_scrape_config },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.backend_log_group
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "cloudwatch-agent"
      }
    }
  }
}
