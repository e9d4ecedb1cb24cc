# Inputs of one environment. Every value that differs between dev and prod
# is set in environments/<env>.tfvars; the defaults here are the cheap dev
# shape.

# --- where ---------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project ID that holds the whole environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of Cloud Run, Cloud SQL, Memorystore, Artifact Registry and the serverless NEGs."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "environment" {
  description = "Environment name, part of every resource name: dev or prod."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "name" {
  description = "Short application name; resources are named <name>-<environment>-<part> (service account IDs must stay within 30 characters)."
  type        = string
  default     = "ratebill"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.name))
    error_message = "name must be 2-12 lowercase letters or digits, starting with a letter."
  }
}

# --- network -------------------------------------------------------------

variable "subnet_cidr" {
  description = "Primary range of the subnet that Cloud Run instances join through Direct VPC egress. Each instance takes an address (two during revision changes), so size it for twice the sum of max instances."
  type        = string
  default     = "10.8.0.0/24"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0)) && tonumber(split("/", var.subnet_cidr)[1]) <= 26
    error_message = "subnet_cidr must be an IPv4 CIDR of /26 or larger (Direct VPC egress needs at least a /26)."
  }
}

variable "private_services_prefix_length" {
  description = "Prefix length of the range reserved for private services access (Cloud SQL and Memorystore private IPs)."
  type        = number
  default     = 20

  validation {
    condition     = var.private_services_prefix_length >= 16 && var.private_services_prefix_length <= 24
    error_message = "private_services_prefix_length must be from 16 to 24."
  }
}

# --- Cloud SQL -----------------------------------------------------------

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition): db-f1-micro, db-g1-small or db-custom-<vCPUs>-<MiB>. The tier sets the default max_connections used by the connection budget."
  type        = string
  default     = "db-g1-small"

  validation {
    condition     = can(regex("^(db-f1-micro|db-g1-small|db-custom-[0-9]+-[0-9]+)$", var.db_tier))
    error_message = "db_tier must be db-f1-micro, db-g1-small or db-custom-<vCPUs>-<MiB>."
  }
}

variable "db_version" {
  description = "Cloud SQL database version."
  type        = string
  default     = "POSTGRES_17"

  validation {
    condition     = can(regex("^POSTGRES_(1[5-9]|[2-9][0-9])$", var.db_version))
    error_message = "db_version must be POSTGRES_15 or newer."
  }
}

variable "db_availability_type" {
  description = "ZONAL (one zone) or REGIONAL (high availability with a standby in a second zone, twice the cost)."
  type        = string
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_disk_size_gb" {
  description = "Initial SSD size of the Cloud SQL instance in GB; it grows automatically."
  type        = number
  default     = 10

  validation {
    condition     = var.db_disk_size_gb >= 10 && floor(var.db_disk_size_gb) == var.db_disk_size_gb
    error_message = "db_disk_size_gb must be a whole number of at least 10."
  }
}

variable "db_backups" {
  description = "Automated daily backups and point-in-time recovery (write-ahead log retention). On in prod."
  type = object({
    enabled                = bool
    point_in_time_recovery = bool
    retained_backups       = optional(number, 7)
    log_retention_days     = optional(number, 7)
  })
  default = {
    enabled                = false
    point_in_time_recovery = false
  }

  validation {
    condition     = !var.db_backups.point_in_time_recovery || var.db_backups.enabled
    error_message = "db_backups.point_in_time_recovery needs db_backups.enabled."
  }
  validation {
    condition     = var.db_backups.log_retention_days >= 1 && var.db_backups.log_retention_days <= 7 && var.db_backups.retained_backups >= 1
    error_message = "db_backups.log_retention_days must be 1-7 (Enterprise edition) and retained_backups at least 1."
  }
}

variable "db_max_connections" {
  description = "max_connections of the Cloud SQL instance. null takes the tier's default (25 for db-f1-micro, 50 for db-g1-small, 100-1000 by memory for custom tiers). Either way the value is set as a database flag and the connection budget is checked against it."
  type        = number
  default     = null

  validation {
    condition     = var.db_max_connections == null ? true : (var.db_max_connections >= 14 && var.db_max_connections <= 262143)
    error_message = "db_max_connections must be from 14 to 262143, or null for the tier's default."
  }
}

