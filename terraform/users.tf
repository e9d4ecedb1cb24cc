# The users function: POST /users/ and /users (sign-up, rate limited per
# client IP) and GET /me. Its service account, least-privilege IAM, Cloud SQL
# IAM user and Cloud Run service are in modules/function.

module "users" {
  source = "./modules/function"

  name    = "users"
  common  = local.function_common
  env     = local.function_env
  scaling = var.functions["users"]

  iam_propagation_seconds = var.iam_propagation_seconds

  # Instances read the secrets' "latest" version at start.
  depends_on = [google_secret_manager_secret_version.redis]
}
