package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
)

// cmdHelp is what -h prints for a subcommand: its usage line, what it
// does, and (from its flag set) its flags.
type cmdHelp struct {
	name      string // "picd migrate"
	usage     string // "picd migrate [flags]"
	about     string
	exits     string // its exit statuses
	storeOnly bool   // only the store flags (--store, --data, --postgres-url, --eventstore-url)
	serve     bool   // the gateway itself: simulated chains only when asked for
}

var (
	serveHelp = cmdHelp{name: "picd serve", usage: "picd serve [flags]", serve: true,
		about: "Run the gateway. With no chain node configured every chain is simulated (the quick start).",
		exits: "0 stopped by a signal, 1 failed, 2 bad flags or settings, 3 a store unreachable"}
	migrateHelp = cmdHelp{name: "picd migrate", usage: "picd migrate [flags]", storeOnly: true,
		about: "Create or update the schemas of the configured stores, then exit.",
		exits: "0 up to date, 2 bad flags, 3 a store unreachable or unusable"}
	auditHelp = cmdHelp{name: "picd audit", usage: "picd audit [--json] [--progress|--no-progress] [--window EVENTS] [--verify-chain [--at SEQ]] [--cpuprofile FILE] [flags]\n       picd audit --chain [--verbose] [--json] [flags]   (the ledger's holdings against the nodes: a proof of reserves)\n       picd audit --from DATE --to DATE [--merchant ID] [--json|--csv] [flags]   (a period statement of [from, to))",
		about: "Rebuild every balance and fee from the event log and compare with the read models. Read-only: never migrates.",
		exits: "0 clean, 1 a problem found, 2 bad flags, 3 a store or node unreachable (or not migrated)"}
	projectionsRebuildHelp = cmdHelp{name: "picd projections rebuild", usage: "picd projections rebuild [--cpuprofile FILE] [--beside-gateway] [flags] [name...]\n       picd projections rebuild --gateway URL [name...]", storeOnly: true,
		about: "Rebuild read models (all, or the named ones) beside the live ones and swap them in (blue/green).\n" +
			"With --gateway, the serving gateway at URL rebuilds inside its own process (its operator token in\n" +
			"PIC_OPERATOR_TOKEN or PIC_OPERATOR_TOKEN_FILE): on SQLite its appends then queue with the rebuild's\n" +
			"writes instead of waiting on the file's lock. Without it, a rebuild of an embedded store a gateway\n" +
			"serves stops unless --beside-gateway says to go on beside it (its creations may then answer 503).",
		exits: "0 rebuilt, 1 failed (or a gateway serves the embedded store), 2 bad flags, 3 a store unreachable or unusable"}
	projectionsStatusHelp = cmdHelp{name: "picd projections status", usage: "picd projections status [flags]", storeOnly: true,
		about: "Each projection's position and lag. Read-only: never migrates.",
		exits: "0 ok, 2 bad flags, 3 a store unreachable or not migrated"}
)

// The exit statuses of every command (docs/operations.md, "Exit
// statuses"): 0 ok, exitProblems (1) a problem found or any other failure,
// exitUsage (2) bad usage, exitUnreachable (3) a dependency unreachable.

// usageError makes err exit with status 2.
func usageError(err error) error {
	var ee *exitError
	if errors.As(err, &ee) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: exitUsage, err: err}
}

// parseFlags parses args with fs. -h prints h's help to stdout and
// returns flag.ErrHelp (exit 0); a bad flag is a usage error that names
// the command's help.
func parseFlags(fs *flag.FlagSet, h cmdHelp, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // flag's own message would come before ours, on stderr
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, h, fs)
		return flag.ErrHelp
	}
	if err != nil {
		return usageError(fmt.Errorf("%w (see %s -h)", err, h.name))
	}
	return nil
}

