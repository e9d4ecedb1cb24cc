package cloud

import (
	"errors"
	"os"
	"path/filepath"
)

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found: no go.work above the working directory")
		}
		dir = parent
	}
}
