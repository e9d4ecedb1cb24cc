package cloud

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"cloud.google.com/go/cloudbuild/apiv1/v2/cloudbuildpb"
)

// heavy says whether a step is one that keep several cores busy for minutes: image
// builds, and the test run (compiling every module, -race on shared, real
// servers).
func heavy(s *cloudbuildpb.BuildStep) bool {
	args := s.GetArgs()
	cmd := script(s)
	return (strings.HasSuffix(s.GetName(), "/docker") && len(args) > 0 && (args[0] == "build" || args[0] == "run")) ||
		strings.Contains(cmd, "make test") || strings.Contains(cmd, "go test") || strings.Contains(cmd, "go build")
}

// machineBudget is how many heavy steps may run at once on a machine type:
// about one per 4 vCPUs and 4 GB (a race-enabled go test or a Go image build
// each wants that much), and at least one.
var machineBudget = map[cloudbuildpb.BuildOptions_MachineType]int{
	cloudbuildpb.BuildOptions_UNSPECIFIED:   1, // e2-standard-2
	cloudbuildpb.BuildOptions_E2_MEDIUM:     1,
	cloudbuildpb.BuildOptions_E2_HIGHCPU_8:  2,
	cloudbuildpb.BuildOptions_E2_HIGHCPU_32: 4,
}

// TestCloudBuildFitsMachine: options.machineType is set, and no more heavy
// steps can run at the same time than the machine has room for. Two steps
// can overlap when neither waits (transitively) for the other; the largest
// such set of heavy steps must fit the budget. The old pipeline started the
// tests, the provider build and five image builds at once.
func TestCloudBuildFitsMachine(t *testing.T) {
	for _, name := range pipelines {
		t.Run(name, func(t *testing.T) { checkFitsMachine(t, loadBuildFile(t, name)) })
	}
}

func checkFitsMachine(t *testing.T, build *cloudbuildpb.Build) {
	mt := build.GetOptions().GetMachineType()
	if mt == cloudbuildpb.BuildOptions_UNSPECIFIED {
		t.Error("options.machineType is not set; choose one and order the steps for it")
	}
	budget, ok := machineBudget[mt]
	if !ok {
		t.Fatalf("machine type %v has no budget in this test; add it", mt)
	}
	dep := deps(build)
	var hs []string
	for _, s := range build.GetSteps() {
		if heavy(s) {
			hs = append(hs, s.GetId())
		}
	}
	if len(hs) > 20 {
		t.Fatalf("%d heavy steps; the exhaustive check below is for small pipelines", len(hs))
	}
	overlap := func(a, b string) bool { return !dep[a][b] && !dep[b][a] }
	var worst []string
	for mask := 1; mask < 1<<len(hs); mask++ {
		var set []string
		for i, id := range hs {
			if mask&(1<<i) != 0 {
				set = append(set, id)
			}
		}
		if len(set) <= len(worst) {
			continue
		}
		all := true
		for i := range set {
			for j := i + 1; j < len(set) && all; j++ {
				all = overlap(set[i], set[j])
			}
		}
		if all {
			worst = set
		}
	}
	if len(worst) > budget {
		t.Errorf("on %v at most %d heavy steps should run at once, but %v can all run together; chain them with waitFor", mt, budget, worst)
	}
	t.Logf("%v: at most %d heavy steps at once (%v), budget %d", mt, len(worst), worst, budget)

	// The from-source provider build runs alone, not in the test step.
	for _, s := range build.GetSteps() {
		if strings.Contains(script(s), "10-terraform.sh") && s.GetId() == "test" {
			t.Error("the test step builds the Terraform provider itself; build it into the test image first")
		}
	}
}

// makeTestTools are the programs `make test` runs or the tests look up, and
// how the test image must provide each: "base" (the golang Debian image),
// "apt:PKG[|PKG]" (a Debian package installed in the image), or
// "copy:IMAGE" (copied from an official image).
var makeTestTools = map[string]string{
	"go":           "base",
	"gofmt":        "base",
	"bash":         "base",
	"make":         "base",
	"git":          "base",
	"terraform":    "copy:hashicorp/terraform",
	"redis-server": "apt:redis-server",
	"initdb":       "apt:postgresql",
	"postgres":     "apt:postgresql",
	"nginx":        "apt:nginx-light|nginx",
	"unshare":      "apt:util-linux",
	"chromium":     "apt:chromium",
}

// lookupRE finds the programs the repository's scripts and tests look up.
var lookupRE = regexp.MustCompile(`LookPath\("([a-z][a-z0-9_-]*)"\)|requireTool\(t, "([a-z][a-z0-9_-]*)"|command -v ([a-z][a-z0-9_-]*)|range \[\]string\{"(chromium)"`)

