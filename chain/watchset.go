package chain

// WatchSet is a watcher's set of invoice addresses, keyed by what a block
// names them by (20 address bytes, an output script) and answering with the
// address as stored on the invoice. It keeps a million addresses in tens of
// megabytes (#23): a fixed-size key and a byte each, the stored text
// being rendered again from the key on a match (a few a block), by the
// first of the renders that gave it when it was added. An address stored
// in a form none of them gives (another letter case) is kept as text.
type WatchSet[K comparable] struct {
	forms  map[K]uint8
	other  map[K]string
	render []func(K) string
}

// asText marks, in forms, an address kept in other.
const asText = 255

// NewWatchSet returns an empty set whose stored forms are rendered by
// renders (at most 254), the usual one first.
func NewWatchSet[K comparable](renders ...func(K) string) *WatchSet[K] {
	if len(renders) >= asText {
		panic("chain: too many renders for a WatchSet")
	}
	return &WatchSet[K]{forms: map[K]uint8{}, other: map[K]string{}, render: renders}
}

// Add watches k, stored as stored; an address added again takes the
// latest stored form.
func (s *WatchSet[K]) Add(k K, stored string) {
	for i, r := range s.render {
		if r(k) == stored {
			s.forms[k] = uint8(i)
			delete(s.other, k)
			return
		}
	}
	s.forms[k] = asText
	s.other[k] = stored
}

// Lookup returns the stored address of k, if watched.
func (s *WatchSet[K]) Lookup(k K) (string, bool) {
	f, ok := s.forms[k]
	switch {
	case !ok:
		return "", false
	case f == asText:
		return s.other[k], true
	default:
		return s.render[f](k), true
	}
}

// Has reports whether k is watched.
func (s *WatchSet[K]) Has(k K) bool {
	_, ok := s.forms[k]
	return ok
}

// Len is the number of addresses watched.
func (s *WatchSet[K]) Len() int { return len(s.forms) }
