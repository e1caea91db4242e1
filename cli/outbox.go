package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

const outboxSynopsis = `synctray outbox COMMAND [ARGS] [flags]

Inspects and steers the outbox of the running host, through its JSON API.

Commands:
  list [--state S] [--limit N] [--cursor C]   actions, newest first
  show ID                                      one action with its history
  cancel ID                                    cancel a queued or failed action
  retry ID                                     queue a failed action again
  cancel-queued                                cancel every queued action
  sync                                         send everything queued now (also when working offline)
  status                                       connection and counts
  offline | online                             pause or resume automatic sync
  export [--state S] [--since T] [--format jsonl|csv]
                                               the outbox with history, oldest first, to stdout`

func runOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "export" { // its own flags (export.go)
		return runOutboxExport(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("outbox", outboxSynopsis, stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	asJSON := fs.Bool("json", false, "print JSON")
	state := fs.String("state", "", "list: only this state (queued, syncing, synced, failed, cancelled)")
	limit := fs.Int("limit", 50, "list: page size (max 1000)")
	cursor := fs.Int64("cursor", 0, "list: continue from this cursor (next_cursor of the previous page)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return &usageError{cmd: commandName(fs), msg: "no command given", printed: true}
	}
	cmd, pos := pos[0], pos[1:]
	wantArgs := map[string]int{"list": 0, "show": 1, "cancel": 1, "retry": 1, "cancel-queued": 0, "sync": 0, "status": 0, "offline": 0, "online": 0}
	n, ok := wantArgs[cmd]
	if !ok {
		return usageErr(fs, "unknown command %q", cmd)
	}
	if len(pos) != n {
		return usageErr(fs, "%s: want %d argument(s), got %d", cmd, n, len(pos))
	}
	var id int64
	if n == 1 {
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil || id <= 0 {
			return usageErr(fs, "action id %q is not a positive integer", pos[0])
		}
	}
	hc, err := newHostClient(c)
	if err != nil {
		return err
	}
	out := printer{w: stdout, json: *asJSON}
	switch cmd {
	case "list":
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if *state != "" {
			q.Set("state", *state)
		}
		if *cursor > 0 {
			q.Set("cursor", strconv.FormatInt(*cursor, 10))
		}
		var page outbox.Page
		if err := hc.do(ctx, "GET", "/api/actions?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		return out.page(page)
	case "show":
		var a localserver.ActionWithHistory
		if err := hc.do(ctx, "GET", fmt.Sprintf("/api/actions/%d", id), nil, &a); err != nil {
			return err
		}
		return out.action(a)
	case "cancel", "retry":
		var a outbox.Action
		if err := hc.do(ctx, "POST", fmt.Sprintf("/api/actions/%d/%s", id, cmd), nil, &a); err != nil {
			return err
		}
		return out.line(a, fmt.Sprintf("action %d is now %s", a.ID, a.State))
	case "cancel-queued":
		var r struct {
			Cancelled int `json:"cancelled"`
		}
		if err := hc.do(ctx, "POST", "/api/actions/cancel-queued", nil, &r); err != nil {
			return err
		}
		return out.line(r, fmt.Sprintf("cancelled %d queued action(s)", r.Cancelled))
	case "sync":
		var r syncer.Report
		if err := hc.do(ctx, "POST", "/api/sync", nil, &r); err != nil {
			return err
		}
		return out.line(r, fmt.Sprintf("synced %d, rejected %d, in %d batch(es)", r.Synced, r.Rejected, r.Batches))
	case "status", "offline", "online":
		var st localserver.Status
		if cmd == "status" {
			err = hc.do(ctx, "GET", "/api/status", nil, &st)
		} else {
			err = hc.do(ctx, "PUT", "/api/mode", map[string]bool{"work_offline": cmd == "offline"}, &st)
		}
		if err != nil {
			return err
		}
		return out.status(st)
	}
	return nil
}

type printer struct {
	w    io.Writer
	json bool
}

func (p printer) emit(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (p printer) line(v any, text string) error {
	if p.json {
		return p.emit(v)
	}
	_, err := fmt.Fprintln(p.w, text)
	return err
}

func (p printer) page(pg outbox.Page) error {
	if p.json {
		return p.emit(pg)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tTYPE\tSTATE\tATTEMPTS\tSUMMARY\tLAST ERROR")
	for _, a := range pg.Actions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.CreatedAt.Local().Format(time.DateTime), a.Type, a.State, a.Attempts,
			oneLine(a.Summary, 60), oneLine(a.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pg.Next > 0 {
		fmt.Fprintf(p.w, "more: --cursor %d\n", pg.Next)
	}
	return nil
}

func (p printer) action(a localserver.ActionWithHistory) error {
	if p.json {
		return p.emit(a)
	}
	payload, _ := json.MarshalIndent(a.Payload, "  ", "  ")
	fmt.Fprintf(p.w, "action %d  %s\n  key:      %s\n  type:     %s\n  attempts: %d\n  created:  %s\n",
		a.ID, a.State, a.Key, a.Type, a.Attempts, a.CreatedAt.Local().Format(time.DateTime))
	if a.LastError != "" {
		fmt.Fprintf(p.w, "  error:    %s\n", a.LastError)
	}
	if a.NextAttemptAt != nil {
		fmt.Fprintf(p.w, "  next try: %s\n", a.NextAttemptAt.Local().Format(time.DateTime))
	}
	if a.Summary != "" {
		fmt.Fprintf(p.w, "  summary:  %s\n", a.Summary)
	}
	if a.Detail != "" {
		fmt.Fprintf(p.w, "request and answer:\n  %s\nhistory:\n", strings.ReplaceAll(a.Detail, "\n", "\n  "))
	} else {
		fmt.Fprintf(p.w, "  payload:  %s\nhistory:\n", payload)
	}
	for _, h := range a.History {
		from := string(h.From)
		if from == "" {
			from = "(new)"
		}
		fmt.Fprintf(p.w, "  %s  %s → %s  %s\n", h.At.Local().Format("2006-01-02 15:04:05.000"), from, h.To, h.Detail)
	}
	return nil
}

func (p printer) status(st localserver.Status) error {
	if p.json {
		return p.emit(st)
	}
	conn := st.State
	switch st.State {
	case syncer.StateOffline:
		if st.OfflineSince != nil {
			conn += " since " + st.OfflineSince.Local().Format("15:04")
		}
	case syncer.StateWorkingOffline:
		conn = "working offline (automatic sync paused)"
	case syncer.StateBlocked:
		conn = "blocked (automatic sync stopped until `synctray outbox sync` or a new configuration)"
	}
	fmt.Fprintf(p.w, "%s · upstream %s\n", conn, st.Upstream)
	if st.Problem != nil {
		fmt.Fprintf(p.w, "problem: %s (%s, since %s)\n", st.Problem.Message, st.Problem.Code, st.Problem.Since.Local().Format("15:04:05"))
	}
	var parts []string
	for _, s := range outbox.States {
		parts = append(parts, fmt.Sprintf("%s %d", s, st.Counts[s]))
	}
	fmt.Fprintln(p.w, strings.Join(parts, " · "))
	if st.LastError != "" && (st.Problem == nil || st.LastError != st.Problem.Message) {
		fmt.Fprintf(p.w, "last error: %s\n", st.LastError)
	}
	if st.NextAttempt != nil {
		fmt.Fprintf(p.w, "next attempt: %s\n", st.NextAttempt.Local().Format("15:04:05"))
	}
	return nil
}

// oneLine is s on one line, cut to n characters (never inside one: the
// "→" of an HTTP action's summary is three bytes).
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}
