package localserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"synctray/internal/failure"
	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
	"synctray/localserver/push"
	"synctray/localserver/syncer"
)

// Body limits.
const (
	MaxBodyBytes  = 1 << 20
	MaxBatchItems = 1000
)

// Engine is what the API needs from the sync engine.
type Engine interface {
	Status() syncer.Status
	SyncNow(ctx context.Context) (syncer.Report, error)
	SetWorkOffline(bool)
	Kick()
	ReportStore(error)
}

// Status is the host's status: the engine's view plus the outbox counts.
type Status struct {
	syncer.Status
	Counts outbox.Counts `json:"counts"`
}

// ActionRequest is the body of POST /api/actions.
type ActionRequest struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// DecodeActionRequest decodes and checks the body of POST /api/actions
// with the key from the Idempotency-Key header. Unknown fields, trailing
// data and wrong types are errors.
func DecodeActionRequest(key string, body []byte) (outbox.NewAction, error) {
	if !utf8.Valid(body) {
		return outbox.NewAction{}, errNotUTF8
	}
	var req ActionRequest
	if err := decodeStrict(body, &req); err != nil {
		return outbox.NewAction{}, err
	}
	n := outbox.NewAction{Key: key, Type: req.Type, Payload: req.Payload}
	if err := n.Validate(); err != nil {
		return outbox.NewAction{}, err
	}
	return n, nil
}

// errNotUTF8 refuses an action whose JSON is not UTF-8: encoding/json
// would silently turn the bad bytes of its type into U+FFFD and keep them
// raw in its payload, which the upstream then changes.
var errNotUTF8 = &outbox.InvalidError{Field: "action", Reason: "the action is not valid UTF-8 (type, key and payload must be UTF-8 text)"}

// batchItem is one action of a batch, with its raw JSON for the UTF-8 check.
type batchItem struct {
	outbox.NewAction
	raw []byte
}

func (b *batchItem) UnmarshalJSON(data []byte) error {
	b.raw = data
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(&b.NewAction)
}

// badJSON is a body that could not be decoded.
type badJSON struct{ err error }

func (e *badJSON) Error() string { return "malformed JSON body: " + e.err.Error() }
func (e *badJSON) Unwrap() error { return e.err }

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		return &badJSON{err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &badJSON{errors.New("unexpected data after the JSON value")}
	}
	return nil
}

type api struct {
	store   outbox.Store
	engine  Engine
	log     *slog.Logger
	guard   *guard
	base    func() string // the host's base URL
	inbox   *inbox
	push    *push.Store
	pushKey string
	onShow  func() bool  // shows the tray app's window; false: there is none
	revoke  func() error // signs out every browser session
	quit    func()       // stops the host (Host.Quit)
}

func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/actions", a.enqueue)
	mux.HandleFunc("POST /api/actions/batch", a.enqueueBatch)
	mux.HandleFunc("GET /api/actions", a.list)
	mux.HandleFunc("GET /api/actions/{id}", a.get)
	mux.HandleFunc("POST /api/actions/{id}/cancel", a.cancel)
	mux.HandleFunc("POST /api/actions/{id}/retry", a.retry)
	mux.HandleFunc("POST /api/actions/cancel-queued", a.cancelQueued)
	mux.HandleFunc("POST /api/sync", a.sync)
	mux.HandleFunc("GET /api/status", a.status)
	mux.HandleFunc("PUT /api/mode", a.mode)
	mux.HandleFunc("POST /api/login-links", a.loginLink)
	mux.HandleFunc("GET /api/messages", a.messages)
	mux.HandleFunc("GET /api/push/key", a.pushKeyHandler)
	mux.HandleFunc("POST /api/push/subscriptions", a.subscribe)
	mux.HandleFunc("DELETE /api/push/subscriptions", a.unsubscribe)
	mux.HandleFunc("POST /api/ui/show", a.show)
	mux.HandleFunc("POST /api/sessions/revoke", a.revokeSessions)
	mux.HandleFunc("POST /api/quit", a.quitHost)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// allowedMethods lists the methods that a route of mux other than the
