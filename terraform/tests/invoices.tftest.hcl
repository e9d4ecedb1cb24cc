# The monthly invoice close (invoices.tf): a Cloud Scheduler job starts
# the close-invoices Cloud Run job on the 1st of every month, checked on
# the plan.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "prod"
}

override_resource {
  target          = google_service_account.invoice_scheduler
  override_during = plan
  values = {
    email  = "ratebill-prod-invoice-sched@ratebill-test.iam.gserviceaccount.com"
    member = "serviceAccount:ratebill-prod-invoice-sched@ratebill-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = module.billing.google_service_account.fn
  override_during = plan
  values = {
    email  = "ratebill-prod-billing@ratebill-test.iam.gserviceaccount.com"
    member = "serviceAccount:ratebill-prod-billing@ratebill-test.iam.gserviceaccount.com"
  }
}

run "closes_last_month_on_the_first" {
  command = plan

  assert {
    condition = (
      google_cloud_scheduler_job.close_invoices.schedule == "15 1 1 * *" &&
      google_cloud_scheduler_job.close_invoices.time_zone == "Etc/UTC"
    )
    error_message = "The close runs at 01:15 UTC on the 1st (an hour's grace after the month ends, as the job requires)."
  }
  assert {
    condition = (
      google_cloud_scheduler_job.close_invoices.http_target[0].http_method == "POST" &&
      google_cloud_scheduler_job.close_invoices.http_target[0].uri == "https://run.googleapis.com/v2/projects/ratebill-test/locations/us-central1/jobs/ratebill-prod-close-invoices:run"
    )
    error_message = "The scheduler runs the close-invoices job through the Cloud Run Admin API."
  }
  assert {
    condition     = google_cloud_scheduler_job.close_invoices.http_target[0].oauth_token[0].service_account_email == "ratebill-prod-invoice-sched@ratebill-test.iam.gserviceaccount.com"
    error_message = "The scheduler calls with its own service account's OAuth token."
  }
  assert {
    condition = (
      google_cloud_run_v2_job_iam_member.invoice_scheduler.role == "roles/run.invoker" &&
      google_cloud_run_v2_job_iam_member.invoice_scheduler.name == "ratebill-prod-close-invoices" &&
      google_cloud_run_v2_job_iam_member.invoice_scheduler.member == "serviceAccount:ratebill-prod-invoice-sched@ratebill-test.iam.gserviceaccount.com"
    )
    error_message = "The scheduler may run this job and nothing else."
  }
  assert {
    condition     = google_cloud_scheduler_job.close_invoices.retry_config[0].retry_count >= 1
    error_message = "A failed start is retried (the job is idempotent)."
  }
}

run "job_runs_closeinvoices_as_billing" {
  command = plan

  assert {
    condition     = google_cloud_run_v2_job.close_invoices.template[0].template[0].containers[0].command == tolist(["/jobs/closeinvoices"])
    error_message = "The job runs /jobs/closeinvoices of the migrate image."
  }
  assert {
    condition = (
      google_cloud_run_v2_job.close_invoices.template[0].template[0].service_account == "ratebill-prod-billing@ratebill-test.iam.gserviceaccount.com" &&
      google_cloud_run_v2_job.close_invoices.template[0].task_count == 1
    )
    error_message = "One task, as the billing function's service account."
  }
  assert {
    condition = alltrue([
      for k, v in {
        INIT_DB            = "false"
        DB_POOL_SIZE       = "1"
        DB_MAX_OVERFLOW    = "1"
        API_RATE_LIMIT     = "1000"
        API_RATE_WINDOW    = "86400"
        BILLING_UNIT_PRICE = "0.01"
        CLOUD_SQL_IAM_AUTH = "true"
      } : contains([for e in google_cloud_run_v2_job.close_invoices.template[0].template[0].containers[0].env : "${e.name}=${e.value}"], "${k}=${v}")
    ])
    error_message = "The job bills with the functions' price and limit (the default plan) through a pool of 1+1, never migrating."
  }
  assert {
    condition     = contains(local.apis, "cloudscheduler.googleapis.com")
    error_message = "The Cloud Scheduler API is enabled."
  }
}
