# The operator's view (monitoring.tf): the dashboard, the alert policies and
# the GET /health uptime check, checked on the plan.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "prod"
  domains     = ["api.example.com"]
}

# The check's ID is computed; the health policy and a dashboard chart
# filter on it.
override_resource {
  target          = google_monitoring_uptime_check_config.health
  override_during = plan
  values = {
    uptime_check_id = "ratebill-prod-get-health-a1b2c3"
  }
}

run "alerts_notify_and_explain" {
  command = plan

  variables {
    notification_channels = ["projects/ratebill-test/notificationChannels/123"]
    alert_email           = "oncall@example.com"
    custom_metric_alerts  = true
  }

  override_resource {
    target          = google_monitoring_notification_channel.alert_email
    override_during = plan
    values = {
      id = "projects/ratebill-test/notificationChannels/456"
    }
  }

  # Every policy: both channels, markdown documentation with first steps.
  assert {
    condition = alltrue([
      for p in concat(
        values(google_monitoring_alert_policy.error_ratio),
        values(google_monitoring_alert_policy.latency_p99),
        [google_monitoring_alert_policy.health_check, google_monitoring_alert_policy.sql_down],
        google_monitoring_alert_policy.usage_write_failures,
      ) : p.notification_channels == tolist(["projects/ratebill-test/notificationChannels/123", "projects/ratebill-test/notificationChannels/456"])
    ])
    error_message = "Every alert policy must notify var.notification_channels and the alert_email channel."
  }
  assert {
    condition = alltrue([
      for p in concat(
        values(google_monitoring_alert_policy.error_ratio),
        values(google_monitoring_alert_policy.latency_p99),
        [google_monitoring_alert_policy.health_check, google_monitoring_alert_policy.sql_down],
        google_monitoring_alert_policy.usage_write_failures,
      ) : length(p.documentation) == 1 && p.documentation[0].mime_type == "text/markdown" && strcontains(p.documentation[0].content, "First steps:")
    ])
    error_message = "Every alert policy needs markdown documentation with the on-call's first steps."
  }
  assert {
    condition     = google_monitoring_notification_channel.alert_email[0].type == "email" && google_monitoring_notification_channel.alert_email[0].labels.email_address == "oncall@example.com"
    error_message = "alert_email must create an e-mail channel for that address."
  }
  # A policy per function for the 5xx ratio and p99 latency.
  assert {
    condition     = toset(keys(google_monitoring_alert_policy.error_ratio)) == toset(["users", "usage", "billing", "health"]) && toset(keys(google_monitoring_alert_policy.latency_p99)) == toset(["users", "usage", "billing", "health"])
    error_message = "Each function needs its own 5xx ratio and p99 latency policy."
  }
  assert {
    condition = alltrue([
      for fn, p in google_monitoring_alert_policy.error_ratio :
      strcontains(p.conditions[0].condition_threshold[0].filter, "metric.type=\"run.googleapis.com/request_count\"") &&
      strcontains(p.conditions[0].condition_threshold[0].filter, "resource.label.service_name=\"ratebill-prod-${fn}\"") &&
      strcontains(p.conditions[0].condition_threshold[0].filter, "metric.label.response_code_class=\"5xx\"") &&
      strcontains(p.conditions[0].condition_threshold[0].denominator_filter, "resource.label.service_name=\"ratebill-prod-${fn}\"") &&
      !strcontains(p.conditions[0].condition_threshold[0].denominator_filter, "5xx") &&
      p.conditions[0].condition_threshold[0].comparison == "COMPARISON_GT" &&
      p.conditions[0].condition_threshold[0].threshold_value == 0.05 &&
      p.conditions[0].condition_threshold[0].duration == "300s"
    ])
    error_message = "The 5xx ratio policy must divide the service's 5xx responses by all its responses, above 0.05 for 5 minutes."
  }
  assert {
    condition = alltrue([
      for fn, p in google_monitoring_alert_policy.latency_p99 :
      strcontains(p.conditions[0].condition_threshold[0].filter, "metric.type=\"run.googleapis.com/request_latencies\"") &&
      strcontains(p.conditions[0].condition_threshold[0].filter, "resource.label.service_name=\"ratebill-prod-${fn}\"") &&
      p.conditions[0].condition_threshold[0].aggregations[0].cross_series_reducer == "REDUCE_PERCENTILE_99" &&
      p.conditions[0].condition_threshold[0].threshold_value == 2000 &&
      p.conditions[0].condition_threshold[0].duration == "300s"
    ])
    error_message = "The latency policy must compare the service's p99 request latency with 2000 ms for 5 minutes."
  }
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.health_check.conditions[0].condition_threshold[0].filter, "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\"") &&
      strcontains(google_monitoring_alert_policy.health_check.conditions[0].condition_threshold[0].filter, "metric.label.check_id=\"ratebill-prod-get-health-a1b2c3\"") &&
      google_monitoring_alert_policy.health_check.conditions[0].condition_threshold[0].aggregations[0].cross_series_reducer == "REDUCE_COUNT_FALSE"
    )
    error_message = "The health policy must count failing regions of the /health uptime check."
  }
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.sql_down.conditions[0].condition_threshold[0].filter, "metric.type=\"cloudsql.googleapis.com/database/up\"") &&
      strcontains(google_monitoring_alert_policy.sql_down.conditions[0].condition_threshold[0].filter, "resource.label.database_id=\"ratebill-test:ratebill-prod-pg\"") &&
      google_monitoring_alert_policy.sql_down.conditions[0].condition_threshold[0].comparison == "COMPARISON_LT" &&
      google_monitoring_alert_policy.sql_down.conditions[0].condition_threshold[0].threshold_value == 1
    )
    error_message = "The Cloud SQL policy must fire when this instance's database/up drops below 1."
  }
  assert {
    condition = (
      google_monitoring_alert_policy.usage_write_failures[0].conditions[0].condition_threshold[0].filter == "metric.type=\"workload.googleapis.com/ratebill.usage.write_failures\"" &&
      google_monitoring_alert_policy.usage_write_failures[0].conditions[0].condition_threshold[0].comparison == "COMPARISON_GT" &&
      google_monitoring_alert_policy.usage_write_failures[0].conditions[0].condition_threshold[0].threshold_value == 0
    )
    error_message = "The usage write failure policy must fire on any workload.googleapis.com/ratebill.usage.write_failures."
  }
}

