# Production: high availability, backups with point-in-time recovery,
# warm instances. Set project_id, domains and github.
project_id  = "my-ratebill-prod"
environment = "prod"
region      = "us-central1"

# 2 vCPUs, 7.5 GiB: 400 connections. Budget: users 6x(5+5) + usage
# 20x(5+5) + billing 4x(5+5) + health 2x(2+1) = 306, migration job 2,
# reserved 5: 313 <= 400.
db_tier              = "db-custom-2-7680"
db_availability_type = "REGIONAL"
db_disk_size_gb      = 20
db_backups = {
  enabled                = true
  point_in_time_recovery = true
  retained_backups       = 14
  log_retention_days     = 7
}
deletion_protection = true

redis_tier           = "STANDARD_HA"
redis_memory_size_gb = 1

functions = {
  users   = { min_instances = 1, max_instances = 6, db_pool_size = 5, db_max_overflow = 5 }
  usage   = { min_instances = 2, max_instances = 20, db_pool_size = 5, db_max_overflow = 5, cpu = "2", memory = "1Gi" }
  billing = { min_instances = 1, max_instances = 4, db_pool_size = 5, db_max_overflow = 5 }
  health  = { min_instances = 0, max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
}

log_level = "info"

# The API's host name(s); point their A records at the gateway_ip output.
domains = ["api.example.com"]

# Second-generation connection (docs/deploy-gcp.md, step 6): the Cloud Build
# GitHub App's installation ID and a GitHub token in Secret Manager. Every
# prod deploy waits for an approval (require_approval defaults to true here).
github = {
  owner                      = "your-org"
  name                       = "ratebill"
  branch                     = "^main$"
  app_installation_id        = 12345678
  oauth_token_secret_version = "projects/my-ratebill-prod/secrets/github-token/versions/1"
}
tfstate_bucket = "my-ratebill-prod-tfstate"

# Alerts at 50/90/100 % of the month's budget (set your billing account).
billing_budget = {
  billing_account = "012345-6789AB-CDEF01"
  monthly_amount  = 1500
}

# Who is told about alerts (monitoring.tf, docs/deploy-gcp.md "Monitoring").
# alert_email           = "oncall@example.com"
# notification_channels = ["projects/my-ratebill-prod/notificationChannels/1234567890"]
# After the functions export their OpenTelemetry metrics once:
# custom_metric_alerts = true
