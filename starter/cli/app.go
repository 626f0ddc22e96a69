// Package cli implements the `shipline` command. Each command group lives in its
// own file as an options struct filled from flags plus a runX function; Main
// maps every outcome to one exit code in one place:
// 0 done · 1 the operation failed or was refused · 2 bad usage or invalid input.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/user"
	"regexp"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/workflows"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitInvalid = 2
)

// exitError carries an exit code with the message printed for it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// invalid is bad usage or invalid input (exit 2).
func invalid(format string, args ...any) error {
	return &exitError{code: ExitInvalid, err: fmt.Errorf(format, args...)}
}

// failed is an operation that failed or was refused (exit 1).
func failed(err error) error { return &exitError{code: ExitFailed, err: err} }

// Main runs the CLI with args (args[0] is the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(newApp(stdout, stderr), args, stderr)
}

// run runs app with args and maps the outcome to an exit code, printing the error.
func run(app *ucli.App, args []string, stderr io.Writer) int {
	err := app.Run(reorderArgs(app, args))
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code := ExitFailed
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = ExitInvalid
	}
	if msg := err.Error(); msg != "" {
		if strings.Contains(msg, "unsigned: ") {
			msg += keyHint()
		}
		fmt.Fprintf(stderr, "error: %s\n", msg)
	}
	return code
}

// isUsageError recognizes flag-parsing and required-flag errors from urfave/cli.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "Required flag", "invalid value", "flag needs an argument", "No help topic"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// globals are the flags every command shares.
type globals struct {
	taskQueue, uiURL, actor, output, keyFile string
	stdout, stderr                           io.Writer
	// conn holds the connection flags (named like the temporal CLI's);
	// Before resolves them with the environment and the Temporal config
	// profile into temporal (or temporalErr). address and namespace are the
	// resolved ones, for messages and links.
	conn               temporalconn.Flags
	temporal           *temporalconn.Conn
	temporalErr        error
	address, namespace string
	// env is where TEMPORAL_* variables are read (nil: the process's).
	env envconfig.EnvLookup
	// dial is replaced by tests that bring their own client.
	dial func(g *globals) (client.Client, error)
	// pollEvery is how often a followed workflow is asked for its state (0: 150ms).
	pollEvery time.Duration
	// loc is the time zone of printed times (nil: the local one).
	loc *time.Location
	// identity names the actor to Temporal (recorded with cancellations).
	identity string
	// grace is how long to wait for a worker before checking one is there (0: workerGrace).
	grace time.Duration
	// acceptEvery bounds the wait for a start's answer (0: acceptTimeout).
	acceptEvery time.Duration
	// requestID names a new deployment (nil: newRequestID).
	requestID func() string
	// codecKeysEnv names the variable holding the payload codec's keys;
	// payloads is the codec read from it when Temporal is dialed.
	codecKeysEnv string
	payloads     *codec.Codec
}

func (g *globals) workerWait() time.Duration {
	if g.grace > 0 {
		return g.grace
	}
	return workerGrace
}

func (g *globals) newRequestID() string {
	if g.requestID != nil {
		return g.requestID()
	}
	return newRequestID()
}

func (g *globals) pollInterval() time.Duration {
	if g.pollEvery > 0 {
		return g.pollEvery
	}
	return 150 * time.Millisecond
}

// local renders a time in the user's time zone.
func (g *globals) local(t time.Time) time.Time {
	if g.loc != nil {
		return t.In(g.loc)
	}
	return t.Local()
}

func newApp(stdout, stderr io.Writer) *ucli.App {
	return newAppWith(&globals{stdout: stdout, stderr: stderr, dial: dialTemporal})
}

