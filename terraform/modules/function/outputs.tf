output "service_name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.fn.name
}

output "uri" {
  description = "The service's run.app URL (ingress is limited to the load balancer, so it answers 404 from outside)."
  value       = google_cloud_run_v2_service.fn.uri
}

output "service_account_email" {
  description = "Email of the function's service account."
  value       = google_service_account.fn.email
}

output "db_user" {
  description = "The function's Cloud SQL IAM database user (DB_USER)."
  value       = google_sql_user.fn.name
}
