# The usage function: GET /usage, the metered hot path (rate limit in
# Redis, usage written to Postgres in grouped writes). It gets the largest
# share of the connection budget. Its service account, least-privilege IAM,
# Cloud SQL IAM user and Cloud Run service are in modules/function.

module "usage" {
  source = "./modules/function"

  name    = "usage"
  common  = local.function_common
  env     = local.function_env
  scaling = var.functions["usage"]

  iam_propagation_seconds = var.iam_propagation_seconds

  # Instances read the secrets' "latest" version at start.
  depends_on = [google_secret_manager_secret_version.redis]
}
