package confine

import (
	"fmt"
	"maps"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// The BPF program is generated here rather than by go-seccomp-bpf's
// Policy.Assemble: in v1.6.0, once a rule with argument conditions has
// loaded an argument, the following comparisons of the system call number
// compare that argument instead (the number is never loaded again), so a
// call whose conditions do not match can fall into an unrelated rule
// (socket(AF_INET) matched "open" and was allowed). Only its syscall
// tables are used.
//
// The program is a list of self-contained blocks, each of which loads the
// system call number, tests it and its arguments with forward jumps that
// never leave the block, and returns an action; a call no block matches
// gets the default action:
//
//	ld arch; jeq native ? next : kill_process
//	ld nr; jge 0x40000000 ? ret ENOSYS (x32, on x86_64 only)
//	blocks of conditional rules, in profile order
//	blocks of unconditional rules, in profile order
//	ret default

// Offsets in struct seccomp_data (little-endian architectures).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
	x32Bit  = 0x40000000
)

// action converts an SCMP_ACT_* action into a SECCOMP_RET_* value.
func action(a policy.SeccompAction, errnoRet *uint) (uint32, error) {
	switch a {
	case policy.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case policy.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case policy.ActKill, policy.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case policy.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case policy.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case policy.ActErrno:
		e := uint(unix.EPERM)
		if errnoRet != nil {
			e = *errnoRet
		}
		if e == 0 || e > 4095 {
			return 0, fmt.Errorf("SCMP_ACT_ERRNO with errno %d is not supported (want 1..4095: errno 0 would report success for a call never made)", e)
		}
		return unix.SECCOMP_RET_ERRNO | uint32(e), nil
	case policy.ActTrace:
		return 0, fmt.Errorf("SCMP_ACT_TRACE is not supported: the sandbox has no tracer")
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// toEnd as a jump offset means "to the end of the block": the block does
// not match.
const toEnd = -1

// block builds one self-contained block.
type block struct {
	insns []bpf.Instruction
	fixT  []int // jumps whose true branch goes to the end
	fixF  []int // jumps whose false branch goes to the end
}

func (b *block) ld(off uint32) { b.insns = append(b.insns, bpf.LoadAbsolute{Off: off, Size: 4}) }

func (b *block) and(m uint32) {
	b.insns = append(b.insns, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
}

// jump adds a conditional jump; t and f are instructions to skip, or toEnd.
func (b *block) jump(cond bpf.JumpTest, val uint32, t, f int) {
	i := len(b.insns)
	j := bpf.JumpIf{Cond: cond, Val: val}
	if t == toEnd {
		b.fixT = append(b.fixT, i)
	} else {
		j.SkipTrue = uint8(t)
	}
	if f == toEnd {
		b.fixF = append(b.fixF, i)
	} else {
		j.SkipFalse = uint8(f)
	}
	b.insns = append(b.insns, j)
}

func (b *block) ret(v uint32) { b.insns = append(b.insns, bpf.RetConstant{Val: v}) }

// finish resolves the jumps to the end of the block.
func (b *block) finish() ([]bpf.Instruction, error) {
	end := len(b.insns)
	resolve := func(i int) (uint8, error) {
		skip := end - i - 1
		if skip > 255 {
			return 0, fmt.Errorf("internal error: a block of %d instructions is too long for a jump", end)
		}
		return uint8(skip), nil
	}
	for _, i := range b.fixT {
		j := b.insns[i].(bpf.JumpIf)
		s, err := resolve(i)
		if err != nil {
			return nil, err
		}
		j.SkipTrue = s
		b.insns[i] = j
	}
	for _, i := range b.fixF {
		j := b.insns[i].(bpf.JumpIf)
		s, err := resolve(i)
		if err != nil {
			return nil, err
		}
		j.SkipFalse = s
		b.insns[i] = j
	}
	return b.insns, nil
}

// compare adds one 64-bit comparison of an argument: it falls through when
// it holds and jumps to the end of the block when it does not.
func (b *block) compare(a policy.SeccompArg) error {
	if a.Index > 5 {
		return fmt.Errorf("argument index %d is out of range 0..5", a.Index)
	}
	lo := uint32(offArgs + 8*a.Index)
	hi := lo + 4
	vh, vl := uint32(a.Value>>32), uint32(a.Value)
	switch a.Op {
	case "SCMP_CMP_EQ":
		b.ld(hi)
		b.jump(bpf.JumpEqual, vh, 0, toEnd)
		b.ld(lo)
		b.jump(bpf.JumpEqual, vl, 0, toEnd)
	case "SCMP_CMP_NE":
		b.ld(hi)
		b.jump(bpf.JumpEqual, vh, 0, 2) // high words differ: holds
		b.ld(lo)
		b.jump(bpf.JumpEqual, vl, toEnd, 0)
	case "SCMP_CMP_GT", "SCMP_CMP_GE":
		b.ld(hi)
		b.jump(bpf.JumpGreaterThan, vh, 3, 0) // high word above: holds
		b.jump(bpf.JumpEqual, vh, 0, toEnd)   // high word below: does not
		b.ld(lo)
		if a.Op == "SCMP_CMP_GT" {
			b.jump(bpf.JumpGreaterThan, vl, 0, toEnd)
		} else {
			b.jump(bpf.JumpGreaterOrEqual, vl, 0, toEnd)
		}
	case "SCMP_CMP_LT", "SCMP_CMP_LE":
		b.ld(hi)
		b.jump(bpf.JumpGreaterOrEqual, vh, 0, 3) // high word below: holds
		b.jump(bpf.JumpEqual, vh, 0, toEnd)      // high word above: does not
		b.ld(lo)
		if a.Op == "SCMP_CMP_LT" {
			b.jump(bpf.JumpGreaterOrEqual, vl, toEnd, 0)
		} else {
			b.jump(bpf.JumpGreaterThan, vl, toEnd, 0)
		}
	case "SCMP_CMP_MASKED_EQ":
		mask, want := a.Value, a.ValueTwo
		if want&^mask != 0 {
			return fmt.Errorf("SCMP_CMP_MASKED_EQ: valueTwo %#x has bits outside the mask %#x: the rule could never match", want, mask)
		}
		b.ld(hi)
		b.and(uint32(mask >> 32))
		b.jump(bpf.JumpEqual, uint32(want>>32), 0, toEnd)
		b.ld(lo)
		b.and(uint32(mask))
		b.jump(bpf.JumpEqual, uint32(want), 0, toEnd)
	default:
		return fmt.Errorf("comparison %q is not supported (want SCMP_CMP_EQ, NE, LT, LE, GT, GE or MASKED_EQ)", a.Op)
	}
	return nil
}

// argSets splits a rule's comparisons into alternatives, as runc does:
// the comparisons of an argument that appears more than once are each a
// rule of their own; all the others must hold together.
func argSets(args []policy.SeccompArg) [][]policy.SeccompArg {
	count := map[uint]int{}
	for _, a := range args {
		count[a.Index]++
	}
	var together []policy.SeccompArg
	var sets [][]policy.SeccompArg
	for _, a := range args {
		if count[a.Index] > 1 {
			sets = append(sets, []policy.SeccompArg{a})
		} else {
			together = append(together, a)
		}
	}
	if len(together) > 0 {
		sets = append(sets, together)
	}
	return sets
}

// program compiles the rules of prof that applies accepts, conditional
// rules first, then unconditional ones, each in profile order. It returns
// the names the architecture lacks, which are skipped.
func program(prof *policy.SeccompProfile, na nativeArch, def uint32, applies func(policy.SeccompSyscall) bool) ([]bpf.Instruction, []string, error) {
	out := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: na.audit, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
	}
	if na.audit == unix.AUDIT_ARCH_X86_64 {
		out = append(out,
			bpf.LoadAbsolute{Off: offNr, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	}
	var conditional, plain []bpf.Instruction
	skipped := map[string]bool{}
	for i, rule := range prof.Syscalls {
		if !applies(rule) {
			continue
		}
		ret, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		var nrs []uint32
		seen := map[string]bool{}
		for _, n := range rule.Names {
			nr, ok := na.info.SyscallNames[n]
			switch {
			case !ok:
				skipped[n] = true
			case !seen[n]:
				seen[n] = true
				nrs = append(nrs, uint32(nr))
			}
		}
		if len(rule.Args) == 0 {
			// One block per 200 names keeps every jump short.
			for chunk := range slices.Chunk(nrs, 200) {
				var b block
				b.ld(offNr)
				for j, nr := range chunk {
					if j == len(chunk)-1 {
						b.jump(bpf.JumpEqual, nr, 0, toEnd)
					} else {
						b.jump(bpf.JumpEqual, nr, len(chunk)-1-j, 0)
					}
				}
				b.ret(ret)
				insns, err := b.finish()
				if err != nil {
					return nil, nil, err
				}
				plain = append(plain, insns...)
			}
			continue
		}
		for _, nr := range nrs {
			for _, set := range argSets(rule.Args) {
				var b block
				b.ld(offNr)
				b.jump(bpf.JumpEqual, nr, 0, toEnd)
				for _, a := range set {
					if err := b.compare(a); err != nil {
						return nil, nil, fmt.Errorf("syscalls[%d]: %w", i, err)
					}
				}
				b.ret(ret)
				insns, err := b.finish()
				if err != nil {
					return nil, nil, err
				}
				conditional = append(conditional, insns...)
			}
		}
		if len(nrs) == 0 { // still check the comparisons of a rule that compiles to nothing
			var b block
			for _, a := range rule.Args {
				if err := b.compare(a); err != nil {
					return nil, nil, fmt.Errorf("syscalls[%d]: %w", i, err)
				}
			}
		}
	}
	out = append(out, conditional...)
	out = append(out, plain...)
	out = append(out, bpf.RetConstant{Val: def})
	return out, slices.Sorted(maps.Keys(skipped)), nil
}

// Eval runs the filter in user space (golang.org/x/net/bpf's VM) for a
// call of the native architecture, returning the SECCOMP_RET_* value the
// kernel would act on. It is for tests and for checks before installing.
func (f *SeccompFilter) Eval(name string, args [6]uint64) (uint32, error) {
	if f == nil || f.off {
		return unix.SECCOMP_RET_ALLOW, nil
	}
	na, err := native()
	if err != nil {
		return 0, err
	}
	nr, ok := na.info.SyscallNames[name]
	if !ok {
		return 0, fmt.Errorf("confine: unknown system call %q on %s", name, na.info.Name)
	}
	return f.evalRaw(uint32(nr), na.audit, args)
}

// evalRaw runs the filter on a seccomp_data. The VM loads words
// big-endian, so each 32-bit field is stored that way at the offset the
// kernel's little-endian struct has it.
func (f *SeccompFilter) evalRaw(nr, auditArch uint32, args [6]uint64) (uint32, error) {
	vm, err := bpf.NewVM(f.insns)
	if err != nil {
		return 0, err
	}
	data := make([]byte, 64)
	put := func(off int, v uint32) {
		data[off], data[off+1], data[off+2], data[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	put(offNr, nr)
	put(offArch, auditArch)
	for i, a := range args {
		put(offArgs+8*i, uint32(a))
		put(offArgs+8*i+4, uint32(a>>32))
	}
	ret, err := vm.Run(data)
	return uint32(ret), err
}

// actionString names a SECCOMP_RET_* value.
func actionString(v uint32) string {
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_ERRNO:
		return "errno " + errnoName(unix.Errno(v&unix.SECCOMP_RET_DATA))
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill_process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill_thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_TRACE:
		return "trace"
	}
	return fmt.Sprintf("%#x", v)
}