// newAppWith builds the app around g (tests bring their own dial and clock zone).
func newAppWith(g *globals) *ucli.App {
	return &ucli.App{
		Name:  "shipline",
		Usage: "release, deploy and promote data-pipeline projects on Temporal",
		Flags: []ucli.Flag{
			// Connection flags: the environment variables and profiles behind
			// them are read by internal/temporalconn (flags > env > profile).
			&ucli.StringFlag{Name: "address", Usage: "Temporal frontend `HOST:PORT` (env TEMPORAL_ADDRESS; default 127.0.0.1:7233)", Destination: &g.conn.Address},
			&ucli.StringFlag{Name: "namespace", Usage: "Temporal `NAMESPACE` (env TEMPORAL_NAMESPACE; default \"default\")", Destination: &g.conn.Namespace},
			&ucli.StringFlag{Name: "api-key", Usage: "Temporal Cloud API `KEY`; turns TLS on (env TEMPORAL_API_KEY)", Destination: &g.conn.APIKey},
			&ucli.BoolFlag{Name: "tls", Usage: "use TLS; on with an API key or any --tls-* flag, --tls=false turns it off (env TEMPORAL_TLS)"},
			&ucli.StringFlag{Name: "tls-ca-path", Usage: "CA certificate `FILE` that signed the server's certificate (env TEMPORAL_TLS_SERVER_CA_CERT_PATH)", Destination: &g.conn.CAPath},
			&ucli.StringFlag{Name: "tls-ca-data", Usage: "CA certificate `PEM`, instead of --tls-ca-path (env TEMPORAL_TLS_SERVER_CA_CERT_DATA)", Destination: &g.conn.CAData},
			&ucli.StringFlag{Name: "tls-cert-path", Usage: "client certificate `FILE` for mTLS (env TEMPORAL_TLS_CLIENT_CERT_PATH)", Destination: &g.conn.CertPath},
			&ucli.StringFlag{Name: "tls-cert-data", Usage: "client certificate `PEM`, instead of --tls-cert-path (env TEMPORAL_TLS_CLIENT_CERT_DATA)", Destination: &g.conn.CertData},
			&ucli.StringFlag{Name: "tls-key-path", Usage: "client private key `FILE` for mTLS (env TEMPORAL_TLS_CLIENT_KEY_PATH)", Destination: &g.conn.KeyPath},
			&ucli.StringFlag{Name: "tls-key-data", Usage: "client private key `PEM`, instead of --tls-key-path (env TEMPORAL_TLS_CLIENT_KEY_DATA)", Destination: &g.conn.KeyData},
			&ucli.StringFlag{Name: "tls-server-name", Usage: "`NAME` the server's certificate is checked against (env TEMPORAL_TLS_SERVER_NAME)", Destination: &g.conn.ServerName},
			&ucli.BoolFlag{Name: "tls-disable-host-verification", Usage: "do not verify the server's certificate (env TEMPORAL_TLS_DISABLE_HOST_VERIFICATION)", Destination: &g.conn.DisableHostVerification},
			&ucli.StringFlag{Name: "profile", Usage: "`NAME` of the profile in the Temporal config file (env TEMPORAL_PROFILE; default \"default\")", Destination: &g.conn.Profile},
			&ucli.StringFlag{Name: "config-file", Usage: "Temporal config `FILE` (TOML) holding the profiles (env TEMPORAL_CONFIG_FILE; default the temporal CLI's)", Destination: &g.conn.ConfigFile},
			&ucli.StringFlag{Name: "task-queue", Value: workflows.DefaultTaskQueue, EnvVars: []string{"SHIPLINE_TASK_QUEUE"}, Usage: "task queue the shipline worker polls", Destination: &g.taskQueue},
			&ucli.StringFlag{Name: "ui-url", Value: "http://127.0.0.1:8233", EnvVars: []string{"SHIPLINE_UI_URL"}, Usage: "Temporal UI base URL, for links", Destination: &g.uiURL},
			&ucli.StringFlag{Name: "as", EnvVars: []string{"SHIPLINE_USER"}, Usage: "act as `USER` (default: the OS user)", Destination: &g.actor},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json", Destination: &g.output},
			&ucli.StringFlag{Name: "key", EnvVars: []string{"SHIPLINE_KEY"}, Usage: "ed25519 private key `FILE` that signs requests (else the key text in $SHIPLINE_PRIVATE_KEY, else ~/.ssh/id_ed25519 when present)", Destination: &g.keyFile},
			&ucli.StringFlag{Name: "codec-keys-env", Value: codec.DefaultKeysEnv, Usage: "encrypt and decrypt payloads with the keys in environment variable `NAME` (ID:BASE64KEY,…, the worker's temporal.encryption.keys_env); unset variable: no encryption", Destination: &g.codecKeysEnv},
		},
		Before: func(c *ucli.Context) error {
			if g.output != "text" && g.output != "json" {
				return invalid("--output must be text or json, not %q", g.output)
			}
			if c.IsSet("tls") {
				on := c.Bool("tls")
				g.conn.TLS = &on
			}
			g.resolveTemporal()
			return nil
		},
		Commands: []*ucli.Command{
			validateCommand(g),
			checkCommand(g),
			initCommand(g),
			releaseCommand(g),
			releasesCommand(g),
			deployCommand(g),
			planCommand(g),
			deploymentsCommand(g),
			runCommand(g),
			runsCommand(g),
			historyCommand(g),
			logsCommand(g),
			resumeCommand(g),
			cancelCommand(g),
			promoteCommand(g),
			voteCommand(g, "approve", workflows.ApproveUpdate, "approve the stage of a promotion that waits for your team"),
			voteCommand(g, "reject", workflows.RejectUpdate, "reject the stage of a promotion (ends it); --comment is required"),
			verifyCommand(g),
			rollbackCommand(g),
			releaseHoldCommand(g),
			recheckWindowCommand(g),
			deleteCommand(g),
			statusCommand(g),
			auditCommand(g),
		},
		Writer:          g.stdout,
		ErrWriter:       g.stderr,
		ExitErrHandler:  func(*ucli.Context, error) {},
		HideHelpCommand: true,
	}
}

