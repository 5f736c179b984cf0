package schema

// The validator's rule tables are generated into zz_rules.go; these are
// their types.

type kind uint8

const (
	kindString kind = iota + 1
	kindInt         // integer_t: 32-bit signed
	kindLong        // long_t, timestamp_t: 64-bit signed
	kindFloat
	kindBool
	kindObject // a schema object: typeRules[object]
	kindFree   // object_t "object": any JSON object
	kindJSON   // json_t: any JSON value but null
)

type format uint8

const (
	fmtNone format = iota
	fmtUUID
	fmtIP
	fmtMAC
	fmtSubnet
	fmtDatetime
	fmtEmail
	fmtBytes
	fmtPort
)

type attrRule struct {
	name     string
	kind     kind
	format   format
	array    bool
	required bool
	object   int   // typeRules index for kindObject, else -1
	enum     int   // enumRules index, else -1
	slot     int   // this enum id's slot in its type, else -1
	sibling  int   // for a caption attribute, the slot of its enum id, else -1
	profiles uint8 // profiles that introduce the attribute (any of); 0 = core
	maxLen   int   // maximum length in characters, 0 = none
}

type typeRule struct {
	index      int // position in typeRules
	name       string
	classUID   int // 0 for objects
	freeForm   bool
	slots      int
	required   bitset
	atLeastOne []int
	justOne    []int
	attrs      []attrRule
}

type enumRule struct {
	name     string
	ids      []int64 // sorted
	captions []string
	other    bool // 99 Other is a member: its caption sibling may be any text
}

// caption returns the caption of id and whether id is a member.
func (e *enumRule) caption(id int64) (string, bool) {
	lo, hi := 0, len(e.ids)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if e.ids[m] < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(e.ids) && e.ids[lo] == id {
		return e.captions[lo], true
	}
	return "", false
}

type bitset [2]uint64

func (b *bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b *bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }

func (t *typeRule) lookup(k string) int { return lookupAttr(t.index, k) }
