package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/replay"
)

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "verify", "[--key PUBFILE] [--json] [--run ID] [--since T] [FILE...|-]\n\n"+
		"Verifies the integrity trail of every run: on the stream when no FILE is given, else on NDJSON files\n"+
		"(or JSON arrays) of events as exported by the ndjson sink, `sandtrail replay` or a SIEM.\n"+
		"Exit status 0 only when every run is complete and untampered.")
	var rf replayFlags
	rf.register(fs)
	keyFile := fs.String("key", "", "ed25519 public key file (hex or base64 of 32 bytes, an nkey public key, or PEM) to check signatures; without it signatures are not checked")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict-order", false, "fail runs whose events arrive out of sequence order (for files written in stream order)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var cfg chain.VerifierConfig
	cfg.StrictOrder = *strict
	if *keyFile != "" {
		k, err := chain.LoadPublicKey(*keyFile)
		if err != nil {
			return usagef("verify: %v", err)
		}
		cfg.PublicKey = k
	}
	v := chain.NewVerifier(cfg)
	files := fs.Args()
	var source string
	if len(files) > 0 {
		if rf.since != "" {
			return usagef("verify: --since reads the stream; it does not apply to files")
		}
		for _, name := range files {
			if err := verifyFile(ctx, e, v, name); err != nil {
				return err
			}
		}
		source = strings.Join(files, ", ")
	} else {
		if err := verifyStream(ctx, e, v, &rf); err != nil {
			return err
		}
		source = "stream " + rf.stream
	}
	rep := v.Report()
	if rf.run != "" {
		rep = onlyRun(rep, rf.run)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeReport(e.stdout, rep, source, rf.run)
	}
	if !rep.OK || len(rep.Runs) == 0 {
		return &exitError{code: exitFailure}
	}
	return nil
}

// onlyRun keeps the report of one run; the rest of the input was read
// (a run's events are only known by reading them) but is not judged.
func onlyRun(rep *chain.Report, run string) *chain.Report {
	out := *rep
	out.Runs = nil
	out.OK = true
	for _, r := range rep.Runs {
		if r.Run == run {
			out.Runs = append(out.Runs, r)
			out.OK = r.OK()
		}
	}
	return &out
}

func verifyStream(ctx context.Context, e *env, v *chain.Verifier, rf *replayFlags) error {
	flt, err := rf.filter(time.Now())
	if err != nil {
		return err
	}
	nc, js, err := rf.connect(ctx, e, "sandtrail-verify")
	if err != nil {
		return err
	}
	defer nc.Close()
	prog := newProgress(e, "verify")
	unreadable := func(seq uint64, data []byte, _ error) {
		if rf.run == "" { // with --run, an event that names no run is none of ours
			v.Add(data, chain.Origin{Source: rf.stream, Index: int64(seq)})
		}
	}
	st, err := replay.Read(ctx, js, replay.Config{Stream: rf.stream, Filter: flt, ClockSkew: rf.clockSkew, Progress: prog.update, Unreadable: unreadable},
		func(ms []replay.Message) error {
			for i := range ms {
				v.Add(ms[i].Data, chain.Origin{Source: rf.stream, Index: int64(ms[i].StreamSeq)})
			}
			return nil
		})
	prog.done()
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return fmt.Errorf("verify interrupted at stream sequence %d of %d: no verdict", st.LastSeq, st.EndSeq)
	case err != nil:
		return err
	}
	return nil
}

