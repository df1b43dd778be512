package scan

import (
	"sync"
	"time"
)

// heads is the node head each scanner of this process last read, by its
// Config.Name: what picd's chain head and scan lag metrics show. Only the
// process that scans (the leader) has them.
var heads sync.Map // name → Head

// Head is a node's best block height as a scanner last read it.
type Head struct {
	Height int64
	At     time.Time
}

// LastHead returns the head the scanner named name last read; ok is false
// before its first read in this process.
func LastHead(name string) (h Head, ok bool) {
	v, ok := heads.Load(name)
	if !ok {
		return Head{}, false
	}
	return v.(Head), true
}

func recordHead(name string, height int64) {
	heads.Store(name, Head{Height: height, At: time.Now()})
}
