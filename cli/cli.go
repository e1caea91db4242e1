// Package cli is synctray's command line: subcommand dispatch, flags (each
// also read from SYNCTRAY_<NAME>), and the developer CLI that talks to a
// running host's JSON API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"synctray/app"
	"synctray/internal/private"
	"synctray/localserver"
)

// Main runs synctray with args (without the program name) and returns the
// process exit code: 0, 1 for an error, 2 for a command line that cannot
// run. With outbox's --json, an error is printed to stdout as
// {"error":{"code","message"}} instead of a line on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest := "", args
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isHelp(args[0]) || isVersion(args[0])) {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch {
	case cmd == "":
		err = runTray(ctx, rest, stdout, stderr)
	case cmd == "serve":
		err = runServe(ctx, rest, stdout, stderr)
	case cmd == "upstream":
		err = runUpstream(ctx, rest, stdout, stderr)
	case cmd == "open":
		err = runOpen(ctx, rest, stdout, stderr)
	case cmd == "outbox":
		err = runOutbox(ctx, rest, stdout, stderr)
	case cmd == "logout":
		err = runLogout(ctx, rest, stdout, stderr)
	case cmd == "quit":
		err = runQuit(ctx, rest, stdout, stderr)
	case cmd == "version" || isVersion(cmd):
		fmt.Fprintln(stdout, versionText(debug.ReadBuildInfo()))
		return 0
	case cmd == "help" || isHelp(cmd):
		usage(stdout)
		return 0
	default:
		err = &usageError{cmd: "synctray", msg: fmt.Sprintf("unknown command %q", cmd)}
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ue *usageError
	if errors.As(err, &ue) {
		code = 2
	}
	if cmd == "outbox" && wantsJSON(rest) {
		c, msg := errorCode(err)
		b, _ := json.Marshal(map[string]localserver.ErrorBody{"error": {Code: c, Message: msg}})
		fmt.Fprintf(stdout, "%s\n", b)
		return code
	}
	switch {
	case ue != nil && ue.printed:
	case ue != nil:
		fmt.Fprintf(stderr, "%s: %s\nrun '%s --help' for more\n", ue.cmd, ue.msg, ue.cmd)
	default:
		fmt.Fprintln(stderr, "synctray:", err)
	}
	return code
}

func isHelp(arg string) bool    { return arg == "-h" || arg == "--help" || arg == "-help" }
func isVersion(arg string) bool { return arg == "--version" || arg == "-version" }

// usageError is a command line that cannot run. Main prints it as one
// line and a pointer to the command's --help (unless the usage was
// printed already) and exits 2.
type usageError struct {
	cmd     string // e.g. "synctray serve"
	msg     string
	printed bool // the full usage is on stderr already
}

func (e *usageError) Error() string { return e.msg }

// usageErr is a usageError for the command of fs.
func usageErr(fs *flag.FlagSet, format string, a ...any) error {
	return &usageError{cmd: commandName(fs), msg: fmt.Sprintf(format, a...)}
}

func commandName(fs *flag.FlagSet) string {
	if fs.Name() == "synctray" {
		return "synctray"
	}
	return "synctray " + fs.Name()
}

// codedError gives an error the code it has in --json output.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// errorCode is the code and message of err in --json output: the host's
// own code for an API error, "usage" for a command line that cannot run.
func errorCode(err error) (code, msg string) {
	var ue *usageError
	var ce *codedError
	var ae *apiError
	switch {
	case errors.As(err, &ue):
		return "usage", ue.msg
	case errors.As(err, &ce):
		return ce.code, err.Error()
	case errors.As(err, &ae):
		return ae.Code, ae.Message
	}
	return "error", err.Error()
}

// wantsJSON reports whether args (or SYNCTRAY_JSON) ask for --json, before
// they are parsed, so that an error parsing them is JSON too.
func wantsJSON(args []string) bool {
	on, seen := false, false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		seen, on = true, true
		if hasVal {
			b, err := strconv.ParseBool(val)
			on = err == nil && b
		}
	}
	if !seen {
		b, err := strconv.ParseBool(os.Getenv(envName("json")))
		on = err == nil && b
	}
	return on
}

// versionText is the version line: FyneApp.toml's version (app.Version)
// and the VCS commit the binary was built from.
func versionText(info *debug.BuildInfo, ok bool) string {
	s := "synctray " + app.Version
	rev, modified := "", false
	if ok {
		for _, kv := range info.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.modified":
				modified = kv.Value == "true"
			}
		}
	}
	switch {
	case rev == "":
		s += " (commit unknown: built without VCS information)"
	case modified:
		s += " (commit " + rev + ", with uncommitted changes)"
	default:
		s += " (commit " + rev + ")"
	}
	if ok && info.GoVersion != "" {
		s += " " + info.GoVersion
	}
	return s
}

