package schema

import (
	"fmt"
	"unsafe"
)

// Validator checks encoded OCSF events against sandtrail's generated rules.
// The zero value uses the defaults. A Validator is immutable and safe for
// concurrent use.
type Validator struct {
	// MaxEventBytes bounds an event's size; default 1 MiB (NATS's default
	// max_payload).
	MaxEventBytes int
	// MaxDepth bounds nesting of objects and arrays; default 64.
	MaxDepth int
}

const (
	defaultMaxEventBytes = 1 << 20
	defaultMaxDepth      = 64
)

// Validate checks one encoded event with the default limits.
func Validate(data []byte) error {
	var v Validator
	return v.Validate(data)
}

// Validate checks one encoded event. It returns nil or a *ValidationError
// describing the first problem found. It does not retain data.
func (v *Validator) Validate(data []byte) error {
	maxBytes, maxDepth := v.MaxEventBytes, v.MaxDepth
	if maxBytes <= 0 {
		maxBytes = defaultMaxEventBytes
	}
	if maxDepth <= 0 {
		maxDepth = defaultMaxDepth
	}
	s := state{data: data, maxDepth: maxDepth}
	if len(data) > maxBytes {
		s.fail(0, "", KindSemantic, "event is %d bytes, more than the limit of %d", len(data), maxBytes)
		return s.error()
	}
	s.run()
	if s.failed {
		return s.error()
	}
	return nil
}

// state is one validation pass. It lives on the caller's stack.
type state struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	root     *typeRule

	classUID, activityID, typeUID    int64
	activityOff, typeOff             int
	hasActivity, hasType             bool
	declared                         uint8 // profile bits declared in metadata.profiles
	profilesOff                      int
	linuxExt                         bool
	rootObservables                  bool // inside the root's observables array
	used                             [8]usedProfile
	nUsed                            int
	failed                           bool
	failOff                          int
	failSuffix, failReason, failArgs string
	failKind                         ErrorKind
	failErr                          error
}

type usedProfile struct {
	mask uint8
	off  int
}

func (s *state) fail(off int, suffix string, k ErrorKind, format string, args ...any) bool {
	if s.failed {
		return false
	}
	s.failed = true
	s.failOff = off
	s.failSuffix = suffix
	s.failKind = k
	s.failReason = fmt.Sprintf(format, args...)
	return false
}

func (s *state) error() error {
	e := &ValidationError{Reason: s.failReason, Kind: s.failKind, Offset: s.failOff, Err: s.failErr}
	if s.root != nil {
		e.Class = s.root.name
	}
	e.Path = pointerAt(s.data, s.failOff)
	if s.failSuffix != "" {
		e.Path += "/" + escapePointer(s.failSuffix)
	}
	return e
}

// str views b as a string without copying; the result must not be retained.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (s *state) run() {
	uid, off, ok := s.findClassUID()
	if s.failed {
		return // a malformed class_uid value: its own error
	}
	s.pos = 0
	if !ok {
		if off < 0 {
			s.ws()
			if s.pos >= len(s.data) {
				s.fail(0, "", KindSyntax, "empty input")
				return
			}
			s.fail(s.pos, "", KindSchema, "an event must be a JSON object, found %s", tokenName(s.data[s.pos]))
			return
		}
		// Report a syntax error where it is, else the missing class.
		s.ws()
		if s.anyValue(true) {
			s.ws()
			if s.pos != len(s.data) {
				s.fail(s.pos, "", KindSyntax, "unexpected data after the event")
				return
			}
			s.fail(0, "class_uid", KindSchema, "missing required attribute class_uid")
		}
		return
	}
	idx := classRuleIndex(uid)
	if idx < 0 {
		s.failErr = ErrUnknownClass
		s.fail(off, "", KindSchema, "class_uid %d is not a sandtrail class (%s)", uid, classList())
		return
	}
	s.root = &typeRules[idx]
	s.ws()
	if !s.object(s.root, true) {
		return
	}
	s.ws()
	if s.pos != len(s.data) {
		s.fail(s.pos, "", KindSyntax, "unexpected data after the event")
		return
	}
	s.checkEvent()
}

func classList() string {
	out := ""
	for i, c := range classInfo {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprint(c.UID)
	}
	return out
}

