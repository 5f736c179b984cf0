package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// errSkip: the reference cannot judge this input (it has a non-integer or
// a large number, whose formatting the reference does not implement).
var errSkip = errors.New("reference: skipped")

// referenceCanonical is a slow, independent RFC 8785 implementation over
// encoding/json, for inputs whose numbers are integers of at most 2^53.
func referenceCanonical(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var out bytes.Buffer
	if err := refValue(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("reference: data after the value")
	}
	return out.Bytes(), nil
}

func refValue(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	return refToken(dec, tok, out)
}

func refToken(dec *json.Decoder, tok json.Token, out *bytes.Buffer) error {
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := refValue(dec, out); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			out.WriteByte(']')
			return err
		case '{':
			members := map[string][]byte{}
			var keys []string
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if _, dup := members[k]; dup {
					return errors.New("reference: duplicate member")
				}
				var v bytes.Buffer
				if err := refValue(dec, &v); err != nil {
					return err
				}
				members[k] = v.Bytes()
				keys = append(keys, k)
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			slices.SortFunc(keys, func(a, b string) int {
				return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
			})
			out.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					out.WriteByte(',')
				}
				refString(k, out)
				out.WriteByte(':')
				out.Write(members[k])
			}
			out.WriteByte('}')
			return nil
		}
	case string:
		refString(x, out)
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return errSkip
		}
		n, ok := new(big.Int).SetString(string(x), 10)
		if !ok {
			return errors.New("reference: bad number")
		}
		if n.CmpAbs(big.NewInt(1<<53)) > 0 {
			return errSkip
		}
		out.WriteString(n.String()) // "-0" parses as 0
	case bool:
		if x {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

func refString(s string, out *bytes.Buffer) {
	out.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			out.WriteByte('\\')
			out.WriteRune(r)
		case r == '\b':
			out.WriteString(`\b`)
		case r == '\f':
			out.WriteString(`\f`)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\r':
			out.WriteString(`\r`)
		case r == '\t':
			out.WriteString(`\t`)
		case r < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte("0123456789abcdef"[r>>4])
			out.WriteByte("0123456789abcdef"[r&15])
		default:
			out.WriteRune(r)
		}
	}
	out.WriteByte('"')
}

// surrogateEscape matches a \u escape of a UTF-16 surrogate, which
// encoding/json silently turns into U+FFFD when it stands alone.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F][0-9a-fA-F]{2}`)

func FuzzCanonical(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(checkCanonical)
}

func fuzzSeeds() []string {
	seeds := []string{
		`{"b":1,"a":[true,false,null,{"d":"\u00e9","c":-0}]}`,
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001]}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`"\u0000\u001f\/\"\\"`, `[9007199254740993, 1e21, 1e-7, 123e-2]`, `{"a":1,"a":2}`, `"\ud800"`,
	}
	golden, _ := filepath.Glob("../testdata/events/valid/*/*.json")
	for _, g := range golden[:min(len(golden), 5)] {
		if b, err := os.ReadFile(g); err == nil {
			seeds = append(seeds, string(b))
		}
	}
	return seeds
}

// checkCanonical is the property FuzzCanonical checks: Canonical never
// panics, its output is valid JSON and canonical already, and it agrees
// with the reference wherever the reference can judge.
func checkCanonical(t *testing.T, in []byte) {
	got, err := Canonical(nil, in)
	ref, refErr := referenceCanonical(in)
	if err != nil {
		if !errors.Is(err, ErrNotCanonicalizable) {
			t.Fatalf("error %v does not wrap ErrNotCanonicalizable", err)
		}
		if refErr == nil && utf8.Valid(in) && !surrogateEscape.Match(in) && !strings.Contains(err.Error(), "nesting deeper") {
			t.Fatalf("Canonical(%q) failed (%v), the reference gave %s", in, err, ref)
		}
		return
	}
	if !json.Valid(got) {
		t.Fatalf("Canonical(%q) = %q: not valid JSON", in, got)
	}
	again, err := Canonical(nil, got)
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("not idempotent: Canonical(%q) = %q, then %q (%v)", in, got, again, err)
	}
	switch {
	case errors.Is(refErr, errSkip):
	case refErr != nil:
		t.Fatalf("Canonical(%q) = %q, but the reference failed: %v", in, got, refErr)
	case !bytes.Equal(got, ref):
		t.Fatalf("Canonical(%q) =\n%q\nthe reference gives\n%q", in, got, ref)
	}
}

// TestCanonicalMutations runs checkCanonical over random mutations of the
// fuzz seeds: a bounded, deterministic stand-in for the fuzzer, whose
// workers stall on this project's machines after a few thousand runs.
func TestCanonicalMutations(t *testing.T) {
	seeds := fuzzSeeds()
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "{}[]\",:\\u0123456789abcdefABCDEF.eE+- \t\n\x00\x1f\x7f\xc3\xa9\xed\xa0\xf0\x9f"
	n := 8000
	if testing.Short() {
		n = 2000
	}
	for range n {
		b := []byte(seeds[r.IntN(len(seeds))])
		for k := r.IntN(4) + 1; k > 0 && len(b) > 0; k-- {
			p := r.IntN(len(b))
			switch r.IntN(4) {
			case 0:
				b[p] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:p], b[p+1:]...)
			case 2:
				b = slices.Insert(b, p, alphabet[r.IntN(len(alphabet))])
			case 3:
				q := r.IntN(len(b))
				b = slices.Insert(b, p, b[min(p, q):max(p, q)]...)
			}
		}
		checkCanonical(t, b)
		if t.Failed() {
			return
		}
	}
}
