variable "name" {
  description = "Function name as in shared/routes (users, usage, billing, health)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,14}$", var.name))
    error_message = "name must be a short lowercase function name."
  }
}

variable "common" {
  description = "What every function shares: naming prefix, project, region, initial image, VPC, Cloud SQL instance name, and the secrets to mount (env name -> Secret Manager secret ID)."
  type = object({
    prefix        = string
    project_id    = string
    region        = string
    image         = string
    network_id    = string
    subnetwork_id = string
    sql_instance  = string
    secret_env    = map(string)
  })
}

variable "env" {
  description = "Plain environment variables of the function (shared/config); DB_USER, DB_POOL_SIZE and DB_MAX_OVERFLOW are added by the module."
  type        = map(string)

  validation {
    condition     = length(setintersection(keys(var.env), ["DB_USER", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "PORT", "DATABASE_URL", "DB_PASSWORD"])) == 0
    error_message = "env must not set DB_USER, DB_POOL_SIZE, DB_MAX_OVERFLOW (the module sets them), PORT (Cloud Run sets it) or DATABASE_URL/DB_PASSWORD (IAM authentication has no password)."
  }
}

variable "scaling" {
  description = "Instances, concurrency, resources and database pool of the function."
  type = object({
    min_instances   = number
    max_instances   = number
    concurrency     = number
    cpu             = string
    memory          = string
    db_pool_size    = number
    db_max_overflow = number
  })
}

variable "iam_propagation_seconds" {
  description = "Seconds to wait after the service account's grants are created before the Cloud Run service is created (IAM propagation)."
  type        = number
  default     = 90

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 600
    error_message = "iam_propagation_seconds must be from 0 to 600."
  }
}
