package reporoot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	root, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "shared", "reporoot", "reporoot.go")); err != nil {
		t.Fatalf("root %s does not hold this package: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if _, err := Find(); err == nil {
		t.Fatal("found a root outside the repository")
	}
}
