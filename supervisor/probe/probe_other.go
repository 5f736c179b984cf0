//go:build !linux

package probe

import (
	"context"
	"errors"
	"runtime"
)

// Probe fails: the facilities it examines (capabilities, Landlock,
// seccomp, namespaces) exist only on Linux.
// Controls is not supported on this system.
func Controls(ctx context.Context) (*Report, error) { return Probe(ctx) }

func Probe(ctx context.Context) (*Report, error) {
	return nil, errors.New("probe: the host probe needs Linux, not " + runtime.GOOS)
}
