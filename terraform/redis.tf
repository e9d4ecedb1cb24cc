# Memorystore for Redis: the rate limiter's state.
#
# AUTH is on and traffic is TLS (SERVER_AUTHENTICATION): the functions get
# the AUTH string as REDIS_PASSWORD and the instance's server CA as
# REDIS_CA_CERT, both from Secret Manager (secrets.tf), and dial
# rediss://HOST:PORT/0 (port 6378 with TLS).

resource "google_redis_instance" "main" {
  name           = "${local.prefix}-redis"
  region         = var.region
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  redis_version  = var.redis_version

  authorized_network = google_compute_network.main.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # Never evict: the default policy (volatile-lru) would evict rate-limit
  # counters (they carry a TTL) under memory pressure while the user's
  # marker (no TTL) stays, a loss the limiter cannot detect, so a user
  # would get the window again. With noeviction a full instance refuses
  # writes: the limiter fails closed (503) and monitoring sees it.
  redis_configs = {
    "maxmemory-policy" = "noeviction"
  }

  # RDB snapshots: a failover or maintenance restart reloads the counters
  # from the last snapshot instead of starting empty. Whatever is lost
  # (all of it without persistence, the writes since the last snapshot
  # with it) is detected by the limiter's marker and the window rebuilt
  # from the ledger (shared/ratelimit/rebuild.go); snapshots keep that
  # rebuild, one ledger query per active user, rare.
  dynamic "persistence_config" {
    for_each = var.redis_rdb_snapshot_period == null ? [] : [var.redis_rdb_snapshot_period]
    content {
      persistence_mode    = "RDB"
      rdb_snapshot_period = persistence_config.value
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

locals {
  redis_url = "rediss://${google_redis_instance.main.host}:${google_redis_instance.main.port}/0"
}
