package chain

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The examples of RFC 8785 sections 3.2.2 and 3.2.3.
func TestCanonicalRFC8785Examples(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"section 3.2.2 (numbers, strings, literals)", `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"section 3.2.3 (sorting by UTF-16 code units)", `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`, "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"דּ\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"nested objects sorted at every level", `{"b":{"z":1,"a":[{"y":2,"x":1}]},"a":0}`, `{"a":0,"b":{"a":[{"x":1,"y":2}],"z":1}}`},
		{"empty containers", ` { "a" : { } , "b" : [ ] } `, `{"a":{},"b":[]}`},
		{"scalars at top level", `  "x"  `, `"x"`},
		{"raw non-ASCII kept, controls escaped", "[\"\u2028\u00e9\\u001f\\b\\t\\f\"]", "[\"\u2028\u00e9\\u001f\\b\\t\\f\"]"},
		{"integers", `[0,-0,1,-1,9007199254740991,9007199254740992,9007199254740993,123456789012345678901,1e2,1E+2,100.0,-0.0]`,
			`[0,0,1,-1,9007199254740991,9007199254740992,9007199254740992,123456789012345680000,100,100,100,0]`},
		{"underflow is zero", `[1e-400,-1e-400]`, `[0,0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(nil, []byte(tt.in))
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical =\n%s\nwant\n%s", got, tt.want)
			}
			again, err := Canonical(nil, got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Canonical(Canonical(x)) = %s, %v; want it unchanged", again, err)
			}
		})
	}
}

// TestES6Numbers checks number formatting against Number.prototype.toString
// as Node.js computes it (testdata/es6numbers.txt), both directly and
// through Canonical from several spellings of each number.
func TestES6Numbers(t *testing.T) {
	f, err := os.Open("testdata/es6numbers.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		hexBits, want, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(hexBits)
		if err != nil {
			t.Fatalf("bad vector %q", line)
		}
		x := math.Float64frombits(binary.BigEndian.Uint64(b))
		if got := string(appendES6Number(nil, x)); got != want {
			t.Errorf("appendES6Number(%s = %g) = %s, want %s", hexBits, x, got, want)
		}
		for _, spelling := range []string{want, strings.ToUpper(want), strconv.FormatFloat(x, 'g', 17, 64), strconv.FormatFloat(x, 'e', 20, 64)} {
			got, err := Canonical(nil, []byte(spelling))
			if err != nil || string(got) != want {
				t.Errorf("Canonical(%s) = %s, %v; want %s", spelling, got, err, want)
			}
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("read only %d vectors", n)
	}
}

func TestCanonicalRejects(t *testing.T) {
	tests := []struct{ name, in, reason string }{
		{"duplicate member", `{"a":1,"a":2}`, "duplicate member name"},
		{"duplicate member unsorted", `{"b":1,"a":0,"b":2}`, "duplicate member name"},
		{"duplicate after unescaping", `{"a":1,"\u0061":2}`, "duplicate member name"},
		{"lone high surrogate", `"\ud800"`, "lone high surrogate"},
		{"lone low surrogate", `"\udc00x"`, "lone low surrogate"},
		{"high surrogate then non-surrogate", `"\ud800\u0041"`, "lone high surrogate"},
		{"invalid UTF-8", "\"\xff\"", "invalid UTF-8"},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8"},
		{"control character", "\"a\x01\"", "control character"},
		{"infinity", `1e400`, "out of the range"},
		{"leading zero", `01`, "data after"},
		{"bare dot", `1.`, "no digit after"},
		{"bad exponent", `1e`, "no digit in the exponent"},
		{"trailing comma", `[1,]`, "unexpected character"},
		{"trailing data", `{} {}`, "data after"},
		{"NaN literal", `NaN`, "unexpected character"},
		{"unterminated", `{"a":`, "unexpected end"},
		{"bad escape", `"\x"`, "invalid escape"},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), "nesting deeper"},
		{"empty", ``, "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := Canonical(dst, []byte(tt.in))
			if !errors.Is(err, ErrNotCanonicalizable) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Canonical(%q) error = %v, want one wrapping ErrNotCanonicalizable with %q", tt.in, err, tt.reason)
			}
			if string(got) != "keep" {
				t.Errorf("Canonical returned dst %q on error, want it unchanged", got)
			}
		})
	}
}

func TestCompareUTF16(t *testing.T) {
	// Keys in UTF-16 order.
	keys := []string{"", "\r", "1", "a", "ab", "\u0080", "\u00f6", "\u20ac", "\ud7ff", "😀", "\U0010ffff", "\ue000", "\ufb33", "\uffff"}
	for i := range keys {
		for j := range keys {
			want := cmpInt(int64(i), int64(j))
			if got := compareUTF16([]byte(keys[i]), []byte(keys[j])); got != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want %d", keys[i], keys[j], got, want)
			}
		}
	}
}

// special must flag every word holding a byte that is not plain, and its
// lowest flag must be in the first such byte.
func TestSpecial(t *testing.T) {
	for pos := range 8 {
		for b := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(b)
			got := special(binary.LittleEndian.Uint64(w)) != 0
			if want := !plain[b]; got != want {
				t.Errorf("special(%q) = %v, want %v", w, got, want)
			}
		}
	}
	// Words of bytes around the edges of the plain range, in any mix.
	edges := []byte{0, 1, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7e, 0x7f, 0x80, 0x81, 0xa0, 0xdc, 0xfe, 0xff}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var w [8]byte
		for i := range w {
			w[i] = edges[r.IntN(len(edges))]
		}
		first := 8
		for i, b := range w {
			if !plain[b] {
				first = i
				break
			}
		}
		s := special(binary.LittleEndian.Uint64(w[:]))
		if got := bits.TrailingZeros64(s) / 8; got != first {
			t.Fatalf("special(%q): first flagged byte %d, want %d", w, got, first)
		}
	}
}
