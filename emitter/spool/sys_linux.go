package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// supported reports whether the spool can run on this system.
func supported() error { return nil }

// control runs fn with the file's descriptor without switching the file
// to blocking mode (as File.Fd would).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

// tryLock takes an exclusive flock on f without waiting. It returns false
// if another open file description holds the lock: a live writer or
// drainer owns the segment. flock locks belong to the open file
// description, so closing another descriptor of the same file (as a
// scanning process does) never releases them, unlike fcntl locks.
func tryLock(f *os.File) (bool, error) {
	err := control(f, func(fd int) error {
		for {
			err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
			if err != unix.EINTR {
				return err
			}
		}
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	default:
		return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}

// syncData flushes f's data and the metadata needed to read it back.
func syncData(f *os.File) error {
	err := control(f, func(fd int) error {
		for {
			err := unix.Fdatasync(fd)
			if err != unix.EINTR {
				return err
			}
		}
	})
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// linked reports whether f is still the file named path: a segment that
// another process deleted (under its lock) must not be claimed again.
func linked(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
		return false, nil
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// checkOwner returns an error unless the directory belongs to the
// effective user: another user could read or delete the spooled events.
func checkOwner(dir string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return fmt.Errorf("%s: owned by uid %d, not by the effective uid %d", dir, st.Uid, euid)
	}
	return nil
}
