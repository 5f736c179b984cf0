//go:build !linux

package faultinject

import (
	"errors"
	"runtime"
	"syscall"
)

var errUnsupported = errors.New("faultinject: seccomp fault injection needs Linux, not " + runtime.GOOS)

func preset(name string) ([]Rule, error) { return nil, errUnsupported }

func errnoName(e syscall.Errno) string { return "" }

// Install fails: seccomp exists only on Linux.
func Install(rules []Rule) error { return errUnsupported }

func install(rules []Rule) error { return errUnsupported }
