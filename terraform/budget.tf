# A monthly budget on this environment's project, with e-mail alerts at
# 50 %, 90 % and 100 % of actual spend and at 100 % of the forecast. The
# budget alerts; it does not cap spending.
#
# Needs the billing account ID and, on it, roles/billing.costsManager (or
# billing.admin) for whoever runs terraform apply. Alerts go to the billing
# account's administrators and users, and to var.billing_budget.emails.

resource "google_monitoring_notification_channel" "budget" {
  for_each = var.billing_budget == null ? toset([]) : toset(var.billing_budget.emails)

  display_name = "${local.prefix} budget: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.enabled]
}

resource "google_billing_budget" "env" {
  count = var.billing_budget == null ? 0 : 1

  billing_account = var.billing_budget.billing_account
  display_name    = "${local.prefix} monthly"

  budget_filter {
    projects        = ["projects/${data.google_project.this.number}"]
    calendar_period = "MONTH"
  }

  amount {
    specified_amount {
      currency_code = var.billing_budget.currency
      units         = tostring(var.billing_budget.monthly_amount)
    }
  }

  dynamic "threshold_rules" {
    for_each = [0.5, 0.9, 1.0]
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }
  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = [for c in google_monitoring_notification_channel.budget : c.id]
    disable_default_iam_recipients   = false
  }

  depends_on = [google_project_service.enabled]
}
