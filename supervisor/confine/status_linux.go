package confine

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// statusPath is the calling thread's status file: credentials,
// capabilities, no_new_privs and seccomp are per thread.
const statusPath = "/proc/thread-self/status"

// statusFiles keeps the status file of each thread that read it open
// (close-on-exec), keyed by thread id. /proc generates the file at each
// read, so the descriptor keeps answering after the thread has restricted
// itself with a Landlock ruleset that does not allow /proc, when opening
// it again would fail with EACCES: the seccomp filter, installed after
// Landlock, must still be read back.
var statusFiles = struct {
	sync.Mutex
	fd map[int]int
}{fd: map[int]int{}}

// ReadStatus parses the calling thread's /proc/thread-self/status. Call it
// with the goroutine locked to its thread (runtime.LockOSThread), or the
// answer is about whichever thread the goroutine happens to run on.
//
// The first call on a thread opens the file and keeps it open (with
// O_CLOEXEC, so the workload does not inherit it), so that later calls
// work once the thread can no longer open /proc; a descriptor whose thread
// has exited is closed and replaced when its thread id is reused.
func ReadStatus() (Status, error) {
	data, err := readStatus(unix.Gettid())
	if err != nil {
		return Status{}, err
	}
	return parseStatus(data)
}

func readStatus(tid int) ([]byte, error) {
	statusFiles.Lock()
	defer statusFiles.Unlock()
	if fd, ok := statusFiles.fd[tid]; ok {
		if data, err := preadAll(fd); err == nil {
			return data, nil
		}
		// The thread that opened it has exited (ESRCH): a new one has its id.
		unix.Close(fd)
		delete(statusFiles.fd, tid)
	}
	fd, err := unix.Open(statusPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", statusPath, err)
	}
	data, err := preadAll(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read %s: %w", statusPath, err)
	}
	statusFiles.fd[tid] = fd
	return data, nil
}

// readProcFile reads a small /proc file with plain system calls on the
// calling thread (no poller, no other goroutine).
func readProcFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	data, err := preadAll(fd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// preadAll reads fd from offset 0 to its end.
func preadAll(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Pread(fd, buf, int64(len(out)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}
