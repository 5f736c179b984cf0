//go:build !linux

package spool

import (
	"fmt"
	"os"
	"runtime"
)

// supported reports whether the spool can run on this system: it relies
// on Linux flock semantics to share a directory between processes.
func supported() error {
	return fmt.Errorf("spool: not supported on %s: needs Linux flock and fdatasync", runtime.GOOS)
}

func tryLock(*os.File) (bool, error)        { return false, supported() }
func syncData(*os.File) error               { return supported() }
func linked(*os.File, string) (bool, error) { return false, supported() }
func checkOwner(string, os.FileInfo) error  { return supported() }
