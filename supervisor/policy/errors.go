package policy

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a policy or seccomp profile.
type Error struct {
	File   string // the policy or profile file; "" for a policy built in Go
	Line   int    // 1-based; 0 when unknown (a policy built in Go)
	Column int    // 1-based, in characters; 0 when unknown
	// Field is the dotted path of the offending key or value, e.g.
	// controls.landlock.read_only[2]; "" for a problem with the whole file.
	Field string
	Msg   string
	Err   error // the underlying error (reading a profile), or nil
}

// Error formats the problem as FILE:LINE:COL: FIELD: MSG, leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found, when there is more than one, in file order.
type Errors []*Error

// Error joins the problems, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(*e))
	for i, err := range *e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As and errors.Is.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(*e))
	for i, err := range *e {
		out[i] = err
	}
	return out
}

// result turns collected problems into nil, an *Error or an *Errors. Files
// keep the order they were first met in (the policy before its profile);
// within a file problems are sorted by position.
func result(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	rank := map[string]int{}
	for _, e := range errs {
		if _, ok := rank[e.File]; !ok {
			rank[e.File] = len(rank)
		}
	}
	out := slices.Clone(errs)
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(rank[a.File], rank[b.File]), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	list := Errors(out)
	return &list
}