// checkEvent applies the whole-event rules once every attribute is known.
func (s *state) checkEvent() {
	if s.hasType && s.hasActivity {
		if want := s.classUID*100 + s.activityID; s.typeUID != want {
			s.fail(s.typeOff, "", KindSemantic, "type_uid %d is not class_uid*100+activity_id = %d", s.typeUID, want)
			return
		}
	}
	for i := 0; i < s.nUsed; i++ {
		u := s.used[i]
		if u.mask&s.declared == 0 {
			s.fail(u.off, "", KindSemantic, "attribute of profile %s, which metadata.profiles does not declare", profileList(u.mask))
			return
		}
	}
	if s.declared&linuxProfileBit != 0 && !s.linuxExt {
		s.fail(s.profilesOff, "", KindSemantic, "profile linux/linux_users needs metadata.extensions to list the linux extension (uid %s)", linuxExtension.UID)
	}
}

const linuxProfileBit = 1 << 2

func profileList(mask uint8) string {
	out := ""
	for i, p := range profileNames {
		if mask&(1<<i) != 0 {
			if out != "" {
				out += " or "
			}
			out += p
		}
	}
	return out
}

func (s *state) noteProfile(mask uint8, off int) {
	for i := 0; i < s.nUsed; i++ {
		if s.used[i].mask == mask {
			return
		}
	}
	if s.nUsed < len(s.used) {
		s.used[s.nUsed] = usedProfile{mask, off}
		s.nUsed++
	}
}

// object validates an object of type t starting at s.pos.
func (s *state) object(t *typeRule, isRoot bool) bool {
	start := s.pos
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return s.typeError(t.name + " object")
	}
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail(start, "", KindSemantic, "nesting deeper than %d", s.maxDepth)
	}
	s.pos++
	var seen bitset
	var ids [maxSlots]int64
	var idSet, capSet uint32
	var caps [maxSlots][2]int32 // caption value offsets (start of the string token, end)
	var capAttr [maxSlots]int16
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
	} else {
		for {
			s.ws()
			keyOff := s.pos
			k0, k1, esc, ok := s.stringToken()
			if !ok {
				return false
			}
			key := s.data[k0:k1]
			var buf [64]byte
			if esc {
				key = unescapeInto(buf[:0], key)
			}
			i := t.lookup(str(key))
			if i < 0 {
				return s.fail(keyOff, "", KindSchema, "unknown attribute %q in %s", string(key), t.name)
			}
			if seen.has(i) {
				return s.fail(keyOff, "", KindSemantic, "duplicate attribute %q", string(key))
			}
			seen.set(i)
			a := &t.attrs[i]
			if a.profiles != 0 {
				s.noteProfile(a.profiles, keyOff)
			}
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return s.syntax("expected ':' after an attribute name")
			}
			s.pos++
			s.ws()
			valOff := s.pos
			if a.slot >= 0 {
				if s.pos < len(s.data) && s.data[s.pos] == 'n' {
					return s.fail(valOff, "", KindSchema, "%s is null", a.name)
				}
				v, ok := s.integer(a)
				if !ok {
					return false
				}
				ids[a.slot] = v
				idSet |= 1 << a.slot
				if isRoot {
					s.noteRoot(a.name, v, valOff)
				}
			} else {
				if isRoot {
					s.rootObservables = a.name == "observables"
				}
				if !s.value(a, t, isRoot) {
					return false
				}
				if isRoot {
					s.rootObservables = false
				}
				if a.sibling >= 0 {
					caps[a.sibling] = [2]int32{int32(valOff), int32(s.pos)}
					capSet |= 1 << a.sibling
					capAttr[a.sibling] = int16(i)
				}
			}
			s.ws()
			if s.pos >= len(s.data) {
				return s.syntax("unexpected end of input in an object")
			}
			if s.data[s.pos] == ',' {
				s.pos++
				continue
			}
			if s.data[s.pos] == '}' {
				s.pos++
				break
			}
			return s.syntax("expected ',' or '}' in an object")
		}
	}
	s.depth--
	// Required attributes.
	for w := 0; w < 2; w++ {
		if miss := t.required[w] &^ seen[w]; miss != 0 {
			for i := w * 64; i < len(t.attrs); i++ {
				if t.attrs[i].required && !seen.has(i) {
					return s.fail(start, t.attrs[i].name, KindSchema, "missing required attribute %s", t.attrs[i].name)
				}
			}
		}
	}
	if len(t.atLeastOne) > 0 {
		n := 0
		for _, i := range t.atLeastOne {
			if seen.has(i) {
				n++
			}
		}
		if n == 0 {
			return s.fail(start, "", KindSchema, "%s needs at least one of %s", t.name, attrNames(t, t.atLeastOne))
		}
	}
	if len(t.justOne) > 0 {
		n := 0
		for _, i := range t.justOne {
			if seen.has(i) {
				n++
			}
		}
		if n != 1 {
			return s.fail(start, "", KindSchema, "%s needs exactly one of %s, has %d", t.name, attrNames(t, t.justOne), n)
		}
	}
	// Caption siblings.
	if capSet != 0 {
		for slot := 0; slot < t.slots; slot++ {
			if capSet&(1<<slot) == 0 || idSet&(1<<slot) == 0 {
				continue
			}
			capA := &t.attrs[capAttr[slot]]
			idA := t.idOfSlot(slot)
			e := &enumRules[idA.enum]
			id := ids[slot]
			if id == 99 && e.other {
				continue
			}
			want, _ := e.caption(id)
			c := caps[slot]
			if !stringEquals(s.data[c[0]+1:c[1]-1], want) {
				return s.fail(int(c[0]), "", KindSemantic, "%s must be %q, the caption of %s %d", capA.name, want, idA.name, id)
			}
		}
	}
	return true
}

