package app

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// IconState is what the tray icon shows.
type IconState int

// The tray icon's states, from calm to urgent.
const (
	IconSynced  IconState = iota // online, nothing waiting
	IconQueued                   // online, actions waiting to be sent
	IconOffline                  // the upstream is unreachable, or working offline
	IconError                    // the upstream rejected actions: they need the user
)

func (s IconState) String() string {
	switch s {
	case IconSynced:
		return "synced"
	case IconQueued:
		return "queued"
	case IconOffline:
		return "offline"
	case IconError:
		return "error"
	}
	return "unknown"
}

// StatusLine sums up the host's status in one line for the tray menu and
// the window ("Online · 3 queued", "Offline since 14:02: Upstream not
// reachable · 12 queued",
// "1 message rejected — open Outbox"), and picks the tray icon.
func StatusLine(st localserver.Status) (string, IconState) {
	waiting := st.Counts[outbox.Queued] + st.Counts[outbox.Syncing]
	failed := st.Counts[outbox.Failed]
	// The same counts and words as the inspector's filters ("Queued (4,750)
	// · Syncing (250)"): "4,750 queued · 250 syncing".
	queue := "all synced"
	switch q, sy := st.Counts[outbox.Queued], st.Counts[outbox.Syncing]; {
	case sy > 0 && q > 0:
		queue = count(q) + " queued · " + count(sy) + " syncing"
	case sy > 0:
		queue = count(sy) + " syncing"
	case q > 0:
		queue = count(q) + " queued"
	}
	var parts []string
	state := IconSynced
	switch {
	case st.State == syncer.StateBlocked && st.Problem != nil:
		// The upstream refuses us or the store cannot work: say why, in the
		// host's own words, and turn red.
		parts = []string{shorten(st.Problem.Message, 120)}
		if waiting > 0 {
			parts = append(parts, queue)
		}
		state = IconError
	case st.WorkOffline:
		parts, state = []string{"Working offline", queue}, IconOffline
	case !st.Online:
		conn := "Offline"
		if st.OfflineSince != nil {
			conn += " since " + st.OfflineSince.Local().Format("15:04")
		}
		if st.Problem != nil && st.Problem.Message != "" {
			// Why, in the host's words, as the CLI and the web page say it.
			conn += ": " + shorten(st.Problem.Message, 80)
		}
		parts, state = []string{conn, queue}, IconOffline
	case failed > 0:
		// Say what to do, not only what happened.
		parts = []string{plural(failed, "message") + " rejected — open Outbox"}
		if waiting > 0 {
			parts = append(parts, queue)
		}
		failed = 0 // said already
	default:
		parts = []string{"Online", queue}
		if waiting > 0 {
			state = IconQueued
		}
	}
	if failed > 0 {
		parts = append(parts, count(failed)+" rejected")
	}
	if st.Counts[outbox.Failed] > 0 {
		state = IconError
	}
	return strings.Join(parts, " · "), state
}

// count formats n with thousands separators: 100000 → "100,000".
func count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// plural is "1 action", "12 actions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return count(n) + " " + noun + "s"
}

// rejectedText names a rejected action and says why: "'Meeting at 3' was
// rejected: message too rude" (the host's Summary: a message's text, an
// HTTP request), or "Action 12 (message) was rejected: …" without one.
func rejectedText(a outbox.Action) string {
	what := fmt.Sprintf("Action %d (%s)", a.ID, shorten(a.Type, 40))
	if a.Summary != "" {
		what = "'" + shorten(a.Summary, 60) + "'"
	}
	s := what + " was rejected"
	if a.LastError != "" {
		s += ": " + a.LastError
	}
	return shorten(s, 160)
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// when formats a time for the table and the detail pane, in local time.
func when(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(layout)
}

func whenPtr(t *time.Time, layout string) string {
	if t == nil {
		return ""
	}
	return when(*t, layout)
}

// prettyJSON indents a JSON payload; invalid JSON is shown as it is.
// Huge payloads are cut at max bytes, so that a label never holds megabytes.
func prettyJSON(raw json.RawMessage, max int) string {
	out := string(raw)
	if ind, err := json.MarshalIndent(raw, "", "  "); err == nil {
		out = string(ind)
	}
	return shortenBytes(out, max)
}

// shortenBytes cuts s at max bytes (on a rune boundary), saying how much
// more there was.
func shortenBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return fmt.Sprintf("%s\n… (%s more bytes)", cut, count(len(s)-len(cut)))
}
