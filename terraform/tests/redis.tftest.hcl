# Memorystore keeps its data across restarts (redis.tf): RDB snapshots.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "prod"
}

run "rdb_snapshots_by_default" {
  command = plan

  assert {
    condition = (
      google_redis_instance.main.persistence_config[0].persistence_mode == "RDB" &&
      google_redis_instance.main.persistence_config[0].rdb_snapshot_period == "ONE_HOUR"
    )
    error_message = "Memorystore must snapshot its data (RDB) so a restart does not start with empty counters."
  }
}

run "never_evicts" {
  command = plan

  assert {
    condition     = google_redis_instance.main.redis_configs["maxmemory-policy"] == "noeviction"
    error_message = "Memorystore must not evict: an evicted counter is a loss the rate limiter cannot detect."
  }
}

run "persistence_can_be_disabled" {
  command = plan

  variables {
    redis_rdb_snapshot_period = null
  }

  assert {
    condition     = length(google_redis_instance.main.persistence_config) == 0
    error_message = "A null snapshot period disables persistence."
  }
}

run "bad_period_refused" {
  command = plan

  variables {
    redis_rdb_snapshot_period = "HOURLY"
  }

  expect_failures = [var.redis_rdb_snapshot_period]
}
