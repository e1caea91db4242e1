package cli

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
)

// routeStdLog sends what goes to the standard library's log package (Fyne
// reports its errors there) to l, one record per event, and returns a func
// that puts the log package back as it was. Fyne's LogError writes an
// event as up to three lines ("Fyne error:  reason", "  Cause: err",
// "  At: file:line"); they become one record with cause and at.
func routeStdLog(l *slog.Logger) (restore func()) {
	w := &stdLogWriter{log: l}
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(w)
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		w.flush()
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}

// stdLogWriter takes the log package's lines: it calls Write once per line.
type stdLogWriter struct {
	log *slog.Logger

	mu      sync.Mutex
	pending *fyneError // a Fyne error waiting for its At line
}

type fyneError struct{ reason, cause string }

func (w *stdLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "Fyne error: "):
		w.flushLocked()
		w.pending = &fyneError{reason: strings.TrimSpace(strings.TrimPrefix(line, "Fyne error: "))}
	case w.pending != nil && strings.HasPrefix(line, "  Cause: "):
		w.pending.cause = strings.TrimPrefix(line, "  Cause: ")
	case w.pending != nil && strings.HasPrefix(line, "  At: "):
		e := w.pending
		w.pending = nil
		w.log.LogAttrs(context.Background(), slog.LevelError, "Fyne error: "+e.reason, fyneAttrs(e, strings.TrimPrefix(line, "  At: "))...)
	default:
		w.flushLocked()
		w.log.Warn(strings.Join(strings.Fields(line), " "), "component", "stdlog")
	}
	return len(p), nil
}

func fyneAttrs(e *fyneError, at string) []slog.Attr {
	attrs := []slog.Attr{slog.String("component", "fyne")}
	if e.cause != "" {
		attrs = append(attrs, slog.String("cause", e.cause))
	}
	if at != "" {
		attrs = append(attrs, slog.String("at", at))
	}
	return attrs
}

func (w *stdLogWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

// flushLocked logs a Fyne error whose At line did not come.
func (w *stdLogWriter) flushLocked() {
	if e := w.pending; e != nil {
		w.pending = nil
		w.log.LogAttrs(context.Background(), slog.LevelError, "Fyne error: "+e.reason, fyneAttrs(e, "")...)
	}
}
