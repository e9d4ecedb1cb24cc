# The health function: GET /health (checks Postgres and Redis), /docs and
# /openapi.json. One small instance is enough. Its service account,
# least-privilege IAM, Cloud SQL IAM user and Cloud Run service are in
# modules/function.

module "health" {
  source = "./modules/function"

  name    = "health"
  common  = local.function_common
  env     = local.function_env
  scaling = var.functions["health"]

  iam_propagation_seconds = var.iam_propagation_seconds

  # Instances read the secrets' "latest" version at start.
  depends_on = [google_secret_manager_secret_version.redis]
}
