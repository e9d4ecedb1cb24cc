# The billing function: GET /billing. Its service account, least-privilege
# IAM, Cloud SQL IAM user and Cloud Run service are in modules/function.

module "billing" {
  source = "./modules/function"

  name    = "billing"
  common  = local.function_common
  env     = local.function_env
  scaling = var.functions["billing"]

  iam_propagation_seconds = var.iam_propagation_seconds

  # Instances read the secrets' "latest" version at start.
  depends_on = [google_secret_manager_secret_version.redis]
}
