# CI/CD: the Cloud Build service account that runs cloudbuild.yaml and the
# trigger that runs it on every push to the deployed branch.
#
# Images, not Cloud Run's source builds: one root Dockerfile builds all five
# images (FUNCTION=users|usage|billing|health|migrate) and is the same one
# docker-compose and Kubernetes use, so what runs here is byte for byte what
# was tested there. A function source build would upload one module without
# the shared module beside it (functions must build with GOWORK=off from
# the repository root) and could not build the migration job at all.

locals {
  # The values cloudbuild.yaml takes as substitutions; names of services,
  # the job and the image repository are derived from _APP and _ENV the same
  # way local.prefix is.
  build_substitutions = {
    _APP      = var.name
    _ENV      = var.environment
    _REGION   = var.region
    _BASE_URL = local.base_url
  }

  build_project_roles = toset([
    "roles/logging.logWriter", # build logs (options.logging: CLOUD_LOGGING_ONLY)
    "roles/run.developer",     # update the services' images, update and execute the migration job
  ])

  # Runtime accounts the build deploys as (iam.serviceAccounts.actAs).
  runtime_service_accounts = {
    users   = module.users.service_account_email
    usage   = module.usage.service_account_email
    billing = module.billing.service_account_email
    health  = module.health.service_account_email
    migrate = google_service_account.migrate.email
  }
}

resource "google_service_account" "build" {
  account_id   = "${local.prefix}-build"
  display_name = "${local.prefix} Cloud Build"
  description  = "Runs cloudbuild.yaml: tests, pushes images, migrates, deploys."
}

resource "google_project_iam_member" "build" {
  for_each = local.build_project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_act_as" {
  for_each = local.runtime_service_accounts

  service_account_id = "projects/${var.project_id}/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

# `gcloud builds submit` stages the source in gs://<project>_cloudbuild;
# the build account reads it from there (and from nowhere else).
resource "google_project_iam_member" "build_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title      = "cloudbuild-source-bucket"
    expression = "resource.name.startsWith('projects/_/buckets/${var.project_id}_cloudbuild')"
  }
}

resource "google_cloudbuild_trigger" "deploy" {
  count = var.github == null ? 0 : 1

  name        = "${local.prefix}-deploy"
  location    = "global"
  description = "Test, build, migrate and deploy ${local.prefix} on every push to ${var.github.branch}."

  github {
    owner = var.github.owner
    name  = var.github.name
    push {
      branch = var.github.branch
    }
  }

  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id
  substitutions   = local.build_substitutions

  depends_on = [google_project_iam_member.build, google_project_service.enabled]
}
