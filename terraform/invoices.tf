# Monthly invoices: Cloud Scheduler starts the close-invoices Cloud Run job
# at 01:15 UTC on the 1st of every month. The job
# (/jobs/closeinvoices in the migrate image, shared/cmd/closeinvoices)
# computes and stores the previous month's final invoices. It is
# idempotent and safe to run twice at once (each invoice is stored once,
# keyed by user and month), so the scheduler's retries and a manual
#
#   gcloud run jobs execute <prefix>-close-invoices --region <region> --wait
#
# are harmless. The job runs as the billing function (its service account
# and IAM database user, which may read usage and write invoices).

locals {
  close_invoices_name = "${local.prefix}-close-invoices"
  # The pool of the closing job (one task, sequential queries).
  close_invoices_pool = { size = 1, overflow = 1 }
}

resource "google_cloud_run_v2_job" "close_invoices" {
  name                = local.close_invoices_name
  location            = var.region
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account       = module.billing.service_account_email
      max_retries           = 2
      timeout               = "1800s"
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = google_compute_network.main.id
          subnetwork = google_compute_subnetwork.run.id
        }
      }

      containers {
        name    = "close-invoices"
        image   = var.initial_image
        command = ["/jobs/closeinvoices"]

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
            DB_USER              = module.billing.db_user
            DB_NAME              = google_sql_database.app.name
            DB_POOL_SIZE         = tostring(local.close_invoices_pool.size)
            DB_MAX_OVERFLOW      = tostring(local.close_invoices_pool.overflow)
            INIT_DB              = "false"
            API_RATE_LIMIT       = tostring(var.api_rate_limit)
            API_RATE_WINDOW      = tostring(var.api_rate_window)
            BILLING_UNIT_PRICE   = var.billing_unit_price
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
    # Cloud Build points the job at each build's migrate image (the
    # migrate step of cloudbuild.yaml).
    ignore_changes = [
      client,
      client_version,
      template[0].template[0].containers[0].image,
    ]
  }
}

# The scheduler's identity: it may run this job and nothing else.
resource "google_service_account" "invoice_scheduler" {
  account_id   = "${local.prefix}-invoice-sched"
  display_name = "${local.prefix} monthly invoice scheduler"
  description  = "Starts the close-invoices job on the 1st of every month."
}

resource "google_cloud_run_v2_job_iam_member" "invoice_scheduler" {
  name     = google_cloud_run_v2_job.close_invoices.name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.invoice_scheduler.member
}

resource "google_cloud_scheduler_job" "close_invoices" {
  name        = local.close_invoices_name
  region      = var.region
  description = "Close the previous month's invoices (shared/cmd/closeinvoices)."
  # 01:15 UTC: the job closes a month only an hour after its end.
  schedule  = "15 1 1 * *"
  time_zone = "Etc/UTC"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.close_invoices.name}:run"

    oauth_token {
      service_account_email = google_service_account.invoice_scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_project_service.enabled, google_cloud_run_v2_job_iam_member.invoice_scheduler]
}