variable "db_reserved_connections" {
  description = "Connections the budget keeps free for Cloud SQL itself (superuser_reserved_connections is 3) and for an operator's psql session."
  type        = number
  default     = 5

  validation {
    condition     = var.db_reserved_connections >= 3
    error_message = "db_reserved_connections must be at least 3 (Cloud SQL reserves 3 for superusers)."
  }
}

variable "db_name" {
  description = "Name of the application database (DB_NAME)."
  type        = string
  default     = "apidb"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be a lowercase Postgres identifier."
  }
}

variable "deletion_protection" {
  description = "Protects the Cloud SQL instance from deletion, both in Terraform and in the Cloud SQL API. Leave on; turn off only to destroy an environment on purpose."
  type        = bool
  default     = true
}

# --- Memorystore ---------------------------------------------------------

variable "redis_tier" {
  description = "Memorystore for Redis tier: BASIC (one node, no replica) or STANDARD_HA (replica with automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GB. Rate-limit state is a few hundred bytes per active user."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "redis_memory_size_gb must be from 1 to 300."
  }
}

variable "redis_rdb_snapshot_period" {
  description = "How often Memorystore snapshots its data (RDB persistence), so a restart does not start with empty rate-limit counters: ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS; null disables persistence."
  type        = string
  default     = "ONE_HOUR"
  validation {
    condition     = var.redis_rdb_snapshot_period == null || contains(["ONE_HOUR", "SIX_HOURS", "TWELVE_HOURS", "TWENTY_FOUR_HOURS"], coalesce(var.redis_rdb_snapshot_period, "x"))
    error_message = "redis_rdb_snapshot_period must be ONE_HOUR, SIX_HOURS, TWELVE_HOURS, TWENTY_FOUR_HOURS or null."
  }
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"

  validation {
    condition     = can(regex("^REDIS_[0-9]+_[0-9X]+$", var.redis_version))
    error_message = "redis_version must look like REDIS_7_2."
  }
}

# --- functions -----------------------------------------------------------

variable "functions" {
  description = <<-EOT
    Scaling and pool settings of each function (users, usage, billing, health).
    Pool max connections per instance = db_pool_size + db_max_overflow; the
    connection budget multiplies it by max_instances.
  EOT
  type = map(object({
    min_instances   = optional(number, 0)
    max_instances   = number
    concurrency     = optional(number, 80)
    cpu             = optional(string, "1")
    memory          = optional(string, "512Mi")
    db_pool_size    = number
    db_max_overflow = number
  }))
  default = {
    users   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 2 }
    usage   = { max_instances = 3, db_pool_size = 3, db_max_overflow = 2 }
    billing = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
    health  = { max_instances = 1, db_pool_size = 1, db_max_overflow = 1 }
  }

  validation {
    condition     = toset(keys(var.functions)) == toset(["users", "usage", "billing", "health"])
    error_message = "functions must have exactly the keys users, usage, billing and health (the functions of shared/routes)."
  }
  validation {
    condition = alltrue([for f in var.functions :
      f.min_instances >= 0 && f.max_instances >= 1 && f.min_instances <= f.max_instances && f.max_instances <= 100
    ])
    error_message = "Each function needs 0 <= min_instances <= max_instances, 1 <= max_instances <= 100."
  }
  validation {
    condition     = alltrue([for f in var.functions : f.concurrency >= 1 && f.concurrency <= 1000])
    error_message = "Each function's concurrency must be from 1 to 1000."
  }
  validation {
    condition     = alltrue([for f in var.functions : f.db_pool_size >= 1 && f.db_max_overflow >= 0])
    error_message = "Each function needs db_pool_size >= 1 and db_max_overflow >= 0 (shared/config accepts nothing else)."
  }
}

variable "initial_image" {
  description = "Image the Cloud Run services and the migration job are created with before the first Cloud Build run pushes the real ones. Terraform ignores later image changes: Cloud Build owns the running image."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

# --- application settings (shared/config) ---------------------------------

variable "api_rate_limit" {
  description = "API_RATE_LIMIT: metered requests per user per window."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_rate_limit >= 1 && floor(var.api_rate_limit) == var.api_rate_limit
    error_message = "api_rate_limit must be a whole number of at least 1."
  }
}

