# Cloud Armor in front of every backend service: per-client-IP rate-based
# rules on the unauthenticated, abusable paths, enforced at Google's edge
# before a request reaches (and bills) a Cloud Run instance.
#
# - sign-up (POST /users/ and /users): the function limits sign-ups per
#   client IP too (SIGNUP_RATE_LIMIT, keyed on local.client_ip_header);
#   this rule stops floods before they cost instances.
# - /verify (the customers' servers' verification calls): throttled per IP
#   well above any honest server's rate; the per-key limits stay the
#   function's job.
# Everything else is allowed; the functions authenticate and rate-limit.

resource "google_compute_security_policy" "gateway" {
  name        = "${local.prefix}-gateway"
  description = "Per-IP rate limits on sign-up and /verify for the ${local.prefix} load balancer."
  type        = "CLOUD_ARMOR"

  dynamic "rule" {
    for_each = local.armor_rate_rules
    content {
      priority    = rule.value.priority
      description = rule.value.description
      action      = rule.value.action

      match {
        expr {
          expression = rule.value.expression
        }
      }

      rate_limit_options {
        enforce_on_key = "IP"
        conform_action = "allow"
        exceed_action  = "deny(429)"
        rate_limit_threshold {
          count        = rule.value.count
          interval_sec = rule.value.interval_sec
        }
        # rate_based_ban only: ban the address for a while once it exceeds
        # the threshold.
        ban_duration_sec = rule.value.action == "rate_based_ban" ? var.armor.signup_ban_seconds : null
      }
    }
  }

  # The default rule every policy must have: allow.
  rule {
    priority    = 2147483647
    description = "default: allow"
    action      = "allow"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

locals {
  armor_rate_rules = {
    signup = {
      priority     = 1000
      description  = "sign-up: at most ${var.armor.signup_per_minute} POSTs a minute per client IP, then a ${var.armor.signup_ban_seconds}s ban"
      action       = "rate_based_ban"
      expression   = "request.method == 'POST' && (request.path == '/users/' || request.path == '/users')"
      count        = var.armor.signup_per_minute
      interval_sec = 60
    }
    verify = {
      priority     = 1100
      description  = "/verify: at most ${var.armor.verify_per_minute} requests a minute per client IP"
      action       = "throttle"
      expression   = "request.path == '/verify' || request.path.startsWith('/verify/')"
      count        = var.armor.verify_per_minute
      interval_sec = 60
    }
  }
}
