# The VPC the functions reach Cloud SQL and Memorystore through.
#
# Egress choice: Direct VPC egress, not a Serverless VPC Access connector.
# Each Cloud Run instance gets an address in the subnet below, so there are
# no connector VMs to pay for while idle (a connector keeps at least two
# instances running), no connector throughput ceiling, and one hop less.
# The cost is addresses: size subnet_cidr for twice the sum of max instances
# (instances of the old and new revision overlap during a rollout).
#
# Only private ranges go through the VPC (PRIVATE_RANGES_ONLY): Cloud SQL's
# and Memorystore's private IPs via the private services access peering.
# Calls to Google APIs (the Cloud SQL Admin API used by the connector,
# Secret Manager, logging) leave directly.

resource "google_compute_network" "main" {
  name                    = "${local.prefix}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_subnetwork" "run" {
  name                     = "${local.prefix}-run"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
}

# Private services access: one peered range from which Google allocates the
# private IPs of Cloud SQL and Memorystore.
resource "google_compute_global_address" "private_services" {
  name          = "${local.prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]

  # Removing the peering fails for days after a Cloud SQL instance that used
  # it is deleted; on destroy, leave it to go with the network.
  deletion_policy = "ABANDON"
}
