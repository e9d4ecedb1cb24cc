# Plans one environment's tfvars as they are committed. verify/cloud runs
#   terraform test -test-directory=tests/environments -var-file=environments/<env>.tfvars
# for dev and prod: the plan must succeed (connection budget included) and
# prod must keep its data safe.

mock_provider "google" {
  override_during = plan
}

# Memorystore's address is computed; with TLS on it listens on 6378.
override_resource {
  target          = google_redis_instance.main
  override_during = plan
  values = {
    host = "10.1.0.3"
    port = 6378
  }
}

run "plan" {
  command = plan

  assert {
    condition     = local.db_connection_budget <= local.db_max_connections
    error_message = "The connection budget of this environment does not fit."
  }
  assert {
    condition     = google_sql_database_instance.main.deletion_protection && google_sql_database_instance.main.settings[0].deletion_protection_enabled
    error_message = "Deletion protection must be on."
  }
  assert {
    condition     = google_sql_database_instance.main.settings[0].ip_configuration[0].ipv4_enabled == false
    error_message = "Cloud SQL must have no public IP."
  }
  assert {
    condition     = contains([for f in google_sql_database_instance.main.settings[0].database_flags : "${f.name}=${f.value}"], "cloudsql.iam_authentication=on")
    error_message = "IAM database authentication must be on."
  }
  assert {
    condition = var.environment != "prod" || (
      google_sql_database_instance.main.settings[0].backup_configuration[0].enabled &&
      google_sql_database_instance.main.settings[0].backup_configuration[0].point_in_time_recovery_enabled &&
      google_sql_database_instance.main.settings[0].availability_type == "REGIONAL"
    )
    error_message = "prod needs backups, point-in-time recovery and a regional (HA) instance."
  }
  assert {
    condition     = google_redis_instance.main.auth_enabled && google_redis_instance.main.transit_encryption_mode == "SERVER_AUTHENTICATION"
    error_message = "Memorystore needs AUTH and in-transit encryption."
  }
  assert {
    condition     = local.redis_url == "rediss://10.1.0.3:6378/0"
    error_message = "REDIS_URL must be rediss://HOST:PORT/0."
  }
  assert {
    condition     = local.function_env.INIT_DB == "false" && local.function_env.CLOUD_SQL_IAM_AUTH == "true" && local.function_env.TRUSTED_PROXY_HOPS == "2"
    error_message = "Functions run with INIT_DB=false, IAM database authentication, and two trusted X-Forwarded-For entries (the load balancer's)."
  }

  # The names cloudbuild.yaml derives from its substitutions
  # (${_APP}-${_ENV}-<function>, ${_APP}-${_ENV}-migrate, the repository
  # ${_APP}-${_ENV}) are the names Terraform gives, and the trigger passes
  # the values they are derived from.
  assert {
    condition = alltrue([
      for fn, svc in local.function_services : svc == "${var.name}-${var.environment}-${fn}"
    ])
    error_message = "Cloud Run services must be named <name>-<environment>-<function>, as cloudbuild.yaml deploys them."
  }
  assert {
    condition     = google_cloud_run_v2_job.migrate.name == "${var.name}-${var.environment}-migrate" && google_artifact_registry_repository.images.repository_id == "${var.name}-${var.environment}"
    error_message = "The migration job and the image repository must be named as cloudbuild.yaml expects."
  }
  assert {
    condition     = local.build_substitutions._APP == var.name && local.build_substitutions._ENV == var.environment && local.build_substitutions._REGION == var.region
    error_message = "The trigger must pass the name, environment and region the resources were named with."
  }
}
