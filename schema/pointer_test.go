package schema

import "testing"

func TestPointerAt(t *testing.T) {
	d := []byte(`{"a": {"b~/c": [1, {"x": true}]}, "z": "q"}`)
	for off, want := range map[int]string{0: "", 1: "/a", 6: "/a", 7: "/a/b~0~1c", 15: "/a/b~0~1c", 16: "/a/b~0~1c/0", 19: "/a/b~0~1c/1", 20: "/a/b~0~1c/1/x", 25: "/a/b~0~1c/1/x", 35: "/z", 40: "/z"} {
		if got := pointerAt(d, off); got != want {
			t.Errorf("pointerAt(%d) = %q, want %q", off, got, want)
		}
	}
}
