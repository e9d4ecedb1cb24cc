# One function: its service account, the least privilege that account
# needs, its Cloud SQL IAM user, and its Cloud Run service.

locals {
  full_name = "${var.common.prefix}-${var.name}"
  # Cloud SQL names an IAM service-account user by the account's email
  # without ".gserviceaccount.com"; that is also DB_USER.
  db_user = trimsuffix(google_service_account.fn.email, ".gserviceaccount.com")

  # Project roles, each limited by an IAM condition where the resource
  # supports one.
  instance_condition = "resource.type == 'sqladmin.googleapis.com/Instance' && resource.name == 'projects/${var.common.project_id}/instances/${var.common.sql_instance}'"
  project_roles = {
    # Connect through the Cloud SQL connector (ephemeral certificate) ...
    "roles/cloudsql.client" = local.instance_condition
    # ... and log in as the IAM database user: to this instance only.
    "roles/cloudsql.instanceUser" = local.instance_condition
    "roles/logging.logWriter"     = null
    # OpenTelemetry export (OTEL_EXPORTER=gcp): spans to Cloud Trace,
    # metrics (workload.googleapis.com/ratebill.*) to Cloud Monitoring.
    "roles/cloudtrace.agent"        = null
    "roles/monitoring.metricWriter" = null
  }
}

resource "google_service_account" "fn" {
  account_id   = local.full_name
  display_name = "${local.full_name} Cloud Run function"
  description  = "Runs the ${var.name} function; reads only its own secrets."
}

resource "google_project_iam_member" "fn" {
  for_each = local.project_roles

  project = var.common.project_id
  role    = each.key
  member  = google_service_account.fn.member

  dynamic "condition" {
    for_each = each.value == null ? [] : [each.value]
    content {
      title      = "only-${var.common.sql_instance}"
      expression = condition.value
    }
  }
}

# Secret Manager: read access to exactly the secrets the service mounts.
resource "google_secret_manager_secret_iam_member" "fn" {
  for_each = var.common.secret_env

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn.member
}

# The database user: IAM authentication, no password. Table privileges are
# granted by the migration job (MIGRATE_GRANT_TO).
#
# ABANDON: PostgreSQL refuses to DROP ROLE a user that still holds
# privileges on tables (the migration job's grants), so a replacement (new
# account name) or destroy would fail halfway. Terraform forgets the old
# user instead; docs/deploy-gcp.md has the REASSIGN OWNED / DROP OWNED
# runbook that removes it.
resource "google_sql_user" "fn" {
  name            = local.db_user
  instance        = var.common.sql_instance
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  deletion_policy = "ABANDON"
}

# IAM is eventually consistent: a new grant usually works within a minute
# but may take several. Cloud Run resolves the secrets when it creates the
# first revision, and fails it ("permission denied on secret") if the
# grant is not effective yet. The service waits for this: it sleeps once
# after the grants are created (and again whenever they are replaced).
# terraform_data and local-exec are built into Terraform, so no other
# provider is needed (hashicorp/time is not available offline here).
resource "terraform_data" "iam_propagation" {
  triggers_replace = concat(
    [for b in google_secret_manager_secret_iam_member.fn : b.id],
    [for b in google_project_iam_member.fn : b.id],
  )

  provisioner "local-exec" {
    command = "sleep ${var.iam_propagation_seconds}"
  }
}

resource "google_cloud_run_v2_service" "fn" {
  name     = local.full_name
  location = var.common.region

  # Reachable only through the external load balancer (and from inside the
  # VPC): the gateway is the one public entry, and X-Forwarded-For cannot be
  # forged by calling the run.app URL directly.
  ingress = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  # The API is public (it authenticates with X-API-Key itself): no Cloud Run
  # IAM check, and no allUsers binding that organisation policies refuse.
  invoker_iam_disabled = true
  # Stateless and rebuilt from images in seconds; data lives in Cloud SQL.
  deletion_protection = false

  # The connection budget (sql.tf) counts max_instances per function: cap
  # the service as a whole too, across every revision receiving traffic,
  # not only each revision.
  scaling {
    max_instance_count = var.scaling.max_instances
  }

  template {
    service_account                  = google_service_account.fn.email
    max_instance_request_concurrency = var.scaling.concurrency
    timeout                          = "30s"
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.scaling.min_instances
      max_instance_count = var.scaling.max_instances
    }

    # Direct VPC egress (see network.tf for why not a connector).
    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = var.common.network_id
        subnetwork = var.common.subnetwork_id
      }
    }

    containers {
      name  = var.name
      image = var.common.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.scaling.cpu
          memory = var.scaling.memory
        }
        # CPU only while serving: usage is written before the response (see
        # DESIGN.md), nothing runs after it. Telemetry copes (see
        # docs/observability.md): metrics and spans are exported while
        # requests give the instance CPU and flushed in the SIGTERM drain,
        # which Cloud Run always gives CPU.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = merge(var.env, {
          DB_USER         = local.db_user
          DB_POOL_SIZE    = tostring(var.scaling.db_pool_size)
          DB_MAX_OVERFLOW = tostring(var.scaling.db_max_overflow)
        })
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.common.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      # /livez answers without I/O; a Postgres or Redis outage must not
      # restart instances (the function answers 503 and /health says why).
      startup_probe {
        http_get {
          path = "/livez"
        }
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 15
      }
      liveness_probe {
        http_get {
          path = "/livez"
        }
        period_seconds    = 30
        timeout_seconds   = 2
        failure_threshold = 3
      }
    }
  }

  lifecycle {
    # Cloud Build deploys the images (cloudbuild.yaml); Terraform only
    # creates the service with var.common.image and leaves the running image
    # and what `gcloud run services update` marks on the service and its
    # revision template (client, revision name, annotations) alone.
    ignore_changes = [
      client,
      client_version,
      template[0].containers[0].image,
      template[0].revision,
      template[0].annotations,
    ]
  }

  # The revision can start only once the account may read its secrets, and
  # the grant has had time to propagate.
  depends_on = [terraform_data.iam_propagation]
}
