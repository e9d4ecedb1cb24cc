# Names and values shared by every file of the root module.

locals {
  # Every resource name starts with it: ratebill-dev-users, ratebill-prod-pg, ...
  prefix = "${var.name}-${var.environment}"

  # Artifact Registry path of the images Cloud Build pushes
  # (<image_base>/<function>:<build id>).
  image_base = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"

  # Cloud Run service name of each function, keyed like routes.Functions.
  function_services = {
    users   = module.users.service_name
    usage   = module.usage.service_name
    billing = module.billing.service_name
    health  = module.health.service_name
  }

  # What every function shares: where it runs, how it reaches Cloud SQL and
  # Memorystore, and the settings of shared/config. Function files add
  # their own scaling and pool size.
  function_common = {
    prefix        = local.prefix
    project_id    = var.project_id
    region        = var.region
    image         = var.initial_image
    network_id    = google_compute_network.main.id
    subnetwork_id = google_compute_subnetwork.run.id
    sql_instance  = google_sql_database_instance.main.name
    secret_env    = local.redis_secret_env
  }

  # Environment of every function (shared/config variables).
  function_env = {
    CLOUD_SQL_INSTANCE   = google_sql_database_instance.main.connection_name
    CLOUD_SQL_IAM_AUTH   = "true"
    CLOUD_SQL_PRIVATE_IP = "true"
    DB_NAME              = google_sql_database.app.name
    REDIS_URL            = local.redis_url
    # Cloud Build runs the migration job before deploying; instances never
    # migrate at start-up here.
    INIT_DB              = "false"
    API_RATE_LIMIT       = tostring(var.api_rate_limit)
    API_RATE_WINDOW      = tostring(var.api_rate_window)
    BILLING_UNIT_PRICE   = var.billing_unit_price
    RATE_LIMIT_FAIL_OPEN = tostring(var.rate_limit_fail_open)
    # Requests reach a function only through the load balancer (ingress is
    # internal-and-cloud-load-balancing), whose backend services set
    # local.client_ip_header to the client's address (gateway.tf): per-IP
    # limits (sign-up) key on it. Cloud Run behind a load balancer does not
    # always receive X-Forwarded-For as "<client>,<load balancer>", so
    # TRUSTED_PROXY_HOPS=2 stays only as the fallback of a function that
    # does not read CLIENT_IP_HEADER yet.
    CLIENT_IP_HEADER     = local.client_ip_header
    TRUSTED_PROXY_HOPS   = "2"
    LOG_LEVEL            = var.log_level
    GOOGLE_CLOUD_PROJECT = var.project_id
    # Metrics to Cloud Monitoring, traces to Cloud Trace (shared/telemetry).
    OTEL_EXPORTER = "gcp"
  }
}
