# The users function: POST /users/ and /users (sign-up, rate limited per
# client IP), GET /me and the operator API (/admin/…). Its service account,
# least-privilege IAM, Cloud SQL IAM user and Cloud Run service are in
# modules/function.

module "users" {
  source = "./modules/function"

  name    = "users"
  common  = merge(local.function_common, { secret_env = local.users_secret_env }) # + the operator bootstrap token (operator.tf)
  env     = local.function_env
  scaling = var.functions["users"]

  iam_propagation_seconds = var.iam_propagation_seconds

  # Instances read the secrets' "latest" version at start.
  depends_on = [google_secret_manager_secret_version.redis, google_secret_manager_secret_version.operator_bootstrap]
}
