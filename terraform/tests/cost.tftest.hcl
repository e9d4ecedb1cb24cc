# The monthly budget with alerts (budget.tf).

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "prod"
}

run "no_budget_without_billing_account" {
  command = plan

  assert {
    condition     = length(google_billing_budget.env) == 0
    error_message = "Without billing_budget no budget is created."
  }
}

run "budget_alerts" {
  command = plan

  variables {
    billing_budget = {
      billing_account = "012345-6789AB-CDEF01"
      monthly_amount  = 1500
      emails          = ["ops@example.com"]
    }
  }

  assert {
    condition = (
      google_billing_budget.env[0].billing_account == "012345-6789AB-CDEF01" &&
      google_billing_budget.env[0].amount[0].specified_amount[0].units == "1500" &&
      google_billing_budget.env[0].amount[0].specified_amount[0].currency_code == "USD" &&
      google_billing_budget.env[0].budget_filter[0].calendar_period == "MONTH"
    )
    error_message = "The budget must be the month's amount on the billing account."
  }
  assert {
    condition = toset([
      for r in google_billing_budget.env[0].threshold_rules : "${r.spend_basis}:${r.threshold_percent}"
    ]) == toset(["CURRENT_SPEND:0.5", "CURRENT_SPEND:0.9", "CURRENT_SPEND:1", "FORECASTED_SPEND:1"])
    error_message = "Alerts at 50, 90 and 100 % of actual spend and 100 % of the forecast."
  }
  assert {
    condition     = length(google_billing_budget.env[0].all_updates_rule[0].monitoring_notification_channels) == 1 && !google_billing_budget.env[0].all_updates_rule[0].disable_default_iam_recipients
    error_message = "Alerts go to the billing account's users and to the listed e-mails."
  }
}
