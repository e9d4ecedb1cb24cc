# Least privilege: what each service account may do, checked on the plan.
# The function module is planned on its own (run ... module) so its
# resources can be inspected; the root module's runs check the migration job
# and the build account.

mock_provider "google" {
  override_during = plan
}

run "function_account_has_only_its_roles" {
  command = plan

  module {
    source = "./modules/function"
  }

  variables {
    name = "usage"
    common = {
      prefix        = "ratebill-dev"
      project_id    = "ratebill-test"
      region        = "us-central1"
      image         = "us-docker.pkg.dev/cloudrun/container/hello"
      network_id    = "projects/ratebill-test/global/networks/ratebill-dev-vpc"
      subnetwork_id = "projects/ratebill-test/regions/us-central1/subnetworks/ratebill-dev-run"
      sql_instance  = "ratebill-dev-pg"
      secret_env = {
        REDIS_PASSWORD = "projects/ratebill-test/secrets/ratebill-dev-redis-password"
        REDIS_CA_CERT  = "projects/ratebill-test/secrets/ratebill-dev-redis-ca-cert"
      }
    }
    env = {
      CLOUD_SQL_INSTANCE = "ratebill-test:us-central1:ratebill-dev-pg"
      CLOUD_SQL_IAM_AUTH = "true"
      DB_NAME            = "apidb"
      REDIS_URL          = "rediss://10.1.0.3:6378/0"
      INIT_DB            = "false"
      TRUSTED_PROXY_HOPS = "2"
    }
    scaling = {
      min_instances   = 0
      max_instances   = 3
      concurrency     = 80
      cpu             = "1"
      memory          = "512Mi"
      db_pool_size    = 3
      db_max_overflow = 2
    }
  }

  override_resource {
    target          = google_service_account.fn
    override_during = plan
    values = {
      email  = "ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"
    }
  }

  # Project roles: exactly these five, nothing broad.
  assert {
    condition = toset([for b in google_project_iam_member.fn : b.role]) == toset([
      "roles/cloudsql.client",
      "roles/cloudsql.instanceUser",
      "roles/logging.logWriter",
      "roles/cloudtrace.agent",
      "roles/monitoring.metricWriter",
    ])
    error_message = "A function's account must have exactly cloudsql.client, cloudsql.instanceUser, logging.logWriter, cloudtrace.agent and monitoring.metricWriter."
  }
  assert {
    condition     = alltrue([for b in google_project_iam_member.fn : b.member == "serviceAccount:ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"])
    error_message = "Every binding must be for the function's own account."
  }
  # The Cloud SQL roles hold for this one instance only.
  assert {
    condition = alltrue([
      for role in ["roles/cloudsql.client", "roles/cloudsql.instanceUser"] :
      strcontains(google_project_iam_member.fn[role].condition[0].expression, "resource.name == 'projects/ratebill-test/instances/ratebill-dev-pg'")
    ])
    error_message = "cloudsql.client and cloudsql.instanceUser must be conditioned on the instance."
  }

  # Secret Manager: accessor on exactly the mounted secrets.
  assert {
    condition = toset([for b in google_secret_manager_secret_iam_member.fn : b.secret_id]) == toset([
      "projects/ratebill-test/secrets/ratebill-dev-redis-password",
      "projects/ratebill-test/secrets/ratebill-dev-redis-ca-cert",
    ])
    error_message = "The account must read exactly the secrets the service mounts."
  }
  assert {
    condition     = alltrue([for b in google_secret_manager_secret_iam_member.fn : b.role == "roles/secretmanager.secretAccessor"])
    error_message = "Secret bindings must be secretAccessor, nothing more."
  }

  # IAM database authentication: a CLOUD_IAM_SERVICE_ACCOUNT user named
  # like Cloud SQL names it, no password, and DB_USER is that name.
  assert {
    condition     = google_sql_user.fn.type == "CLOUD_IAM_SERVICE_ACCOUNT" && google_sql_user.fn.name == "ratebill-dev-usage@ratebill-test.iam" && google_sql_user.fn.password == null
    error_message = "The database user must be the account's IAM user (email without .gserviceaccount.com), without a password."
  }
  # Replacing or destroying the user must not fail on the privileges the
  # migration job granted it (runbook in docs/deploy-gcp.md).
  assert {
    condition     = google_sql_user.fn.deletion_policy == "ABANDON"
    error_message = "The function's database user must be abandoned, not dropped, when replaced (DROP ROLE fails while it holds grants)."
  }
  # The service waits for the grants to propagate.
  assert {
    condition     = length(terraform_data.iam_propagation.triggers_replace) == 7
    error_message = "The IAM propagation wait must follow every grant of the account (5 project roles, 2 secrets)."
  }
  assert {
    condition     = one([for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.value if e.name == "DB_USER"]) == google_sql_user.fn.name
    error_message = "DB_USER must be the IAM database user."
  }

  # The service runs as the account, behind the load balancer only, with the
  # pool the budget counted.
  assert {
    condition     = google_cloud_run_v2_service.fn.template[0].service_account == "ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"
    error_message = "The service must run as the function's own account."
  }
  assert {
    condition     = google_cloud_run_v2_service.fn.ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    error_message = "Ingress must be limited to internal and Cloud Load Balancing."
  }
  assert {
    condition = (
      google_cloud_run_v2_service.fn.template[0].scaling[0].max_instance_count == 3 &&
      google_cloud_run_v2_service.fn.scaling[0].max_instance_count == 3 &&
      one([for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.value if e.name == "DB_POOL_SIZE"]) == "3" &&
      one([for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.value if e.name == "DB_MAX_OVERFLOW"]) == "2"
    )
    error_message = "max instances and the pool environment must be the scaling the budget counted."
  }
  assert {
    condition = (
      google_cloud_run_v2_service.fn.template[0].vpc_access[0].egress == "PRIVATE_RANGES_ONLY" &&
      google_cloud_run_v2_service.fn.template[0].vpc_access[0].network_interfaces[0].subnetwork == "projects/ratebill-test/regions/us-central1/subnetworks/ratebill-dev-run"
    )
    error_message = "The service must use Direct VPC egress for private ranges."
  }
  assert {
    condition = toset([
      for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.name
      if length(e.value_source) > 0
      ]) == toset(["REDIS_PASSWORD", "REDIS_CA_CERT"]) && alltrue([
      for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret == google_secret_manager_secret_iam_member.fn[e.name].secret_id
      if length(e.value_source) > 0
    ])
    error_message = "REDIS_PASSWORD and REDIS_CA_CERT must come from the secrets the account can read."
  }
  assert {
    condition     = !contains([for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.name], "DB_PASSWORD") && !contains([for e in google_cloud_run_v2_service.fn.template[0].containers[0].env : e.name], "DATABASE_URL")
    error_message = "No password or DATABASE_URL: the function authenticates with IAM."
  }
}

