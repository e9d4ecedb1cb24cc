package local

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/ratebill/platform/shared/routes"
)

// imageTargets are the values of the Dockerfile's FUNCTION build argument.
var imageTargets = append(slices.Clone(routes.Functions), "migrate")

// parseDockerfile parses the root Dockerfile with BuildKit's own parser,
// applying the lint rules BuildKit checks while parsing; any warning fails.
func parseDockerfile(t testing.TB, src []byte) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("parsing Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("Dockerfile line %d: lint %s: %s", line, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// TestDockerfile checks the image the Dockerfile describes: a Go build
// stage, then a distroless static (or scratch) runtime running as a
// numeric non-root user with the binary as an exec-form entrypoint.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[1]
	if !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("build stage FROM %s, want golang", build.BaseName)
	}
	if !strings.HasPrefix(run.BaseName, "gcr.io/distroless/static") && run.BaseName != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless static or scratch", run.BaseName)
	}
	var user string
	var entrypoint []string
	copies := map[string]bool{}
	for _, c := range run.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				t.Error("ENTRYPOINT in shell form: the image has no shell; use the exec form")
			}
			entrypoint = c.CmdLine
		case *instructions.CopyCommand:
			if c.From != build.Name {
				t.Errorf("runtime COPY from %q, want only the build stage's output", c.From)
			}
			copies[c.DestPath] = true
		case *instructions.RunCommand:
			t.Error("RUN in the runtime stage: it has no shell")
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q, want a numeric non-root user (Kubernetes runAsNonRoot can verify only numbers)", user)
	}
	if !slices.Equal(entrypoint, []string{"/app"}) || !copies["/app"] || !copies["/healthcheck"] {
		t.Errorf("entrypoint %v, copied %v; want /app as the entrypoint and /healthcheck beside it", entrypoint, copies)
	}
}

// buildStep returns the build stage's RUN script and ENV settings.
func buildStep(t testing.TB) (script string, env []string) {
	t.Helper()
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	var runs []*instructions.RunCommand
	for _, c := range stages[0].Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			runs = append(runs, c)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		case *instructions.WorkdirCommand:
			if c.Path != "/src" {
				t.Fatalf("build stage WORKDIR %s; this test maps /src to the repository", c.Path)
			}
		}
	}
	if len(runs) != 1 || !runs[0].PrependShell {
		t.Fatalf("want one shell-form RUN in the build stage, have %d", len(runs))
	}
	return strings.Join(runs[0].CmdLine, " "), env
}

// runBuildStep runs the Dockerfile's build script on this machine, as the
// container would (WORKDIR /src is the repository, /out a fresh folder),
// for one FUNCTION.
func runBuildStep(t testing.TB, function string) (string, error) {
	t.Helper()
	script, env := buildStep(t)
	root, out := repoRoot(t), t.TempDir()
	script = strings.ReplaceAll(script, "/src/", root+"/")
	script = strings.ReplaceAll(script, "/out", out)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), env...), "FUNCTION="+function)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, b)
	}
	return out, nil
}

// TestDockerfileBuildsStaticBinaries runs the Dockerfile's build step for
// every FUNCTION value and checks the results are static, stripped,
// path-free binaries, the kind a distroless static image can run; and that
// an unknown FUNCTION fails the build.
func TestDockerfileBuildsStaticBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function: skipped with -short")
	}
	root := repoRoot(t)
	for _, fn := range imageTargets {
		t.Run(fn, func(t *testing.T) {
			out, err := runBuildStep(t, fn)
			if err != nil {
				t.Fatalf("build step with FUNCTION=%s: %v", fn, err)
			}
			for _, bin := range []string{"app", "healthcheck"} {
				checkStaticBinary(t, filepath.Join(out, bin), root)
			}
		})
	}
	if _, err := runBuildStep(t, "nope"); err == nil || !strings.Contains(err.Error(), "FUNCTION must be") {
		t.Errorf("FUNCTION=nope: %v, want the build to fail naming the allowed values", err)
	}
}

func checkStaticBinary(t *testing.T, path, root string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked; the runtime image has no libc", filepath.Base(path))
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s keeps its symbol table; want -ldflags=-s -w", filepath.Base(path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(root)) {
		t.Errorf("%s contains the build path %s; want -trimpath", filepath.Base(path), root)
	}
	fi, _ := os.Stat(path)
	t.Logf("%s: %.1f MiB", filepath.Base(path), float64(fi.Size())/(1<<20))
}

// TestDockerignore checks the build context: sources in, repository
// metadata, local data, build output, dependencies, Terraform state and
// secrets out.
func TestDockerignore(t *testing.T) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for path, wantExcluded := range map[string]bool{
		".git/config":                                  true,
		".data/postgres/PG_VERSION":                    true,
		"artifacts/coverage.out":                       true,
		"node_modules/x/package.json":                  true,
		"tools/web/node_modules/x/package.json":        true,
		"terraform/.terraform/providers/x":             true,
		"terraform/terraform.tfstate":                  true,
		"terraform/envs/prod/terraform.tfstate.backup": true,
		".env": true,
		"deploy/kubernetes/overlays/prod/secrets.env": true,
		"functions/usage/go.mod":                      false,
		"functions/usage/cmd/main.go":                 false,
		"shared/go.mod":                               false,
		"shared/routes/routes.go":                     false,
		"shared/cmd/healthcheck/main.go":              false,
	} {
		excluded, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		if excluded != wantExcluded {
			t.Errorf("%s: excluded=%v, want %v", path, excluded, wantExcluded)
		}
	}
}
