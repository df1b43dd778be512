package commands

import (
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Encode turns the events one command decided into what the store appends,
// exactly as the handlers write them (ids from the command id, schema
// versions in the metadata, postings checked). For writers that decide
// through the domain and append in bulk, such as the history generator.
func Encode(evs []domain.Event, stream string, meta Metadata) ([]eventstore.EventData, error) {
	return encode(evs, stream, meta)
}
