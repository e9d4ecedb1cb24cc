# The operator's view: one Cloud Monitoring dashboard of the golden
# signals, alert policies with first steps for the on-call, and an uptime
# check on GET /health through the public base URL.
#
# The platform's own metrics are exported by the functions through
# OpenTelemetry (the Google Cloud exporter writes them as
# workload.googleapis.com/<instrument name>). Their names live here, in
# local.otel_metrics, and in the otel_metrics output; the Go side must
# register exactly these instruments. Charts of them stay empty until the
# functions export them.

locals {
  # The platform's OpenTelemetry metrics, as Cloud Monitoring names them.
  # Instrument names (Go): ratebill.ratelimit.decisions (Int64Counter,
  # attribute outcome = allowed | denied | error), ratebill.usage.write_failures
  # (Int64Counter, failed grouped usage writes), ratebill.usage.batch_size
  # (Int64Histogram, usage events per grouped write).
  otel_metrics = {
    ratelimit_decisions  = "workload.googleapis.com/ratebill.ratelimit.decisions"
    usage_write_failures = "workload.googleapis.com/ratebill.usage.write_failures"
    usage_batch_size     = "workload.googleapis.com/ratebill.usage.batch_size"
  }
  # Values of the outcome attribute of ratebill.ratelimit.decisions.
  ratelimit_outcomes = ["allowed", "denied", "error"]

  # Every alert policy notifies these.
  alert_channels = concat(
    var.notification_channels,
    [for c in google_monitoring_notification_channel.alert_email : c.id],
  )

  # Conditions hold this long before an incident opens.
  alert_duration = "300s"

  # Filters of the Google Cloud metrics, one place for dashboard and alerts.
  run_filter = {
    for fn, svc in local.function_services : fn => "resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${svc}\""
  }
  run_all_filter = "resource.type=\"cloud_run_revision\" AND resource.label.service_name=starts_with(\"${local.prefix}-\")"
  sql_filter     = "resource.type=\"cloudsql_database\" AND resource.label.database_id=\"${var.project_id}:${google_sql_database_instance.main.name}\""
  # Memorystore's instance_id label is the instance's full name; built from
  # known names so the dashboard is readable in a plan.
  redis_filter  = "resource.type=\"redis_instance\" AND resource.label.instance_id=\"projects/${var.project_id}/locations/${var.region}/instances/${google_redis_instance.main.name}\""
  uptime_filter = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.label.check_id=\"${google_monitoring_uptime_check_config.health.uptime_check_id}\""

  # The host the uptime check calls: the first name of the base URL.
  uptime_host = local.gateway_domains[0]
}

# --- notification ------------------------------------------------------------

resource "google_monitoring_notification_channel" "alert_email" {
  count = var.alert_email == null ? 0 : 1

  display_name = "${local.prefix} alerts: ${var.alert_email}"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.enabled]
}

# --- uptime check --------------------------------------------------------------

# GET /health through the load balancer, as a client sees it: the health
# function answers 200 {"status":"ok",...} only when Postgres and Redis
# answer, 503 {"status":"unavailable",...} otherwise. The body's nested
# checks also say "status":"ok" for each healthy dependency, so the
# matcher reads the top-level field ($.status), not a substring.
resource "google_monitoring_uptime_check_config" "health" {
  display_name     = "${local.prefix} GET /health"
  period           = "60s"
  timeout          = "10s"
  selected_regions = var.uptime_check_regions
  checker_type     = "STATIC_IP_CHECKERS"

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = local.uptime_host
    }
  }

  http_check {
    request_method = "GET"
    path           = "/health"
    port           = 443
    use_ssl        = true
    validate_ssl   = true

    accepted_response_status_codes {
      status_value = 200
    }
  }

  content_matchers {
    content = "ok"
    matcher = "MATCHES_JSON_PATH"
    json_path_matcher {
      json_path    = "$.status"
      json_matcher = "EXACT_MATCH"
    }
  }

  depends_on = [google_project_service.enabled]
}

# --- alert policies ------------------------------------------------------------