func (t *typeRule) idOfSlot(slot int) *attrRule {
	for i := range t.attrs {
		if t.attrs[i].slot == slot {
			return &t.attrs[i]
		}
	}
	panic("schema: no attribute for slot")
}

func attrNames(t *typeRule, idx []int) string {
	out := ""
	for i, j := range idx {
		if i > 0 {
			out += ", "
		}
		out += t.attrs[j].name
	}
	return out
}

func enumMembers(e *enumRule) string {
	if len(e.ids) > 12 {
		return fmt.Sprintf("one of %d values of %s", len(e.ids), e.name)
	}
	out := "one of "
	for i, id := range e.ids {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprint(id)
	}
	return out
}

func (s *state) noteRoot(name string, v int64, off int) {
	switch name {
	case "class_uid":
		s.classUID = v
	case "activity_id":
		s.activityID, s.activityOff, s.hasActivity = v, off, true
	case "type_uid":
		s.typeUID, s.typeOff, s.hasType = v, off, true
	}
}

// value validates the value of attribute a (not an enum id) at s.pos.
func (s *state) value(a *attrRule, owner *typeRule, isRoot bool) bool {
	if s.pos < len(s.data) && s.data[s.pos] == 'n' {
		return s.fail(s.pos, "", KindSchema, "%s is null", a.name)
	}
	if !a.array {
		return s.scalar(a, owner)
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '[' {
		return s.typeError("array")
	}
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail(s.pos, "", KindSemantic, "nesting deeper than %d", s.maxDepth)
	}
	s.pos++
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for {
		s.ws()
		if s.pos < len(s.data) && s.data[s.pos] == 'n' {
			return s.fail(s.pos, "", KindSchema, "%s has a null element", a.name)
		}
		if !s.scalar(a, owner) {
			return false
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.syntax("unexpected end of input in an array")
		}
		if s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.data[s.pos] == ']' {
			s.pos++
			s.depth--
			return true
		}
		return s.syntax("expected ',' or ']' in an array")
	}
}

