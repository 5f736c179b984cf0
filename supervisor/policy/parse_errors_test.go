package policy

import (
	"errors"
	"strings"
	"testing"
)

// lines joins its arguments with newlines: one expected error per line.
func lines(s ...string) string { return strings.Join(s, "\n") }

// TestParseErrors covers every kind of mistake in a policy file. Each case
// asserts the whole error text: file, line, column, field and message.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // default testdata/p.yaml
		src  string
		want string
	}{
		// Syntax and encoding.
		{name: "empty", src: "", want: "testdata/p.yaml:1:1: empty document"},
		{name: "comments only", src: "# nothing\n", want: "testdata/p.yaml:1:1: empty document"},
		{name: "yaml syntax", src: "name: x\ncontrols:\n  seccomp: {mode: required\n",
			want: "testdata/p.yaml:3: invalid YAML: did not find expected ',' or '}'"},
		{name: "yaml syntax first line", src: "name: a: b\n",
			want: "testdata/p.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{name: "two documents", src: "name: a\n---\nname: b\n", want: "testdata/p.yaml:2:1: more than one YAML document"},
		{name: "invalid utf-8", src: "name: x\nversion: \"\xff\"\n", want: "testdata/p.yaml:2:11: invalid UTF-8"},
		{name: "control character", src: "name: a\x01b\n", want: "testdata/p.yaml:1:8: control character U+0001 is not allowed"},
		{name: "too large", src: "name: x\n" + strings.Repeat("#", maxFileSize), want: "testdata/p.yaml:1:1: larger than 1048576 bytes"},
		{name: "not a mapping", src: "- name\n", want: "testdata/p.yaml:1:1: want a mapping, got a list"},
		{name: "alias", src: "name: &n x\nversion: *n\n", want: "testdata/p.yaml:2:10: version: aliases are not allowed"},
		{name: "custom tag", src: "name: !secret x\n", want: "testdata/p.yaml:1:7: name: unsupported tag !secret"},
		{name: "key not a string", src: "name: x\n? [a]\n: 1\n", want: "testdata/p.yaml:2:3: a key name must be a string, got a list"},

		// Keys.
		{name: "unknown key, typo", src: "name: x\ncontrol: {}\n", want: "testdata/p.yaml:2:1: control: unknown key (did you mean controls?)"},
		{name: "unknown key", src: "name: x\nowner: me\n", want: "testdata/p.yaml:2:1: owner: unknown key (want one of controls, name, version)"},
		{name: "unknown control", src: "name: x\ncontrols:\n  apparmor: {mode: off}\n",
			want: "testdata/p.yaml:3:3: controls.apparmor: unknown key (want one of capabilities, capability_bounding_set, core_dump, landlock, namespaces, no_new_privs, privilege_drop, rlimits, seccomp)"},
		{name: "unknown parameter", src: "name: x\ncontrols:\n  landlock:\n    readonly: [/usr]\n",
			want: "testdata/p.yaml:4:5: controls.landlock.readonly: unknown key (did you mean read_only?)"},
		{name: "duplicate key", src: "name: x\nname: y\n", want: "testdata/p.yaml:2:1: name: duplicate key (first at line 1)"},
		{name: "duplicate control", src: "name: x\ncontrols:\n  seccomp: {mode: off}\n  seccomp: {mode: required}\n",
			want: "testdata/p.yaml:4:3: controls.seccomp: duplicate key (first at line 3)"},
		{name: "missing name", src: "controls: {}\n", want: "testdata/p.yaml:1:1: name: required"},
		{name: "empty name", src: "name: \"\"\n", want: "testdata/p.yaml:1:7: name: required"},
		{name: "name not a scalar", src: "name: [a]\n", want: "testdata/p.yaml:1:7: name: want a string, got a list"},
		{name: "control not a mapping", src: "name: x\ncontrols:\n  no_new_privs: required\n",
			want: "testdata/p.yaml:3:17: controls.no_new_privs: want a mapping, got \"required\""},

		// Modes.
		{name: "mode typo", src: "name: x\ncontrols:\n  seccomp: {mode: requird}\n",
			want: "testdata/p.yaml:3:19: controls.seccomp.mode: unknown value \"requird\" (want required, best_effort, off)"},
		{name: "mode empty", src: "name: x\ncontrols:\n  core_dump: {mode: \"\"}\n",
			want: "testdata/p.yaml:3:21: controls.core_dump.mode: unknown value \"\" (want required, best_effort, off)"},
		{name: "mode boolean", src: "name: x\ncontrols:\n  no_new_privs:\n    mode: true\n",
			want: "testdata/p.yaml:4:11: controls.no_new_privs.mode: want a string, got the boolean true"},

		// Capabilities.
		{name: "unknown capability", src: "name: x\ncontrols:\n  capability_bounding_set:\n    keep: [chown, CAP_SYS_ADMN]\n",
			want: "testdata/p.yaml:4:19: controls.capability_bounding_set.keep[1]: unknown capability \"CAP_SYS_ADMN\" (want a name such as CAP_NET_BIND_SERVICE or net_bind_service)"},
		{name: "capability list is a string", src: "name: x\ncontrols:\n  capabilities:\n    keep: CAP_CHOWN\n",
			want: "testdata/p.yaml:4:11: controls.capabilities.keep: want a list, got \"CAP_CHOWN\""},
		{name: "capability list is null", src: "name: x\ncontrols:\n  capabilities:\n    keep:\n",
			want: "testdata/p.yaml:4:10: controls.capabilities.keep: want a list, got null (write [] for an empty list)"},
		{name: "duplicate capability", src: "name: x\ncontrols:\n  capability_bounding_set:\n    keep: [chown, CAP_CHOWN]\n",
			want: "testdata/p.yaml:4:19: controls.capability_bounding_set.keep[1]: duplicate CAP_CHOWN"},
		{name: "kept capability outside the bounding set", src: "name: x\ncontrols:\n  capability_bounding_set:\n    keep: [chown]\n  capabilities:\n    keep: [chown, net_raw]\n",
			want: "testdata/p.yaml:6:19: controls.capabilities.keep[1]: CAP_NET_RAW is not in controls.capability_bounding_set.keep: a capability the bounding set drops cannot be kept"},
		{name: "kept capability, bounding set left to its default", src: "name: x\ncontrols:\n  capabilities:\n    keep: [net_bind_service]\n",
			want: "testdata/p.yaml:4:12: controls.capabilities.keep[0]: CAP_NET_BIND_SERVICE is not in controls.capability_bounding_set.keep: a capability the bounding set drops cannot be kept"},

		// Privilege drop.
		{name: "drop to uid 0", src: "name: x\ncontrols:\n  privilege_drop: {user: 0, group: 100}\n",
			want: "testdata/p.yaml:3:26: controls.privilege_drop.user: uid 0 is root: dropping privileges to root drops nothing"},
		{name: "drop to root by name", src: "name: x\ncontrols:\n  privilege_drop: {user: root, group: 100}\n",
			want: "testdata/p.yaml:3:26: controls.privilege_drop.user: root is uid 0: dropping privileges to root drops nothing"},
		{name: "drop to gid 0", src: "name: x\ncontrols:\n  privilege_drop: {user: 100, group: \"0\"}\n",
			want: "testdata/p.yaml:3:38: controls.privilege_drop.group: gid 0 is root: dropping privileges to root drops nothing"},
		{name: "supplementary root", src: "name: x\ncontrols:\n  privilege_drop:\n    supplementary_groups: [10, root]\n",
			want: "testdata/p.yaml:4:32: controls.privilege_drop.supplementary_groups[1]: root is gid 0: dropping privileges to root drops nothing"},
		{name: "duplicate supplementary group", src: "name: x\ncontrols:\n  privilege_drop:\n    supplementary_groups: [10, 0x0a]\n",
			want: "testdata/p.yaml:4:32: controls.privilege_drop.supplementary_groups[1]: duplicate group 10"},
		{name: "user without group", src: "name: x\ncontrols:\n  privilege_drop:\n    user: 1000\n",
			want: "testdata/p.yaml:4:5: controls.privilege_drop.group: missing: set user and group together"},
		{name: "uid out of range", src: "name: x\ncontrols:\n  privilege_drop: {user: 4294967295, group: 1}\n",
			want: "testdata/p.yaml:3:26: controls.privilege_drop.user: 4294967295 is out of range 0..4294967294"},
		{name: "negative uid", src: "name: x\ncontrols:\n  privilege_drop: {user: -1, group: 1}\n",
			want: "testdata/p.yaml:3:26: controls.privilege_drop.user: -1 is out of range 0..4294967294"},
		{name: "invalid user name", src: "name: x\ncontrols:\n  privilege_drop: {user: \"build er\", group: 1}\n",
			want: "testdata/p.yaml:3:26: controls.privilege_drop.user: invalid name \"build er\" (want a name such as nobody or a decimal uid)"},
		{name: "when_unprivileged", src: "name: x\ncontrols:\n  privilege_drop: {when_unprivileged: drop}\n",
			want: "testdata/p.yaml:3:39: controls.privilege_drop.when_unprivileged: unknown value \"drop\" (want keep, switch)"},

		// Seccomp.
		{name: "profile missing", src: "name: x\ncontrols:\n  seccomp:\n    profile: nosuch.json\n",
			want: "testdata/p.yaml:4:14: controls.seccomp.profile: read seccomp profile: open testdata/nosuch.json: no such file or directory"},
		{name: "profile not a regular file", src: "name: x\ncontrols:\n  seccomp:\n    profile: /dev/zero\n",
			want: "testdata/p.yaml:4:14: controls.seccomp.profile: read seccomp profile: /dev/zero: not a regular file"},
		{name: "profile is not JSON", src: "name: x\ncontrols:\n  seccomp:\n    profile: valid.yaml\n",
			want: "testdata/valid.yaml:2:1: not a JSON object (a seccomp profile is JSON)"},
		{name: "profile JSON syntax", src: "name: x\ncontrols:\n  seccomp:\n    profile: profiles/broken.json\n",
			want: "testdata/profiles/broken.json:5:2: invalid JSON: invalid character ']' looking for beginning of value"},
		{name: "profile with unknown fields, and a policy error", src: "name: x\ncontrols:\n  seccomp:\n    profile: profiles/docker-unknown.json\n    mode: strict\n",
			want: lines(
				"testdata/p.yaml:5:11: controls.seccomp.mode: unknown value \"strict\" (want required, best_effort, off)",
				"testdata/profiles/docker-unknown.json:10:18: listenerPath: not supported: sandtrail has no seccomp notification listener",
				"testdata/profiles/docker-unknown.json:15:4: syscalls[0].comments: unknown field (did you mean comment?)",
				"testdata/profiles/docker-unknown.json:20:59: syscalls[1].args[0].valueThree: unknown field (want one of index, op, value, valueTwo)",
				"testdata/profiles/docker-unknown.json:23:2: seccompVersion: unknown field (want one of archMap, architectures, defaultAction, defaultErrnoRet, flags, listenerMetadata, listenerPath, syscalls)",
			)},
		{name: "profile empty", src: "name: x\ncontrols:\n  seccomp: {profile: \"\"}\n",
			want: "testdata/p.yaml:3:22: controls.seccomp.profile: empty (want \"default\" or the path of an OCI seccomp profile)"},
		{name: "default action denies everything", src: "name: x\ncontrols:\n  seccomp: {default_action: SCMP_ACT_ERRNO}\n",
			want: "testdata/p.yaml:3:29: controls.seccomp.default_action: every system call would be denied: the default action is SCMP_ACT_ERRNO and no rule allows anything"},
		{name: "default action unknown", src: "name: x\ncontrols:\n  seccomp: {default_action: SCMP_ACT_NOTIFY}\n",
			want: "testdata/p.yaml:3:29: controls.seccomp.default_action: unknown value \"SCMP_ACT_NOTIFY\" (want SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG)"},
		{name: "log_denials yes", src: "name: x\ncontrols:\n  seccomp: {log_denials: yes}\n",
			want: "testdata/p.yaml:3:26: controls.seccomp.log_denials: want true or false, got \"yes\""},

		// Landlock.
		{name: "landlock paths", src: "name: x\ncontrols:\n  landlock:\n    read_only: [/usr, usr/lib, /usr/, /a/../b]\n    execute: [/usr/bin]\n",
			want: lines(
				"testdata/p.yaml:4:23: controls.landlock.read_only[1]: \"usr/lib\" is not an absolute path",
				"testdata/p.yaml:4:32: controls.landlock.read_only[2]: duplicate path /usr/ (the same as /usr)",
				"testdata/p.yaml:4:39: controls.landlock.read_only[3]: \"/a/../b\" contains \"..\" (write the path it means)",
			)},
		{name: "landlock path not a string", src: "name: x\ncontrols:\n  landlock:\n    read_write: [/tmp, {path: /work}]\n",
			want: "testdata/p.yaml:4:24: controls.landlock.read_write[1]: want a string, got a mapping"},
		{name: "default execute list no longer readable", src: "name: x\ncontrols:\n  landlock:\n    read_only: [/usr]\n",
			want: lines(
				"testdata/p.yaml:4:5: controls.landlock.execute[0]: /bin is not readable: execve needs the read right too (add it or a parent to read_only) (controls.landlock.execute is not set in the file: this is its default)",
				"testdata/p.yaml:4:5: controls.landlock.execute[1]: /lib is not readable: execve needs the read right too (add it or a parent to read_only) (controls.landlock.execute is not set in the file: this is its default)",
				"testdata/p.yaml:4:5: controls.landlock.execute[2]: /sbin is not readable: execve needs the read right too (add it or a parent to read_only) (controls.landlock.execute is not set in the file: this is its default)",
			)},
		{name: "execute without read", src: "name: x\ncontrols:\n  landlock:\n    execute: [/usr/bin, /opt/tool/bin]\n",
			want: "testdata/p.yaml:4:25: controls.landlock.execute[1]: /opt/tool/bin is not readable: execve needs the read right too (add it or a parent to read_only)"},
		{name: "ports", src: "name: x\ncontrols:\n  landlock:\n    bind_tcp: [80, 65536, -1, http, 80]\n    connect_tcp: [0]\n",
			want: lines(
				"testdata/p.yaml:4:20: controls.landlock.bind_tcp[1]: 65536 is out of range 0..65535",
				"testdata/p.yaml:4:27: controls.landlock.bind_tcp[2]: -1 is out of range 0..65535",
				"testdata/p.yaml:4:31: controls.landlock.bind_tcp[3]: want an integer, got \"http\"",
				"testdata/p.yaml:4:37: controls.landlock.bind_tcp[4]: duplicate port 80",
				"testdata/p.yaml:5:19: controls.landlock.connect_tcp[0]: port 0 cannot be connected to (want 1..65535)",
			)},
		{name: "min_abi 0", src: "name: x\ncontrols:\n  landlock: {min_abi: 0}\n",
			want: "testdata/p.yaml:3:23: controls.landlock.min_abi: unknown Landlock ABI 0 (want 1..8)"},
		{name: "min_abi 9", src: "name: x\ncontrols:\n  landlock: {min_abi: 9}\n",
			want: "testdata/p.yaml:3:23: controls.landlock.min_abi: unknown Landlock ABI 9 (want 1..8)"},
		{name: "scope unknown", src: "name: x\ncontrols:\n  landlock:\n    scope: {signals: true}\n",
			want: "testdata/p.yaml:4:13: controls.landlock.scope.signals: unknown key (did you mean signal?)"},

		// Namespaces.
		{name: "no namespace kind", src: "name: x\ncontrols:\n  namespaces: {user: false, pid: false, mount: false, ipc: false, uts: false, net: false, cgroup: false}\n",
			want: "testdata/p.yaml:3:15: controls.namespaces: no namespace kind is on (turn one on or set mode: off)"},
		{name: "namespace not a boolean", src: "name: x\ncontrols:\n  namespaces: {net: 1}\n",
			want: "testdata/p.yaml:3:21: controls.namespaces.net: want true or false, got the integer 1"},

		// Rlimits.
		{name: "rlimits", src: "name: x\ncontrols:\n  rlimits:\n    limits:\n      nofile: {soft: 8192, hard: 4096}\n      nprocs: {soft: 1, hard: 1}\n      as: {soft: 1.5, hard: infinite}\n      cpu: {soft: 10}\n",
			want: lines(
				"testdata/p.yaml:5:22: controls.rlimits.limits.nofile.soft: soft limit 8192 is above the hard limit 4096",
				"testdata/p.yaml:6:7: controls.rlimits.limits.nprocs: unknown key (did you mean nproc?)",
				"testdata/p.yaml:7:18: controls.rlimits.limits.as.soft: want an integer, got the number 1.5",
				"testdata/p.yaml:7:29: controls.rlimits.limits.as.hard: want an integer or \"unlimited\", got \"infinite\"",
				"testdata/p.yaml:8:12: controls.rlimits.limits.cpu.hard: missing",
			)},
		{name: "rlimits empty", src: "name: x\ncontrols:\n  rlimits: {mode: required, limits: {}}\n",
			want: "testdata/p.yaml:3:37: controls.rlimits.limits: no limits (set one or set mode: off)"},
		{name: "core limit while core dumps are off", src: "name: x\ncontrols:\n  rlimits:\n    limits:\n      core: {soft: 0, hard: unlimited}\n",
			want: "testdata/p.yaml:5:13: controls.rlimits.limits.core: a non-zero core limit contradicts controls.core_dump, which turns core dumps off (set its mode to off to allow them)"},

		// JSON: strict syntax, lines and columns all the same.
		{name: "json syntax", file: "testdata/p.json", src: "{\n  \"name\": \"x\",\n  \"controls\": {},\n}\n",
			want: "testdata/p.json:4:1: invalid JSON: invalid character '}' looking for beginning of object key string"},
		{name: "json unterminated", file: "testdata/p.json", src: "{\n  \"name\": \"x\"\n",
			want: "testdata/p.json:2:14: invalid JSON: unexpected end of JSON input"},
		{name: "json unknown key", file: "testdata/p.json", src: "{\n  \"name\": \"x\",\n  \"controls\": {\n    \"seccomp\": {\"profil\": \"default\"}\n  }\n}\n",
			want: "testdata/p.json:4:17: controls.seccomp.profil: unknown key (did you mean profile?)"},
		{name: "json duplicate key", file: "testdata/p.json", src: "{\"name\": \"x\", \"name\": \"y\"}",
			want: "testdata/p.json:1:15: name: duplicate key (first at line 1)"},
		{name: "json wrong type", file: "testdata/p.json", src: "{\"name\": \"x\", \"controls\": {\"landlock\": {\"bind_tcp\": [\"80\"]}}}",
			want: "testdata/p.json:1:54: controls.landlock.bind_tcp[0]: want an integer, got \"80\""},
		{name: "json float port", file: "testdata/p.json", src: "{\"name\": \"x\", \"controls\": {\"landlock\": {\"bind_tcp\": [8e1]}}}",
			want: "testdata/p.json:1:54: controls.landlock.bind_tcp[0]: want an integer, got the number 8e1"},
		{name: "json escapes yaml does not know", file: "testdata/p.json", src: "{\"name\": \"a\\/b \\ud83d\\ude00\", \"version\": [1]}",
			want: "testdata/p.json:1:42: version: want a string, got a list"},

		// Several problems: all reported, in file order.
		{name: "several", src: "name: x\ncontrols:\n  landlock:\n    read_only: [relative]\n    execute: []\n  privilege_drop: {user: 0, group: 0}\n  bogus: 1\n",
			want: lines(
				"testdata/p.yaml:4:17: controls.landlock.read_only[0]: \"relative\" is not an absolute path",
				"testdata/p.yaml:6:26: controls.privilege_drop.user: uid 0 is root: dropping privileges to root drops nothing",
				"testdata/p.yaml:6:36: controls.privilege_drop.group: gid 0 is root: dropping privileges to root drops nothing",
				"testdata/p.yaml:7:3: controls.bogus: unknown key (want one of capabilities, capability_bounding_set, core_dump, landlock, namespaces, no_new_privs, privilege_drop, rlimits, seccomp)",
			)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "testdata/p.yaml"
			}
			p, err := Parse(file, []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded:\n%s\nwant error:\n%s", p, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tt.want)
			}
			var list *Errors
			var one *Error
			switch {
			case errors.As(err, &list):
				if len(*list) < 2 {
					t.Errorf("*Errors with %d entries; a single problem must be an *Error", len(*list))
				}
			case !errors.As(err, &one):
				t.Errorf("error is %T, want *Error or *Errors", err)
			}
		})
	}
}
