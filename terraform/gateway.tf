# The one public base URL: a global external Application Load Balancer
# (EXTERNAL_MANAGED) with a serverless NEG and a backend service per
# function, and a URL map whose path rules come from shared/routes through
# routes.auto.tf.json (local.routes, generated; see verify/cloud).
#
# Paths are exact, as in the routing table: a path rule without "*"
# matches only that path. Anything else goes to the health function with
# its path rewritten under /_unrouted/, which no function serves, so the
# client gets the platform's own 404 application/problem+json (the load
# balancer's fault-injection 404 was text/plain), and the functions'
# internal /livez and /readyz stay unreachable from outside.
#
# Every backend service also: sends the client's address, as the load
# balancer saw it, in its own header (local.client_ip_header; the functions
# key per-IP limits on it, CLIENT_IP_HEADER), adds HSTS to every response,
# and is protected by the Cloud Armor policy of armor.tf.

locals {
  # Routed paths of each function, e.g. users = ["/me", "/users", "/users/"].
  routes_by_function = {
    for fn in distinct(values(local.routes)) : fn => sort([for path, f in local.routes : path if f == fn])
  }

  # The header the load balancer sets to the client's IP address
  # ({client_ip_address}); the functions read it (CLIENT_IP_HEADER).
  client_ip_header = "X-Ratebill-Client-Ip"

  # Unrouted paths are forwarded under this prefix, which no function
  # serves (shared/instance answers 404 problem+json for it).
  unrouted_prefix = "/_unrouted/"

  # Browsers must use HTTPS for a year; plain HTTP only redirects.
  hsts = "max-age=31536000; includeSubDomains"

  gateway_domains = length(var.domains) > 0 ? var.domains : ["${google_compute_global_address.gateway.address}.nip.io"]
  base_url        = "https://${local.gateway_domains[0]}"
}

resource "google_compute_global_address" "gateway" {
  name = "${local.prefix}-gateway"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_region_network_endpoint_group" "fn" {
  for_each = local.function_services

  name                  = "${local.prefix}-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = each.value
  }
}

resource "google_compute_backend_service" "fn" {
  for_each = local.function_services

  name                  = "${local.prefix}-${each.key}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  # As in Google's serverless NEG examples: no health check (serverless NEGs
  # take none) and the default protocol; the hop to Cloud Run stays on
  # Google's network.
  protocol = "HTTP"

  # The client's address in a header of the load balancer's own, so the
  # functions need not guess how many X-Forwarded-For entries it appended.
  custom_request_headers  = ["${local.client_ip_header}: {client_ip_address}"]
  custom_response_headers = ["Strict-Transport-Security: ${local.hsts}"]
  security_policy         = google_compute_security_policy.gateway.id

  backend {
    group = google_compute_region_network_endpoint_group.fn[each.key].id
  }

  log_config {
    enable      = true
    sample_rate = var.environment == "prod" ? 0.1 : 1.0
  }
}

resource "google_compute_url_map" "gateway" {
  name = "${local.prefix}-gateway"

  # Unrouted paths: forwarded to the health function under
  # local.unrouted_prefix, which it answers with the platform's 404
  # problem+json (see the top of this file).
  default_service = google_compute_backend_service.fn["health"].id
  default_route_action {
    url_rewrite {
      path_prefix_rewrite = local.unrouted_prefix
    }
  }

  host_rule {
    hosts        = ["*"]
    path_matcher = "api"
  }

  path_matcher {
    name = "api"

    default_service = google_compute_backend_service.fn["health"].id
    default_route_action {
      url_rewrite {
        path_prefix_rewrite = local.unrouted_prefix
      }
    }

    dynamic "path_rule" {
      for_each = local.routes_by_function
      content {
        paths   = path_rule.value
        service = google_compute_backend_service.fn[path_rule.key].id
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for fn in values(local.routes) : contains(keys(local.function_services), fn)])
      error_message = "routes.auto.tf.json routes a path to a function that has no Cloud Run service here; add its <function>.tf."
    }
  }
}

# A new certificate name per set of domains, created before the old one is
# dropped, so changing var.domains never leaves the proxy without one.
resource "google_compute_managed_ssl_certificate" "gateway" {
  name = "${local.prefix}-gateway-${substr(sha1(join(",", local.gateway_domains)), 0, 8)}"

  managed {
    domains = local.gateway_domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "gateway" {
  name            = "${local.prefix}-gateway"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "gateway" {
  name             = "${local.prefix}-gateway"
  url_map          = google_compute_url_map.gateway.id
  ssl_certificates = [google_compute_managed_ssl_certificate.gateway.id]
  ssl_policy       = google_compute_ssl_policy.gateway.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${local.prefix}-https"
  ip_address            = google_compute_global_address.gateway.id
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_https_proxy.gateway.id
}

# Plain HTTP only redirects to HTTPS; 308 keeps the method and body of a POST.
resource "google_compute_url_map" "http_redirect" {
  name = "${local.prefix}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "PERMANENT_REDIRECT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  name    = "${local.prefix}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${local.prefix}-http"
  ip_address            = google_compute_global_address.gateway.id
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_http_proxy.http_redirect.id
}
