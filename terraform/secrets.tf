# Secret Manager holds what the functions must not see in plain
# configuration. Each function's service account can read only the secrets
# its Cloud Run service mounts (modules/function).

locals {
  redis_secrets = {
    # Memorystore AUTH string.
    REDIS_PASSWORD = google_redis_instance.main.auth_string
    # Memorystore server CA certificates, PEM; all of them, so a CA rotation
    # does not break TLS.
    REDIS_CA_CERT = join("\n", [for c in google_redis_instance.main.server_ca_certs : trimspace(c.cert)])
  }

  # Environment variable name -> secret ID, as the function module takes it.
  redis_secret_env = { for k, s in google_secret_manager_secret.redis : k => s.id }
}

resource "google_secret_manager_secret" "redis" {
  for_each = toset(["REDIS_PASSWORD", "REDIS_CA_CERT"])

  secret_id = "${local.prefix}-${lower(replace(each.key, "_", "-"))}"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis" {
  for_each = google_secret_manager_secret.redis

  secret      = each.value.id
  secret_data = local.redis_secrets[each.key]
}