# 5xx responses as a share of all responses of one service, over 5 minutes.
resource "google_monitoring_alert_policy" "error_ratio" {
  for_each = local.function_services

  display_name          = "${each.value}: 5xx ratio above ${var.alert_thresholds.error_ratio * 100} %"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "${each.value} 5xx / all responses > ${var.alert_thresholds.error_ratio}"
    condition_threshold {
      filter             = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter[each.key]} AND metric.label.response_code_class=\"5xx\""
      denominator_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter[each.key]}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_thresholds.error_ratio
      duration           = local.alert_duration
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    subject   = "${each.value}: more than ${var.alert_thresholds.error_ratio * 100} % of responses are 5xx"
    mime_type = "text/markdown"
    content   = <<-EOT
      **${each.value}** answered more than ${var.alert_thresholds.error_ratio * 100} % of its requests with a 5xx for 5 minutes.
      The platform answers 503 when a dependency is down (Redis closed by default, Postgres always for metered calls); any other 5xx is a bug.

      First steps:
      1. Dashboard "${local.prefix} operations": is it one service or all? Did the health check or Cloud SQL alert fire too (then start there)?
      2. Logs: `resource.type="cloud_run_revision" resource.labels.service_name="${each.value}" severity>=ERROR` (one line per unexpected error, with the request id).
      3. 503s with `/health` failing: Postgres or Redis, see the health check alert. 500s right after a deploy: roll back to the previous revision
         (`gcloud run services update-traffic ${each.value} --region ${var.region} --to-revisions PREVIOUS=100`).
      4. 429s are not 5xx; 502/504 from the load balancer mean the instance did not answer in time (instance count at max_instances? cold starts?).
    EOT
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_project_service.enabled]
}

# 99th-percentile request latency of one service, over 5 minutes.
resource "google_monitoring_alert_policy" "latency_p99" {
  for_each = local.function_services

  display_name          = "${each.value}: p99 latency above ${var.alert_thresholds.latency_p99_ms} ms"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.alert_channels

  conditions {
    display_name = "${each.value} p99 request latency > ${var.alert_thresholds.latency_p99_ms} ms"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_filter[each.key]}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.latency_p99_ms
      duration        = local.alert_duration
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_99"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    subject   = "${each.value}: p99 latency above ${var.alert_thresholds.latency_p99_ms} ms"
    mime_type = "text/markdown"
    content   = <<-EOT
      The slowest 1 % of **${each.value}**'s requests took longer than ${var.alert_thresholds.latency_p99_ms} ms for 5 minutes (Cloud Run's request latency, which includes cold starts).

      First steps:
      1. Dashboard: did instance count jump (cold starts) or sit at max_instances (requests queue)? Raise max_instances only within the connection budget (docs/deploy-gcp.md).
      2. Cloud SQL CPU and connections near max_connections: pool waits. Memorystore connected clients and memory: limiter round trips.
      3. Usage batch size growing: grouped writes wait on Postgres.
      4. Trace: Cloud Trace for the service, slowest requests first.
    EOT
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_project_service.enabled]
}

