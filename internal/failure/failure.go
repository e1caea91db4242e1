// Package failure is synctray's one failure policy (design §10): it sorts
// every outcome of sending actions upstream — an HTTP status, a network
// error, an answer that breaks the protocol — into a Kind that says what
// happens to the actions and to the host's state, and it turns an error
// into the one short line people see. The sync engine uses it for every
// outcome and every upstream kind; the service workers follow the same
// table in assets/sync-policy.js. Its error types, HTTPError and
// ProtocolError, are what every upstream client returns.
package failure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is what an outcome means for the actions sent and for the host.
type Kind int

// The kinds of outcome, as in design §10.
const (
	// Delivered: the upstream holds the action(s) → synced; host online.
	Delivered Kind = iota
	// Refused: refused for good, naming this action → failed; host online.
	Refused
	// Poison: a batch refused as a whole without naming an action (v1
	// 400/413/422) → split the batch until the offender is alone.
	Poison
	// Transient: try later (network error, timeout, 408, 425, 429, 5xx)
	// → stay queued, back off; host offline (problem "unreachable").
	Transient
	// Busy: the request with this key is in progress upstream (HTTP mode
	// 409) → stay queued, bounded retries, then failed; host online.
	Busy
	// Unauthorized: 401/403 → stay queued; host blocked ("unauthorized").
	Unauthorized
	// Protocol: the upstream does not speak the protocol → stay queued;
	// host blocked ("protocol").
	Protocol
	// Redirect: a 3xx in HTTP mode is not followed → failed, Location shown.
	Redirect
)

func (k Kind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Refused:
		return "refused"
	case Poison:
		return "poison"
	case Transient:
		return "transient"
	case Busy:
		return "busy"
	case Unauthorized:
		return "unauthorized"
	case Protocol:
		return "protocol"
	case Redirect:
		return "redirect"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Blocks reports whether the kind stops automatic sync until people act.
func (k Kind) Blocks() bool { return k == Unauthorized || k == Protocol }

// Mode is the kind of upstream: protocol v1 or a plain HTTP backend.
type Mode int

// Upstream modes.
const (
	V1   Mode = iota // synctray protocol v1: batches with per-action results
	HTTP             // any HTTP backend: one request per action (design §12)
)

// OfStatus classifies an HTTP status code answered by an upstream in mode m.
func OfStatus(m Mode, status int) Kind {
	switch {
	case status >= 200 && status <= 299:
		return Delivered
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return Unauthorized
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests,
		status >= 500 && status != http.StatusNotImplemented && status <= 599:
		return Transient
	}
	if m == V1 {
		switch status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return Poison
		}
		// 404/405/501, any other 4xx, 3xx, 1xx, nonsense: not protocol v1.
		return Protocol
	}
	switch {
	case status == http.StatusConflict:
		return Busy
	case status >= 300 && status <= 399:
		return Redirect
	case status == http.StatusNotImplemented:
		return Refused
	case status >= 400 && status <= 499:
		return Refused
	}
	return Protocol
}

// Classify sorts the error of one send (nil: delivered): an
// *HTTPError by its status in its mode, a *ProtocolError as Protocol, and
// anything else (network errors, timeouts, TLS, a cancelled request) as
// Transient.
func Classify(err error) Kind {
	if err == nil {
		return Delivered
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return Protocol
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Kind()
	}
	var re *refusedError
	if errors.As(err, &re) {
		return Refused
	}
	return Transient
}

// Refuse marks err as a local refusal that no retry can fix (an action
// the host cannot even send): Classify says Refused.
func Refuse(err error) error { return &refusedError{err} }

type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// Problem codes of the host's status (design §11).
const (
	CodeUnreachable  = "unreachable"
	CodeUnauthorized = "unauthorized"
	CodeProtocol     = "protocol"
	CodeDiskFull     = "disk_full"
	CodeStorage      = "storage"
)

// MaxLine is the longest text shown to people for one error.
const MaxLine = 200

// Summary is the one line people see for err: at most MaxLine
// characters, no HTML, no transport noise ("dial tcp 127.0.0.1:7901:
// connect: connection refused" becomes "upstream not reachable").
func Summary(err error) string {
	if err == nil {
		return ""
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return Line(pe.Summary())
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return Line(he.Summary())
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), isAny(err, errsTimedOut), isTimeout(err):
		return "Upstream did not answer in time"
	case errors.Is(err, context.Canceled):
		return "Sync was interrupted"
	case errors.As(err, &dns):
		return "Upstream not reachable (its name does not resolve)"
	case isAny(err, errsUnreachable):
		return "Upstream not reachable"
	case isAny(err, errsClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Upstream closed the connection"
	case errors.As(err, &op):
		return "Upstream not reachable"
	}
	if strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:") {
		return "Upstream's TLS certificate was not accepted"
	}
	return Line(err.Error())
}

// IsConnRefused reports whether err is a refused connection (nothing
// listens there), on every platform.
func IsConnRefused(err error) bool { return isAny(err, errsRefused) }

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Line makes s fit on one line for people: control characters and runs of
// space become one space, markup is dropped, and it is cut at MaxLine
// characters with an ellipsis.
func Line(s string) string {
	if looksLikeHTML(s) {
		s = stripTags(s)
	}
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if utf8.RuneCountInString(out) > MaxLine {
		r := []rune(out)
		out = strings.TrimSpace(string(r[:MaxLine-1])) + "…"
	}
	return out
}

func looksLikeHTML(s string) bool {
	t := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(t, "<!doctype") || strings.HasPrefix(t, "<html") || strings.Contains(t, "</")
}

// stripTags keeps the text of an HTML page: its <title> when it has one,
// else the text outside tags, scripts and styles.
func stripTags(s string) string {
	low := strings.ToLower(s)
	if i := strings.Index(low, "<title>"); i >= 0 {
		if j := strings.Index(low[i:], "</title>"); j > 0 {
			return s[i+len("<title>") : i+j]
		}
	}
	var b strings.Builder
	skip := ""
	for len(s) > 0 {
		lt := strings.IndexByte(s, '<')
		if lt < 0 {
			if skip == "" {
				b.WriteString(s)
			}
			break
		}
		if skip == "" {
			b.WriteString(s[:lt])
			b.WriteByte(' ')
		}
		gt := strings.IndexByte(s[lt:], '>')
		if gt < 0 {
			break
		}
		tag := strings.ToLower(s[lt+1 : lt+gt])
		switch {
		case strings.HasPrefix(tag, "script"), strings.HasPrefix(tag, "style"):
			skip = "/" + strings.Fields(tag + " ")[0]
		case skip != "" && strings.HasPrefix(tag, skip):
			skip = ""
		}
		s = s[lt+gt+1:]
	}
	return b.String()
}

// Backoff is exponential backoff with full jitter, capped: the n-th
// failure in a row (n ≥ 1) waits a random time in [0, min(max, min·2ⁿ⁻¹)),
// never less than min/10 so that a zero draw does not spin. An upstream's
// Retry-After is honoured up to max.
type Backoff struct {
	Min, Max time.Duration
	Jitter   func() float64 // a draw in [0, 1)
}

// Delay is how long to wait after the n-th failure in a row, given the
// upstream's Retry-After (0: none).
func (b Backoff) Delay(n int, retryAfter time.Duration) time.Duration {
	ceil := b.Min
	for i := 1; i < n && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	d := max(time.Duration(b.Jitter()*float64(ceil)), b.Min/10)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, b.Max))
	}
	return d
}
