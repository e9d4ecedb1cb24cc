// Package cloud verifies the Google Cloud deployment offline: the Terraform
// of terraform/ (fmt, validate and plan-only tests with a mocked provider,
// run against the real hashicorp/google provider), the Cloud Build pipeline
// of cloudbuild.yaml (decoded strictly into the Cloud Build API's Build
// message), and the load balancer's routes, which are generated from
// shared/routes.Table into terraform/routes.auto.tf.json.
//
// Nothing here reaches Google Cloud; see docs/deploy-gcp.md for what these
// checks cannot prove.
package cloud
