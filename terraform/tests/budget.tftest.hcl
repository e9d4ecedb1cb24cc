# The connection budget: max_instances x (DB_POOL_SIZE + DB_MAX_OVERFLOW)
# summed over the functions, plus the migration and invoice-closing jobs
# and the reserve, must fit
# the Cloud SQL instance's max_connections, or plan fails.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "dev"
}

# db-f1-micro allows 25: 2x(2+1) + 2x(2+1) + 1x(2+1) + 1x(1+0) = 16,
# migration job 2, invoice job 2, reserved 5: exactly 25.
run "budget_exactly_full_passes" {
  command = plan

  variables {
    db_tier = "db-f1-micro"
    functions = {
      users   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
      usage   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
      billing = { max_instances = 1, db_pool_size = 2, db_max_overflow = 1 }
      health  = { max_instances = 1, db_pool_size = 1, db_max_overflow = 0 }
    }
  }

  assert {
    condition     = local.db_connection_budget == 25 && local.db_max_connections == 25
    error_message = "Expected a budget of 25 against db-f1-micro's 25 connections, got ${local.db_connection_budget} against ${local.db_max_connections}."
  }
  assert {
    condition     = one([for f in google_sql_database_instance.main.settings[0].database_flags : f.value if f.name == "max_connections"]) == "25"
    error_message = "The instance must be created with the max_connections the budget was checked against."
  }
  # The pool sizes the budget counted are the ones the services get.
  assert {
    condition     = output.db_connection_budget.by_function == { users = 6, usage = 6, billing = 3, health = 1 }
    error_message = "Per-function connections are max_instances x (db_pool_size + db_max_overflow)."
  }
}

# One more usage instance: 21 + 2 + 2 + 5 = 30 > 25.
run "budget_exceeded_fails_plan" {
  command = plan

  variables {
    db_tier = "db-f1-micro"
    functions = {
      users   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
      usage   = { max_instances = 3, db_pool_size = 2, db_max_overflow = 1 }
      billing = { max_instances = 1, db_pool_size = 2, db_max_overflow = 1 }
      health  = { max_instances = 1, db_pool_size = 2, db_max_overflow = 1 }
    }
  }

  expect_failures = [google_sql_database_instance.main]
}

# The original service's pool defaults (20 + 40) on prod-sized scaling
# cannot fit even a large tier.
run "default_pool_sizes_do_not_fit" {
  command = plan

  variables {
    db_tier = "db-custom-4-15360"
    functions = {
      users   = { max_instances = 10, db_pool_size = 20, db_max_overflow = 40 }
      usage   = { max_instances = 10, db_pool_size = 20, db_max_overflow = 40 }
      billing = { max_instances = 10, db_pool_size = 20, db_max_overflow = 40 }
      health  = { max_instances = 10, db_pool_size = 20, db_max_overflow = 40 }
    }
  }

  expect_failures = [google_sql_database_instance.main]
}

# An explicit max_connections flag raises the limit the budget uses.
run "explicit_max_connections_is_the_limit" {
  command = plan

  variables {
    db_tier            = "db-f1-micro"
    db_max_connections = 40
    functions = {
      users   = { max_instances = 2, db_pool_size = 2, db_max_overflow = 1 }
      usage   = { max_instances = 3, db_pool_size = 2, db_max_overflow = 1 }
      billing = { max_instances = 1, db_pool_size = 2, db_max_overflow = 1 }
      health  = { max_instances = 1, db_pool_size = 2, db_max_overflow = 1 }
    }
  }

  assert {
    condition     = local.db_max_connections == 40 && local.db_connection_budget == 30
    error_message = "db_max_connections must override the tier default."
  }
}

# Tier defaults by memory.
run "tier_defaults" {
  command = plan

  variables {
    db_tier = "db-custom-2-7680"
  }

  assert {
    condition     = local.db_max_connections == 400
    error_message = "db-custom-2-7680 (7.5 GiB) allows 400 connections by default."
  }
}

run "functions_must_be_the_routed_ones" {
  command = plan

  variables {
    functions = {
      users   = { max_instances = 1, db_pool_size = 1, db_max_overflow = 0 }
      usage   = { max_instances = 1, db_pool_size = 1, db_max_overflow = 0 }
      billing = { max_instances = 1, db_pool_size = 1, db_max_overflow = 0 }
    }
  }

  expect_failures = [var.functions]
}
