package telemetry

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ratebill/platform/shared/reporoot"
)

// The Cloud Monitoring dashboard and alerts (terraform/monitoring.tf)
// read workload.googleapis.com/<instrument name>: every name they read is
// an instrument this package registers.
func TestTerraformReadsExportedMetrics(t *testing.T) {
	root, err := reporoot.Find()
	if err != nil {
		t.Skipf("DID NOT RUN: repository root not found: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(root, "terraform", "monitoring.tf"))
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, n := range []string{MetricRequestDuration, MetricRequests, MetricDecisions, MetricBatchSize, MetricWriteDuration,
		MetricWriteFailures, MetricAuthCache, MetricDependencyErrors, MetricPendingAtShutdown} {
		exported[n] = true
	}
	names := regexp.MustCompile(`workload\.googleapis\.com/([A-Za-z0-9._]+)`).FindAllSubmatch(b, -1)
	if len(names) == 0 {
		t.Fatal("monitoring.tf reads no workload.googleapis.com metric: has the naming changed?")
	}
	for _, m := range names {
		if !exported[string(m[1])] {
			t.Errorf("terraform/monitoring.tf reads workload.googleapis.com/%s, which shared/telemetry does not export", m[1])
		}
	}
	// The attribute values the dashboard lists.
	for _, o := range outcomeNames {
		if !regexp.MustCompile(`ratelimit_outcomes\s*=\s*\[[^\]]*"` + o + `"`).Match(b) {
			t.Errorf("monitoring.tf's ratelimit_outcomes lacks %q", o)
		}
	}
}
