# Schema migrations: a Cloud Run job running the FUNCTION=migrate image
# (shared/cmd/migrate). Cloud Build points it at the new image and executes
# it before deploying the functions, so instances run with INIT_DB=false.
#
# Its IAM database user owns the schema: it is a member of
# cloudsqlsuperuser, which owns the database and its public schema
# (PostgreSQL 15+ no longer lets every user create tables there). After
# migrating it grants the functions' IAM users their table privileges
# (MIGRATE_GRANT_TO); the functions own nothing.

locals {
  migrate_name               = "${local.prefix}-migrate"
  migrate_db_user            = trimsuffix(google_service_account.migrate.email, ".gserviceaccount.com")
  migrate_instance_condition = "resource.type == 'sqladmin.googleapis.com/Instance' && resource.name == 'projects/${var.project_id}/instances/${google_sql_database_instance.main.name}'"
  migrate_project_roles = {
    "roles/cloudsql.client"       = local.migrate_instance_condition
    "roles/cloudsql.instanceUser" = local.migrate_instance_condition
    "roles/logging.logWriter"     = null
  }
}

resource "google_service_account" "migrate" {
  account_id   = local.migrate_name
  display_name = "${local.migrate_name} schema migrations"
  description  = "Runs the migration job; owns the database schema."
}

resource "google_project_iam_member" "migrate" {
  for_each = local.migrate_project_roles

  project = var.project_id
  role    = each.key
  member  = google_service_account.migrate.member

  dynamic "condition" {
    for_each = each.value == null ? [] : [each.value]
    content {
      title      = "only-${google_sql_database_instance.main.name}"
      expression = condition.value
    }
  }
}

# ABANDON: this user owns every table, and PostgreSQL refuses to drop a
# role that owns objects, so replacing it (a new account name) or destroying
# it would fail halfway. Terraform forgets the old user instead; the runbook
# in docs/deploy-gcp.md hands its objects to the new one (REASSIGN OWNED)
# and drops it.
resource "google_sql_user" "migrate" {
  name            = local.migrate_db_user
  instance        = google_sql_database_instance.main.name
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles  = ["cloudsqlsuperuser"]
  deletion_policy = "ABANDON"
}

# See modules/function: the job's first execution needs its Cloud SQL grants
# effective.
resource "terraform_data" "migrate_iam_propagation" {
  triggers_replace = [for b in google_project_iam_member.migrate : b.id]

  provisioner "local-exec" {
    command = "sleep ${var.iam_propagation_seconds}"
  }
}

resource "google_cloud_run_v2_job" "migrate" {
  name                = local.migrate_name
  location            = var.region
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account       = google_service_account.migrate.email
      max_retries           = 1
      timeout               = "600s"
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = google_compute_network.main.id
          subnetwork = google_compute_subnetwork.run.id
        }
      }

      containers {
        name  = "migrate"
        image = var.initial_image

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        dynamic "env" {
          for_each = {
            CLOUD_SQL_INSTANCE   = google_sql_database_instance.main.connection_name
            CLOUD_SQL_IAM_AUTH   = "true"
            CLOUD_SQL_PRIVATE_IP = "true"
            DB_USER              = google_sql_user.migrate.name
            DB_NAME              = google_sql_database.app.name
            DB_POOL_SIZE         = tostring(local.migrate_pool.size)
            DB_MAX_OVERFLOW      = tostring(local.migrate_pool.overflow)
            MIGRATE_GRANT_TO     = join(",", [for fn in local.function_db_users : fn])
            LOG_LEVEL            = var.log_level
            GOOGLE_CLOUD_PROJECT = var.project_id
          }
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  lifecycle {
    # Cloud Build sets the image (gcloud run jobs update --image) before each
    # execution.
    ignore_changes = [
      client,
      client_version,
      template[0].template[0].containers[0].image,
    ]
  }

  depends_on = [terraform_data.migrate_iam_propagation]
}

locals {
  # The functions' IAM database users, in routes.Functions order.
  function_db_users = [
    module.users.db_user,
    module.usage.db_user,
    module.billing.db_user,
    module.health.db_user,
  ]
}
