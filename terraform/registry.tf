# Artifact Registry repository for the five images Cloud Build builds from
# the root Dockerfile (users, usage, billing, health, migrate).

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = local.prefix
  format        = "DOCKER"
  description   = "Images of ${local.prefix}, pushed by cloudbuild.yaml."

  # Every build pushes five images; keep the recent ones for rollback and
  # let old ones go.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-older-than-30-days"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.enabled]
}