func usage(w io.Writer) {
	fmt.Fprint(w, `synctray keeps your actions safe while the connection comes and goes.

Usage:
  synctray [flags]                the tray app: the local host, a tray icon and the outbox window
                                  (without a display it runs like 'synctray serve')
  synctray serve [flags]          the local host without a GUI (built-in upstream unless --upstream)
  synctray upstream [flags]       run the reference upstream server (SQLite, or PostgreSQL with --db)
  synctray upstream migrate       bring the upstream store's schema up to date and exit
  synctray open [--print]         open the running host in the browser (one-time login link)
  synctray logout --all           sign out every browser session (each page must sign in again)
  synctray quit                   stop the running synctray cleanly (tray app or serve) and wait for it
  synctray outbox COMMAND         inspect and steer the outbox of the running host:
      list [--state S] [--limit N] [--cursor C]
      show ID | cancel ID | retry ID | cancel-queued | sync | status | offline | online
      export [--state S] [--since T] [--format jsonl|csv]
      (add --json for machine-readable output, errors included)
  synctray version                the version and the commit it was built from (also --version)

Run 'synctray COMMAND --help' for a command's flags. Every flag can also be
set from the environment as SYNCTRAY_<FLAG> (e.g. SYNCTRAY_DATA_DIR).
`)
}

// common holds the flags shared by every command that talks to a host.
type common struct {
	dataDir   string
	addr      string
	logLevel  string
	logFormat string
}

func (c *common) register(fs *flag.FlagSet, defaultAddr string) {
	c.registerIn(fs, defaultAddr, defaultDataDir(), "data directory (outbox, API token)")
}

func (c *common) registerIn(fs *flag.FlagSet, defaultAddr, defaultDir, dirUsage string) {
	fs.StringVar(&c.dataDir, "data-dir", defaultDir, dirUsage)
	fs.StringVar(&c.addr, "addr", defaultAddr, "loopback address to listen on or talk to")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text (key=value) or json (one JSON object per line, for log shippers)")
}

// logger is the command's logger: one line per event, as --log-level and
// --log-format say.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
}

func defaultDataDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ".synctray"
	}
	return filepath.Join(dir, "synctray")
}

// defaultUpstreamDir is where `synctray upstream` keeps its store: not
// <data-dir>/upstream, the store of a host's built-in upstream.
func defaultUpstreamDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ".synctray-upstream"
	}
	return filepath.Join(dir, "synctray-upstream")
}

// parse parses args into fs, allowing flags after positional arguments,
// and then fills every flag not given from SYNCTRAY_<NAME>.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, _, err := parseArgs(fs, args)
	return pos, err
}

// parseNoArgs is parse for a command that takes flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err == nil && len(pos) > 0 {
		err = usageErr(fs, "unexpected argument %q", pos[0])
	}
	return err
}

// parseArgs is parse that also reports which flags were given on the
// command line rather than in the environment.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, given map[string]bool, err error) {
	for {
		if err := parseQuietly(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, nil, err
			}
			return nil, nil, usageErr(fs, "%s", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return pos, given, err
}

// parseQuietly is fs.Parse without the flag package's own printing: a bad
// flag becomes one line in Main, not the whole usage.
func parseQuietly(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	return fs.Parse(args)
}

// envName is the environment variable that sets the flag name.
func envName(name string) string {
	return "SYNCTRAY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// resolveToken returns the bearer token given as --NAME (or SYNCTRAY_<NAME>)
// or kept in the file --NAME-file, "" when neither is set. A token typed
// on the command line is visible to every user of the machine (ps,
// /proc/PID/cmdline): it draws a warning.
func resolveToken(log *slog.Logger, name, value, file string, given map[string]bool) (string, error) {
	if value != "" && file != "" {
		return "", fmt.Errorf("--%s and --%s-file are both set: use one", name, name)
	}
	if file != "" {
		return readTokenFile(log, file)
	}
	if value != "" && given[name] {
		log.Warn(fmt.Sprintf("a token given on the command line is visible to every user of this machine (ps): use --%s-file or %s instead", name, envName(name)), "flag", "--"+name)
	}
	if err := checkToken(value); err != nil {
		return "", fmt.Errorf("--%s: %w", name, err)
	}
	return value, nil
}

// readTokenFile reads a token kept alone in a file (surrounding white
// space ignored).
func readTokenFile(log *slog.Logger, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if err := checkToken(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if how, fix, err := private.Exposed(path); err == nil && how != "" {
		log.Warn("the token file is readable by other users: "+fix, "file", path, "access", how)
	}
	return tok, nil
}

// checkToken refuses a token that cannot go in an Authorization header.
func checkToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return errors.New("the token may hold only printable ASCII characters, without spaces")
		}
	}
	return nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags (each also from SYNCTRAY_<FLAG>):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
