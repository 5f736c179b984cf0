package main

import (
	"fmt"
	"io"
	"os"
)

// ui prints progress a person enjoys reading: colours only on a terminal
// and never with NO_COLOR set.
type ui struct {
	w     io.Writer
	color bool
}

func newUI(w io.Writer) *ui {
	u := &ui{w: w}
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			u.color = true
		}
	}
	return u
}

func (u *ui) colorMode() string {
	if u.color {
		return "always"
	}
	return "never"
}

func (u *ui) paint(code, s string) string {
	if !u.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (u *ui) title(format string, args ...any) {
	fmt.Fprintln(u.w, "\n"+u.paint("1", fmt.Sprintf(format, args...)))
}

func (u *ui) step(format string, args ...any) {
	fmt.Fprintln(u.w, u.paint("36", "▸ ")+fmt.Sprintf(format, args...))
}

func (u *ui) note(format string, args ...any) {
	fmt.Fprintln(u.w, u.paint("33", fmt.Sprintf(format, args...)))
}

func (u *ui) posture(p string) string {
	switch p {
	case "Secure":
		return u.paint("32", p)
	case "At Risk":
		return u.paint("33", p)
	case "refused":
		return u.paint("31", p)
	}
	return p
}
