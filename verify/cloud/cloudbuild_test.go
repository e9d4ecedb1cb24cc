package cloud

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"cloud.google.com/go/cloudbuild/apiv1/v2/cloudbuildpb"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/ratebill/platform/shared/routes"
)

// decodeBuild decodes a Cloud Build config the strict way: YAML to JSON,
// then protojson into the API's Build message with unknown fields rejected,
// so a misspelt key fails here instead of being ignored.
func decodeBuild(b []byte) (*cloudbuildpb.Build, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("converting YAML: %w", err)
	}
	var build cloudbuildpb.Build
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, &build); err != nil {
		return nil, fmt.Errorf("decoding into cloudbuildpb.Build: %w", err)
	}
	return &build, nil
}

func loadBuild(t *testing.T) *cloudbuildpb.Build {
	t.Helper()
	return loadBuildFile(t, "cloudbuild.yaml")
}

// pipelines are the Cloud Build configurations: the deploy pipeline and the
// pull-request pipeline (tests and terraform plan).
var pipelines = []string{"cloudbuild.yaml", "cloudbuild-plan.yaml"}

func loadBuildFile(t *testing.T, name string) *cloudbuildpb.Build {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	build, err := decodeBuild(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return build
}

// TestCloudBuildDecodesStrictly decodes cloudbuild.yaml into
// cloudbuildpb.Build and checks the basics the API would refuse.
func TestCloudBuildDecodesStrictly(t *testing.T) {
	build := loadBuild(t)
	if len(build.GetSteps()) == 0 {
		t.Fatal("cloudbuild.yaml has no steps")
	}
	for i, s := range build.GetSteps() {
		if s.GetId() == "" {
			t.Errorf("step %d has no id; every step needs one for waitFor", i)
		}
		if s.GetName() == "" {
			t.Errorf("step %q has no builder image (name)", s.GetId())
		}
	}
	if build.GetOptions().GetLogging() != cloudbuildpb.BuildOptions_CLOUD_LOGGING_ONLY {
		t.Errorf("options.logging = %v; a build with a user-managed service account needs CLOUD_LOGGING_ONLY (or a logs bucket)", build.GetOptions().GetLogging())
	}
	if d := build.GetTimeout().AsDuration(); d <= 0 {
		t.Errorf("timeout %v; want an explicit build timeout", d)
	}
}

// TestCloudBuildRejectsUnknownFields proves the decoder is strict: a
// misspelt field must fail, or TestCloudBuildDecodesStrictly proves nothing.
func TestCloudBuildRejectsUnknownFields(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"misspelt waitFor", "steps:\n- id: a\n  name: busybox\n  waitfor: ['-']\n"},
		{"unknown top-level key", "step:\n- id: a\n  name: busybox\n"},
		{"unknown option", "steps:\n- id: a\n  name: busybox\noptions:\n  machine: E2_HIGHCPU_8\n"},
		{"bad enum", "steps:\n- id: a\n  name: busybox\noptions:\n  logging: STDOUT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeBuild([]byte(tc.yaml)); err == nil {
				t.Errorf("decoded without error:\n%s", tc.yaml)
			}
		})
	}
	if _, err := decodeBuild([]byte("steps:\n- id: a\n  name: busybox\n  waitFor: ['-']\n")); err != nil {
		t.Errorf("a valid config failed: %v", err)
	}
}

// TestCloudBuildWaitForNamesExist: every waitFor names an earlier step (or
// "-"), ids are unique, and there are no cycles.
func TestCloudBuildWaitForNamesExist(t *testing.T) {
	build := loadBuild(t)
	seen := map[string]bool{}
	for _, s := range build.GetSteps() {
		if seen[s.GetId()] {
			t.Errorf("step id %q is used twice", s.GetId())
		}
		for _, w := range s.GetWaitFor() {
			if w == "-" {
				if len(s.GetWaitFor()) != 1 {
					t.Errorf("step %q: waitFor '-' must stand alone", s.GetId())
				}
				continue
			}
			if !seen[w] {
				t.Errorf("step %q waits for %q, which is not an earlier step", s.GetId(), w)
			}
		}
		seen[s.GetId()] = true
	}
}