// json reports whether output is for programs.
func (g *globals) json() bool { return g.output == "json" }

// who returns the actor: --as, else SHIPLINE_USER (same flag), else the OS user.
func (g *globals) who() (string, error) {
	if g.actor != "" {
		return g.actor, nil
	}
	u, err := user.Current()
	if err != nil || u.Username == "" {
		return "", invalid("cannot tell who you are: pass --as USER or set SHIPLINE_USER")
	}
	return u.Username, nil
}

// session names the actor and dials Temporal (close the client when done).
func (g *globals) session() (string, client.Client, error) {
	actor, err := g.who()
	if err != nil {
		return "", nil, err
	}
	g.identity = actor
	c, err := g.client()
	if err != nil {
		return "", nil, err
	}
	return actor, c, nil
}

// resolveTemporal turns the connection flags, TEMPORAL_* variables and the
// Temporal config profile into client options; an error waits for the first
// command that needs Temporal.
func (g *globals) resolveTemporal() {
	g.temporal, g.temporalErr = temporalconn.Resolve(temporalconn.Request{Flags: g.conn, Env: g.env})
	g.address, g.namespace = g.conn.Address, g.conn.Namespace
	if g.temporal != nil {
		g.address, g.namespace = g.temporal.Address, g.temporal.Namespace
	}
	if g.address == "" {
		g.address = temporalconn.DefaultAddress
	}
	if g.namespace == "" {
		g.namespace = temporalconn.DefaultNamespace
	}
}

