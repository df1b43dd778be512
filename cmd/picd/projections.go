package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// projectionsCmd runs `picd projections rebuild [name…]` and
// `picd projections status`.
func projectionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: picd projections rebuild [flags] [name...] | picd projections status [flags] (picd projections <command> -h: its flags)"
	if len(args) == 0 {
		return usageError(errors.New(use))
	}
	sub, args := args[0], args[1:]
	if isHelp(sub) {
		printHelp(stdout, projectionsRebuildHelp, nil)
		fmt.Fprintln(stdout)
		printHelp(stdout, projectionsStatusHelp, nil)
		return nil
	}
	var h cmdHelp
	switch sub {
	case "rebuild":
		h = projectionsRebuildHelp
	case "status":
		h = projectionsStatusHelp
	default:
		return usageError(fmt.Errorf("unknown projections command %q: want rebuild or status\n%s", sub, use))
	}
	profile, args, err := cutValueFlag(args, "cpuprofile")
	if err != nil {
		return err
	}
	gateway, args, err := cutValueFlag(args, "gateway")
	if err != nil {
		return err
	}
	beside := slices.ContainsFunc(args, isBesideGateway)
	args = slices.DeleteFunc(args, isBesideGateway)
	// Flags first, then projection names: picd projections rebuild --store=postgres invoices
	cfg, names, err := parseConfigFor(h, args, stdout)
	if err != nil {
		return err
	}
	if gateway != "" {
		if sub != "rebuild" || profile != "" {
			return usageError(errors.New("--gateway goes with picd projections rebuild, without --cpuprofile"))
		}
		return rebuildInGateway(ctx, gateway, names, stdout)
	}
	if sub == "rebuild" && cfg.Store == "sqlite" && !beside {
		serving, err := gatewayServes(embeddedPath(cfg))
		if err != nil {
			return err
		}
		if serving {
			// Its index builds hold the one writer for seconds, and from a
			// second process the gateway's appends only poll for it.
			return fmt.Errorf("a gateway serves %s: rebuild inside it with --gateway URL (its operator token in PIC_OPERATOR_TOKEN), or add --beside-gateway to rebuild from this process anyway (invoice creations may then answer 503 while it runs)", embeddedPath(cfg))
		}
	}
	open := openBackend
	if sub == "status" {
		if len(names) > 0 {
			return usageError(fmt.Errorf("unexpected arguments: %v", names))
		}
		open = openReadOnly // looking changes nothing, not even a schema
	}
	b, err := open(ctx, cfg, newLogger(stderr))
	if err != nil {
		return unreachable(err)
	}
	defer b.close()
	switch sub {
	case "status":
		sts, err := projections.Statuses(ctx, b.store, b.db, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-14s %-24s %-10s %s\n", "projection", "position", "behind", "lag")
		for _, st := range sts {
			behind := "?"
			if st.Behind >= 0 {
				behind = fmt.Sprint(st.Behind)
			}
			fmt.Fprintf(stdout, "%-14s %-24s %-10s %s\n", st.Name, st.Position, behind, st.Lag.Round(time.Millisecond))
		}
		return printLeader(ctx, stdout, cfg, b)
	case "rebuild":
		if os.Getenv("GOGC") == "" {
			// As the audit's (and serve's, where the endpoint's rebuild
			// runs): its garbage is the decoded log. At 1M events 200 %
			// took the catch-up from 11.2, 12.0 s to 10.6, 10.9 s, for a
			// max RSS of 340 MB instead of 260 MB.
			debug.SetGCPercent(200)
		}
		stop, err := startCPUProfile(profile)
		if err != nil {
			return err
		}
		defer stop()
		start := time.Now()
		var phases []string
		err = projections.RebuildWith(ctx, b.store, b.db, names, projections.RebuildOptions{Now: time.Now,
			Progress: func(p projections.RebuildProgress) {
				fmt.Fprint(stdout, "\r"+progressBar(p))
			},
			Phase: func(name string, took time.Duration) {
				phases = append(phases, name+" "+took.Round(time.Millisecond).String())
			}})
		fmt.Fprintln(stdout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rebuilt and swapped in %s (%s)\n", time.Since(start).Round(time.Millisecond), strings.Join(phases, ", "))
		return nil
	}
	return nil
}

// progressBar renders "[=====>    ] 52% 520000/1000000 events 81234 ev/s ETA 6s".
func progressBar(p projections.RebuildProgress) string {
	rate := float64(p.Applied) / max(p.Elapsed.Seconds(), 1e-3)
	if p.Total <= 0 {
		return fmt.Sprintf("%d events %.0f ev/s", p.Applied, rate)
	}
	frac := min(float64(p.Applied)/float64(p.Total), 1)
	const width = 30
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < filled:
			bar[i] = '='
		case i == filled:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	eta := time.Duration(float64(p.Total-int64(p.Applied))/max(rate, 1)) * time.Second
	return fmt.Sprintf("[%s] %3.0f%% %d/%d events %.0f ev/s ETA %s   ", bar, frac*100, p.Applied, p.Total, rate, eta.Round(time.Second))
}

// printLeader says which process runs the projections (the lease holder)
// and how long ago it renewed.
func printLeader(ctx context.Context, stdout io.Writer, cfg Config, b *backend) error {
	if b.db.Dialect != sqldb.Postgres {
		_, err := fmt.Fprintln(stdout, "leader: the serving process (embedded store)")
		return err
	}
	st, _, err := follow.ReadLease(ctx, b.db.Read, leaseName, cfg.LeaderLease)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "leader: %s\n", st)
	return err
}

func isBesideGateway(a string) bool { return a == "--beside-gateway" || a == "-beside-gateway" }

// cutValueFlag takes --name VALUE or --name=VALUE (one dash or two) out of
// args, for a flag the shared configuration flags do not know.
func cutValueFlag(args []string, name string) (value string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || n != name {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", nil, &exitError{code: exitUsage, err: fmt.Errorf("--%s needs a value", name)}
			}
			i++
			v = args[i]
		}
		value = v
	}
	return value, rest, nil
}
