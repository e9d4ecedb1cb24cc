# The operator bootstrap token (operator.tf): a Secret Manager secret that
# only the users function mounts, as OPERATOR_BOOTSTRAP_TOKEN.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "prod"
}

override_resource {
  target          = google_secret_manager_secret.operator_bootstrap
  override_during = plan
  values          = { id = "projects/ratebill-test/secrets/ratebill-prod-operator-bootstrap" }
}

run "bootstrap_secret_for_the_users_function_only" {
  command = plan

  variables {
    operator_bootstrap_token = "rbo_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
  }

  assert {
    condition = (
      length(google_secret_manager_secret.operator_bootstrap) == 1 &&
      google_secret_manager_secret.operator_bootstrap[0].secret_id == "ratebill-prod-operator-bootstrap" &&
      google_secret_manager_secret_version.operator_bootstrap[0].secret_data == "rbo_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
    )
    error_message = "The bootstrap token must be kept in the secret ratebill-prod-operator-bootstrap."
  }
  assert {
    condition     = local.users_secret_env["OPERATOR_BOOTSTRAP_TOKEN"] == "projects/ratebill-test/secrets/ratebill-prod-operator-bootstrap"
    error_message = "The users function must get the secret as OPERATOR_BOOTSTRAP_TOKEN."
  }
  # Least privilege: the other functions neither mount nor may read it.
  assert {
    condition     = !contains(keys(local.function_common.secret_env), "OPERATOR_BOOTSTRAP_TOKEN")
    error_message = "Only the users function may read the operator bootstrap secret."
  }
  assert {
    condition     = !contains(keys(local.function_env), "OPERATOR_BOOTSTRAP_TOKEN")
    error_message = "The token must come from Secret Manager, never as a plain environment variable."
  }
}

run "no_token_no_secret" {
  command = plan

  assert {
    condition     = length(google_secret_manager_secret.operator_bootstrap) == 0 && !contains(keys(local.users_secret_env), "OPERATOR_BOOTSTRAP_TOKEN")
    error_message = "Without a token nothing is created or mounted."
  }
}

run "malformed_token_refused" {
  command = plan

  variables {
    operator_bootstrap_token = "rbo_short"
  }

  expect_failures = [var.operator_bootstrap_token]
}