// client dials Temporal with a clear error when it is not there, or when the
// connection settings are wrong (naming the setting to fix).
func (g *globals) client() (client.Client, error) {
	if err := g.loadCodec(); err != nil {
		return nil, err
	}
	if g.temporalErr != nil {
		return nil, invalid("temporal connection settings: %v", g.temporalErr)
	}
	c, err := g.dial(g)
	var settings *temporalconn.Error
	if errors.As(err, &settings) {
		return nil, failed(fmt.Errorf("cannot connect to Temporal at %s (namespace %s): %w", g.address, g.namespace, err))
	}
	if err != nil {
		return nil, failed(fmt.Errorf("cannot reach Temporal at %s (namespace %s): %w; start the stack with `shipline-worker --config platform.yaml --dev` or set --address/TEMPORAL_ADDRESS", g.address, g.namespace, err))
	}
	if err := g.refusePlaintext(context.Background(), c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// refusePlaintext: a CLI without payload keys sends plain text. When the
// worker polling its task queue encrypts payloads (its identity says so),
// that text — a release message, job definitions — would be written to
// history for the operator to read, so the command sends nothing.
func (g *globals) refusePlaintext(ctx context.Context, c client.Client) error {
	if err := g.loadCodec(); err != nil {
		return err
	}
	if g.payloads.Enabled() {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.DescribeTaskQueue(dctx, g.taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return nil // cannot tell; the command's own calls report what is wrong
	}
	for _, p := range resp.GetPollers() {
		if codec.MarksEncryption(p.GetIdentity()) {
			return invalid("the worker on task queue %q (namespace %s) encrypts payloads (temporal.encryption in its platform.yaml), and %s is not set: "+
				"set it to the worker's keys (ID:BASE64KEY,…), or name the variable that holds them with --codec-keys-env; nothing was sent",
				g.taskQueue, g.namespace, g.payloads.Source())
		}
	}
	return nil
}

// dialTimeout bounds connecting and checking the namespace.
const dialTimeout = 30 * time.Second

func dialTemporal(g *globals) (client.Client, error) {
	if g.temporal == nil {
		g.resolveTemporal()
		if g.temporalErr != nil {
			return nil, g.temporalErr
		}
	}
	opts := g.temporal.Options
	if g.identity != "" {
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("shipline CLI: %s@%s", g.identity, host)
	}
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := g.applyCodec(&opts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return g.temporal.Dial(ctx, opts)
}

// loadCodec reads the payload codec's keys from --codec-keys-env's variable
// (exit 2 when they are malformed). An unset variable gives a codec without
// keys: nothing is encrypted, and an encrypted payload is reported as
// needing the variable.
func (g *globals) loadCodec() error {
	if g.payloads != nil {
		return nil
	}
	name := g.codecKeysEnv
	if name == "" {
		name = codec.DefaultKeysEnv
	}
	c, err := codec.FromEnv(name, os.Getenv)
	if err != nil {
		return invalid("payload encryption keys: %v", err)
	}
	g.payloads = c
	return nil
}

// applyCodec encodes and decodes payloads at the gRPC layer, so that raw
// histories, memos and listings the CLI reads are decoded as well.
func (g *globals) applyCodec(opts *client.Options) error {
	if err := g.loadCodec(); err != nil {
		return err
	}
	o, err := g.payloads.DialOption()
	if err != nil {
		return err
	}
	opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, o)
	return nil
}

// workflowURL links a workflow in the Temporal UI.
func (g *globals) workflowURL(id string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(g.uiURL, "/"), url.PathEscape(g.namespace), url.PathEscape(id))
}

// reorderArgs lets flags follow positional arguments (`release v1.0.0 --project demo`):
// urfave/cli stops at the first positional, so flags of the command are moved
// before them.
func reorderArgs(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	i := 1
	globalTakesValue := takesValue(app.Flags)
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if globalTakesValue[flagName(args[i])] && !strings.Contains(args[i], "=") {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	var cmd *ucli.Command
	for _, c := range app.Commands {
		if c.HasName(args[i]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	cmdTakes := takesValue(cmd.Flags)
	var globalFlags, flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			positional = append(positional, rest[j+1:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			name := flagName(a)
			_, isCmd := cmdTakes[name]
			takes, isGlobal := globalTakesValue[name]
			dst := &flags
			if !isCmd && isGlobal {
				dst = &globalFlags
			} else {
				takes = cmdTakes[name]
			}
			*dst = append(*dst, a)
			if takes && !strings.Contains(a, "=") && j+1 < len(rest) {
				j++
				*dst = append(*dst, rest[j])
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append([]string{}, args[:i]...)
	out = append(out, globalFlags...)
	out = append(out, args[i])
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

func flagName(a string) string {
	a = strings.TrimLeft(a, "-")
	name, _, _ := strings.Cut(a, "=")
	return name
}

func takesValue(flags []ucli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*ucli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// cleanWorkflowError strips the SDK's wrapping from a workflow or activity
// failure and returns the message a user should read.
func cleanWorkflowError(err error) string { return apperr.Message(err) }

// projectRE is the shape of project names (as in platform.yaml).
var projectRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// checkProject refuses a malformed --project before anything is sent (exit 2).
func checkProject(project string) error {
	if !projectRE.MatchString(project) {
		return invalid("--project %.40q is not a project name: lowercase letters, digits, '-' and '_', starting with a letter", project)
	}
	return nil
}
