# The first operator credential. An operator token (rbo_…, see
# docs/keys-and-operators.md) generated once outside Terraform:
#
#   export TF_VAR_operator_bootstrap_token="$(go run ./tools/cmd/optoken)"
#
# is kept in a Secret Manager secret that only the users function reads,
# as OPERATOR_BOOTSTRAP_TOKEN. On its first operator request an instance
# stores the token's SHA-256 as an admin token named "bootstrap"
# (idempotently; audited as actor "system"). Terraform cannot generate the
# token itself: the format's CRC-32 checksum has no Terraform function, and
# no provider but hashicorp/google is available to these checks.
#
# The token is in the Terraform state (as the Redis AUTH string is): keep
# the state bucket private. Leaving the variable unset mounts nothing; a
# token already stored stays valid until revoked (DELETE /admin/tokens/{id}).

locals {
  # Whether a token was given is not itself secret.
  operator_bootstrap = nonsensitive(var.operator_bootstrap_token != null)

  # The users function's secrets: Redis's, and the bootstrap token.
  users_secret_env = merge(local.redis_secret_env, local.operator_bootstrap ? {
    OPERATOR_BOOTSTRAP_TOKEN = google_secret_manager_secret.operator_bootstrap[0].id
  } : {})
}

resource "google_secret_manager_secret" "operator_bootstrap" {
  count = local.operator_bootstrap ? 1 : 0

  secret_id = "${local.prefix}-operator-bootstrap"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "operator_bootstrap" {
  count = local.operator_bootstrap ? 1 : 0

  secret      = google_secret_manager_secret.operator_bootstrap[0].id
  secret_data = var.operator_bootstrap_token
}
