package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"github.com/godbus/dbus/v5"

	"synctray/app"
	"synctray/internal/autostart"
	"synctray/localserver"
)

// The tray app drives the host in-process through app.Host.
var _ app.Host = (*localserver.Host)(nil)

const traySynopsis = `synctray [flags]

Runs the tray app: the local host (exactly as 'synctray serve', with the
built-in upstream unless --upstream), a tray icon with a menu, and the outbox
inspector window. If synctray already runs at --addr, it shows that one's
window (or opens it in the browser) and exits. Without a display it runs
like 'synctray serve'; without a session bus (DBus), without the tray icon.`

func runTray(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("synctray", traySynopsis, stderr)
	// The same flags as serve: with no display, serve runs with these args.
	var hf hostFlags
	hf.register(fs)
	pos, given, err := parseArgs(fs, args)
	if err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr(fs, "unexpected argument %q", pos[0])
	}
	hf.given = given
	c := hf.common
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer routeStdLog(log)() // Fyne reports its errors through the log package

	// One synctray per address: a second start hands over to the first.
	if handed, err := handOver(ctx, c, stdout, stderr); handed || err != nil {
		return startupError(err, stderr)
	}
	if why := displayProblem(); why != "" {
		log.Info(why + ": running without the tray; `synctray serve` does this explicitly")
		return runServe(ctx, args, stdout, stderr)
	}
	bus, trayHost, why := sessionBus(ctx)
	if why != "" {
		log.Info(why)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ui atomic.Pointer[app.App]
	uiReady := make(chan struct{}) // closed once the window can be shown
	host, stopUpstream, err := hf.openHost(ctx, log, func() bool {
		// The host answers before Fyne is up: a second start in that
		// moment waits for the window rather than hear there is none.
		select {
		case <-uiReady:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
		if a := ui.Load(); a != nil {
			a.ShowInspector()
			return true
		}
		return false
	})
	if err != nil {
		// Started at the same moment as another synctray? Hand over to it.
		if handed, herr := handOver(context.Background(), c, stdout, stderr); handed {
			return startupError(herr, stderr)
		}
		return startupError(err, stderr)
	}
	fmt.Fprintf(stdout, "synctray is running at %s\nOpen it (one-time link): %s\n", host.URL(), host.LoginURL())

	fa := fyneapp.NewWithID(app.ID)
	if m := fa.Metadata(); m.Name == "" {
		m.ID, m.Name, m.Version, m.Build = app.ID, "synctray", app.Version, 1
		fyneapp.SetMetadata(m)
	}
	fa.SetIcon(app.AppIcon)

	hostDone := make(chan error, 1)
	go func() {
		hostDone <- host.Run(ctx)
		// The host stopped (Quit, a signal, or a failure): so does the UI.
		// Only the driver's Quit: it is a no-op once Fyne has stopped by
		// itself (it quits on SIGTERM too), when fyne.Do runs it on this
		// goroutine; fyne.App.Quit would then close windows of a
		// terminated GLFW and panic.
		fyne.Do(fa.Driver().Quit)
	}()

	opts := app.Options{
		Host:        host,
		OpenURL:     OpenBrowser,
		Quit:        cancel, // the host drains and closes, then the goroutine above quits Fyne
		ShowAtStart: !trayHost,
		Autostart:   autostart.New(autostartCommand(fs)),
		Logger:      log.With("component", "tray"),
		Clock:       host.Clock(),
	}
	closeNotes := func() {}
	if bus {
		opts.Tray = app.SystemTray(fa)
		opts.Notify, closeNotes = app.DesktopNotifications(fa, log.With("component", "notifications"))
	} else {
		// No session bus: no tray, and no desktop notifications either.
		opts.Notify = func(n app.Notification) { log.Info("notification", "kind", n.Kind, "title", n.Title, "body", n.Body) }
	}
	a := app.New(fa, opts)
	ui.Store(a)
	close(uiReady)
	a.Start(ctx)
	fa.Run() // until Quit; Fyne also quits on SIGINT and SIGTERM
	cancel()
	if t, ok := opts.Tray.(interface{ Close() }); ok {
		t.Close()
	}
	closeNotes()
	err = <-hostDone
	if uerr := stopUpstream(); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// startupError shows err, a start-up error of the tray app, in a window
// when there is a display and stderr is not a terminal (started from a
// desktop menu or at login, where nobody reads stderr), and returns it
// for main to print as well. From a terminal, stderr says it already.
func startupError(err error, stderr io.Writer) error {
	if err == nil || isTerminal(stderr) || displayProblem() != "" {
		return err
	}
	fa := fyneapp.NewWithID(app.ID)
	fa.SetIcon(app.AppIcon)
	app.ShowStartupError(fa, err)
	fa.Run() // until the window is closed
	return err
}

// isTerminal says whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// handOver finds a synctray already running at c.addr. If there is one,
// it asks it to show its window (POST /api/ui/show), or, when it has none
// (synctray serve), opens it in the browser through a login link, and
// reports handed=true: this start has nothing more to do.
func handOver(ctx context.Context, c common, stdout, stderr io.Writer) (handed bool, err error) {
	base := "http://" + c.addr
	hc := &http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	if err != nil {
		return false, nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, nil // nobody there
	}
	var health struct {
		OK  bool   `json:"ok"`
		App string `json:"app"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&health)
	resp.Body.Close()
	if err != nil || !health.OK || health.App != "synctray" {
		return false, nil // something else: opening the host will say the port is taken
	}
	client, err := newHostClient(c)
	if err != nil {
		return true, fmt.Errorf("synctray is already running at %s, but %w", base, err)
	}
	client.http.Timeout = 10 * time.Second
	err = client.do(ctx, "POST", "/api/ui/show", nil, nil)
	var ae *apiError
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "synctray is already running at %s: showing its window\n", base)
		return true, nil
	case errors.As(err, &ae) && ae.Code == "no_window":
		var r struct {
			URL string `json:"url"`
		}
		if err := client.do(ctx, "POST", "/api/login-links", nil, &r); err != nil {
			return true, err
		}
		fmt.Fprintf(stdout, "synctray is already running at %s without a window (synctray serve): opening it in the browser\n", base)
		return true, openOrPrint(r.URL, stdout, stderr)
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return true, err // names the data dir the running one uses
	default:
		return true, fmt.Errorf("synctray is already running at %s: %w", base, err)
	}
}

// displayProblem says why there is no display to show a window on, or ""
// when there is one. This build of Fyne (GLFW) talks X11: on Wayland it
// needs XWayland's DISPLAY.
func displayProblem() string {
	switch runtime.GOOS {
	case "darwin", "windows", "android", "ios":
		return ""
	}
	d := os.Getenv("DISPLAY")
	if d == "" {
		if w := os.Getenv("WAYLAND_DISPLAY"); w != "" {
			return "no display: WAYLAND_DISPLAY is set but DISPLAY is not (this build needs X11 or XWayland)"
		}
		return "no display"
	}
	if err := dialX(d); err != nil {
		return fmt.Sprintf("no display (cannot reach DISPLAY=%s: %v)", d, err)
	}
	return ""
}

// dialX checks that the X server of a DISPLAY value ([host]:N[.S]) takes
// connections, so that a stale DISPLAY does not make GLFW exit the process.
func dialX(display string) error {
	i := strings.LastIndex(display, ":")
	if i < 0 {
		return errors.New("not of the form [host]:N")
	}
	host, num := display[:i], display[i+1:]
	if j := strings.IndexByte(num, '.'); j >= 0 {
		num = num[:j]
	}
	if num == "" {
		return errors.New("no display number")
	}
	var conn net.Conn
	var err error
	if host == "" || host == "unix" {
		path := "/tmp/.X11-unix/X" + num
		if conn, err = net.DialTimeout("unix", path, time.Second); err != nil && runtime.GOOS == "linux" {
			conn, err = net.DialTimeout("unix", "@"+path, time.Second) // abstract socket
		}
	} else {
		var n int
		if _, err := fmt.Sscan(num, &n); err != nil {
			return fmt.Errorf("display number %q", num)
		}
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(6000+n)), time.Second)
	}
	if err != nil {
		return err
	}
	return conn.Close()
}

// sessionBus finds the DBus session bus (where the Linux tray icon, a
// StatusNotifierItem, and notifications live) and a tray host on it (a
// StatusNotifierWatcher). why says what is missing, for the log.
func sessionBus(ctx context.Context) (bus, trayHost bool, why string) {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true, true, ""
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		return false, false, "no session bus (DBUS_SESSION_BUS_ADDRESS is not set): running with the outbox window but without the tray icon and desktop notifications"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return false, false, fmt.Sprintf("cannot reach the session bus (%v): running with the outbox window but without the tray icon and desktop notifications", err)
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has); err != nil || !has {
		return true, false, "no tray host on the session bus (no org.kde.StatusNotifierWatcher): showing the outbox window; the tray icon appears when a tray host starts"
	}
	return true, true, ""
}

// autostartCommand is the command line that "Start at login" runs: this
// executable with the flags given now (from the command line or the
// environment), except the upstream token, which does not belong in a
// desktop file (set SYNCTRAY_UPSTREAM_TOKEN in the session instead).
func autostartCommand(fs *flag.FlagSet) []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	cmd := []string{exe}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "upstream-token" {
			cmd = append(cmd, "--"+f.Name+"="+f.Value.String())
		}
	})
	return cmd
}
