package replay

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// maxListed bounds the differences a report lists; it counts them all.
const maxListed = 100

// Difference is one key on which two read models differ.
type Difference struct {
	Key  string `json:"key"`  // printable: components joined by "/", other bytes escaped
	Kind string `json:"kind"` // "only_a", "only_b" or "value"
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
}

// Report is the result of a verification: Keys compared, Differences found (all counted, the
// first maxListed listed in Listed).
type Report struct {
	A, B        string       `json:"-"`
	Keys        int          `json:"keys"`
	Differences int          `json:"differences"`
	Listed      []Difference `json:"listed"`
}

// OK reports whether the two models are byte-for-byte equal.
func (r Report) OK() bool { return r.Differences == 0 }

// Verify compares two read-model directories (a Pebble each, opened read-only) key by key and
// value by value, the applied sequence included. Neither may be open elsewhere: compare the live
// model with a checkpoint of it, or offline.
func Verify(a, b string) (Report, error) {
	da, err := openReadOnly(a)
	if err != nil {
		return Report{}, err
	}
	defer da.Close()
	db, err := openReadOnly(b)
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	ia, err := da.NewIter(nil)
	if err != nil {
		return Report{}, fmt.Errorf("replay: verify %s: %w", a, err)
	}
	defer ia.Close()
	ib, err := db.NewIter(nil)
	if err != nil {
		return Report{}, fmt.Errorf("replay: verify %s: %w", b, err)
	}
	defer ib.Close()
	r := Report{A: a, B: b, Listed: []Difference{}}
	okA, okB := ia.First(), ib.First()
	for okA || okB {
		r.Keys++
		c := 0
		switch {
		case !okA:
			c = 1
		case !okB:
			c = -1
		default:
			c = bytes.Compare(ia.Key(), ib.Key())
		}
		switch {
		case c < 0:
			r.add(Difference{Key: printKey(ia.Key()), Kind: "only_a", A: printValue(ia.Value())})
			okA = ia.Next()
		case c > 0:
			r.add(Difference{Key: printKey(ib.Key()), Kind: "only_b", B: printValue(ib.Value())})
			okB = ib.Next()
		default:
			if !bytes.Equal(ia.Value(), ib.Value()) {
				r.add(Difference{Key: printKey(ia.Key()), Kind: "value", A: printValue(ia.Value()), B: printValue(ib.Value())})
			}
			okA, okB = ia.Next(), ib.Next()
		}
	}
	if err := firstErr(ia.Error(), ib.Error()); err != nil {
		return r, fmt.Errorf("replay: verify: %w", err)
	}
	return r, nil
}

func (r *Report) add(d Difference) {
	r.Differences++
	if len(r.Listed) < maxListed {
		r.Listed = append(r.Listed, d)
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func openReadOnly(dir string) (*pebble.DB, error) {
	cache := pebble.NewCache(32 << 20)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Cache: cache, Logger: quietLogger{},
		ErrorIfNotExists: true})
	if err != nil {
		return nil, fmt.Errorf("replay: open %s read-only (is acld using it? verify a checkpoint, or stop acld): %w", dir, err)
	}
	return db, nil
}

// printKey shows a key's components (separated by 0x00) joined by "/", with any other byte that
// is not printable escaped (sequences in logs are 8 binary bytes).
func printKey(k []byte) string {
	parts := bytes.Split(bytes.TrimSuffix(k, []byte{sep}), []byte{sep})
	out := make([]string, len(parts))
	for i, p := range parts {
		q := strconv.QuoteToASCII(string(p))
		out[i] = q[1 : len(q)-1]
	}
	return strings.Join(out, "/")
}

// printValue shows at most 200 bytes of a value.
func printValue(v []byte) string {
	if len(v) > 200 {
		return strconv.QuoteToASCII(string(v[:200])) + "..."
	}
	return strconv.QuoteToASCII(string(v))
}
