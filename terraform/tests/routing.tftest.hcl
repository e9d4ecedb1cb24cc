# The load balancer's URL map sends every path of shared/routes (through the
# generated local.routes) to the backend of its function, and nothing else
# anywhere. Plan only, with a mocked provider whose computed values are
# filled in at plan time so the backend IDs can be compared.

mock_provider "google" {
  override_during = plan
}

variables {
  project_id  = "ratebill-test"
  environment = "dev"
}

# The IDs the URL map refers to are computed by Google; give each backend
# and NEG a distinct, known one so the plan can be compared.
override_resource {
  target          = google_compute_backend_service.fn["users"]
  override_during = plan
  values          = { id = "projects/ratebill-test/global/backendServices/ratebill-dev-users" }
}
override_resource {
  target          = google_compute_region_network_endpoint_group.fn["users"]
  override_during = plan
  values          = { id = "projects/ratebill-test/regions/us-central1/networkEndpointGroups/ratebill-dev-users" }
}
override_resource {
  target          = google_compute_backend_service.fn["usage"]
  override_during = plan
  values          = { id = "projects/ratebill-test/global/backendServices/ratebill-dev-usage" }
}
override_resource {
  target          = google_compute_region_network_endpoint_group.fn["usage"]
  override_during = plan
  values          = { id = "projects/ratebill-test/regions/us-central1/networkEndpointGroups/ratebill-dev-usage" }
}
override_resource {
  target          = google_compute_backend_service.fn["billing"]
  override_during = plan
  values          = { id = "projects/ratebill-test/global/backendServices/ratebill-dev-billing" }
}
override_resource {
  target          = google_compute_region_network_endpoint_group.fn["billing"]
  override_during = plan
  values          = { id = "projects/ratebill-test/regions/us-central1/networkEndpointGroups/ratebill-dev-billing" }
}
override_resource {
  target          = google_compute_backend_service.fn["health"]
  override_during = plan
  values          = { id = "projects/ratebill-test/global/backendServices/ratebill-dev-health" }
}
override_resource {
  target          = google_compute_region_network_endpoint_group.fn["health"]
  override_during = plan
  values          = { id = "projects/ratebill-test/regions/us-central1/networkEndpointGroups/ratebill-dev-health" }
}
override_resource {
  target          = google_compute_security_policy.gateway
  override_during = plan
  values          = { id = "projects/ratebill-test/global/securityPolicies/ratebill-dev-gateway" }
}
override_resource {
  target          = google_compute_global_address.gateway
  override_during = plan
  values          = { address = "203.0.113.10" }
}

