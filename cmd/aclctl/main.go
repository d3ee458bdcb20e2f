// Command aclctl is the command line of operators and auditors: issue commands, run queries
// (with as_of and min_seq), read a principal's or record's history and the difference in its
// access between two moments, export history for audits, follow the event stream, and rebuild
// or verify read models. It talks to acld over NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on (also in the root command's help).
const (
	exitOK          = 0 // the command or query succeeded; a check answered allowed
	exitAnswer      = 1 // the system answered with an error (invalid_argument, not_found, forbidden, ...)
	exitUsage       = 2 // the command line is wrong
	exitUnavailable = 3 // acld or NATS cannot be reached, or not_caught_up / unavailable
	exitDenied      = 4 // a check answered allowed: false; a verify found differences
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code; tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &app{stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		if e.err != nil {
			fmt.Fprintln(stderr, "aclctl:", e.err)
		}
		return e.code
	}
	// Cobra's own errors: unknown command or flag, wrong number of arguments.
	fmt.Fprintln(stderr, "aclctl:", err)
	fmt.Fprintln(stderr, "Run 'aclctl --help' for usage.")
	return exitUsage
}

// exitError carries the exit code of a failure; err nil means nothing more to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

const rootLong = `aclctl is the command line of the access-control service (acld) for operators and auditors.

It sends commands and queries to acld over NATS, reads history and differences in access,
exports an audit trail, follows the event stream, and rebuilds or verifies read models.

Moments (--as-of, --from, --to) are a stream sequence (42) or an RFC 3339 time
(2026-03-01T12:00:00Z), which means the last event at or before it.

Exit codes:
  0  success (a check answered allowed)
  1  the system answered an error (invalid_argument, not_found, forbidden, ...)
  2  usage error (unknown command, flag or argument, malformed JSON)
  3  unavailable: NATS or acld cannot be reached, or the answer was not_caught_up/unavailable
  4  a check answered denied; a verify found differences`

const rootExample = `  aclctl cmd acme AssignRole '{"principal":"bob","role":"accountant"}' --actor alice
  aclctl check acme bob invoice.view invoice/inv-1
  aclctl check acme bob invoice.view invoice/inv-1 --as-of 2026-03-01T12:00:00Z
  aclctl visible acme bob invoice --all
  aclctl history acme --principal bob --from 100
  aclctl diff acme bob --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z
  aclctl export acme --record invoice/inv-1 --format csv -o inv-1.csv
  aclctl tail --tenant acme
  aclctl verify --data ./data`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "aclctl",
		Short:         "Operate and audit the access-control service",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server of acld")
	f.StringVar(&a.natsCreds, "nats-creds", os.Getenv("ACLCTL_NATS_CREDS"), "NATS credentials file (or $ACLCTL_NATS_CREDS)")
	f.StringVar(&a.natsNkey, "nats-nkey", os.Getenv("ACLCTL_NATS_NKEY"), "NATS nkey seed file of the identity (or $ACLCTL_NATS_NKEY)")
	f.StringVar(&a.natsUser, "nats-user", os.Getenv("ACLCTL_NATS_USER"), "NATS user (or $ACLCTL_NATS_USER)")
	f.StringVar(&a.natsPassword, "nats-password", "", "NATS password (or $ACLCTL_NATS_PASSWORD)")
	f.BoolVar(&a.json, "json", false, "print answers as JSON (for scripts) instead of tables")
	f.DurationVar(&a.timeout, "timeout", defaultTimeout, "bound of each command or query, unavailable answers retried within it")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	root.AddCommand(a.cmdCommand(), a.queryCommand())
	root.AddCommand(a.queryShortcuts()...)
	root.AddCommand(a.historyCommand(), a.diffCommand(), a.exportCommand(), a.tailCommand(), a.watchCommand(), a.reviewCommand())
	root.AddCommand(a.rebuildCommand(), a.verifyCommand(), a.importCommand())
	return root
}
