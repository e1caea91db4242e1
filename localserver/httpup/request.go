// Package httpup is synctray's HTTP upstream (design §12): a write that a
// page sends to /upstream/<path> becomes an outbox action of type "http"
// that records the request (method, path and query, the headers the
// upstream needs, the body as bytes), and the Forwarder replays it to any
// HTTP backend with its Idempotency-Key, returning the backend's answer
// for the failure policy (internal/failure, HTTP mode) to sort.
package httpup

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"synctray/internal/failure"
	"synctray/localserver/outbox"
)

// ActionType is the outbox type of an HTTP write.
const ActionType = "http"

// Prefix is where pages send requests meant for the upstream.
const Prefix = "/upstream"

// StoredHeaders are the request headers kept with a write, besides those
// named with --forward-header. Cookies and Authorization never are: the
// host adds its own credentials (--upstream-header-file).
var StoredHeaders = []string{"Content-Type", "Accept", "If-Match", "If-None-Match", "If-Unmodified-Since"}

// neverStored are refused even when named with --forward-header.
var neverStored = []string{"Cookie", "Authorization", "Proxy-Authorization", "Host", "Idempotency-Key", "Content-Length",
	"Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Keep-Alive", "Origin", "Referer"}

// Writes are the methods stored and replayed; other methods are reads.
var Writes = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// IsWrite reports whether method is a write.
func IsWrite(method string) bool { return slices.Contains(Writes, method) }

// Request is one recorded write.
type Request struct {
	Method string            // POST, PUT, PATCH, DELETE
	Path   string            // path and query below the upstream's base URL, e.g. "/todos/7?force=1"
	Header map[string]string // canonical names
	Body   []byte
}

// payload is Request as stored in the outbox: the body as text when it is
// UTF-8, else base64.
type payload struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Header     map[string]string `json:"headers,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
}

// Payload encodes r as an action payload. Equal requests give equal
// payloads, so the outbox tells a resent write (same key, same request)
// from a reused key (same key, another request).
func (r Request) Payload() (json.RawMessage, error) {
	p := payload{Method: r.Method, Path: r.Path, Header: r.Header}
	if len(r.Body) > 0 {
		if utf8.Valid(r.Body) {
			s := string(r.Body)
			p.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(r.Body)
			p.BodyBase64 = &s
		}
	}
	b, err := json.Marshal(p) // map keys are sorted: the encoding is stable
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// Parse decodes an action payload made by Payload.
func Parse(raw json.RawMessage) (Request, error) {
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return Request{}, fmt.Errorf("decode http action: %w", err)
	}
	if !IsWrite(p.Method) || !strings.HasPrefix(p.Path, "/") {
		return Request{}, errors.New("decode http action: not a recorded write")
	}
	r := Request{Method: p.Method, Path: p.Path, Header: p.Header}
	switch {
	case p.Body != nil:
		r.Body = []byte(*p.Body)
	case p.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.BodyBase64)
		if err != nil {
			return Request{}, fmt.Errorf("decode http action body: %w", err)
		}
		r.Body = b
	}
	return r, nil
}

// FromPage records the write a page sent to Prefix+path: its method,
// the path and raw query below Prefix, the headers to keep (StoredHeaders
// and forward) and body.
func FromPage(req *http.Request, body []byte, forward []string) (Request, error) {
	if !IsWrite(req.Method) {
		return Request{}, fmt.Errorf("%s is not a write", req.Method)
	}
	rest, ok := strings.CutPrefix(req.URL.EscapedPath(), Prefix)
	if !ok || rest != "" && rest[0] != '/' {
		return Request{}, fmt.Errorf("path %q is not under %s/", req.URL.Path, Prefix)
	}
	if rest == "" {
		rest = "/"
	}
	if req.URL.RawQuery != "" {
		rest += "?" + req.URL.RawQuery
	}
	r := Request{Method: req.Method, Path: rest, Body: body}
	for _, name := range append(slices.Clone(StoredHeaders), forward...) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		if slices.Contains(neverStored, name) {
			continue
		}
		if v := req.Header.Values(name); len(v) > 0 {
			if r.Header == nil {
				r.Header = map[string]string{}
			}
			r.Header[name] = strings.Join(v, ", ")
		}
	}
	return r, nil
}

// CheckForward refuses --forward-header names that may not be stored.
func CheckForward(names []string) error {
	for _, n := range names {
		c := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(n))
		if c == "" || strings.ContainsAny(c, " :\t") {
			return fmt.Errorf("forward header %q is not a header name", n)
		}
		if slices.Contains(neverStored, c) {
			return fmt.Errorf("forward header %s: never stored (the host sends its own credentials; see --upstream-header-file)", c)
		}
	}
	return nil
}

// Summary is how people read an HTTP action: "POST /todos", with the
// answer once there is one: "POST /todos → 201 Created", "PUT /todos/7 →
// failed: 422 title is required".
func Summary(a outbox.Action) string {
	var r struct{ Method, Path string } // not the body: a summary is made at every change
	if json.Unmarshal(a.Payload, &r) != nil || !IsWrite(r.Method) || !strings.HasPrefix(r.Path, "/") {
		return "http (unreadable)"
	}
	p := r.Path
	if len(p) > 80 {
		p = p[:79] + "…"
	}
	s := r.Method + " " + p
	ans := ParseAnswer(a.Response)
	switch {
	case a.State == outbox.Failed && ans != nil:
		s += " → failed: " + strconv.Itoa(ans.Status)
		if why := failure.ErrorText(ans.Body, mediaType(ans.Header["Content-Type"])); why != "" {
			s += " " + why
		} else if t := http.StatusText(ans.Status); t != "" {
			s += " " + t
		}
	case a.State == outbox.Failed:
		s += " → failed: " + a.LastError
	case ans != nil:
		s += " → " + statusText(ans.Status)
	}
	return failure.Line(s)
}

// Detail is the full story of an HTTP action for the detail pane and
// `outbox show`: the request as kept (headers, body) and the upstream's
// answer.
func Detail(a outbox.Action) string {
	r, err := Parse(a.Payload)
	if err != nil {
		return "unreadable http action: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.Path)
	writeHeaders(&b, r.Header)
	b.WriteString(body(r.Body, mediaType(r.Header["Content-Type"])))
	if ans := ParseAnswer(a.Response); ans != nil {
		fmt.Fprintf(&b, "\n\nanswer: %s\n", statusText(ans.Status))
		writeHeaders(&b, ans.Header)
		b.WriteString(body(ans.Body, mediaType(ans.Header["Content-Type"])))
		if ans.Truncated {
			fmt.Fprintf(&b, "\n… (the first %d KiB are kept)", AnswerBytes>>10)
		}
	}
	return b.String()
}

func writeHeaders(b *strings.Builder, h map[string]string) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(b, "%s: %s\n", k, h[k])
	}
}

// body shows a body as people can read it: indented JSON, text, or its
// size when it is binary.
func body(b []byte, contentType string) string {
	switch {
	case len(b) == 0:
		return "(no body)"
	case json.Valid(b):
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String()
		}
	case utf8.Valid(b) && !strings.ContainsRune(string(b), 0):
		return string(b)
	}
	return fmt.Sprintf("(%d bytes of %s)", len(b), cmp.Or(contentType, "binary data"))
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}