variable "api_rate_window" {
  description = "API_RATE_WINDOW: length of a rate-limit window in seconds."
  type        = number
  default     = 86400

  validation {
    condition     = var.api_rate_window >= 1 && var.api_rate_window <= 366 * 86400
    error_message = "api_rate_window must be from 1 to 31622400 seconds."
  }
}

variable "billing_unit_price" {
  description = "BILLING_UNIT_PRICE: price of one metered request, a plain decimal (kept a string so it stays exact)."
  type        = string
  default     = "0.01"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]{1,9})?$", var.billing_unit_price))
    error_message = "billing_unit_price must be a plain decimal with at most 9 decimal places, such as 0.01."
  }
}

variable "rate_limit_fail_open" {
  description = "RATE_LIMIT_FAIL_OPEN: serve metered requests without a limit while Redis is down (default false: answer 503)."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "LOG_LEVEL of the functions."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

# --- public entry point ----------------------------------------------------

variable "domains" {
  description = "Host names of the public base URL, for the Google-managed certificate; point their DNS A records at the gateway_ip output. Empty uses <gateway IP>.nip.io, which resolves to the gateway without any DNS setup."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for d in var.domains : can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", d))])
    error_message = "domains must be lowercase DNS names such as api.example.com."
  }
}

# --- CI/CD ---------------------------------------------------------------

variable "github" {
  description = <<-EOT
    GitHub repository whose pushes trigger cloudbuild.yaml (and whose pull
    requests trigger cloudbuild-plan.yaml), connected the second-generation
    way: install the Cloud Build GitHub App on the repository
    (app_installation_id) and store a GitHub token in Secret Manager
    (oauth_token_secret_version, projects/P/secrets/S/versions/N). null
    creates no connection or trigger. require_approval defaults to true in
    prod, false in dev.
  EOT
  type = object({
    owner                      = string
    name                       = string
    branch                     = optional(string, "^main$")
    app_installation_id        = number
    oauth_token_secret_version = string
    require_approval           = optional(bool)
  })
  default = null

  validation {
    condition     = var.github == null ? true : can(regex("^projects/[^/]+/secrets/[^/]+/versions/[^/]+$", var.github.oauth_token_secret_version))
    error_message = "github.oauth_token_secret_version must be projects/PROJECT/secrets/SECRET/versions/VERSION."
  }
}

# --- edge protection -------------------------------------------------------

variable "armor" {
  description = "Cloud Armor per-client-IP limits at the load balancer: sign-ups a minute (then a ban of signup_ban_seconds) and /verify calls a minute (throttled)."
  type = object({
    signup_per_minute  = optional(number, 10)
    signup_ban_seconds = optional(number, 600)
    verify_per_minute  = optional(number, 6000)
  })
  default = {}

  validation {
    condition     = var.armor.signup_per_minute >= 1 && var.armor.verify_per_minute >= 1 && var.armor.signup_ban_seconds >= 60
    error_message = "armor limits must be at least 1 a minute, and the ban at least 60 seconds."
  }
}

variable "iam_propagation_seconds" {
  description = "Seconds Terraform waits after creating a service account's grants before creating the Cloud Run service or job that needs them (IAM is eventually consistent; a revision created too early fails with permission denied on its secrets). Runs `sleep` on the machine running terraform."
  type        = number
  default     = 90

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 600
    error_message = "iam_propagation_seconds must be from 0 to 600."
  }
}

variable "tfstate_bucket" {
  description = "The GCS bucket of this environment's Terraform state (environments/<env>.gcs.tfbackend). The pull-request plan reads it; null assumes <project_id>-tfstate and grants nothing (grant roles/storage.objectViewer on it to the plan account yourself)."
  type        = string
  default     = null
}

# --- cost ------------------------------------------------------------------

