package localserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
)

// exporter is what GET /api/actions/export needs from the outbox.
type exporter interface {
	ExportPage(ctx context.Context, q outboxdb.ExportQuery) ([]outboxdb.Exported, int64, error)
}

// exportHandler serves GET /api/actions/export?state=S&since=RFC3339: the
// outbox, oldest first, one action with its history per line (NDJSON).
// It reads one page from SQLite, writes it and flushes, then reads the
// next: memory holds one page whatever the outbox's size, and the client
// sees rows as they are read. A failure after the first row ends the
// stream with one line {"error":{"code","message"}}.
type exportHandler struct {
	db  exporter
	api *api
}

// ExportLine is one line of GET /api/actions/export: an action (with its
// summary) and its history, oldest change first.
type ExportLine = outboxdb.Exported

func (h *exportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := outboxdb.ExportQuery{State: outbox.State(r.URL.Query().Get("state"))}
	if q.State != "" && !q.State.Valid() {
		writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("state %q: want queued, syncing, synced, failed or cancelled", q.State))
		return
	}
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("since %q is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", s))
			return
		}
		q.Since = t
	}
	ctx := r.Context()
	page, next, err := h.db.ExportPage(ctx, q)
	if err != nil {
		h.api.fail(w, r, fmt.Errorf("export: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	rc := http.NewResponseController(w)
	for {
		for i := range page {
			describe(&page[i].Action)
			if page[i].History == nil {
				page[i].History = []outbox.Change{}
			}
			if err := enc.Encode(&page[i]); err != nil {
				return // the client went away
			}
		}
		if err := bw.Flush(); err != nil {
			return
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return
		}
		if next == 0 {
			return
		}
		q.After = next
		if page, next, err = h.db.ExportPage(ctx, q); err != nil {
			if ctx.Err() == nil {
				h.api.log.Error("export failed mid-stream", "after", q.After, "err", err)
				enc.Encode(map[string]ErrorBody{"error": {Code: "export_failed", Message: fmt.Sprintf("export stopped after action %d: internal error (see the host's log)", q.After)}})
				bw.Flush()
			}
			return
		}
	}
}