// TestCloudBuildTestStepHasItsTools reads cloudbuild.yaml and checks that
// the step running make test has every tool make test needs: its image is
// built by an earlier step from a Dockerfile that provides each one (base
// image, Debian package or official image), the Terraform provider mirror
// is built into it, and the step may create mount namespaces. The list of
// tools is checked against what the scripts and tests look up, so a new
// tool cannot be forgotten here.
func TestCloudBuildTestStepHasItsTools(t *testing.T) {
	for _, name := range pipelines {
		t.Run(name, func(t *testing.T) { checkTestStepTools(t, loadBuildFile(t, name)) })
	}
}

func checkTestStepTools(t *testing.T, build *cloudbuildpb.Build) {
	root := repoRoot(t)

	// Completeness of makeTestTools.
	found := map[string]bool{}
	for _, dir := range []string{"scripts", "verify", "tools", "shared"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".sh")) {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range lookupRE.FindAllStringSubmatch(string(b), -1) {
				for _, g := range m[1:] {
					if g != "" {
						found[g] = true
					}
				}
			}
			return nil
		})
	}
	for tool := range found {
		if tool == "apt-get" || strings.HasPrefix(tool, "ratebill-") {
			continue // only used to install what is missing; a test's fake tool
		}
		if _, ok := makeTestTools[tool]; !ok {
			t.Errorf("scripts or tests look up %q, which makeTestTools does not list; add it and provide it in the test image", tool)
		}
	}

	var test *cloudbuildpb.BuildStep
	idx := -1
	for i, s := range build.GetSteps() {
		if strings.Contains(script(s), "make test") {
			test, idx = s, i
		}
	}
	if test == nil {
		t.Fatal("no step runs make test")
	}
	// The image make test runs in: the step's own image, or the image of
	// the docker run it makes.
	image := test.GetName()
	args := test.GetArgs()
	privileged := false
	if strings.HasSuffix(image, "/docker") && len(args) > 0 && args[0] == "run" {
		image = ""
		for i := 1; i < len(args); i++ {
			a := args[i]
			if a == "--privileged" {
				privileged = true
			}
			if strings.HasPrefix(a, "-") {
				if !strings.Contains(a, "=") && slices.Contains([]string{"--env", "-e", "--volume", "-v", "--workdir", "-w", "--network", "--name", "--user", "-u"}, a) {
					i++
				}
				continue
			}
			image = a
			break
		}
	}
	if !privileged {
		t.Errorf("step %q: make test's nginx checks need a private mount namespace (unshare --mount); run the test image with docker run --privileged", test.GetId())
	}
	// The earlier step that builds that image, and its Dockerfile.
	dep := deps(build)
	var dockerfile, context string
	for _, s := range build.GetSteps()[:idx] {
		a := s.GetArgs()
		if len(a) == 0 || a[0] != "build" || !slices.Contains(a, image) {
			continue
		}
		if !dep[test.GetId()][s.GetId()] {
			t.Errorf("step %q builds %s but the test step does not wait for it", s.GetId(), image)
		}
		dockerfile = "Dockerfile"
		for i, x := range a {
			if (x == "--file" || x == "-f") && i+1 < len(a) {
				dockerfile = a[i+1]
			}
		}
		context = a[len(a)-1]
	}
	if dockerfile == "" {
		t.Fatalf("the test step runs in %s, which no earlier step builds; a stock image (such as golang) lacks the tools make test needs", image)
	}
	df := parseDockerfile(t, filepath.Join(root, dockerfile))
	for tool, how := range makeTestTools {
		kind, what, _ := strings.Cut(how, ":")
		switch kind {
		case "base":
			if !strings.Contains(df.base, "golang:") || !strings.Contains(df.base, "bookworm") {
				t.Errorf("%s: %s needs the golang Debian image as the final base, have %q", dockerfile, tool, df.base)
			}
		case "apt":
			if !slices.ContainsFunc(strings.Split(what, "|"), func(p string) bool { return slices.Contains(df.apt, p) }) {
				t.Errorf("%s: %s needs the Debian package %s, installed: %v", dockerfile, tool, what, df.apt)
			}
		case "copy":
			if !slices.ContainsFunc(df.copyFrom, func(img string) bool { return strings.Contains(img, what+":") }) {
				t.Errorf("%s: %s must be copied from the official image %s (have COPY --from %v)", dockerfile, tool, what, df.copyFrom)
			}
		}
	}
	if !df.runsScript("10-terraform.sh") {
		t.Errorf("%s must build the Terraform provider mirror (scripts/test.d/10-terraform.sh) into the image", dockerfile)
	} else if _, err := os.Stat(filepath.Join(root, context, "test.d", "10-terraform.sh")); err != nil {
		t.Errorf("%s copies test.d/10-terraform.sh from the build context %q: %v", dockerfile, context, err)
	}
}