// scalar validates one (non-array) value of attribute a.
func (s *state) scalar(a *attrRule, owner *typeRule) bool {
	off := s.pos
	switch a.kind {
	case kindString:
		k0, k1, esc, ok := s.stringToken()
		if !ok {
			return false
		}
		return s.checkString(a, owner, off, s.data[k0:k1], esc)
	case kindInt, kindLong:
		_, ok := s.integer(a)
		return ok
	case kindFloat:
		if s.pos >= len(s.data) || !(s.data[s.pos] == '-' || isDigit(s.data[s.pos])) {
			return s.typeError("number")
		}
		_, _, ok := s.number()
		return ok
	case kindBool:
		if s.literal("true") || s.literal("false") {
			return true
		}
		return s.typeError("boolean")
	case kindObject:
		return s.object(&typeRules[a.object], false)
	case kindFree:
		if s.pos >= len(s.data) || s.data[s.pos] != '{' {
			return s.typeError("object")
		}
		return s.anyValue(true)
	case kindJSON:
		return s.anyValue(true)
	}
	panic("schema: bad kind")
}

func (s *state) checkString(a *attrRule, owner *typeRule, off int, raw []byte, esc bool) bool {
	v := raw
	var buf [128]byte
	if esc && (a.format != fmtNone || a.maxLen > 0 || owner == &typeRules[ruleMetadata] || owner == &typeRules[ruleExtension] || owner == &typeRules[ruleObservable]) {
		v = unescapeInto(buf[:0], raw)
	}
	if a.maxLen > 0 && runeCount(v) > a.maxLen {
		return s.fail(off, "", KindSchema, "%s is longer than %d characters", a.name, a.maxLen)
	}
	if a.format != fmtNone && !checkFormat(a.format, v) {
		return s.fail(off, "", KindSchema, "%q is not a valid %s", string(v), formatName(a.format))
	}
	switch owner {
	case &typeRules[ruleMetadata]:
		switch a.name {
		case "version":
			if str(v) != ocsfVersion {
				return s.fail(off, "", KindSchema, "metadata.version is %q; sandtrail events are OCSF %s", string(v), ocsfVersion)
			}
		case "profiles":
			for i, p := range profileNames {
				if str(v) == p {
					s.declared |= 1 << i
					if 1<<i == linuxProfileBit {
						s.profilesOff = off
					}
					return true
				}
			}
			return s.fail(off, "", KindSchema, "profile %q is not in sandtrail's profile set (%s)", string(v), profileList(0xff))
		}
	case &typeRules[ruleExtension]:
		if (a.name == "name" && str(v) == linuxExtension.Name) || (a.name == "uid" && str(v) == linuxExtension.UID) {
			s.linuxExt = true
		}
	case &typeRules[ruleObservable]:
		// Only the event's own observables name its attributes; those of a
		// related event or an enrichment name another event's.
		if a.name == "name" && s.rootObservables && s.depth == 3 && !pathExists(s.root, v) {
			return s.fail(off, "", KindSemantic, "observable name %q is not an attribute path of %s", string(v), s.root.name)
		}
	}
	return true
}

// pathExists reports whether a dotted attribute path names an attribute of t.
func pathExists(t *typeRule, path []byte) bool {
	for len(path) > 0 {
		seg := path
		rest := []byte(nil)
		for i, c := range path {
			if c == '.' {
				seg, rest = path[:i], path[i+1:]
				if len(rest) == 0 {
					return false
				}
				break
			}
		}
		// An array attribute may be written name[] or name[N].
		indexed := false
		if n := len(seg); n > 2 && seg[n-1] == ']' {
			j := n - 2
			for j > 0 && isDigit(seg[j]) {
				j--
			}
			if seg[j] != '[' {
				return false
			}
			seg, indexed = seg[:j], true
		}
		i := t.lookup(str(seg))
		if i < 0 {
			return false
		}
		a := &t.attrs[i]
		if indexed && !a.array {
			return false
		}
		if rest == nil {
			return true
		}
		switch a.kind {
		case kindObject:
			t = &typeRules[a.object]
		case kindFree, kindJSON:
			return true // free-form below this point
		default:
			return false
		}
		path = rest
	}
	return false
}

func (s *state) typeError(want string) bool {
	if s.pos >= len(s.data) {
		return s.syntax("unexpected end of input")
	}
	return s.fail(s.pos, "", KindSchema, "expected %s, found %s", want, tokenName(s.data[s.pos]))
}

func (s *state) syntax(msg string) bool {
	return s.fail(s.pos, "", KindSyntax, "%s", msg)
}

func tokenName(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || isDigit(c):
		return "a number"
	}
	return fmt.Sprintf("%q", c)
}
