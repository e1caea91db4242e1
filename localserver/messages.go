package localserver

import (
	"net/http"
	"sync"
)

// inbox remembers the most recent inbound messages for pages that open or
// refresh (GET /api/messages); live ones go out over /ws.
type inbox struct {
	mu   sync.Mutex
	max  int
	msgs []Message // oldest first
}

func (b *inbox) add(m Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.msgs); n > 0 && b.msgs[n-1].Cursor >= m.Cursor {
		return // already seen
	}
	if len(b.msgs) == b.max {
		copy(b.msgs, b.msgs[1:])
		b.msgs = b.msgs[:len(b.msgs)-1]
	}
	b.msgs = append(b.msgs, m)
}

// since returns up to limit messages after cursor, oldest first; with
// after = 0, the newest limit messages.
func (b *inbox) since(after int64, limit int) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Message
	for _, m := range b.msgs {
		if m.Cursor > after {
			out = append(out, m)
		}
	}
	if after == 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []Message{}
	}
	return out
}

func (a *api) messages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", "limit: "+err.Error())
		return
	}
	after, err := intParam(q.Get("after"), 0, -1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "after: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": a.inbox.since(int64(after), limit)})
}
