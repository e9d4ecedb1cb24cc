# Cloud SQL for PostgreSQL: private IP only, IAM database authentication,
# and a connection budget that plan refuses to break.

locals {
  # Memory of the tier in MiB (shared-core tiers have fixed sizes).
  db_tier_memory_mb = (
    var.db_tier == "db-f1-micro" ? 614 :
    var.db_tier == "db-g1-small" ? 1741 :
    tonumber(regex("^db-custom-[0-9]+-([0-9]+)$", var.db_tier)[0])
  )

  # Cloud SQL for PostgreSQL's default max_connections by tier memory
  # (Cloud SQL quotas and limits: 25 for db-f1-micro, 50 for db-g1-small,
  # then 100 / 200 / 400 / 500 / 600 / 800 / 1000 by memory).
  db_tier_max_connections = (
    var.db_tier == "db-f1-micro" ? 25 :
    var.db_tier == "db-g1-small" ? 50 :
    local.db_tier_memory_mb < 6144 ? 100 :
    local.db_tier_memory_mb < 7680 ? 200 :
    local.db_tier_memory_mb < 15360 ? 400 :
    local.db_tier_memory_mb < 30720 ? 500 :
    local.db_tier_memory_mb < 61440 ? 600 :
    local.db_tier_memory_mb < 122880 ? 800 :
    1000
  )

  # The limit the budget is checked against; it is also set as a database
  # flag, so the check and the instance cannot disagree.
  db_max_connections = coalesce(var.db_max_connections, local.db_tier_max_connections)

  # The pool of the migration job (one task): DB_POOL_SIZE + DB_MAX_OVERFLOW.
  migrate_pool = { size = 1, overflow = 1 }

  # Connection budget: every instance of every function may hold
  # DB_POOL_SIZE + DB_MAX_OVERFLOW connections (pgxpool MaxConns), Cloud Run
  # may run max_instances of it, the migration job holds its own pool, and
  # Cloud SQL keeps some for superusers.
  db_connections_by_function = {
    for name, f in var.functions : name => f.max_instances * (f.db_pool_size + f.db_max_overflow)
  }
  db_connection_budget = (
    sum(values(local.db_connections_by_function))
    + local.migrate_pool.size + local.migrate_pool.overflow
    + local.close_invoices_pool.size + local.close_invoices_pool.overflow
    + var.db_reserved_connections
  )
}

resource "google_sql_database_instance" "main" {
  name             = "${local.prefix}-pg"
  region           = var.region
  database_version = var.db_version

  # Terraform refuses to destroy it (and the Cloud SQL API too, below).
  deletion_protection = var.deletion_protection

  settings {
    # New PostgreSQL 16+ instances default to Enterprise Plus, which has no
    # shared-core or custom tiers; say which edition the tiers belong to.
    edition                     = "ENTERPRISE"
    tier                        = var.db_tier
    availability_type           = var.db_availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.db_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection

    ip_configuration {
      # Private IP only, reached over the private services access peering.
      ipv4_enabled    = false
      private_network = google_compute_network.main.id
      # Only clients with a certificate issued by the instance: the Cloud SQL
      # connector (cloudsqlconn) always presents one.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = var.db_backups.enabled
      point_in_time_recovery_enabled = var.db_backups.point_in_time_recovery
      start_time                     = "03:00"
      transaction_log_retention_days = var.db_backups.point_in_time_recovery ? var.db_backups.log_retention_days : null
      backup_retention_settings {
        retained_backups = var.db_backups.retained_backups
      }
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    database_flags {
      name  = "max_connections"
      value = tostring(local.db_max_connections)
    }

    maintenance_window {
      day  = 7 # Sunday
      hour = 4 # UTC
    }

    # Query insights on dedicated-core tiers; the shared-core dev tiers have
    # little memory to spare.
    insights_config {
      query_insights_enabled = startswith(var.db_tier, "db-custom-")
    }
  }

  lifecycle {
    precondition {
      condition = local.db_connection_budget <= local.db_max_connections
      error_message = format(
        "Connection budget exceeded: the functions may open %d connections (%s), the migration and invoice jobs %d and %d are reserved: %d in all, but %s allows %d. Lower max_instances or the pool sizes in var.functions, or choose a bigger db_tier.",
        sum(values(local.db_connections_by_function)),
        join(", ", [for n, c in local.db_connections_by_function : "${n} ${var.functions[n].max_instances}x(${var.functions[n].db_pool_size}+${var.functions[n].db_max_overflow})=${c}"]),
        local.migrate_pool.size + local.migrate_pool.overflow + local.close_invoices_pool.size + local.close_invoices_pool.overflow,
        var.db_reserved_connections,
        local.db_connection_budget,
        var.db_tier,
        local.db_max_connections,
      )
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "app" {
  name     = var.db_name
  instance = google_sql_database_instance.main.name
}
