output "base_url" {
  description = "The public base URL of the API (the load balancer). The managed certificate becomes ACTIVE some minutes after DNS resolves to gateway_ip."
  value       = local.base_url
}

output "gateway_ip" {
  description = "The load balancer's global IP address; point the DNS A records of var.domains at it."
  value       = google_compute_global_address.gateway.address
}

output "function_urls" {
  description = "Each function's own run.app URL. Ingress is limited to the load balancer, so these answer only from inside the project; clients use base_url."
  value = {
    users   = module.users.uri
    usage   = module.usage.uri
    billing = module.billing.uri
    health  = module.health.uri
  }
}

output "function_db_users" {
  description = "The functions' Cloud SQL IAM database users (DB_USER), as granted by the migration job."
  value       = local.function_db_users
}

output "migration_job" {
  description = "Name of the Cloud Run job that applies schema migrations."
  value       = google_cloud_run_v2_job.migrate.name
}

output "image_repository" {
  description = "Artifact Registry path the images are pushed to (<path>/<function>:<build id>)."
  value       = local.image_base
}

output "sql_connection_name" {
  description = "Cloud SQL instance connection name (CLOUD_SQL_INSTANCE)."
  value       = google_sql_database_instance.main.connection_name
}

output "db_connection_budget" {
  description = "Connections the functions, the migration job and the reserve may open, against the instance's max_connections."
  value = {
    by_function     = local.db_connections_by_function
    total           = local.db_connection_budget
    max_connections = local.db_max_connections
  }
}

output "build_service_account" {
  description = "Service account cloudbuild.yaml runs as (gcloud builds submit --service-account)."
  value       = google_service_account.build.id
}

output "build_substitutions" {
  description = "Substitutions cloudbuild.yaml needs; the trigger sets them, a manual `gcloud builds submit` passes them."
  value       = local.build_substitutions
}

output "otel_metrics" {
  description = "Cloud Monitoring names of the platform's OpenTelemetry metrics (monitoring.tf) that the dashboard and alerts read; the functions must export exactly these."
  value       = local.otel_metrics
}

output "monitoring" {
  description = "The operations dashboard, the GET /health uptime check and the alert policies (monitoring.tf)."
  value = {
    dashboard    = google_monitoring_dashboard.main.id
    uptime_check = google_monitoring_uptime_check_config.health.uptime_check_id
    alert_policies = concat(
      [for p in google_monitoring_alert_policy.error_ratio : p.name],
      [for p in google_monitoring_alert_policy.latency_p99 : p.name],
      [google_monitoring_alert_policy.health_check.name, google_monitoring_alert_policy.sql_down.name],
      [for p in google_monitoring_alert_policy.usage_write_failures : p.name],
    )
  }
}
