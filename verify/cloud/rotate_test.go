package cloud

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGcloud answers the calls scripts/rotate-redis-ca.sh makes: the
// instance's CAs from $FAKE_CA, the secret's latest version from
// $FAKE_SECRET, and records every call in $FAKE_LOG.
const fakeGcloud = `#!/usr/bin/env bash
echo "$*" >>"$FAKE_LOG"
case "$*" in
"redis instances describe"*) cat "$FAKE_CA" ;;
"secrets versions access"*) cat "$FAKE_SECRET" ;;
esac
`

const (
	caA = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
	caB = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"
)

// TestRotateRedisCA runs scripts/rotate-redis-ca.sh against a fake gcloud:
// an unchanged CA bundle changes nothing; a rotated one (a second CA
// listed) becomes a new secret version first, then every function gets a
// new revision (so its instances read the bundle at start) with only a
// revision suffix, which Terraform ignores.
func TestRotateRedisCA(t *testing.T) {
	script := filepath.Join(repoRoot(t), "scripts", "rotate-redis-ca.sh")
	for _, tc := range []struct {
		name, instance, secret string
		wantCalls              []string
	}{
		{"unchanged", caA + "\n", caA + "\n", nil},
		{"rotation adds the next CA", caA + "\n" + caB + "\n", caA + "\n", []string{
			"secrets versions add ratebill-prod-redis-ca-cert",
			"run services update ratebill-prod-users",
			"run services update ratebill-prod-usage",
			"run services update ratebill-prod-billing",
			"run services update ratebill-prod-health",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			write := func(name, content string, mode os.FileMode) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
				return p
			}
			write("bin/gcloud", fakeGcloud, 0o755)
			logFile := write("log", "", 0o644)
			cmd := exec.Command("bash", script, "my-ratebill-prod", "us-central1", "ratebill", "prod")
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"FAKE_LOG="+logFile,
				"FAKE_CA="+write("ca.pem", tc.instance, 0o644),
				"FAKE_SECRET="+write("secret.pem", tc.secret, 0o644),
			)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("rotate-redis-ca.sh: %v\n%s", err, out)
			}
			b, _ := os.ReadFile(logFile)
			var changes []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.HasPrefix(l, "secrets versions add") || strings.HasPrefix(l, "run services update") {
					changes = append(changes, l)
				}
			}
			if len(changes) != len(tc.wantCalls) {
				t.Fatalf("changing calls %q, want %q\n%s", changes, tc.wantCalls, out)
			}
			for i, want := range tc.wantCalls {
				if !strings.HasPrefix(changes[i], want) {
					t.Errorf("call %d: %q, want %q...", i, changes[i], want)
				}
				if strings.HasPrefix(want, "run services update") && (!strings.Contains(changes[i], "--revision-suffix ca-") || strings.Contains(changes[i], "--update-env-vars") || strings.Contains(changes[i], "--image")) {
					t.Errorf("call %q must only set a revision suffix (Terraform ignores template.revision)", changes[i])
				}
			}
		})
	}
}
