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

  # Everything unrouted is answered 404 by the load balancer, at both levels.
  assert {
    condition = (
      google_compute_url_map.gateway.path_matcher[0].default_route_action[0].fault_injection_policy[0].abort[0].http_status == 404 &&
      google_compute_url_map.gateway.path_matcher[0].default_route_action[0].fault_injection_policy[0].abort[0].percentage == 100 &&
      google_compute_url_map.gateway.default_route_action[0].fault_injection_policy[0].abort[0].http_status == 404 &&
      google_compute_url_map.gateway.default_route_action[0].fault_injection_policy[0].abort[0].percentage == 100
    )
    error_message = "Unrouted paths must get 404 from the load balancer."
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