# Without channels, policies still exist (incidents open in the console);
# the custom metric policy waits for custom_metric_alerts.
run "defaults_no_channels_no_custom_metric_alert" {
  command = plan

  assert {
    condition     = length(google_monitoring_notification_channel.alert_email) == 0 && alltrue([for p in values(google_monitoring_alert_policy.error_ratio) : length(p.notification_channels) == 0])
    error_message = "No channel is created or attached by default."
  }
  assert {
    condition     = length(google_monitoring_alert_policy.usage_write_failures) == 0
    error_message = "The policy on a custom metric must wait for custom_metric_alerts (the API refuses a policy on an unknown metric)."
  }
}

run "dashboard" {
  command = plan

  assert {
    condition     = length(jsondecode(google_monitoring_dashboard.main.dashboard_json).mosaicLayout.tiles) == 14
    error_message = "The dashboard must have 14 tiles."
  }
  assert {
    condition     = jsondecode(google_monitoring_dashboard.main.dashboard_json).displayName == "ratebill-prod operations"
    error_message = "The dashboard is named <prefix> operations."
  }
  # Tiles do not overlap and fit the 48-column grid.
  assert {
    condition = length(distinct([
      for t in jsondecode(google_monitoring_dashboard.main.dashboard_json).mosaicLayout.tiles : "${t.xPos},${t.yPos}"
      ])) == 14 && alltrue([
      for t in jsondecode(google_monitoring_dashboard.main.dashboard_json).mosaicLayout.tiles : t.xPos + t.width <= 48
    ])
    error_message = "Tiles must not overlap and must fit 48 columns."
  }
  assert {
    condition = alltrue([
      for m in [
        "workload.googleapis.com/ratebill.ratelimit.decisions",
        "workload.googleapis.com/ratebill.usage.write_failures",
        "workload.googleapis.com/ratebill.usage.batch_size",
        "run.googleapis.com/request_count",
        "run.googleapis.com/request_latencies",
        "run.googleapis.com/container/instance_count",
        "run.googleapis.com/container/cpu/utilizations",
        "run.googleapis.com/container/memory/utilizations",
        "cloudsql.googleapis.com/database/cpu/utilization",
        "cloudsql.googleapis.com/database/postgresql/num_backends",
        "redis.googleapis.com/stats/memory/usage_ratio",
        "redis.googleapis.com/clients/connected",
      ] : strcontains(google_monitoring_dashboard.main.dashboard_json, "metric.type=\\\"${m}\\\"")
    ])
    error_message = "The dashboard must chart the golden signals and the platform's three OpenTelemetry metrics."
  }
  assert {
    condition     = output.otel_metrics == { ratelimit_decisions = "workload.googleapis.com/ratebill.ratelimit.decisions", usage_write_failures = "workload.googleapis.com/ratebill.usage.write_failures", usage_batch_size = "workload.googleapis.com/ratebill.usage.batch_size" }
    error_message = "The metric names the Go side exports must not change silently."
  }
  # The functions export them: OTEL_EXPORTER=gcp, with the writer role.
  assert {
    condition     = local.function_env.OTEL_EXPORTER == "gcp"
    error_message = "The functions must export their OpenTelemetry metrics and traces to Google Cloud (OTEL_EXPORTER=gcp)."
  }
  # p50, p95 and p99 of the request latencies.
  assert {
    condition = toset([
      for d in jsondecode(google_monitoring_dashboard.main.dashboard_json).mosaicLayout.tiles[1].widget.xyChart.dataSets :
      d.timeSeriesQuery.timeSeriesFilter.aggregation.crossSeriesReducer
    ]) == toset(["REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_99"])
    error_message = "The latency chart must show p50, p95 and p99."
  }
}

