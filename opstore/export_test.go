package opstore

// LegacyIdempotencyRow is a done key's row as the code before a schema
// change wrote it: its id, request MAC and sealed response.
func LegacyIdempotencyRow(scope, key string, body, response []byte) (id, mac string, sealed []byte, err error) {
	k := deriveIdem(scope, key)
	sealed, err = seal(k, response)
	return k.id, k.requestMAC(body), sealed, err
}