variable "billing_budget" {
  description = "Monthly budget with alerts on this project (budget.tf): the billing account ID (XXXXXX-XXXXXX-XXXXXX), the amount in whole currency units, the billing account's currency, and extra e-mail recipients. null creates none."
  type = object({
    billing_account = string
    monthly_amount  = number
    currency        = optional(string, "USD")
    emails          = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.billing_budget == null ? true : (can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_budget.billing_account)) && var.billing_budget.monthly_amount > 0)
    error_message = "billing_budget.billing_account must look like 012345-6789AB-CDEF01 and monthly_amount be positive."
  }
}

# --- monitoring (monitoring.tf) ---------------------------------------------

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/PROJECT/notificationChannels/ID) that every alert policy notifies, e.g. a PagerDuty or Slack channel created in the console. Empty: incidents open in the console only (plus alert_email, if set)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "notification_channels must be channel IDs of the form projects/PROJECT/notificationChannels/NUMBER."
  }
}

variable "alert_email" {
  description = "An e-mail address for an e-mail notification channel that every alert policy also notifies. null creates none."
  type        = string
  default     = null

  validation {
    condition     = var.alert_email == null ? true : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address such as oncall@example.com, or null."
  }
}

variable "alert_thresholds" {
  description = <<-EOT
    Thresholds of the alert policies (monitoring.tf), each held for 5 minutes
    before an incident opens (usage write failures open one at once):
    error_ratio: share of a service's responses that are 5xx (0.05 = 5 %);
    latency_p99_ms: a service's 99th-percentile request latency in
    milliseconds, as Cloud Run measures it; usage_write_failures: failed
    usage writes a minute above which the (custom metric) alert fires;
    0 means any failure.
  EOT
  type = object({
    error_ratio          = optional(number, 0.05)
    latency_p99_ms       = optional(number, 2000)
    usage_write_failures = optional(number, 0)
  })
  default = {}

  validation {
    condition     = var.alert_thresholds.error_ratio > 0 && var.alert_thresholds.error_ratio < 1
    error_message = "alert_thresholds.error_ratio must be a fraction between 0 and 1 (exclusive), such as 0.05 for 5 %."
  }
  validation {
    condition     = var.alert_thresholds.latency_p99_ms >= 10 && var.alert_thresholds.latency_p99_ms <= 3600000
    error_message = "alert_thresholds.latency_p99_ms must be from 10 to 3600000 milliseconds (Cloud Run's longest request timeout)."
  }
  validation {
    condition     = var.alert_thresholds.usage_write_failures >= 0 && floor(var.alert_thresholds.usage_write_failures) == var.alert_thresholds.usage_write_failures
    error_message = "alert_thresholds.usage_write_failures must be a whole number of at least 0."
  }
}

variable "custom_metric_alerts" {
  description = "Create the alert policies on the platform's own OpenTelemetry metrics (workload.googleapis.com/ratebill.*). Cloud Monitoring refuses (404) a policy on a metric it has never received, so turn this on after the functions have exported them once."
  type        = bool
  default     = false
}

variable "uptime_check_regions" {
  description = "Regions the GET /health uptime check probes from (at least three, as Cloud Monitoring requires)."
  type        = list(string)
  default     = ["USA", "EUROPE", "ASIA_PACIFIC"]

  validation {
    condition = length(var.uptime_check_regions) >= 3 && alltrue([
      for r in var.uptime_check_regions : contains(["USA", "EUROPE", "SOUTH_AMERICA", "ASIA_PACIFIC", "USA_OREGON", "USA_IOWA", "USA_VIRGINIA"], r)
    ])
    error_message = "uptime_check_regions must list at least three of USA, EUROPE, SOUTH_AMERICA, ASIA_PACIFIC, USA_OREGON, USA_IOWA, USA_VIRGINIA."
  }
}

variable "operator_bootstrap_token" {
  description = "The first admin operator token (rbo_…), from `go run ./tools/cmd/optoken`; kept in Secret Manager and given to the users function only (operator.tf). null: none."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.operator_bootstrap_token == null || can(regex("^rbo_[0-9A-Za-z]{49}$", var.operator_bootstrap_token))
    error_message = "operator_bootstrap_token must be an operator token: rbo_ and 49 base62 characters (go run ./tools/cmd/optoken)."
  }
}