run "uptime_check_targets_public_health" {
  command = plan

  assert {
    condition = (
      google_monitoring_uptime_check_config.health.monitored_resource[0].type == "uptime_url" &&
      google_monitoring_uptime_check_config.health.monitored_resource[0].labels.host == "api.example.com" &&
      google_monitoring_uptime_check_config.health.http_check[0].path == "/health" &&
      google_monitoring_uptime_check_config.health.http_check[0].request_method == "GET" &&
      google_monitoring_uptime_check_config.health.http_check[0].use_ssl &&
      google_monitoring_uptime_check_config.health.http_check[0].validate_ssl &&
      google_monitoring_uptime_check_config.health.http_check[0].port == 443
    )
    error_message = "The uptime check must GET https://<first domain>/health with a valid certificate."
  }
  assert {
    condition = (
      google_monitoring_uptime_check_config.health.http_check[0].accepted_response_status_codes[0].status_value == 200 &&
      google_monitoring_uptime_check_config.health.content_matchers[0].matcher == "MATCHES_JSON_PATH" &&
      google_monitoring_uptime_check_config.health.content_matchers[0].json_path_matcher[0].json_path == "$.status" &&
      google_monitoring_uptime_check_config.health.content_matchers[0].content == "ok"
    )
    error_message = "The uptime check must accept only 200 with a top-level \"status\":\"ok\"."
  }
  assert {
    condition     = length(google_monitoring_uptime_check_config.health.selected_regions) >= 3
    error_message = "The uptime check runs from at least three regions."
  }
}

# Without domains the check calls the nip.io name of the base URL.
run "uptime_check_follows_base_url" {
  command = plan

  variables {
    domains = []
  }

  override_resource {
    target          = google_compute_global_address.gateway
    override_during = plan
    values = {
      address = "203.0.113.7"
    }
  }

  assert {
    condition     = google_monitoring_uptime_check_config.health.monitored_resource[0].labels.host == "203.0.113.7.nip.io" && output.base_url == "https://203.0.113.7.nip.io"
    error_message = "The uptime check must call the host of the base URL."
  }
}

run "rejects_error_ratio_above_one" {
  command = plan
  variables {
    alert_thresholds = { error_ratio = 5 }
  }
  expect_failures = [var.alert_thresholds]
}

run "rejects_zero_latency_threshold" {
  command = plan
  variables {
    alert_thresholds = { latency_p99_ms = 0 }
  }
  expect_failures = [var.alert_thresholds]
}

run "rejects_negative_write_failure_threshold" {
  command = plan
  variables {
    alert_thresholds = { usage_write_failures = -1 }
  }
  expect_failures = [var.alert_thresholds]
}

run "rejects_bad_notification_channel" {
  command = plan
  variables {
    notification_channels = ["pagerduty"]
  }
  expect_failures = [var.notification_channels]
}

run "rejects_bad_alert_email" {
  command = plan
  variables {
    alert_email = "not-an-address"
  }
  expect_failures = [var.alert_email]
}

run "rejects_too_few_uptime_regions" {
  command = plan
  variables {
    uptime_check_regions = ["USA", "EUROPE"]
  }
  expect_failures = [var.uptime_check_regions]
}
