// Package policy is sandtrail's sandbox policy: what each confinement
// control must do, parsed strictly from a file, with every default filled
// in and explained.
//
// A policy file is YAML or JSON:
//
//	name: build-runner
//	version: "3"
//	controls:
//	  landlock:
//	    read_write: [/dev/null, /work]
//	  seccomp:
//	    profile: profiles/build.json   # relative to this file
//	  namespaces:
//	    net: false
//
// Guarantees:
//   - [Parse] and [Load] reject unknown and duplicate keys, wrong types,
//     unknown values (modes, capability names, rlimit names, seccomp
//     actions) and impossible combinations, reporting every problem at once,
//     each as FILE:LINE:COL: FIELD: MSG ([Error], [Errors]). A policy that
//     parses is valid, and the sandbox must not start from one that does not.
//   - A parsed policy is resolved: no zero [Mode], every default written
//     out, lists in canonical order. [Policy.Canonical] encodes it
//     deterministically (sorted keys, independent of key order, comments
//     and spelling in the file) and [Policy.UID], its SHA-256, is the
//     policy.uid of events; it covers the seccomp profile's rules too.
//   - [Policy.String] is the one-line-per-control summary for logs, events
//     and test failures; [Policy.YAML] the effective policy for `sandtrail
//     policy show`, which parses back to the same policy.
//
// Each control has a [Mode]: required (fail closed), best_effort (degrade,
// and say so) or off (reported as disabled). The control names are the
// [Control] constants, the compliance.control values of events.
//
// # Defaults
//
// [Default] is strict and runs both as root and as an unprivileged user on a
// plain Linux host. What needs privilege is best_effort, so an unprivileged
// run degrades visibly instead of failing; what any process can do to itself
// is required.
//
//	control                  mode         parameters                     why
//	namespaces               best_effort  user pid mount ipc uts net     needs CAP_SYS_ADMIN or a user namespace, which
//	                                      cgroup all on                  hosts may forbid; net on means no network
//	capability_bounding_set  best_effort  keep none                      dropping needs CAP_SETPCAP; with no_new_privs
//	                                                                     nothing can be gained, but the gap is reported
//	privilege_drop           best_effort  user 65534, group 65534, no    root switches to nobody; an unprivileged
//	                                      supplementary groups,          supervisor keeps its uid (nothing to drop);
//	                                      when_unprivileged keep         a root without CAP_SETUID degrades
//	capabilities             required     keep none                      lowering one's own sets needs no privilege
//	rlimits                  best_effort  nofile 1024/4096               the kernel's defaults; a hard limit can only
//	                                                                     be raised with CAP_SYS_RESOURCE
//	core_dump                required     (RLIMIT_CORE 0, not dumpable)  needs no privilege; cores leak memory
//	no_new_privs             required                                    any process can set it
//	landlock                 required     read_only /bin /etc /lib       any process can restrict itself; just enough
//	                                      /proc /sbin /usr /dev/random   to start dynamically linked programs; no
//	                                      /dev/urandom /dev/zero;        /tmp, no TCP; rights newer than the kernel's
//	                                      read_write /dev/null; execute  ABI are left out and reported
//	                                      /bin /lib /sbin /usr; no TCP
//	                                      ports; scope abstract_unix
//	                                      and signal; min_abi 1
//	seccomp                  required     profile default, log_denials   any process with no_new_privs can install a
//	                                      false                          filter; see DefaultSeccompProfile
//
// A zero Mode, and a control left out of a file, mean these defaults; see
// [Policy] for how a partly written control is completed.
//
// Seccomp profiles use the OCI/Docker JSON format ([SeccompProfile]). This
// package only reads and checks them; compiling to BPF is the supervisor's
// job.
package policy
