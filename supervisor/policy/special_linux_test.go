package policy

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestSpecialFiles: a profile path naming a FIFO, a device or an endless
// pseudo-file is an error, never a hang.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ profile, want string }{
		{fifo, "p.yaml:3:22: controls.seccomp.profile: read seccomp profile: " + fifo + ": not a regular file"},
		{"/dev/zero", "p.yaml:3:22: controls.seccomp.profile: read seccomp profile: /dev/zero: not a regular file"},
		{"/proc/self/status", "/proc/self/status:1:1: empty document"}, // size 0: read as empty
	}
	for _, tt := range tests {
		_, err := Parse("p.yaml", []byte("name: x\ncontrols:\n  seccomp: {profile: "+tt.profile+"}\n"))
		if err == nil || err.Error() != tt.want {
			t.Errorf("profile %s: %v, want %s", tt.profile, err, tt.want)
		}
	}
	if _, err := Load(fifo); err == nil || err.Error() != "load policy: "+fifo+": not a regular file" {
		t.Errorf("Load(fifo) = %v", err)
	}
}
