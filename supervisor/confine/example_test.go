package confine_test

import (
	"fmt"

	"github.com/sandtrail/sandtrail/supervisor/confine"
)

func ExampleStep_String() {
	s := confine.Step{
		Control:   "capability_bounding_set",
		Requested: "drop all but none",
		Effective: "CapBnd 000001fffeffffff (40 capabilities)",
		Outcome:   confine.Failed,
		Errno:     "EPERM",
		Detail:    "no capability could be dropped from the bounding set",
	}
	fmt.Println(s)
	// Output:
	// capability_bounding_set: failed: requested drop all but none; effective CapBnd 000001fffeffffff (40 capabilities); errno EPERM; no capability could be dropped from the bounding set
}