// dockerfile is what TestCloudBuildTestStepHasItsTools reads from one.
type dockerfile struct {
	base     string   // image of the last FROM, resolved through its stage's ARGs
	apt      []string // packages of every apt-get install
	copyFrom []string // images behind COPY --from (stages resolved to their images)
	runs     []string
}

func (d dockerfile) runsScript(name string) bool {
	return slices.ContainsFunc(d.runs, func(r string) bool { return strings.Contains(r, name) })
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	args := map[string]string{}
	stages := map[string]string{}
	var d dockerfile
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return args[k] })
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				args[k] = v
			}
		case "FROM":
			img := expand(f[1])
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				stages[f[3]] = img
			}
			d.base = img
		case "COPY":
			for _, x := range f[1:] {
				if from, ok := strings.CutPrefix(x, "--from="); ok {
					if img, ok := stages[from]; ok {
						from = img
					}
					d.copyFrom = append(d.copyFrom, from)
				}
			}
		case "RUN":
			d.runs = append(d.runs, l)
			for _, part := range strings.FieldsFunc(l, func(r rune) bool { return r == ';' || r == '&' }) {
				pf := strings.Fields(part)
				i := slices.Index(pf, "install")
				if i < 0 || !slices.ContainsFunc(pf[:i], func(s string) bool { return strings.HasSuffix(s, "apt-get") }) {
					continue
				}
				for _, p := range pf[i+1:] {
					if !strings.HasPrefix(p, "-") {
						d.apt = append(d.apt, p)
					}
				}
			}
		}
	}
	sort.Strings(d.apt)
	return d
}

// TestCloudBuildPlanPipeline: the pull-request pipeline decodes strictly,
// runs the tests and a terraform plan in the official Terraform image at
// the version the offline checks use, pushes and deploys nothing, and
// declares exactly the substitutions the plan trigger sets.
func TestCloudBuildPlanPipeline(t *testing.T) {
	build := loadBuildFile(t, "cloudbuild-plan.yaml")
	deploy := loadBuild(t)
	var planStep *cloudbuildpb.BuildStep
	for _, s := range build.GetSteps() {
		cmd := script(s)
		if strings.Contains(cmd, "terraform plan") {
			planStep = s
		}
		for _, bad := range []string{"docker push", "gcloud run", "terraform apply"} {
			if strings.Contains(cmd, bad) || (len(s.GetArgs()) > 0 && s.GetArgs()[0] == "push") {
				t.Errorf("step %q of the pull-request pipeline runs %q", s.GetId(), bad)
			}
		}
	}
	if len(build.GetImages()) > 0 {
		t.Errorf("the pull-request pipeline pushes images %v", build.GetImages())
	}
	if planStep == nil {
		t.Fatal("no step runs terraform plan")
	}
	if !strings.HasPrefix(planStep.GetName(), "hashicorp/terraform:") {
		t.Errorf("terraform plan runs in %s; use the official hashicorp/terraform image", planStep.GetName())
	}
	// The Terraform version is the one the test image (and the offline
	// checks) use.
	df, err := os.ReadFile(filepath.Join(repoRoot(t), "ci", "test-runner.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ARG TERRAFORM_VERSION=(\S+)`).FindSubmatch(df)
	if m == nil || planStep.GetName() != "hashicorp/terraform:"+string(m[1]) {
		t.Errorf("plan step image %s, test image Terraform %s: keep them equal", planStep.GetName(), m)
	}
	for _, flag := range []string{"-lock=false", "-refresh=false", "-var-file=\"environments/${_ENV}.tfvars\""} {
		if !strings.Contains(script(planStep), flag) {
			t.Errorf("plan step lacks %s (the plan account reads state and nothing else)", flag)
		}
	}
	// The same test step as the deploy pipeline.
	find := func(b *cloudbuildpb.Build, id string) string {
		for _, s := range b.GetSteps() {
			if s.GetId() == id {
				return s.GetName() + " " + script(s)
			}
		}
		return ""
	}
	for _, id := range []string{"test-runner", "test"} {
		if find(build, id) == "" || find(build, id) != find(deploy, id) {
			t.Errorf("step %q differs from cloudbuild.yaml's", id)
		}
	}
	var declared []string
	for k := range build.GetSubstitutions() {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	if want := []string{"_ENV", "_TFSTATE_BUCKET"}; !slices.Equal(declared, want) {
		t.Errorf("cloudbuild-plan.yaml declares %v, the plan trigger sets %v", declared, want)
	}
}
