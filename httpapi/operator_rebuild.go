package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// RebuildRun rebuilds the named read models (none: all), reporting
// progress after each batch and each phase's time as it ends.
type RebuildRun func(ctx context.Context, names []string, progress func(applied int, total int64), phase func(name string, took time.Duration)) error

// OperatorRebuildConfig configures POST and GET
// /v1/operator/projections/rebuild.
type OperatorRebuildConfig struct {
	// Token is the operator's bearer token; empty: the endpoint answers
	// 404, as if it did not exist.
	Token string
	// Check refuses unknown projection names before anything starts.
	Check func(names []string) error
	Run   RebuildRun
	// Lock, when set, takes the database's rebuild lock before the answer
	// (Run then runs holding it, and releases it): held=false, a rebuild
	// of another process holds it, answers 409.
	Lock func(ctx context.Context) (release func(), held bool, err error)
	// Context bounds a rebuild: the server's lifetime, not a request's.
	Context context.Context
	Now     func() time.Time
	Logger  *slog.Logger
}

// RebuildStatus is where a rebuild is.
type RebuildStatus string

// The rebuild's statuses.
const (
	RebuildIdle    RebuildStatus = "idle" // none has run in this process
	RebuildRunning RebuildStatus = "running"
	RebuildDone    RebuildStatus = "done"
	RebuildFailed  RebuildStatus = "failed"
)

// RebuildState is the answer of the rebuild endpoint: the rebuild running
// or the last one this process ran.
type RebuildState struct {
	State       RebuildStatus  `json:"state"`
	Projections []string       `json:"projections"`
	StartedAt   *int64         `json:"started_at"`  // Unix ms
	FinishedAt  *int64         `json:"finished_at"` // Unix ms
	Applied     int            `json:"applied"`
	Total       int64          `json:"total"` // -1: the store cannot count its events
	Phases      []RebuildPhase `json:"phases"`
	Error       string         `json:"error,omitempty"`
}

// RebuildPhase is one finished phase of a rebuild and how long it took.
type RebuildPhase struct {
	Name string `json:"name"`
	MS   int64  `json:"ms"`
}

var (
	errRebuildRunning   = errorf(http.StatusConflict, "rebuild_running", "a rebuild is running in this process; GET this URL for its progress")
	errRebuildElsewhere = errorf(http.StatusConflict, "rebuild_running", "a rebuild of this database is running in another process (picd projections rebuild, or another gateway); try again once it has ended")
)

// NewOperatorRebuild serves /v1/operator/projections/rebuild: POST
// {"projections": [names]} (or no body: all) starts a rebuild inside this
// process and answers 202; GET answers its progress. Inside the serving
// process its write transactions queue with the gateway's own for the one
// SQLite writer connection, where a second process's could only poll
// SQLite's lock and keep the gateway's appends waiting for seconds.
func NewOperatorRebuild(cfg OperatorRebuildConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	s := &server{log: cfg.Logger}
	want := sha256.Sum256([]byte(cfg.Token))
	var mu sync.Mutex
	st := RebuildState{State: RebuildIdle, Projections: []string{}, Total: -1, Phases: []RebuildPhase{}}
	snapshot := func() RebuildState {
		mu.Lock()
		defer mu.Unlock()
		out := st
		out.Phases = append([]RebuildPhase{}, st.Phases...)
		return out
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Token == "" {
			s.writeError(w, r, errNotFoundRoute)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			s.writeError(w, r, errMethod)
			return
		}
		if err := operatorAuth(r, want); err != nil {
			s.writeError(w, r, err)
			return
		}
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, snapshot())
			return
		}
		var body struct {
			Projections []string `json:"projections"`
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := decodeJSON(r, &body, true); err != nil {
			s.writeError(w, r, err)
			return
		}
		if cfg.Check != nil {
			if err := cfg.Check(body.Projections); err != nil {
				s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", err.Error()))
				return
			}
		}
		mu.Lock()
		if st.State == RebuildRunning {
			mu.Unlock()
			s.writeError(w, r, errRebuildRunning)
			return
		}
		release := func() {}
		if cfg.Lock != nil {
			// Under mu: a second POST of this process waits here, then
			// finds this one running.
			rel, held, err := cfg.Lock(r.Context())
			if err != nil || !held {
				mu.Unlock()
				if err == nil {
					err = errRebuildElsewhere
				}
				s.writeError(w, r, err)
				return
			}
			release = rel
		}
		started := cfg.Now().UnixMilli()
		st = RebuildState{State: RebuildRunning, Projections: append([]string{}, body.Projections...), StartedAt: &started, Total: -1, Phases: []RebuildPhase{}}
		mu.Unlock()
		cfg.Logger.Info("projections rebuild started", "projections", body.Projections)
		go func() {
			err := cfg.Run(cfg.Context, body.Projections,
				func(applied int, total int64) {
					mu.Lock()
					st.Applied, st.Total = applied, total
					mu.Unlock()
				},
				func(name string, took time.Duration) {
					mu.Lock()
					st.Phases = append(st.Phases, RebuildPhase{Name: name, MS: took.Milliseconds()})
					mu.Unlock()
				})
			release() // before it reads done: a rebuild started then finds the lock free
			finished := cfg.Now().UnixMilli()
			mu.Lock()
			st.FinishedAt = &finished
			st.State = RebuildDone
			if err != nil {
				st.State, st.Error = RebuildFailed, err.Error()
			}
			mu.Unlock()
			if err != nil && !errors.Is(err, context.Canceled) {
				cfg.Logger.Error("projections rebuild failed", "err", err)
				return
			}
			cfg.Logger.Info("projections rebuild finished", "projections", body.Projections, "ms", finished-started, "err", err)
		}()
		writeJSON(w, http.StatusAccepted, snapshot())
	})
}