func printHelp(w io.Writer, h cmdHelp, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", h.usage, h.about)
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			if fs.Lookup("store") != nil {
				fmt.Fprintln(w, "\nflags (each also read from the PIC_* variable it names; a flag wins):")
			} else {
				fmt.Fprintln(w, "\nflags:")
			}
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	if h.exits != "" {
		fmt.Fprintf(w, "\nexit status: %s\n", h.exits)
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// version is the release, set at build time:
// go build -ldflags "-X main.version=v1.2.3" ./cmd/picd
var version string

// versionString says which build this is: the release (or the module
// version Go recorded), the commit and Go's version.
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	var rev, when string
	modified := false
	if ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var parts []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	if when != "" {
		parts = append(parts, when)
	}
	parts = append(parts, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("picd %s (%s)", v, strings.Join(parts, ", "))
}

var seedHelp = cmdHelp{name: "picd seed", usage: "picd seed new | picd seed rotate [flags] [WORDS_FILE]",
	about: "new prints a new master seed (24 BIP-39 words) on stdout, for a secret file PIC_MNEMONIC_FILE names\n" +
		"(docker compose run --rm --no-deps picd seed new > secrets/mnemonic). Every deposit address derives from it:\n" +
		"back it up offline before the first start.\n" +
		"rotate adds a seed generation to the embedded signer's seed (<mnemonic-file>.1, .2, ...: generated, or the words\n" +
		"in WORDS_FILE): after a restart new addresses and the hot wallet come from it, and the older generations only\n" +
		"sign for their addresses (docs/operations.md, rotate to a new seed). With picd signer use picd signer rotate.",
	exits: "0 printed or rotated, 1 failed, 2 bad usage"}

func seedCmd(args []string, stdout io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		printHelp(stdout, seedHelp, nil)
		return nil
	}
	if len(args) > 0 && args[0] == "rotate" {
		cfg, rest, err := parseConfigFor(seedHelp, args[1:], stdout)
		if err != nil {
			return err
		}
		if cfg.Signer != "" {
			return usageError(errors.New("PIC_SIGNER is set: this gateway holds no seed; rotate the signer's with picd signer rotate"))
		}
		return rotateSeed(cfg.MnemonicFile, cfg.Mnemonic, cfg.MnemonicPassphrase, cfg.BTCNetwork, rest, stdout)
	}
	if len(args) != 1 || args[0] != "new" {
		return usageError(fmt.Errorf("usage: %s", seedHelp.usage))
	}
	words, err := hd.GenerateMnemonic(rand.Reader)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, words)
	return err
}

// rotateSeed adds a seed generation beside mnemonicFile (generation 0's):
// the words of the one file rest may name, else fresh ones. It prints
// where they are and the new hot wallets, never the words.
func rotateSeed(mnemonicFile, fromEnv, passphrase, btcNetwork string, rest []string, stdout io.Writer) error {
	if len(rest) > 1 {
		return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(rest[1:], " ")))
	}
	params, err := hd.NetworkParams(btcNetwork)
	if err != nil {
		return usageError(err)
	}
	words := ""
	if len(rest) == 1 {
		b, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		words = string(b)
	}
	g, file, err := hd.AddGeneration(mnemonicFile, fromEnv, words)
	if err != nil {
		return err
	}
	all, _, err := hd.LoadGenerations(mnemonicFile, fromEnv)
	if err != nil {
		return err
	}
	w, err := hd.NewWallets(all, passphrase, params)
	if err != nil {
		return err
	}
	ethHot, err := w.Address(domain.ChainEthereum, w.Current(eth.DefaultHotWalletIndex))
	if err != nil {
		return err
	}
	tronHot, err := w.Address(domain.ChainTron, w.Current(tron.DefaultHotWalletIndex))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `seed generation %d is in %s (0600): back it up now, beside the older generations' files, which stay.
After a restart of the process that holds the seed (picd signer, else picd serve):
  new invoices get addresses of generation %d; payments to older generations' addresses are still credited and swept;
  the Ethereum hot wallet is %s (the older one's funds are moved into it);
  the TRON hot wallet is %s (the older one's funds are moved into it).
`, g, file, g, ethHot, tronHot)
	return nil
}
