package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"synctray/internal/failure"
)

// HTTPError is a non-2xx answer from the upstream.
type HTTPError = failure.HTTPError

// ProtocolName names protocol v1 in messages for people.
const ProtocolName = "synctray protocol v1"

// MaxAnswerBytes is the most the client reads of a success answer; a
// larger one is a protocol error, never a memory blow-up.
const MaxAnswerBytes = 16 << 20

// Client talks to an upstream. HTTP nil means a default client with sane
// timeouts.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

var defaultHTTP = NewHTTPClient(4)

// NewHTTPClient is the host's client for an upstream (protocol v1 or an
// HTTP backend), keeping up to maxIdlePerHost connections: bounded dial,
// TLS, header and overall timeouts, and no redirect followed — Go would
// turn a POST into a GET, and a replayed write must not change its method
// or target (design §10): a 3xx is an answer like any other.
func NewHTTPClient(maxIdlePerHost int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   maxIdlePerHost,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// do sends a request and decodes a 2xx JSON answer into out. A non-2xx
// answer is an *HTTPError; a 2xx that is not the JSON expected is a
// *failure.ProtocolError.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		// What goes on the wire is what the host measured at enqueue: no
		// HTML escaping (it would turn each '<' into 6 bytes).
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = &buf
	}
	base := strings.TrimRight(c.BaseURL, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := failure.ReadHTTPError(resp, failure.V1, base)
		he.Protocol = ProtocolName
		return he
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	bad := func(reason string) error {
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		return &failure.ProtocolError{Protocol: ProtocolName, Base: base, Method: method, Path: req.URL.Path,
			StatusCode: resp.StatusCode, ContentType: ct, Reason: reason, Body: failure.Head(raw, failure.DetailBytes)}
	}
	if len(raw) > MaxAnswerBytes {
		return bad(fmt.Sprintf("answer larger than %d MiB", MaxAnswerBytes>>20))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return bad("answer is not the JSON expected")
	}
	if v, ok := out.(interface{ check() string }); ok {
		if reason := v.check(); reason != "" {
			return bad(reason)
		}
	}
	return nil
}

// Send posts a batch and returns one result per action, in order. An
// answer without exactly one result per action, with matching keys and a
// known status, is a *failure.ProtocolError.
func (c *Client) Send(ctx context.Context, actions []Action) ([]Result, error) {
	if len(actions) == 0 {
		return []Result{}, nil
	}
	resp := ActionsResponse{want: actions}
	if err := c.do(ctx, http.MethodPost, "/v1/actions", ActionsRequest{Actions: actions}, &resp); err != nil {
		return nil, fmt.Errorf("send batch: %w", err)
	}
	return resp.Results, nil
}

// Events returns up to limit events after the cursor after, and the cursor
// to pass as after next time.
func (c *Client) Events(ctx context.Context, after int64, limit int) ([]Event, int64, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var resp EventsResponse
	if err := c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &resp); err != nil {
		return nil, after, fmt.Errorf("list events: %w", err)
	}
	return resp.Events, resp.Next, nil
}

// Stats returns the upstream's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := c.do(ctx, http.MethodGet, "/v1/stats", nil, &st); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// Health reports whether the upstream can take requests now. It asks
// GET /v1/stats rather than /healthz so that a wrong token and the Down
// fault count as unhealthy.
func (c *Client) Health(ctx context.Context) error {
	if err := c.do(ctx, http.MethodGet, "/v1/stats", nil, nil); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}

// Follow timing.
var (
	followMinBackoff = 100 * time.Millisecond
	followMaxBackoff = 10 * time.Second
	followWSRetry    = 30 * time.Second // polling time before trying the WebSocket again
	followReadWait   = 2 * WSPongWait   // silence after which a WebSocket is considered dead
)

// Follow streams the events after the cursor after to fn, in order, over
// /v1/events/ws. When the WebSocket cannot be used it polls /v1/events
// every pollEvery (default 1s) and tries the WebSocket again later. It
// reconnects with backoff and returns nil when ctx is done; its only error
// is an unusable BaseURL. fn runs on the calling goroutine, once per event,
// in cursor order.
func (c *Client) Follow(ctx context.Context, after int64, pollEvery time.Duration, fn func(Event)) error {
	if pollEvery <= 0 {
		pollEvery = time.Second
	}
	wsURL, err := c.wsURL()
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	backoff := followMinBackoff
	for ctx.Err() == nil {
		start, before := time.Now(), after
		if !c.followWS(ctx, wsURL, &after, fn) {
			// No WebSocket: poll for a while, then try it again.
			c.poll(ctx, &after, pollEvery, time.Now().Add(followWSRetry), fn)
			continue
		}
		// A stream ended (server restart, fell behind): reconnect, backing
		// off unless it had been useful.
		if after != before || time.Since(start) > followMaxBackoff {
			backoff = followMinBackoff
		}
		if !sleepCtx(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, followMaxBackoff)
	}
	return nil
}

// poll delivers events over GET /v1/events until deadline or ctx is done.
func (c *Client) poll(ctx context.Context, after *int64, every time.Duration, deadline time.Time, fn func(Event)) {
	backoff := every
	for ctx.Err() == nil && time.Now().Before(deadline) {
		events, next, err := c.Events(ctx, *after, MaxLimit)
		if err != nil {
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, max(followMaxBackoff, every))
			continue
		}
		backoff = every
		deliver(events, after, fn)
		if next > *after {
			*after = next
		}
		if len(events) == MaxLimit {
			continue // more waiting
		}
		if !sleepCtx(ctx, every) {
			return
		}
	}
}

func deliver(events []Event, after *int64, fn func(Event)) {
	for _, e := range events {
		if e.Cursor <= *after {
			continue
		}
		fn(e)
		*after = e.Cursor
	}
}

// followWS streams over one WebSocket connection until it breaks or ctx is
// done. It reports whether the handshake succeeded.
func (c *Client) followWS(ctx context.Context, wsURL string, after *int64, fn func(Event)) bool {
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}
	if t, ok := c.httpClient().Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		d.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	h := http.Header{}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	conn, resp, err := d.DialContext(ctx, wsURL+"?after="+strconv.FormatInt(*after, 10), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return false
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	conn.SetReadLimit(2 * MaxPayloadBytes)
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(followReadWait))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(WSWriteWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		conn.SetReadDeadline(time.Now().Add(followReadWait))
		var e Event
		if err := conn.ReadJSON(&e); err != nil {
			return true
		}
		deliver([]Event{e}, after, fn)
	}
}

func (c *Client) wsURL() (string, error) {
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil {
		return "", fmt.Errorf("parse base URL: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("base URL %q: scheme must be http or https", c.BaseURL)
	}
	// JoinPath keeps an escaped path prefix (e.g. %2F) as it is.
	u = u.JoinPath("v1", "events", "ws")
	u.RawQuery = ""
	return u.String(), nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
