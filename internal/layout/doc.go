// Package layout holds no code: its test checks that every package of
// the module imports only what docs/architecture.md's table allows.
package layout
