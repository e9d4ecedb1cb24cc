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

# The GitHub repository, connected the current (second-generation) way: a
# Cloud Build connection in the region, authorised by the Cloud Build GitHub
# App installation and a GitHub token in Secret Manager (docs/deploy-gcp.md,
# step 6). First-generation GitHub triggers (github { owner name }) fail for
# repositories connected this way.
resource "google_secret_manager_secret_iam_member" "github_token" {
  count = var.github == null ? 0 : 1

  secret_id = regex("^(projects/[^/]+/secrets/[^/]+)/versions/", var.github.oauth_token_secret_version)[0]
  role      = "roles/secretmanager.secretAccessor"
  # The Cloud Build service agent reads the token to call GitHub.
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudbuild.iam.gserviceaccount.com"
}

resource "google_cloudbuildv2_connection" "github" {
  count = var.github == null ? 0 : 1

  name     = "${local.prefix}-github"
  location = var.region

  github_config {
    app_installation_id = var.github.app_installation_id
    authorizer_credential {
      oauth_token_secret_version = var.github.oauth_token_secret_version
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.github_token, google_project_service.enabled]
}

resource "google_cloudbuildv2_repository" "app" {
  count = var.github == null ? 0 : 1

  name              = var.github.name
  location          = var.region
  parent_connection = google_cloudbuildv2_connection.github[0].name
  remote_uri        = "https://github.com/${var.github.owner}/${var.github.name}.git"
}

# Push to the deployed branch: test, build, migrate, deploy. In prod every
# run waits for a human approval (Cloud Build > History > Approve; the
# approver needs roles/cloudbuild.builds.approver) before any step runs.
resource "google_cloudbuild_trigger" "deploy" {
  count = var.github == null ? 0 : 1

  name        = "${local.prefix}-deploy"
  location    = var.region
  description = "Test, build, migrate and deploy ${local.prefix} on every push to ${var.github.branch}."

  repository_event_config {
    repository = google_cloudbuildv2_repository.app[0].id
    push {
      branch = var.github.branch
    }
  }

  approval_config {
    approval_required = coalesce(var.github.require_approval, var.environment == "prod")
  }

  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id
  substitutions   = local.build_substitutions

  depends_on = [google_project_iam_member.build, google_project_service.enabled]
}

# Pull requests: make test and a Terraform plan of this environment
# (cloudbuild-plan.yaml), as a read-only account; nothing is pushed or
# deployed. The plan does not refresh (-refresh=false) and takes no state
# lock: it shows what the pull request changes against the state of the
# last apply.
resource "google_service_account" "plan" {
  account_id   = "${local.prefix}-plan"
  display_name = "${local.prefix} Terraform plan on pull requests"
  description  = "Runs cloudbuild-plan.yaml: tests and terraform plan, read-only."
}

resource "google_project_iam_member" "plan" {
  for_each = toset([
    "roles/logging.logWriter", # build logs
    # The plan runs without refresh; it reads only the project (the
    # google_project data source). No basic role.
    "roles/browser",
    # The provider bills API quota to the project (user_project_override).
    "roles/serviceusage.serviceUsageConsumer",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.plan.member
}

resource "google_storage_bucket_iam_member" "plan_state" {
  count = var.tfstate_bucket == null ? 0 : 1

  bucket = var.tfstate_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.plan.member
}

resource "google_cloudbuild_trigger" "plan" {
  count = var.github == null ? 0 : 1

  name        = "${local.prefix}-plan"
  location    = var.region
  description = "Tests and terraform plan of ${local.prefix} on every pull request to ${var.github.branch}."

  repository_event_config {
    repository = google_cloudbuildv2_repository.app[0].id
    pull_request {
      branch = var.github.branch
      # Only after a repository collaborator comments /gcbrun on a pull
      # request from outside the organisation.
      comment_control = "COMMENTS_ENABLED_FOR_EXTERNAL_CONTRIBUTORS_ONLY"
    }
  }

  filename        = "cloudbuild-plan.yaml"
  service_account = google_service_account.plan.id
  substitutions = {
    _ENV            = var.environment
    _TFSTATE_BUCKET = coalesce(var.tfstate_bucket, "${var.project_id}-tfstate")
  }

  depends_on = [google_project_iam_member.plan, google_project_service.enabled]
}

data "google_project" "this" {
  project_id = var.project_id
}
