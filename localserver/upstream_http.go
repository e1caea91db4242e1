package localserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
)

// Upstream protocols (--upstream-protocol).
const (
	ProtocolSynctray = "synctray" // protocol v1 (default)
	ProtocolHTTP     = "http"     // any HTTP backend, through /upstream/
)

// Waiting for the upstream's answer to a write (RFC 7240 Prefer: wait=N).
const (
	DefaultWait = 5 * time.Second
	MaxWait     = 60 * time.Second
)

// waiters hand an action's final state to the requests waiting for it.
type waiters struct {
	mu sync.Mutex
	m  map[string][]chan outbox.Action // by idempotency key
}

// add registers a wait for key; call the returned func when done.
func (ws *waiters) add(key string) (<-chan outbox.Action, func()) {
	ch := make(chan outbox.Action, 1)
	ws.mu.Lock()
	if ws.m == nil {
		ws.m = map[string][]chan outbox.Action{}
	}
	ws.m[key] = append(ws.m[key], ch)
	ws.mu.Unlock()
	return ch, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		list := ws.m[key]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(ws.m, key)
		} else {
			ws.m[key] = list
		}
	}
}

// done tells the waiters of an action that reached a final state.
func (ws *waiters) done(a outbox.Action) {
	if !final(a.State) {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, ch := range ws.m[a.Key] {
		select {
		case ch <- a:
		default:
		}
	}
}

func final(s outbox.State) bool {
	return s == outbox.Synced || s == outbox.Failed || s == outbox.Cancelled
}

// parsePrefer reads RFC 7240 Prefer: "respond-async" answers at once,
// "wait=N" waits up to N seconds (at most MaxWait).
func parsePrefer(vs []string) time.Duration {
	wait := DefaultWait
	for _, v := range vs {
		for _, pref := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(pref), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "respond-async":
				return 0
			case "wait":
				if n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`)); err == nil && n >= 0 {
					wait = min(time.Duration(n)*time.Second, MaxWait)
				}
			}
		}
	}
	return wait
}

// adopter is the engine's fast path for a new write (syncer.Engine.Reserve).
type adopter interface {
	Reserve() bool
	Adopt(outbox.Action)
	Release()
}

// upstreamHandler serves /upstream/: writes go through the outbox (HTTP
// mode); reads go to reads (nil: not served yet).
type upstreamHandler struct {
	a       *api
	forward []string
	waits   *waiters
	reads   http.Handler
}

func (u *upstreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpup.IsWrite(r.Method) {
		if u.reads != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			u.reads.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not supported on "+httpup.Prefix+"/")
		return
	}
	u.write(w, r)
}

// write records a page's write as an action, then answers with the
// upstream's own answer when it comes within the wait, else 202 with the
// action.
func (u *upstreamHandler) write(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := httpup.FromPage(r, body, u.forward)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		// The page sent none: this write cannot be recognised if the page
		// sends it again (sync.js and sw-sync.js always send one).
		key = uuid.Must(uuid.NewV7()).String()
	}
	payload, err := req.Payload()
	if err != nil {
		u.a.fail(w, r, err)
		return
	}
	n := outbox.NewAction{Key: key, Type: httpup.ActionType, Payload: payload}
	if err := n.Validate(); err != nil {
		u.a.fail(w, r, tooLargeToStore(err, body, len(payload)))
		return
	}
	if u.a.damaged(w) {
		return
	}
	wait := parsePrefer(r.Header.Values("Prefer"))
	ch, stop := u.waits.add(key)
	defer stop()
	// A write the page waits for goes out the moment it is stored, when
	// the engine has room: stored already claimed, it skips the claim.
	ad, _ := u.a.engine.(adopter)
	n.Claimed = wait > 0 && ad != nil && ad.Reserve()
	act, created, err := u.a.store.Enqueue(r.Context(), n)
	switch {
	case n.Claimed && err == nil && created:
		ad.Adopt(act)
	case n.Claimed:
		ad.Release()
	}
	if err != nil {
		u.a.fail(w, r, err)
		return
	}
	if created {
		u.a.engine.ReportStore(nil)
		if !n.Claimed { // an adopted write needs no claim
			u.a.engine.Kick()
		}
	}
	if !final(act.State) && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case act = <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	writeWriteResult(w, act, created)
}

// tooLargeToStore says in a page's terms why a write is too large to
// store: the limit counts the write as stored (as JSON, with a body that
// is not UTF-8 as base64), not the body as sent. Other errors are
// returned as they are.
func tooLargeToStore(err error, body []byte, storedLen int) error {
	var inv *outbox.InvalidError
	if !errors.As(err, &inv) || !inv.TooLarge {
		return err
	}
	why := fmt.Sprintf("its body of %d bytes with method, path and headers, as JSON", len(body))
	if !utf8.Valid(body) {
		why = fmt.Sprintf("its body of %d bytes is not UTF-8 text, so it is stored as base64, a third larger", len(body))
	}
	return &outbox.InvalidError{Field: "body", TooLarge: true,
		Reason: fmt.Sprintf("the write is %d bytes as stored, over the limit of %d bytes: %s", storedLen, outbox.MaxPayloadBytes, why)}
}

// writeWriteResult answers a write: the upstream's answer once the action
// is synced or failed with one, else 202 with the action.
func writeWriteResult(w http.ResponseWriter, act outbox.Action, created bool) {
	h := w.Header()
	h.Set("Synctray-Action", strconv.FormatInt(act.ID, 10))
	h.Set("Idempotency-Key", act.Key)
	h.Set("Cache-Control", "no-store")
	if ans := httpup.ParseAnswer(act.Response); ans != nil && (act.State == outbox.Synced || act.State == outbox.Failed) {
		for k, v := range ans.Header {
			h.Set(k, v)
		}
		h.Set("Synctray-State", string(act.State))
		w.WriteHeader(ans.Status)
		w.Write(ans.Body)
		return
	}
	h.Set("Synctray-State", string(act.State))
	switch act.State {
	case outbox.Failed:
		writeJSON(w, http.StatusBadGateway, map[string]any{
			"error":  ErrorBody{Code: "upstream_refused", Message: act.LastError},
			"action": act,
		})
	case outbox.Cancelled:
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":  ErrorBody{Code: "cancelled", Message: fmt.Sprintf("action %d was cancelled", act.ID)},
			"action": act,
		})
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"queued": "host", "action": act, "created": created})
	}
}

// notHTTPMode answers /upstream/ when the host speaks protocol v1.
func notHTTPMode(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_http_mode",
		"the host's upstream speaks synctray protocol v1: "+httpup.Prefix+"/ needs --upstream-protocol http")
}

// ParseHeaderFile reads --upstream-header-file: lines "Name: value";
// blank lines and lines starting with # are skipped.
func ParseHeaderFile(text string) (http.Header, error) {
	h := http.Header{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d: want \"Name: value\"", i+1)
		}
		h.Add(name, value)
	}
	if len(h) == 0 {
		return nil, errors.New("no headers in the file")
	}
	return h, nil
}