run "routes_reach_their_functions" {
  command = plan

  assert {
    condition     = length(local.routes) > 0
    error_message = "local.routes (routes.auto.tf.json) is empty."
  }

  # Each routed path is in exactly one path rule, and that rule's service is
  # the backend service of the path's function.
  assert {
    condition = alltrue([
      for path, fn in local.routes : length([
        for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r
        if contains(r.paths, path) && r.service == google_compute_backend_service.fn[fn].id
      ]) == 1
    ])
    error_message = "A routed path does not reach the backend of its function."
  }

  # No path rule routes anything that is not in the table (no extra paths,
  # no wildcards).
  assert {
    condition = toset(flatten([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.paths
    ])) == toset(keys(local.routes))
    error_message = "The URL map routes paths that are not in the routing table."
  }
  assert {
    condition = length(flatten([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.paths
    ])) == length(local.routes)
    error_message = "A path appears in more than one path rule."
  }

  # A few rows spelled out, independent of local.routes.
  assert {
    condition = one([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.service if contains(r.paths, "/usage")
    ]) == google_compute_backend_service.fn["usage"].id
    error_message = "/usage must go to the usage function."
  }
  assert {
    condition = one([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.service if contains(r.paths, "/users/")
    ]) == google_compute_backend_service.fn["users"].id
    error_message = "/users/ must go to the users function."
  }
  assert {
    condition = one([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.service if contains(r.paths, "/health")
    ]) == google_compute_backend_service.fn["health"].id
    error_message = "/health must go to the health function."
  }
  assert {
    condition = one([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule : r.service if contains(r.paths, "/billing")
    ]) == google_compute_backend_service.fn["billing"].id
    error_message = "/billing must go to the billing function."
  }

  # The internal probe paths are not routed.
  assert {
    condition = alltrue([
      for r in google_compute_url_map.gateway.path_matcher[0].path_rule :
      !contains(r.paths, "/livez") && !contains(r.paths, "/readyz")
    ])
    error_message = "/livez and /readyz are internal and must not be routed."
  }

  # Everything unrouted goes to a function under a prefix no function
  # serves, at both levels, so the client gets the platform's 404
  # problem+json; never the load balancer's text/plain fault-injection 404.
  assert {
    condition = (
      google_compute_url_map.gateway.default_service == google_compute_backend_service.fn["health"].id &&
      google_compute_url_map.gateway.path_matcher[0].default_service == google_compute_backend_service.fn["health"].id &&
      google_compute_url_map.gateway.default_route_action[0].url_rewrite[0].path_prefix_rewrite == "/_unrouted/" &&
      google_compute_url_map.gateway.path_matcher[0].default_route_action[0].url_rewrite[0].path_prefix_rewrite == "/_unrouted/"
    )
    error_message = "Unrouted paths must reach the health function under /_unrouted/, which answers the platform's 404."
  }
  assert {
    condition = (
      length(google_compute_url_map.gateway.default_route_action[0].fault_injection_policy) == 0 &&
      length(google_compute_url_map.gateway.path_matcher[0].default_route_action[0].fault_injection_policy) == 0
    )
    error_message = "No fault-injection 404: its body is text/plain, not problem+json."
  }
  # The prefix really is unrouted (no routed path starts with it).
  assert {
    condition     = alltrue([for path in keys(local.routes) : !startswith(path, "/_unrouted")])
    error_message = "The unrouted prefix must not be a routed path."
  }

  # Every backend sends the client's address in the load balancer's own
  # header, answers with HSTS, and sits behind the Cloud Armor policy.
  assert {
    condition = alltrue([
      for fn, b in google_compute_backend_service.fn :
      b.custom_request_headers == toset(["X-Ratebill-Client-Ip: {client_ip_address}"]) &&
      contains(b.custom_response_headers, "Strict-Transport-Security: max-age=31536000; includeSubDomains") &&
      b.security_policy == google_compute_security_policy.gateway.id
    ])
    error_message = "Each backend needs the client IP header, HSTS and the Cloud Armor policy."
  }
  assert {
    condition     = local.function_env.CLIENT_IP_HEADER == "X-Ratebill-Client-Ip"
    error_message = "The functions must be told the header the load balancer sets (CLIENT_IP_HEADER)."
  }

  # Cloud Armor: per-IP rate-based rules on sign-up and /verify, then allow.
  assert {
    condition = length([
      for r in google_compute_security_policy.gateway.rule : r
      if r.action == "rate_based_ban" &&
      strcontains(try(r.match[0].expr[0].expression, ""), "request.path == '/users/'") &&
      strcontains(try(r.match[0].expr[0].expression, ""), "request.method == 'POST'") &&
      try(r.rate_limit_options[0].enforce_on_key, "") == "IP" &&
      try(r.rate_limit_options[0].exceed_action, "") == "deny(429)" &&
      try(r.rate_limit_options[0].rate_limit_threshold[0].count, 0) == 10 &&
      try(r.rate_limit_options[0].rate_limit_threshold[0].interval_sec, 0) == 60
    ]) == 1
    error_message = "Cloud Armor needs one rate-based ban per client IP on POST /users/ (10 a minute by default)."
  }
  assert {
    condition = length([
      for r in google_compute_security_policy.gateway.rule : r
      if r.action == "throttle" &&
      strcontains(try(r.match[0].expr[0].expression, ""), "request.path == '/verify'") &&
      try(r.rate_limit_options[0].enforce_on_key, "") == "IP"
    ]) == 1
    error_message = "Cloud Armor needs a per-IP throttle on /verify."
  }
  assert {
    condition = length([
      for r in google_compute_security_policy.gateway.rule : r
      if r.priority == 2147483647 && r.action == "allow"
    ]) == 1
    error_message = "The Cloud Armor policy's default rule must allow."
  }
  assert {
    condition     = [for h in google_compute_url_map.gateway.host_rule : h.path_matcher] == [google_compute_url_map.gateway.path_matcher[0].name] && alltrue([for h in google_compute_url_map.gateway.host_rule : contains(h.hosts, "*")])
    error_message = "Every host must use the api path matcher."
  }

  # Each backend is the serverless NEG of its own function's Cloud Run
  # service, behind the global external Application Load Balancer.
  assert {
    condition = alltrue([
      for fn, svc in local.function_services :
      google_compute_region_network_endpoint_group.fn[fn].cloud_run[0].service == svc &&
      google_compute_region_network_endpoint_group.fn[fn].network_endpoint_type == "SERVERLESS" &&
      [for b in google_compute_backend_service.fn[fn].backend : b.group] == [google_compute_region_network_endpoint_group.fn[fn].id] &&
      google_compute_backend_service.fn[fn].load_balancing_scheme == "EXTERNAL_MANAGED"
    ])
    error_message = "A backend service does not lead to its function's serverless NEG."
  }
  assert {
    condition     = google_compute_global_forwarding_rule.https.load_balancing_scheme == "EXTERNAL_MANAGED" && google_compute_global_forwarding_rule.https.port_range == "443"
    error_message = "The public entry must be a global external managed HTTPS forwarding rule."
  }
  assert {
    condition     = google_compute_url_map.http_redirect.default_url_redirect[0].https_redirect
    error_message = "Plain HTTP must redirect to HTTPS."
  }
  assert {
    condition     = output.base_url == "https://203.0.113.10.nip.io"
    error_message = "Without domains, the base URL is https://<gateway IP>.nip.io."
  }
}

run "custom_domain_is_the_base_url" {
  command = plan

  variables {
    domains = ["api.example.com"]
  }

  assert {
    condition     = output.base_url == "https://api.example.com"
    error_message = "With domains set, the base URL is the first domain."
  }
  assert {
    condition     = google_compute_managed_ssl_certificate.gateway.managed[0].domains == tolist(["api.example.com"])
    error_message = "The managed certificate must cover the domains."
  }
}
