# Development: the smallest shape that runs every function, no backups.
# Set project_id to your project.
project_id  = "my-ratebill-dev"
environment = "dev"
region      = "us-central1"

# Shared-core tier: 50 connections. Budget (see the db_connection_budget
# output): users 2x(2+2) + usage 3x(3+2) + billing 2x(2+1) + health 1x(1+1)
# = 31, migration job 2, reserved 5: 38 <= 50.
db_tier              = "db-g1-small"
db_availability_type = "ZONAL"
db_backups = {
  enabled                = false
  point_in_time_recovery = false
}

redis_tier           = "BASIC"
redis_memory_size_gb = 1

functions = {
  users   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 2 }
  usage   = { max_instances = 3, db_pool_size = 3, db_max_overflow = 2 }
  billing = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
  health  = { max_instances = 1, db_pool_size = 1, db_max_overflow = 1 }
}

log_level = "debug"

# Empty: the base URL is https://<gateway IP>.nip.io.
domains = []

# Set after connecting the repository to Cloud Build (docs/deploy-gcp.md).
# github = {
#   owner                      = "your-org"
#   name                       = "ratebill"
#   app_installation_id        = 12345678
#   oauth_token_secret_version = "projects/my-ratebill-dev/secrets/github-token/versions/1"
# }
# tfstate_bucket = "my-ratebill-dev-tfstate"
# billing_budget = { billing_account = "012345-6789AB-CDEF01", monthly_amount = 200 }
