package events

// Fields lends fastData's scanner to the decoders of other JSON bodies that share the event
// data's parts (the command bodies of aggregates: a registration's record body, a principal's
// units), by fastData's rule: a method returns false on anything it does not understand
// completely (a key that is not exactly a field's name, a key seen twice, an escape or invalid
// UTF-8 in a string, a value of another kind, a null in a list), and the caller then decodes
// with its own decoder, which therefore defines the result and every refusal. A null field
// keeps its zero value.
type Fields struct {
	s dataScanner
}

// ScanFields starts reading raw, which must be one JSON object (and white space). A value,
// not a pointer: a body's decoding allocates only what it decodes.
func ScanFields(raw []byte) Fields {
	return Fields{s: dataScanner{scanner: scanner{b: raw}}}
}

// RecordBodyKeys are the field names of RecordBody, in the order of RecordField's indexes.
func RecordBodyKeys() []string { return keysRecordBody }

// Object reads an object whose keys are all in keys, each at most once (at most 32 keys),
// calling val with the key's index to read its value; a null value is skipped.
func (f *Fields) Object(keys []string, val func(i int) bool) bool {
	f.s.ws()
	return f.s.obj(keys, val)
}

// String reads a string without escapes.
func (f *Fields) String(dst *string) bool { return f.s.str(dst) }

// Bool reads true or false.
func (f *Fields) Bool(dst *bool) bool {
	switch {
	case f.s.literal("true"):
		*dst = true
	case f.s.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// Unit reads a UnitRef object.
func (f *Fields) Unit(u *UnitRef) bool { return f.s.unit(u) }

// Units reads a list of UnitRef objects: [] gives an empty, non-nil slice.
func (f *Fields) Units(dst *[]UnitRef) bool {
	// A func literal, not the method value f.s.unit, which would move f to the heap.
	return list(&f.s, dst, func(u *UnitRef) bool { return f.s.unit(u) })
}

// RecordField reads the value of RecordBody's field RecordBodyKeys()[i] into b.
func (f *Fields) RecordField(b *RecordBody, i int) bool { return f.s.recordBody(b, i) }

// End reports whether only white space is left.
func (f *Fields) End() bool { return f.s.end() }