run "function_env_rejects_passwords" {
  command = plan

  module {
    source = "./modules/function"
  }

  variables {
    name = "users"
    common = {
      prefix        = "ratebill-dev"
      project_id    = "ratebill-test"
      region        = "us-central1"
      image         = "us-docker.pkg.dev/cloudrun/container/hello"
      network_id    = "n"
      subnetwork_id = "s"
      sql_instance  = "ratebill-dev-pg"
      secret_env    = {}
    }
    env = { DB_PASSWORD = "hunter2" }
    scaling = {
      min_instances   = 0
      max_instances   = 1
      concurrency     = 80
      cpu             = "1"
      memory          = "512Mi"
      db_pool_size    = 1
      db_max_overflow = 0
    }
  }

  expect_failures = [var.env]
}

run "root_accounts" {
  command = plan

  variables {
    project_id  = "ratebill-test"
    environment = "dev"
    github = {
      owner                      = "example"
      name                       = "ratebill"
      app_installation_id        = 123
      oauth_token_secret_version = "projects/ratebill-test/secrets/github-token/versions/1"
    }
  }

  override_resource {
    target          = module.users.google_service_account.fn
    override_during = plan
    values = {
      email  = "ratebill-dev-users@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-users@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = module.usage.google_service_account.fn
    override_during = plan
    values = {
      email  = "ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-usage@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = module.billing.google_service_account.fn
    override_during = plan
    values = {
      email  = "ratebill-dev-billing@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-billing@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = module.health.google_service_account.fn
    override_during = plan
    values = {
      email  = "ratebill-dev-health@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-health@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = google_service_account.migrate
    override_during = plan
    values = {
      email  = "ratebill-dev-migrate@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-migrate@ratebill-test.iam.gserviceaccount.com"
    }
  }

  override_resource {
    target          = google_service_account.build
    override_during = plan
    values = {
      id     = "projects/ratebill-test/serviceAccounts/ratebill-dev-build@ratebill-test.iam.gserviceaccount.com"
      email  = "ratebill-dev-build@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-build@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = google_service_account.plan
    override_during = plan
    values = {
      id     = "projects/ratebill-test/serviceAccounts/ratebill-dev-plan@ratebill-test.iam.gserviceaccount.com"
      email  = "ratebill-dev-plan@ratebill-test.iam.gserviceaccount.com"
      member = "serviceAccount:ratebill-dev-plan@ratebill-test.iam.gserviceaccount.com"
    }
  }
  override_resource {
    target          = google_compute_global_address.gateway
    override_during = plan
    values          = { address = "203.0.113.10" }
  }

  # The migration job grants exactly the four functions' IAM users.
  assert {
    condition = one([
      for e in google_cloud_run_v2_job.migrate.template[0].template[0].containers[0].env : e.value if e.name == "MIGRATE_GRANT_TO"
    ]) == "ratebill-dev-users@ratebill-test.iam,ratebill-dev-usage@ratebill-test.iam,ratebill-dev-billing@ratebill-test.iam,ratebill-dev-health@ratebill-test.iam"
    error_message = "MIGRATE_GRANT_TO must list the four functions' IAM database users."
  }
  assert {
    condition     = output.function_db_users == ["ratebill-dev-users@ratebill-test.iam", "ratebill-dev-usage@ratebill-test.iam", "ratebill-dev-billing@ratebill-test.iam", "ratebill-dev-health@ratebill-test.iam"]
    error_message = "Each function must have its own IAM database user."
  }
  # Only the migration user may own the schema.
  assert {
    condition     = google_sql_user.migrate.deletion_policy == "ABANDON"
    error_message = "The migration user owns the tables: replacing it must abandon it (REASSIGN OWNED runbook), not DROP ROLE, which fails."
  }
  assert {
    condition     = google_sql_user.migrate.type == "CLOUD_IAM_SERVICE_ACCOUNT" && google_sql_user.migrate.database_roles == tolist(["cloudsqlsuperuser"]) && google_sql_user.migrate.name == "ratebill-dev-migrate@ratebill-test.iam"
    error_message = "The migration job's IAM user must be the one member of cloudsqlsuperuser."
  }
  assert {
    condition = alltrue([
      for e in google_cloud_run_v2_job.migrate.template[0].template[0].containers[0].env :
      e.name != "DB_PASSWORD" && e.name != "DATABASE_URL"
    ])
    error_message = "The migration job authenticates with IAM, not a password."
  }
  assert {
    condition     = toset([for b in google_project_iam_member.migrate : b.role]) == toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser", "roles/logging.logWriter"])
    error_message = "The migration account needs Cloud SQL access and logging, nothing more."
  }
  assert {
    condition = alltrue([
      for role in ["roles/cloudsql.client", "roles/cloudsql.instanceUser"] :
      strcontains(google_project_iam_member.migrate[role].condition[0].expression, "resource.name == 'projects/ratebill-test/instances/${google_sql_database_instance.main.name}'")
    ])
    error_message = "The migration account's Cloud SQL roles must be conditioned on the instance."
  }

  # The build account: deploy and log at project level, write only its own
  # repository, act as exactly the five runtime accounts.
  assert {
    condition     = toset([for b in google_project_iam_member.build : b.role]) == toset(["roles/logging.logWriter", "roles/run.developer"])
    error_message = "The build account's project roles must be logging.logWriter and run.developer only."
  }
  assert {
    condition     = google_artifact_registry_repository_iam_member.build.role == "roles/artifactregistry.writer"
    error_message = "The build account writes images to its repository only."
  }
  assert {
    condition = toset([for b in google_service_account_iam_member.build_act_as : b.service_account_id]) == toset([
      for a in ["users", "usage", "billing", "health", "migrate"] :
      "projects/ratebill-test/serviceAccounts/ratebill-dev-${a}@ratebill-test.iam.gserviceaccount.com"
    ])
    error_message = "The build account must act as exactly the four function accounts and the migration account."
  }
  assert {
    condition     = alltrue([for b in google_service_account_iam_member.build_act_as : b.role == "roles/iam.serviceAccountUser"])
    error_message = "Acting as the runtime accounts needs serviceAccountUser only."
  }
  assert {
    condition     = strcontains(google_project_iam_member.build_source.condition[0].expression, "ratebill-test_cloudbuild")
    error_message = "The build account may read only the Cloud Build source bucket."
  }
  # No basic roles anywhere in the root module.
  assert {
    condition = alltrue([
      for b in concat(values(google_project_iam_member.build), values(google_project_iam_member.migrate), values(google_project_iam_member.plan), [google_project_iam_member.build_source]) :
      !contains(["roles/owner", "roles/editor", "roles/viewer"], b.role)
    ])
    error_message = "No account may hold a basic role."
  }

  # The trigger runs cloudbuild.yaml as the build account with the
  # substitutions it needs.
  assert {
    condition     = google_cloudbuild_trigger.deploy[0].filename == "cloudbuild.yaml" && google_cloudbuild_trigger.deploy[0].service_account == "projects/ratebill-test/serviceAccounts/ratebill-dev-build@ratebill-test.iam.gserviceaccount.com"
    error_message = "The trigger must run cloudbuild.yaml as the build account."
  }
  assert {
    condition     = google_cloudbuild_trigger.deploy[0].substitutions._BASE_URL == "https://203.0.113.10.nip.io" && google_cloudbuild_trigger.deploy[0].substitutions._ENV == "dev"
    error_message = "The trigger must pass the base URL and the environment."
  }

  # Second-generation connection: the trigger follows the connected
  # repository (repository_event_config), not a first-generation github
  # block, and lives in the connection's region.
  assert {
    condition = (
      length(google_cloudbuild_trigger.deploy[0].github) == 0 &&
      google_cloudbuild_trigger.deploy[0].repository_event_config[0].push[0].branch == "^main$" &&
      google_cloudbuild_trigger.deploy[0].location == "us-central1" &&
      google_cloudbuildv2_repository.app[0].remote_uri == "https://github.com/example/ratebill.git" &&
      google_cloudbuildv2_connection.github[0].github_config[0].app_installation_id == 123 &&
      google_cloudbuildv2_connection.github[0].location == google_cloudbuild_trigger.deploy[0].location
    )
    error_message = "The deploy trigger must use the second-generation repository connection in the region."
  }
  assert {
    condition     = google_cloudbuild_trigger.deploy[0].approval_config[0].approval_required == false
    error_message = "dev deploys without approval by default."
  }
  # Pull requests: tests and a plan, as the read-only plan account.
  assert {
    condition = (
      google_cloudbuild_trigger.plan[0].filename == "cloudbuild-plan.yaml" &&
      length(google_cloudbuild_trigger.plan[0].repository_event_config[0].pull_request) == 1 &&
      google_cloudbuild_trigger.plan[0].service_account == google_service_account.plan.id &&
      toset([for b in google_project_iam_member.plan : b.role]) == toset(["roles/logging.logWriter", "roles/browser", "roles/serviceusage.serviceUsageConsumer"])
    )
    error_message = "Pull requests must run cloudbuild-plan.yaml as the read-only plan account."
  }
  assert {
    condition     = google_secret_manager_secret_iam_member.github_token[0].secret_id == "projects/ratebill-test/secrets/github-token"
    error_message = "The Cloud Build service agent must read the GitHub token secret."
  }
}

run "prod_deploys_need_approval" {
  command = plan

  variables {
    project_id  = "ratebill-test"
    environment = "prod"
    github = {
      owner                      = "example"
      name                       = "ratebill"
      app_installation_id        = 123
      oauth_token_secret_version = "projects/ratebill-test/secrets/github-token/versions/1"
    }
  }

  assert {
    condition     = google_cloudbuild_trigger.deploy[0].approval_config[0].approval_required
    error_message = "Every prod deploy must wait for an approval."
  }
}
