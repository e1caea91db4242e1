package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"synctray/localserver"
	"synctray/localserver/outbox"
)

const exportSynopsis = `synctray outbox export [--state S] [--since T] [--format jsonl|csv] [flags]

Writes the running host's outbox to stdout, oldest first, as the host reads
it from SQLite page by page (memory stays constant however large the outbox).
jsonl: one action per line with its history; csv: one row per action
(id,key,type,state,attempts,created_at,updated_at,synced_at,last_error,summary,history)
after a header, its history a JSON array in the last column.`

// exportColumns is the CSV header.
var exportColumns = []string{"id", "key", "type", "state", "attempts", "created_at", "updated_at", "synced_at", "last_error", "summary", "history"}

// runOutboxExport is `synctray outbox export`. It reads the host's
// GET /api/actions/export stream (one request: the host pages through
// SQLite and writes each page as it reads it) line by line and writes
// each line out at once; no more than one line is held.
func runOutboxExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox export", exportSynopsis, stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	state := fs.String("state", "", "only this state (queued, syncing, synced, failed, cancelled)")
	since := fs.String("since", "", "only actions created since this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration back from now (24h, 90m)")
	format := fs.String("format", "jsonl", "output format: jsonl or csv")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "csv" {
		return fmt.Errorf("--format %q: want jsonl or csv", *format)
	}
	if *state != "" && !outbox.State(*state).Valid() {
		return fmt.Errorf("--state %q: want queued, syncing, synced, failed or cancelled", *state)
	}
	q := url.Values{}
	if *state != "" {
		q.Set("state", *state)
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		q.Set("since", t.UTC().Format(time.RFC3339Nano))
	}
	hc, err := newHostClient(c)
	if err != nil {
		return err
	}
	body, err := hc.stream(ctx, "/api/actions/export?"+q.Encode())
	if err != nil {
		return err
	}
	defer body.Close()
	out := bufio.NewWriterSize(stdout, 64<<10)
	var write func(line []byte) error
	if *format == "jsonl" {
		write = func(line []byte) error { _, err := out.Write(line); return err }
	} else {
		cw := csv.NewWriter(out)
		if err := cw.Write(exportColumns); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		write = func(line []byte) error {
			var a localserver.ExportLine
			if err := json.Unmarshal(line, &a); err != nil {
				return fmt.Errorf("decode exported action: %w", err)
			}
			row, err := csvRow(a)
			if err != nil {
				return err
			}
			cw.Write(row)
			cw.Flush() // into out, which buffers
			return cw.Error()
		}
	}
	n, err := copyLines(body, write)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("export (after %d actions): %w", n, err)
	}
	return nil
}

// copyLines hands each NDJSON line of r (with its newline) to write and
// says how many it handed. A line {"error":…} — the host's way to say the
// stream failed after it began — is returned as an error, and so is a
// stream cut short (a last line without its newline).
func copyLines(r io.Reader, write func([]byte) error) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			if bytes.HasPrefix(line, []byte(`{"error":`)) {
				var eb struct {
					Error localserver.ErrorBody `json:"error"`
				}
				json.Unmarshal(line, &eb)
				return n, &apiError{Status: http.StatusOK, Code: eb.Error.Code, Message: eb.Error.Message}
			}
			if werr := write(line); werr != nil {
				return n, werr
			}
			n++
		}
		switch {
		case errors.Is(err, io.EOF) && len(line) == 0:
			return n, nil
		case errors.Is(err, io.EOF):
			return n, errors.New("the host's answer ended in the middle of a line")
		case err != nil:
			return n, fmt.Errorf("read the host's answer: %w", err)
		}
	}
}

// csvRow is one action as a CSV row; its history is a JSON array in the
// last column, as in jsonl.
func csvRow(a localserver.ExportLine) ([]string, error) {
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	history, err := json.Marshal(a.History)
	if err != nil {
		return nil, fmt.Errorf("encode the history of action %d: %w", a.ID, err)
	}
	return []string{strconv.FormatInt(a.ID, 10), a.Key, a.Type, string(a.State), strconv.Itoa(a.Attempts),
		ts(&a.CreatedAt), ts(&a.UpdatedAt), ts(a.SyncedAt), a.LastError, a.Summary, string(history)}, nil
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (24h, 90m)", s)
	}
	return now.Add(-d), nil
}

// stream sends a GET and returns the body of a 2xx answer for the caller
// to read and close; the request has no time limit but ctx's.
func (h *hostClient) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	client := &http.Client{Transport: h.http.Transport} // no Timeout: an export takes as long as it takes
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is synctray running at %s? %w", h.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb struct {
		Error localserver.ErrorBody `json:"error"`
	}
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		return nil, &apiError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(data))}
	}
	return nil, &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
}