# GET /health failing from the outside: Postgres or Redis down (the health
# function checks both), or the load balancer, certificate or function.
resource "google_monitoring_alert_policy" "health_check" {
  display_name          = "${local.prefix}: GET /health failing"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.alert_channels

  conditions {
    display_name = "Uptime check ${google_monitoring_uptime_check_config.health.display_name} fails from more than one region"
    condition_threshold {
      filter          = local.uptime_filter
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = local.alert_duration
      aggregations {
        alignment_period     = "120s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    subject   = "${local.prefix}: GET ${local.base_url}/health is failing"
    mime_type = "text/markdown"
    content   = <<-EOT
      `GET ${local.base_url}/health` has not answered 200 `{"status":"ok"}` from more than one region for 5 minutes.
      Metered requests are failing with 503 while Postgres or Redis is down (Redis: unless RATE_LIMIT_FAIL_OPEN is on).

      First steps:
      1. `curl -s ${local.base_url}/health`: the body names the dependency that is down (`checks.postgres`, `checks.redis`).
      2. Postgres down: see the Cloud SQL alert; `gcloud sql instances describe ${google_sql_database_instance.main.name}` (state, maintenance, failover).
      3. Redis down: `gcloud redis instances describe ${google_redis_instance.main.name} --region ${var.region}` (state, maintenance); check the server CA runbook if TLS fails after a rotation.
      4. No answer at all, or a TLS error: the load balancer or its certificate (`gcloud compute ssl-certificates list`), or the health function's logs.
    EOT
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_project_service.enabled]
}

# Cloud SQL reports itself down (database/up is 1 while it serves).
resource "google_monitoring_alert_policy" "sql_down" {
  display_name          = "${local.prefix}: Cloud SQL ${google_sql_database_instance.main.name} down"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.alert_channels

  conditions {
    display_name = "cloudsql.googleapis.com/database/up < 1"
    condition_threshold {
      filter          = "metric.type=\"cloudsql.googleapis.com/database/up\" AND ${local.sql_filter}"
      comparison      = "COMPARISON_LT"
      threshold_value = 1
      duration        = local.alert_duration
      # An instance that stops reporting is as down as one reporting 0.
      evaluation_missing_data = "EVALUATION_MISSING_DATA_ACTIVE"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MIN"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    subject   = "${local.prefix}: Cloud SQL instance ${google_sql_database_instance.main.name} is down"
    mime_type = "text/markdown"
    content   = <<-EOT
      Cloud SQL instance **${google_sql_database_instance.main.name}** has reported itself down (or nothing) for 5 minutes.
      Metered requests answer 503; nothing already acknowledged is lost.

      First steps:
      1. `gcloud sql instances describe ${google_sql_database_instance.main.name} --format='value(state)'` and `gcloud sql operations list --instance ${google_sql_database_instance.main.name} --limit 5`: maintenance, restart, failover?
      2. Cloud SQL logs: `resource.type="cloudsql_database" resource.labels.database_id="${var.project_id}:${google_sql_database_instance.main.name}"`.
      3. Disk full or out of memory: the instance's monitoring page; the disk grows automatically, memory needs a bigger db_tier.
      4. After it recovers: usage write failures and the 5xx ratio should fall back to 0 by themselves.
    EOT
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_project_service.enabled]
}

# Any failed grouped usage write: a metered request was refused (503) and
# its usage not recorded, or worse. Needs the custom metric to exist.
resource "google_monitoring_alert_policy" "usage_write_failures" {
  count = var.custom_metric_alerts ? 1 : 0

  display_name          = "${local.prefix}: usage write failures"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.alert_channels

  conditions {
    display_name = "${local.otel_metrics.usage_write_failures} > ${var.alert_thresholds.usage_write_failures} a minute"
    condition_threshold {
      filter          = "metric.type=\"${local.otel_metrics.usage_write_failures}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.usage_write_failures
      duration        = "0s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    subject   = "${local.prefix}: usage writes are failing"
    mime_type = "text/markdown"
    content   = <<-EOT
      Grouped usage writes to Postgres failed (`${local.otel_metrics.usage_write_failures}` above ${var.alert_thresholds.usage_write_failures} in a minute).
      The requests of a failed batch were answered 503 and not billed; nothing acknowledged is lost, but customers see errors.

      First steps:
      1. Is Postgres down (Cloud SQL alert, GET /health)? Then fix that first.
      2. Logs of the usage function: `resource.type="cloud_run_revision" resource.labels.service_name="${local.function_services["usage"]}" severity>=WARNING`, the error of the failed INSERT.
      3. Connections: the Cloud SQL connections chart near max_connections means pool exhaustion; lower max_instances or raise the tier (connection budget).
      4. Constraint or schema errors after a deploy: the migration job's last execution (`gcloud run jobs executions list --job ${google_cloud_run_v2_job.migrate.name} --region ${var.region}`).
    EOT
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_project_service.enabled]
}

# --- dashboard ------------------------------------------------------------------

locals {
  # One chart data set: a filter with its aggregation, plotted as a line.
  dashboard_percentiles = {
    "p50" = "REDUCE_PERCENTILE_50"
    "p95" = "REDUCE_PERCENTILE_95"
    "p99" = "REDUCE_PERCENTILE_99"
  }

  # The widgets, in reading order; laid out two to a row below.
  dashboard_widgets = [
    {
      title = "Requests/s by service and response code class"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_all_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_RATE"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["resource.label.service_name", "metric.label.response_code_class"]
              }
            }
          }
        }]
        yAxis = { label = "requests/s", scale = "LINEAR" }
      }
    },
    {
      title = "Request latency p50 / p95 / p99 by service (ms)"
      xyChart = {
        dataSets = [for name, reducer in local.dashboard_percentiles : {
          plotType           = "LINE"
          targetAxis         = "Y1"
          legendTemplate     = "${name} $${resource.labels.service_name}"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_all_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = reducer
                groupByFields      = ["resource.label.service_name"]
              }
            }
          }
        }]
        yAxis = { label = "ms", scale = "LINEAR" }
      }
    },
    {
      title = "5xx ratio by service"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilterRatio = {
              numerator = {
                filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_all_filter} AND metric.label.response_code_class=\"5xx\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.label.service_name"]
                }
              }
              denominator = {
                filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_all_filter}"
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.label.service_name"]
                }
              }
            }
          }
        }]
        thresholds = [{ value = var.alert_thresholds.error_ratio, label = "alert", color = "RED", direction = "ABOVE", targetAxis = "Y1" }]
        yAxis      = { label = "5xx / all", scale = "LINEAR" }
      }
    },
    {
      title = "Container instances by service"
      xyChart = {
        dataSets = [{
          plotType   = "STACKED_AREA"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.run_all_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MAX"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["resource.label.service_name", "metric.label.state"]
              }
            }
          }
        }]
        yAxis = { label = "instances", scale = "LINEAR" }
      }
    },
    {
      title = "Container CPU utilisation p95 by service"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/cpu/utilizations\" AND ${local.run_all_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = "REDUCE_PERCENTILE_95"
                groupByFields      = ["resource.label.service_name"]
              }
            }
          }
        }]
        yAxis = { label = "CPU (1 = all)", scale = "LINEAR" }
      }
    },
    {
      title = "Container memory utilisation p95 by service"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/memory/utilizations\" AND ${local.run_all_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = "REDUCE_PERCENTILE_95"
                groupByFields      = ["resource.label.service_name"]
              }
            }
          }
        }]
        yAxis = { label = "memory (1 = limit)", scale = "LINEAR" }
      }
    },
    {
      title = "Cloud SQL CPU utilisation"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter      = "metric.type=\"cloudsql.googleapis.com/database/cpu/utilization\" AND ${local.sql_filter}"
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN" }
            }
          }
        }]
        yAxis = { label = "CPU (1 = all)", scale = "LINEAR" }
      }
    },
    {
      title = "Cloud SQL connections (line: max_connections)"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"cloudsql.googleapis.com/database/postgresql/num_backends\" AND ${local.sql_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MEAN"
                crossSeriesReducer = "REDUCE_SUM"
              }
            }
          }
        }]
        thresholds = [{ value = local.db_max_connections, label = "max_connections", color = "RED", direction = "ABOVE", targetAxis = "Y1" }]
        yAxis      = { label = "connections", scale = "LINEAR" }
      }
    },
    {
      title = "Memorystore memory usage (share of capacity)"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter      = "metric.type=\"redis.googleapis.com/stats/memory/usage_ratio\" AND ${local.redis_filter}"
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
            }
          }
        }]
        yAxis = { label = "used / capacity", scale = "LINEAR" }
      }
    },
    {
      title = "Memorystore connected clients"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter      = "metric.type=\"redis.googleapis.com/clients/connected\" AND ${local.redis_filter}"
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
            }
          }
        }]
        yAxis = { label = "clients", scale = "LINEAR" }
      }
    },
    {
      title = "GET /health uptime check: regions passing"
      xyChart = {
        dataSets = [{
          plotType   = "LINE"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = local.uptime_filter
              aggregation = {
                alignmentPeriod    = "120s"
                perSeriesAligner   = "ALIGN_NEXT_OLDER"
                crossSeriesReducer = "REDUCE_COUNT_TRUE"
                groupByFields      = ["resource.label.host"]
              }
            }
          }
        }]
        yAxis = { label = "regions", scale = "LINEAR" }
      }
    },
    {
      title = "Rate-limit decisions/s by outcome (allowed, denied, error)"
      xyChart = {
        dataSets = [{
          plotType   = "STACKED_AREA"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"${local.otel_metrics.ratelimit_decisions}\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_RATE"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["metric.label.outcome"]
              }
            }
          }
        }]
        yAxis = { label = "decisions/s", scale = "LINEAR" }
      }
    },
    {
      title = "Usage write failures a minute"
      xyChart = {
        dataSets = [{
          plotType   = "STACKED_BAR"
          targetAxis = "Y1"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"${local.otel_metrics.usage_write_failures}\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = "REDUCE_SUM"
              }
            }
          }
        }]
        yAxis = { label = "failed writes", scale = "LINEAR" }
      }
    },
    {
      title = "Usage batch size p50 / p99 (events per grouped write)"
      xyChart = {
        dataSets = [for name in ["p50", "p99"] : {
          plotType       = "LINE"
          targetAxis     = "Y1"
          legendTemplate = name
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"${local.otel_metrics.usage_batch_size}\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = local.dashboard_percentiles[name]
              }
            }
          }
        }]
        yAxis = { label = "events", scale = "LINEAR" }
      }
    },
  ]
}

resource "google_monitoring_dashboard" "main" {
  dashboard_json = jsonencode({
    displayName = "${local.prefix} operations"
    mosaicLayout = {
      columns = 48
      tiles = [for i, w in local.dashboard_widgets : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = w
      }]
    }
  })

  depends_on = [google_project_service.enabled]
}
