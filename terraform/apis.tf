# The Google Cloud APIs the environment uses. They stay enabled on destroy:
# disabling an API can break other users of the project.

locals {
  apis = toset([
    "artifactregistry.googleapis.com",
    # Budgets and their e-mail notification channels (budget.tf).
    "billingbudgets.googleapis.com",
    "monitoring.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    # The monthly invoice-closing schedule (invoices.tf).
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    # Cloud SQL Admin API: the Go connector (cloudsqlconn) asks it for the
    # instance's IP and an ephemeral client certificate.
    "sqladmin.googleapis.com",
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.apis

  service            = each.value
  disable_on_destroy = false
}