// deps returns, for each step, the set of steps it transitively waits for.
// A step without waitFor waits for every step before it.
func deps(build *cloudbuildpb.Build) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	var prev []string
	for _, s := range build.GetSteps() {
		d := map[string]bool{}
		direct := s.GetWaitFor()
		if len(direct) == 0 {
			direct = prev
		}
		for _, w := range direct {
			if w == "-" {
				continue
			}
			d[w] = true
			for x := range out[w] {
				d[x] = true
			}
		}
		out[s.GetId()] = d
		prev = append(prev, s.GetId())
	}
	return out
}

// script returns a step's command line: entrypoint and args joined.
func script(s *cloudbuildpb.BuildStep) string {
	return strings.Join(append([]string{s.GetEntrypoint()}, s.GetArgs()...), " ")
}

var (
	buildArgRE = regexp.MustCompile(`--build-arg FUNCTION=([a-z]+)\b`)
	tagRE      = regexp.MustCompile(`--tag (\S+)`)
)

// TestCloudBuildImagesPushedAndDeployed follows each image from its build
// to its push (only after make test), the migration job (before any
// deploy) and its Cloud Run service, and checks the smoke test runs last.
func TestCloudBuildImagesPushedAndDeployed(t *testing.T) {
	build := loadBuild(t)
	dep := deps(build)

	want := append(slices.Clone(routes.Functions), "migrate")
	built := map[string]string{} // function -> image
	builtBy := map[string]string{}
	for _, s := range build.GetSteps() {
		cmd := script(s)
		if m := buildArgRE.FindStringSubmatch(cmd); m != nil && slices.Contains(s.GetArgs(), "build") {
			tag := tagRE.FindStringSubmatch(cmd)
			if tag == nil {
				t.Errorf("step %q builds FUNCTION=%s without --tag", s.GetId(), m[1])
				continue
			}
			if !slices.Contains(s.GetArgs(), ".") {
				t.Errorf("step %q must build from the repository root (context \".\")", s.GetId())
			}
			built[m[1]] = tag[1]
			builtBy[m[1]] = s.GetId()
		}
	}
	var got []string
	for fn := range built {
		got = append(got, fn)
	}
	sort.Strings(got)
	sorted := slices.Clone(want)
	sort.Strings(sorted)
	if !slices.Equal(got, sorted) {
		t.Fatalf("images built for %v, want one per function plus migrate: %v", got, sorted)
	}

	stepByID := map[string]*cloudbuildpb.BuildStep{}
	for _, s := range build.GetSteps() {
		stepByID[s.GetId()] = s
	}
	// make test runs gofmt, go vet and staticcheck before the tests: one
	// gate.
	if stepByID["test"] == nil {
		t.Fatal(`no "test" step`)
	}
	if !strings.Contains(script(stepByID["test"]), "make test") {
		t.Errorf("the test step must run make test, runs %q", script(stepByID["test"]))
	}

	migrateStep := ""
	for _, s := range build.GetSteps() {
		cmd := script(s)
		if strings.Contains(cmd, "gcloud run jobs execute") {
			migrateStep = s.GetId()
			if !strings.Contains(cmd, "--wait") {
				t.Errorf("step %q executes the migration job without --wait", s.GetId())
			}
			if !strings.Contains(cmd, "gcloud run jobs update") || !strings.Contains(cmd, "--image") || !strings.Contains(cmd, built["migrate"]) {
				t.Errorf("step %q must point the job at the new migrate image %s before executing it", s.GetId(), built["migrate"])
			}
		}
	}
	if migrateStep == "" {
		t.Fatal("no step runs the migration job (gcloud run jobs execute)")
	}

	images := build.GetImages()
	var deploySteps []string
	for _, fn := range want {
		img := built[fn]
		if !slices.Contains(images, img) {
			t.Errorf("image %s is not listed in images:", img)
		}
		// Pushed, after the build of the image and the tests.
		pushed := ""
		for _, s := range build.GetSteps() {
			if slices.Equal(s.GetArgs(), []string{"push", img}) {
				pushed = s.GetId()
			}
		}
		if pushed == "" {
			t.Errorf("image %s is built but never pushed", img)
			continue
		}
		for _, need := range []string{builtBy[fn], "test"} {
			if !dep[pushed][need] {
				t.Errorf("step %q pushes %s without waiting for %q", pushed, img, need)
			}
		}
		if fn == "migrate" {
			if !dep[migrateStep][pushed] {
				t.Errorf("the migration step %q does not wait for %q", migrateStep, pushed)
			}
			continue
		}
		// Deployed to its own service, after the migration.
		service := "${_APP}-${_ENV}-" + fn
		deployed := ""
		for _, s := range build.GetSteps() {
			args := s.GetArgs()
			if len(args) >= 4 && slices.Equal(args[:4], []string{"run", "services", "update", service}) {
				if i := slices.Index(args, "--image"); i < 0 || i+1 >= len(args) || args[i+1] != img {
					t.Errorf("step %q updates %s with another image than %s", s.GetId(), service, img)
				}
				deployed = s.GetId()
			}
		}
		if deployed == "" {
			t.Errorf("image %s is never deployed to %s", img, service)
			continue
		}
		deploySteps = append(deploySteps, deployed)
		for _, need := range []string{pushed, migrateStep} {
			if !dep[deployed][need] {
				t.Errorf("deploy step %q does not wait for %q", deployed, need)
			}
		}
	}

	smoke := ""
	for _, s := range build.GetSteps() {
		if strings.Contains(script(s), "${_BASE_URL}/health") {
			smoke = s.GetId()
		}
	}
	if smoke == "" {
		t.Fatal("no step smoke-tests ${_BASE_URL}/health")
	}
	for _, d := range deploySteps {
		if !dep[smoke][d] {
			t.Errorf("the smoke test %q does not wait for %q", smoke, d)
		}
	}

	// The image builds do not wait for the tests (they overlap them), and
	// they run one at a time (TestCloudBuildFitsMachine checks the budget).
	for fn, id := range builtBy {
		if dep[id]["test"] {
			t.Errorf("step %q (image %s) waits for the tests; build while they run, push after", id, fn)
		}
	}
}

