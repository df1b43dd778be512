package readapi

import (
	"encoding/json"
	"strconv"

	"github.com/acceptcryptohere/gateway/domain"
)

// AppendJSON appends the event's envelope (FeedEventJSON) to dst, byte for
// byte what json.Marshal(e.JSON()) gives, without its reflection and its
// re-compacting of data and metadata: a page of the feed is mostly those
// payloads, and compacting them through encoding/json's scanner was a third
// of a page's CPU. A payload (or string) that is already compact JSON with
// nothing json.Marshal would escape is copied; anything else goes through
// json.Marshal itself, so the output, and the error for an invalid
// payload, stay the same. On error dst is returned as it was.
func (e FeedEvent) AppendJSON(dst []byte) ([]byte, error) {
	v, err := domain.SchemaVersion(e.Metadata)
	if err != nil {
		v = 1 // as JSON(): a malformed metadata predates versions
	}
	orig := len(dst)
	dst = append(dst, `{"id":"`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `","event_id":`...)
	dst = appendJSONString(dst, e.EventID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendInt(dst, int64(v), 10)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, e.Stream)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, e.Version, 10)
	dst = append(dst, `,"position":`...)
	dst = appendJSONString(dst, e.Position)
	dst = append(dst, `,"recorded_at":`...)
	dst = strconv.AppendInt(dst, e.RecordedAt.UnixMilli(), 10)
	dst = append(dst, `,"metadata":`...)
	if dst, err = appendRawJSON(dst, e.Metadata); err != nil {
		return dst[:orig], err
	}
	dst = append(dst, `,"data":`...)
	if dst, err = appendRawJSON(dst, e.Data); err != nil {
		return dst[:orig], err
	}
	return append(dst, '}'), nil
}

// appendJSONString appends s as json.Marshal quotes it. Printable ASCII
// without a quote, backslash or HTML character (which json.Marshal
// escapes) is copied; anything else is left to json.Marshal.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendRawJSON appends raw as json.Marshal renders a json.RawMessage:
// copied when plainJSON says it is already what json.Marshal would give,
// else through json.Marshal (which compacts, escapes or refuses it).
func appendRawJSON(dst, raw []byte) ([]byte, error) {
	if plainJSON(raw) {
		return append(dst, raw...), nil
	}
	b, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// plainMaxDepth bounds plainJSON's recursion; deeper values take the slow
// path (encoding/json's own limit is far above any event's).
const plainMaxDepth = 64

// plainJSON reports whether b is one valid JSON value with no whitespace
// outside strings and nothing json.Marshal escapes (<, >, &, U+2028,
// U+2029): then compacting it changes nothing. It may say false for such
// a value (then the caller takes the slow, exact path), never true for
// anything else.
func plainJSON(b []byte) bool {
	i, ok := plainValue(b, 0, 0)
	return ok && i == len(b)
}

// plainValue checks the value starting at b[i] and returns the index after it.
func plainValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return plainString(b, i)
	case c == '{':
		if depth >= plainMaxDepth {
			return i, false
		}
		i++
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			var ok bool
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = plainString(b, i); !ok {
				return i, false
			}
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = plainValue(b, i+1, depth+1); !ok {
				return i, false
			}
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '[':
		if depth >= plainMaxDepth {
			return i, false
		}
		i++
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = plainValue(b, i, depth+1); !ok {
				return i, false
			}
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return plainNumber(b, i)
	case c == 't':
		return plainLiteral(b, i, "true")
	case c == 'f':
		return plainLiteral(b, i, "false")
	case c == 'n':
		return plainLiteral(b, i, "null")
	}
	return i, false
}

func plainLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// plainByte marks the bytes a string can hold as they are: not a control
// character, quote, backslash or HTML character, nor 0xE2 (the first byte
// of U+2028 and U+2029, which json.Marshal escapes; plainString looks
// closer at it).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2
	}
	return t
}()

// plainString checks the string starting at b[i] (a quote). Bytes at or
// above 0x80 are taken as they are, as encoding/json's scanner takes them.
func plainString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		if plainByte[b[i]] {
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == 0xE2:
			if i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9) {
				return i, false // U+2028, U+2029: json.Marshal escapes them
			}
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		default: // a control or HTML character
			return i, false
		}
	}
	return i, false
}

// plainNumber checks a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func plainNumber(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	if b[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}
