package httpup

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"synctray/internal/failure"
	"synctray/localserver/outbox"
	"synctray/upstream/protocol"
)

// AnswerBytes is how much of an upstream's answer body is kept on the
// action (and given back to a page waiting for it).
const AnswerBytes = 64 << 10

// AnswerHeaders are the upstream's answer headers kept and given back to
// the page.
var AnswerHeaders = []string{"Content-Type", "Location", "ETag", "Retry-After", "Last-Modified"}

// Answer is what the upstream answered to one write.
type Answer struct {
	Status    int               `json:"status"`
	Header    map[string]string `json:"headers,omitempty"`
	Body      []byte            `json:"-"`
	Truncated bool              `json:"truncated,omitempty"` // the body was longer than AnswerBytes
}

// MarshalJSON keeps the body as text when it is UTF-8, else base64.
func (a Answer) MarshalJSON() ([]byte, error) {
	type plain Answer
	out := struct {
		plain
		Body       *string `json:"body,omitempty"`
		BodyBase64 *string `json:"body_base64,omitempty"`
	}{plain: plain(a)}
	if len(a.Body) > 0 {
		if utf8.Valid(a.Body) {
			s := string(a.Body)
			out.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(a.Body)
			out.BodyBase64 = &s
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (a *Answer) UnmarshalJSON(b []byte) error {
	type plain Answer
	var in struct {
		plain
		Body       *string `json:"body,omitempty"`
		BodyBase64 *string `json:"body_base64,omitempty"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*a = Answer(in.plain)
	switch {
	case in.Body != nil:
		a.Body = []byte(*in.Body)
	case in.BodyBase64 != nil:
		body, err := base64.StdEncoding.DecodeString(*in.BodyBase64)
		if err != nil {
			return err
		}
		a.Body = body
	}
	return nil
}

// ParseAnswer reads an action's stored answer; nil when there is none.
func ParseAnswer(raw json.RawMessage) *Answer {
	if len(raw) == 0 {
		return nil
	}
	var a Answer
	if json.Unmarshal(raw, &a) != nil || a.Status == 0 {
		return nil
	}
	return &a
}

// Forwarder replays recorded writes to an HTTP backend.
type Forwarder struct {
	Base    *url.URL    // the upstream, its own path prefix kept
	Headers http.Header // host-held headers added to every request (credentials)
	HTTP    *http.Client
}

// DefaultClient sends the writes: protocol.NewHTTPClient, with room for
// --upstream-concurrency connections.
var DefaultClient = protocol.NewHTTPClient(64)

func (f *Forwarder) client() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	return DefaultClient
}

// base is the upstream's URL without a trailing slash, for messages.
func (f *Forwarder) base() string { return strings.TrimRight(f.Base.String(), "/") }

// target is the upstream URL for a recorded path and query.
func (f *Forwarder) target(pathQuery string) (string, error) {
	rel, err := url.Parse(pathQuery)
	if err != nil || rel.Scheme != "" || rel.Host != "" {
		return "", fmt.Errorf("path %q is not a relative path", pathQuery)
	}
	u := *f.Base
	u.RawPath = ""
	u.Path = strings.TrimRight(f.Base.Path, "/") + rel.Path
	if rel.RawPath != "" || f.Base.RawPath != "" {
		u.RawPath = strings.TrimRight(f.Base.EscapedPath(), "/") + rel.EscapedPath()
	}
	u.RawQuery = rel.RawQuery
	return u.String(), nil
}

// Forward sends a, an action of type "http", with its Idempotency-Key.
// It returns the upstream's answer whenever there is one; a non-2xx
// answer is also a *failure.HTTPError (HTTP mode), for the policy.
func (f *Forwarder) Forward(ctx context.Context, a outbox.Action) (*Answer, error) {
	r, err := Parse(a.Payload)
	if err != nil {
		return nil, failure.Refuse(err)
	}
	target, err := f.target(r.Path)
	if err != nil {
		return nil, failure.Refuse(err)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if len(r.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	for k, vs := range f.Headers {
		req.Header[k] = vs
	}
	req.Header.Set("Idempotency-Key", a.Key)
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, AnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20)) // let the connection be reused
	ans := &Answer{Status: resp.StatusCode, Body: body}
	if len(body) > AnswerBytes {
		ans.Body, ans.Truncated = body[:AnswerBytes], true
	}
	for _, h := range AnswerHeaders {
		if v := resp.Header.Get(h); v != "" {
			if ans.Header == nil {
				ans.Header = map[string]string{}
			}
			ans.Header[h] = v
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ans, failure.NewHTTPError(resp, failure.HTTP, f.base(), body)
	}
	return ans, nil
}

// Deliver is Forward with the answer as the JSON kept on the action (nil
// when there is no answer), for the sync engine.
func (f *Forwarder) Deliver(ctx context.Context, a outbox.Action) (json.RawMessage, error) {
	ans, err := f.Forward(ctx, a)
	if ans == nil {
		return nil, err
	}
	raw, merr := json.Marshal(ans)
	if merr != nil {
		return nil, errors.Join(err, merr)
	}
	return raw, err
}

// Health reports whether the upstream answers at all: any HTTP answer to
// HEAD on its base URL counts (a REST API may well answer 404 there).
func (f *Forwarder) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, f.Base.String(), nil)
	if err != nil {
		return err
	}
	for k, vs := range f.Headers {
		req.Header[k] = vs
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp.Body.Close()
	return nil
}