var (
	substRE   = regexp.MustCompile(`\$\{?(_[A-Z0-9_]+)`)
	builtinRE = regexp.MustCompile(`(?:^|[^$])\$\{?([A-Z][A-Z0-9_]*)`)
	// Built-in substitutions that a manual `gcloud builds submit` (the
	// first build in docs/deploy-gcp.md) has too; COMMIT_SHA, SHORT_SHA,
	// BRANCH_NAME and the like exist only in triggered builds.
	alwaysBuiltin = []string{"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION"}
)

// TestCloudBuildSubstitutionsMatchTrigger: every user substitution the
// steps use is declared with a default, and the Terraform trigger
// (terraform/build.tf, local.build_substitutions) sets exactly those.
func TestCloudBuildSubstitutionsMatchTrigger(t *testing.T) {
	root := repoRoot(t)
	build := loadBuild(t)

	used := map[string]bool{}
	collect := func(s string) {
		for _, m := range substRE.FindAllStringSubmatch(s, -1) {
			used[m[1]] = true
		}
		for _, m := range builtinRE.FindAllStringSubmatch(s, -1) {
			if !slices.Contains(alwaysBuiltin, m[1]) {
				t.Errorf("built-in substitution $%s is empty or refused in a manual build; use one of %v", m[1], alwaysBuiltin)
			}
		}
	}
	for _, s := range build.GetSteps() {
		collect(s.GetEntrypoint())
		for _, a := range s.GetArgs() {
			collect(a)
		}
		for _, e := range s.GetEnv() {
			collect(e)
		}
	}
	for _, img := range build.GetImages() {
		collect(img)
	}
	declared := build.GetSubstitutions()
	for k := range used {
		if _, ok := declared[k]; !ok {
			t.Errorf("substitution %s is used but not declared in substitutions:", k)
		}
	}
	for k := range declared {
		if !used[k] {
			t.Errorf("substitution %s is declared but never used", k)
		}
	}

	keys := triggerSubstitutionKeys(t, filepath.Join(root, "terraform", "build.tf"))
	var want []string
	for k := range declared {
		want = append(want, k)
	}
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Errorf("terraform trigger substitutions %v, cloudbuild.yaml declares %v", keys, want)
	}
}

// triggerSubstitutionKeys reads the keys of local.build_substitutions from
// build.tf with the HCL parser.
func triggerSubstitutionKeys(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "locals" {
			continue
		}
		attr, ok := b.Body.Attributes["build_substitutions"]
		if !ok {
			continue
		}
		obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatalf("%s: local.build_substitutions is not an object literal", path)
		}
		var keys []string
		for _, item := range obj.Items {
			k := hcl.ExprAsKeyword(item.KeyExpr)
			if k == "" {
				t.Fatalf("%s: local.build_substitutions has a key that is not a plain name", path)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys
	}
	t.Fatalf("%s: no local.build_substitutions", path)
	return nil
}
