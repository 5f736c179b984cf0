package policy_test

import (
	"fmt"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

func ExampleParse() {
	src := []byte(`name: build
controls:
  landlock:
    read_only: [/usr, /etc]
    read_write: [/dev/null, /work]
    execute: [/usr/bin]
  namespaces:
    net: false
`)
	p, err := policy.Parse("build.yaml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Landlock.Mode, p.Landlock.ReadWrite, p.Namespaces.Kinds())
	fmt.Println(p.Mode(policy.ControlPrivilegeDrop), p.PrivilegeDrop.User, p.PrivilegeDrop.WhenUnprivileged)
	// Output:
	// required [/dev/null /work] [user pid mount ipc uts cgroup]
	// best_effort 65534 keep
}

func ExampleParse_errors() {
	src := []byte(`name: build
controls:
  capabilities:
    keep: [net_raw]
  landlock:
    read_only: [usr]
    execute: [/usr/bin]
    bind_tcp: [80, 70000]
  privilege_drop: {user: root, group: wheel}
`)
	_, err := policy.Parse("build.yaml", src)
	fmt.Println(err)
	// Output:
	// build.yaml:4:12: controls.capabilities.keep[0]: CAP_NET_RAW is not in controls.capability_bounding_set.keep: a capability the bounding set drops cannot be kept
	// build.yaml:6:17: controls.landlock.read_only[0]: "usr" is not an absolute path
	// build.yaml:7:15: controls.landlock.execute[0]: /usr/bin is not readable: execve needs the read right too (add it or a parent to read_only)
	// build.yaml:8:20: controls.landlock.bind_tcp[1]: 70000 is out of range 0..65535
	// build.yaml:9:26: controls.privilege_drop.user: root is uid 0: dropping privileges to root drops nothing
}

func ExampleDefault() {
	p := policy.Default()
	for _, c := range policy.Controls() {
		fmt.Println(c, p.Mode(c))
	}
	// Output:
	// namespaces best_effort
	// capability_bounding_set best_effort
	// privilege_drop best_effort
	// capabilities required
	// rlimits best_effort
	// core_dump required
	// no_new_privs required
	// landlock required
	// seccomp required
}