// /api/ catch-all serves for r's path: the Allow header of a 405.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := *r
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	return allow
}

func (a *api) enqueue(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeError(w, http.StatusBadRequest, "missing_idempotency_key",
			"the Idempotency-Key header is required: a UUID made once per action (v7 recommended) and sent again on every retry")
		return
	}
	n, err := DecodeActionRequest(key, body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.damaged(w) {
		return
	}
	act, created, err := a.store.Enqueue(r.Context(), n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
		a.engine.ReportStore(nil) // a write went through: the disk is not full
		a.engine.Kick()
	}
	writeJSON(w, status, act)
}

// BatchResult is one action's result in POST /api/actions/batch.
type BatchResult struct {
	Key    string         `json:"key"`
	Status int            `json:"status"` // 201 new, 200 already stored, 4xx refused
	Action *outbox.Action `json:"action,omitempty"`
	Error  *ErrorBody     `json:"error,omitempty"`
}

func (a *api) enqueueBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Actions []batchItem `json:"actions"`
	}
	if err := decodeStrict(body, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if len(req.Actions) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_batch", "actions must hold at least one action")
		return
	}
	if len(req.Actions) > MaxBatchItems {
		writeError(w, http.StatusRequestEntityTooLarge, "batch_too_large", fmt.Sprintf("a batch holds at most %d actions", MaxBatchItems))
		return
	}
	// Actions that are not UTF-8 are refused one by one, like any other
	// invalid action; the rest go to the store in order.
	results := make([]outbox.EnqueueResult, len(req.Actions))
	var ns []outbox.NewAction
	var at []int
	for i, it := range req.Actions {
		if !utf8.Valid(it.raw) {
			results[i].Err = errNotUTF8
			continue
		}
		ns = append(ns, it.NewAction)
		at = append(at, i)
	}
	if len(ns) > 0 {
		if a.damaged(w) {
			return
		}
		stored, err := a.store.EnqueueBatch(r.Context(), ns)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		for j, res := range stored {
			results[at[j]] = res
		}
	}
	out := make([]BatchResult, len(results))
	created := false
	for i, res := range results {
		out[i].Key = req.Actions[i].Key
		if res.Err != nil {
			status, code, msg := errorStatus(res.Err)
			out[i].Status, out[i].Error = status, &ErrorBody{Code: code, Message: msg}
			continue
		}
		act := res.Action
		out[i].Action = &act
		out[i].Status = http.StatusOK
		if res.Created {
			out[i].Status = http.StatusCreated
			created = true
		}
	}
	if created {
		a.engine.ReportStore(nil)
		a.engine.Kick()
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var lq outbox.ListQuery
	if s := q.Get("state"); s != "" && s != "all" {
		lq.State = outbox.State(s)
		if !lq.State.Valid() {
			writeError(w, http.StatusBadRequest, "invalid_state", fmt.Sprintf("unknown state %q (want queued, syncing, synced, failed, cancelled or all)", s))
			return
		}
	}
	var err error
	if lq.Limit, err = intParam(q.Get("limit"), 50, 1000); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", "limit: "+err.Error())
		return
	}
	cur, err := intParam(q.Get("cursor"), 0, -1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "cursor: "+err.Error())
		return
	}
	lq.Before = int64(cur)
	page, err := a.store.List(r.Context(), lq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if page.Actions == nil {
		page.Actions = []outbox.Action{}
	}
	writeJSON(w, http.StatusOK, page)
}

// intParam parses a non-negative integer query parameter; max < 0: no maximum.
func intParam(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	if max >= 0 && n > max {
		return 0, fmt.Errorf("%d is more than %d", n, max)
	}
	return n, nil
}