// verifyFile adds the events of one NDJSON file or JSON array ("-" is
// stdin), each with its file and line.
func verifyFile(ctx context.Context, e *env, v *chain.Verifier, name string) error {
	var r io.Reader = e.stdin
	display := "<stdin>"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usagef("verify: %v", err)
		}
		defer f.Close()
		r, display = f, name
	}
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(8 << 10)
	if bytes.IndexByte(head, 0) >= 0 {
		return usagef("verify: %s: binary data, not JSON", display)
	}
	if firstByte(head) == '[' {
		return verifyArray(v, display, br)
	}
	line := int64(0)
	var buf []byte
	for {
		if line%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("verify interrupted in %s at line %d: no verdict", display, line)
		}
		line++
		chunk, err := br.ReadSlice('\n')
		buf = append(buf[:0], chunk...)
		oversized := false
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			if len(buf) < maxLine {
				buf = append(buf, chunk...)
			} else {
				oversized = true
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("verify: %s: %w", display, err)
		}
		trimmed := bytes.TrimSpace(buf)
		switch {
		case oversized || len(buf) > maxLine:
			v.Add([]byte("oversized line"), chain.Origin{Source: display, Index: line})
		case len(trimmed) > 0:
			v.Add(trimmed, chain.Origin{Source: display, Index: line})
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func verifyArray(v *chain.Verifier, name string, br *bufio.Reader) error {
	b, err := io.ReadAll(io.LimitReader(br, maxDocument+1))
	if err != nil {
		return fmt.Errorf("verify: %s: %w", name, err)
	}
	if len(b) > maxDocument {
		return usagef("verify: %s: a JSON array larger than %d bytes; export NDJSON instead", name, maxDocument)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil {
		return usagef("verify: %s: %v", name, err)
	}
	for d.More() {
		var raw json.RawMessage
		off := d.InputOffset()
		if err := d.Decode(&raw); err != nil {
			return usagef("verify: %s:%d: array element is not valid JSON: %v", name, 1+bytes.Count(b[:off], []byte("\n")), err)
		}
		start := int(off)
		for start < len(b) && (b[start] == ',' || b[start] == ' ' || b[start] == '\n' || b[start] == '\r' || b[start] == '\t') {
			start++
		}
		v.Add(raw, chain.Origin{Source: name, Index: int64(1 + bytes.Count(b[:start], []byte("\n")))})
	}
	return nil
}

// writeReport prints the report for a person: one paragraph per run,
// problems first, then a summary line.
func writeReport(w io.Writer, rep *chain.Report, source, run string) {
	counts := map[chain.Status]int{}
	for i := range rep.Runs {
		r := &rep.Runs[i]
		counts[r.Status]++
		fmt.Fprintf(w, "run %s: %s\n", r.Run, strings.ToUpper(string(r.Status)))
		fmt.Fprintf(w, "  %s\n", runFacts(r))
		if len(r.Missing) > 0 {
			parts := make([]string, len(r.Missing))
			for j, m := range r.Missing {
				parts[j] = m.String()
			}
			fmt.Fprintf(w, "  missing: seq %s (%s)\n", strings.Join(parts, ", "), plural(r.MissingCount(), "event"))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", problemLine(p))
		}
		if r.Omitted > 0 {
			fmt.Fprintf(w, "  ... and %d more problems (see --json)\n", r.Omitted)
		}
		for _, p := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", problemLine(p))
		}
	}
	for _, m := range rep.Malformed {
		fmt.Fprintf(w, "%s: not a verifiable event: %s\n", m.At, m.Reason)
	}
	if n := rep.MalformedCount - int64(len(rep.Malformed)); n > 0 {
		fmt.Fprintf(w, "... and %d more inputs that are not verifiable events\n", n)
	}
	switch {
	case run != "" && len(rep.Runs) == 0:
		fmt.Fprintf(w, "run %s: no events found in %s\n", run, source)
	case len(rep.Runs) == 0:
		fmt.Fprintf(w, "no events found in %s\n", source)
	}
	sig := "signatures not checked (no --key)"
	if rep.SignaturesChecked {
		sig = "signatures checked with key " + rep.KeyID
	}
	fmt.Fprintf(w, "%s: %d complete, %d incomplete, %d tampered, %d unchained; %s read, %d unusable; %s\n",
		plural(int64(len(rep.Runs)), "run"), counts[chain.StatusComplete], counts[chain.StatusIncomplete], counts[chain.StatusTampered],
		counts[chain.StatusUnchained], plural(rep.Events, "event"), rep.MalformedCount, sig)
}

// runFacts is a run's counts and signature in one line.
func runFacts(r *chain.RunReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events (seq 1..%d)", r.Events, r.LastSeq)
	if r.Final {
		fmt.Fprintf(&b, ", final count %d", r.Count)
	} else if r.Status != chain.StatusUnchained {
		b.WriteString(", no final event")
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d identical duplicates ignored", r.Duplicates)
	}
	switch r.Signature {
	case chain.SigValid:
		fmt.Fprintf(&b, ", chain head signature valid (key %s)", r.KeyID)
	case chain.SigInvalid:
		b.WriteString(", signature INVALID")
	case chain.SigNotChecked:
		fmt.Fprintf(&b, ", signature not checked (key %s; no --key)", r.KeyID)
	case chain.SigUnsigned:
		b.WriteString(", not signed")
	case chain.SigOtherKey:
		fmt.Fprintf(&b, ", signed with another key (%s)", r.KeyID)
	}
	return b.String()
}

func problemLine(p chain.Problem) string {
	var b strings.Builder
	if p.Seq > 0 {
		fmt.Fprintf(&b, "seq %d: ", p.Seq)
	}
	fmt.Fprintf(&b, "%s: %s", p.Kind, p.Detail)
	if len(p.At) > 0 {
		at := make([]string, len(p.At))
		for i, o := range p.At {
			at[i] = o.String()
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(at, ", "))
	}
	return b.String()
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
