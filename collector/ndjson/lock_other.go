//go:build !unix

package ndjson

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir only opens DIR/.lock: without flock, two sinks on one directory
// are not detected on this system.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ndjson: %w", err)
	}
	return f, nil
}
