terraform {
  # terraform test with mock providers evaluated at plan time
  # (override_during) needs 1.11.
  required_version = ">= 1.11, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.0"
    }
  }

  # Remote state in a GCS bucket, configured at init time:
  #   terraform init -backend-config=environments/dev.gcs.tfbackend
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
  # Bill API quota to this project: the Billing Budget API refuses
  # requests made with user credentials (gcloud auth
  # application-default login) that name no quota project.
  user_project_override = true
  billing_project       = var.project_id

  default_labels = {
    app         = var.name
    environment = var.environment
    managed-by  = "terraform"
  }
}