// ActionWithHistory is the body of GET /api/actions/{id}.
type ActionWithHistory struct {
	outbox.Action
	// Detail is the full story of an HTTP write: the request kept and the
	// upstream's answer.
	Detail  string          `json:"detail,omitempty"`
	History []outbox.Change `json:"history"`
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	act, hist, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := ActionWithHistory{Action: act, History: hist}
	if act.Type == httpup.ActionType {
		out.Detail = httpup.Detail(act)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	a.change(w, r, a.store.Cancel)
}

func (a *api) retry(w http.ResponseWriter, r *http.Request) {
	a.change(w, r, func(ctx context.Context, id int64) (outbox.Action, error) {
		act, err := a.store.Retry(ctx, id)
		if err == nil {
			a.engine.Kick() // queued again: let the engine see it
		}
		return act, err
	})
}

func (a *api) change(w http.ResponseWriter, r *http.Request, f func(context.Context, int64) (outbox.Action, error)) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	act, err := f(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, act)
}

func (a *api) cancelQueued(w http.ResponseWriter, r *http.Request) {
	n, err := a.store.CancelAllQueued(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"cancelled": n})
}

func (a *api) sync(w http.ResponseWriter, r *http.Request) {
	rep, err := a.engine.SyncNow(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if rep.Err != nil {
		// The report says what was done; the error, in the host's one line,
		// why it stopped; the status, what state that left the host in.
		st := a.engine.Status()
		status, code := http.StatusBadGateway, "upstream_unreachable"
		switch {
		case rep.TimedOut:
			status, code = http.StatusGatewayTimeout, "sync_timeout"
		case st.Problem != nil && st.State == syncer.StateBlocked:
			code = "upstream_" + st.Problem.Code
			if st.Problem.Code == failure.CodeDiskFull || st.Problem.Code == failure.CodeStorage {
				status, code = http.StatusServiceUnavailable, st.Problem.Code
			}
		}
		msg := rep.Error
		if rep.TimedOut {
			msg = fmt.Sprintf("Sync now stopped at its time limit after %d sent; the rest stays queued", rep.Synced)
		}
		writeJSON(w, status, map[string]any{
			"error":  ErrorBody{Code: code, Message: msg},
			"report": rep,
			"status": st,
		})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st, err := hostStatus(r.Context(), a.store, a.engine)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func hostStatus(ctx context.Context, store outbox.Store, engine Engine) (Status, error) {
	counts, err := store.Counts(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	return Status{Status: engine.Status(), Counts: counts}, nil
}

func (a *api) mode(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		WorkOffline *bool `json:"work_offline"`
	}
	if err := decodeStrict(body, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.WorkOffline == nil {
		writeError(w, http.StatusBadRequest, "invalid_mode", `body must be {"work_offline": true|false}`)
		return
	}
	a.engine.SetWorkOffline(*req.WorkOffline)
	a.status(w, r)
}

func (a *api) loginLink(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"url": a.base() + "/login?token=" + a.guard.newLoginLink()})
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_id", fmt.Sprintf("action id %q is not a positive integer", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// readBody reads the request body within its deadline (see bodyDeadline)
// and then lifts the deadline, so that the rest of the request runs
// without one.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes))
		return nil, false
	case errors.As(err, &ne) && ne.Timeout():
		closeUnreadBody(w, r)
		writeError(w, http.StatusRequestTimeout, "body_timeout", "the request body did not arrive in time")
		return nil, false
	case err != nil:
		closeUnreadBody(w, r)
		writeError(w, http.StatusBadRequest, "bad_body", "read body: "+err.Error())
		return nil, false
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	return b, true
}

// ErrorBody is the JSON error shape: {"error": {"code", "message"}}.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorStatus maps an error to its HTTP status, code and user message.
// Anything unexpected is an internal error; its detail goes to the log only.
func errorStatus(err error) (int, string, string) {
	var inv *outbox.InvalidError
	var te *outbox.TransitionError
	var bj *badJSON
	switch {
	case errors.As(err, &inv) && inv.TooLarge:
		return http.StatusRequestEntityTooLarge, "payload_too_large", inv.Error()
	case errors.As(err, &inv):
		return http.StatusBadRequest, "invalid_action", inv.Error()
	case errors.As(err, &bj):
		return http.StatusBadRequest, "bad_json", bj.Error()
	case errors.Is(err, push.ErrInvalid):
		return http.StatusBadRequest, "invalid_subscription", err.Error()
	case errors.Is(err, outbox.ErrKeyConflict):
		return http.StatusUnprocessableEntity, "key_conflict", err.Error()
	case errors.Is(err, outbox.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.As(err, &te):
		return http.StatusConflict, "invalid_transition", te.Error()
	case errors.Is(err, outbox.ErrDiskFull):
		return http.StatusInsufficientStorage, "insufficient_storage", "the disk holding the outbox is full: nothing was stored"
	case errors.Is(err, outbox.ErrCorrupt):
		return http.StatusServiceUnavailable, "storage", "the outbox file is damaged: nothing was stored"
	case errors.Is(err, outbox.ErrClosed):
		return http.StatusServiceUnavailable, "shutting_down", "the host is shutting down"
	case errors.Is(err, context.Canceled):
		return 499, "cancelled", "request cancelled"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// damaged refuses a write while the outbox is damaged: 503 storage with
// the status's message (the file, and what to do). A write stored in a
// damaged file could be lost with it; a page's service worker keeps a write
// the host answers 503 to in the browser until the host can take it.
func (a *api) damaged(w http.ResponseWriter) bool {
	st := a.engine.Status()
	if st.Problem == nil || st.Problem.Code != failure.CodeStorage {
		return false
	}
	writeError(w, http.StatusServiceUnavailable, failure.CodeStorage, st.Problem.Message)
	return true
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := errorStatus(err)
	switch code {
	case "insufficient_storage", failure.CodeStorage:
		a.engine.ReportStore(err)
		if st := a.engine.Status(); st.Problem != nil && (st.Problem.Code == failure.CodeDiskFull || st.Problem.Code == failure.CodeStorage) {
			msg = st.Problem.Message // names the file and what to do
		}
	}
	if status >= 500 && code != "shutting_down" {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]ErrorBody{"error": {Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func (a *api) pushKeyHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"key": a.pushKey})
}

// subscriptionRequest is a browser's PushSubscription.toJSON().
type subscriptionRequest struct {
	Endpoint       string `json:"endpoint"`
	ExpirationTime *int64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

func (a *api) subscribe(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req subscriptionRequest
	if err := decodeStrict(body, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var sub push.Subscription
	sub.Endpoint, sub.Keys.P256dh, sub.Keys.Auth = req.Endpoint, req.Keys.P256dh, req.Keys.Auth
	if err := a.push.Add(r.Context(), sub); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"endpoint": sub.Endpoint})
}

func (a *api) unsubscribe(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Endpoint string `json:"endpoint"`
	}
	if err := decodeStrict(body, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	removed, err := a.push.Remove(r.Context(), req.Endpoint)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"removed": removed})
}

// revokeSessions signs out every browser session (synctray logout --all).
func (a *api) revokeSessions(w http.ResponseWriter, r *http.Request) {
	if err := a.revoke(); err != nil {
		a.log.Error("revoke sessions", "err", err)
		writeError(w, http.StatusInternalServerError, "session_key_not_saved",
			"sessions are revoked, but the new session key could not be saved, so they would work again after a restart: run `synctray logout --all` again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

// quitHost stops the host after answering: it finishes the requests in
// flight and the batch being sent, records it, and closes the outbox.
func (a *api) quitHost(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusAccepted, map[string]bool{"stopping": true})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	a.quit()
}

// show asks the running tray app to show its outbox window (a second
// synctray start uses it).
func (a *api) show(w http.ResponseWriter, r *http.Request) {
	if a.onShow == nil || !a.onShow() {
		writeError(w, http.StatusNotImplemented, "no_window", "this host runs without a window (synctray serve)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"shown": true})
}
