package failure

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DetailBytes is how much of an upstream's answer is kept for people who
// look closer (the action's history, `outbox show`).
const DetailBytes = 4 << 10

// Head is the first max bytes of b, less a character they would cut in
// two: what is kept of an answer ends on a whole character. (An
// incomplete character at b's end is left out too: b may itself be the
// start of a longer answer.)
func Head(b []byte, max int) []byte {
	b = b[:min(len(b), max)]
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// HTTPError is an answer from an upstream that is not a success.
type HTTPError struct {
	Mode        Mode   // how the status is read (V1 or HTTP)
	Protocol    string // in V1 mode, the protocol's name for messages: "synctray protocol v1"
	Base        string // the upstream as configured, e.g. "http://127.0.0.1:7737"
	Method      string // the request: "POST"
	Path        string // and its path: "/v1/actions"
	StatusCode  int
	ContentType string        // media type only, e.g. "text/html"
	Code        string        // from a JSON error body {"error":{"code","message"}}
	Message     string        // from a JSON error body, else the body's first line
	Body        []byte        // the answer's first DetailBytes
	RetryAfter  time.Duration // from Retry-After (seconds or HTTP date); 0: absent
	Location    string        // for a 3xx
}

// ReadHTTPError builds the HTTPError for resp, reading at most
// DetailBytes of its body. The caller closes the body.
func ReadHTTPError(resp *http.Response, mode Mode, base string) *HTTPError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, DetailBytes))
	return NewHTTPError(resp, mode, base, body)
}

// NewHTTPError builds the HTTPError for resp whose body (or its start)
// the caller has read; the first DetailBytes are kept.
func NewHTTPError(resp *http.Response, mode Mode, base string, body []byte) *HTTPError {
	he := &HTTPError{
		Mode: mode, Base: base, StatusCode: resp.StatusCode,
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Location:   resp.Header.Get("Location"),
		Body:       Head(body, DetailBytes),
	}
	if resp.Request != nil {
		he.Method, he.Path = resp.Request.Method, resp.Request.URL.Path
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		he.ContentType = mt
	}
	he.Code, he.Message = errorText(he.Body, he.ContentType)
	return he
}

// ErrorText is the one-line reason in an error body (see errorText), for
// people: "" when there is none.
func ErrorText(body []byte, contentType string) string {
	code, msg := errorText(body, contentType)
	return cmp.Or(msg, code)
}

// errorText finds the one-line reason in an error body: synctray's
// {"error":{"code","message"}}, the common {"error":"..."},
// {"message":"..."}, RFC 9457's {"title","detail"}, or the first line of
// a text body. HTML gives nothing: its summary is the status.
func errorText(body []byte, contentType string) (code, message string) {
	var b struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Title   string          `json:"title"`
		Detail  string          `json:"detail"`
	}
	if json.Unmarshal(body, &b) == nil {
		var nested struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var flat string
		switch {
		case json.Unmarshal(b.Error, &nested) == nil && (nested.Code != "" || nested.Message != ""):
			return Line(nested.Code), Line(nested.Message)
		case json.Unmarshal(b.Error, &flat) == nil && flat != "":
			return "", Line(flat)
		case b.Message != "":
			return "", Line(b.Message)
		case b.Detail != "":
			return "", Line(b.Detail)
		case b.Title != "":
			return "", Line(b.Title)
		}
	}
	if contentType == "text/html" || looksLikeHTML(string(body)) {
		return "", ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return "", Line(first)
}

// Kind classifies the answer: by its status in its mode, except that in
// V1 mode a batch refusal that is not a JSON error (a web server's HTML
// "400 Bad Request") means the upstream does not speak the protocol; it
// is not a reason to fail actions one by one.
func (e *HTTPError) Kind() Kind {
	k := OfStatus(e.Mode, e.StatusCode)
	if k == Poison && e.ContentType != "application/json" {
		return Protocol
	}
	return k
}

// HTTPStatus is the status the upstream answered.
func (e *HTTPError) HTTPStatus() int { return e.StatusCode }

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: upstream answered %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// status is "501 Not Implemented" or "599".
func status(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// Summary is the one line people see for this answer.
func (e *HTTPError) Summary() string {
	reason := ""
	if e.Message != "" {
		reason = ": " + e.Message
	} else if e.Code != "" {
		reason = ": " + e.Code
	}
	switch e.Kind() {
	case Unauthorized:
		return fmt.Sprintf("Upstream refused the token (%s)%s", status(e.StatusCode), reason)
	case Protocol:
		return e.notProtocol(fmt.Sprintf("%s %s answered %s", e.Method, e.Path, e.describeAnswer()))
	case Transient:
		if e.StatusCode == http.StatusTooManyRequests {
			return "Upstream asked to slow down (429 Too Many Requests)" + reason
		}
		return "Upstream is unavailable (" + status(e.StatusCode) + ")" + reason
	case Redirect:
		return fmt.Sprintf("Upstream redirected to %s (%d), which is not followed", e.Location, e.StatusCode)
	case Busy:
		return "Upstream is still processing a request with this key (409)" + reason
	}
	return "Upstream refused it (" + status(e.StatusCode) + ")" + reason
}

func (e *HTTPError) notProtocol(what string) string {
	proto := e.Protocol
	if proto == "" {
		proto = "the protocol"
	}
	return fmt.Sprintf("%s does not speak %s (%s)", e.Base, proto, what)
}

// describeAnswer is "501 text/html" or "404".
func (e *HTTPError) describeAnswer() string {
	s := strconv.Itoa(e.StatusCode)
	if e.ContentType != "" {
		s += " " + e.ContentType
	}
	return s
}

// Detail is everything kept about the answer: status, content type and
// the first DetailBytes of the body.
func (e *HTTPError) Detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%s → %s", e.Method, origin(e.Base), e.Path, status(e.StatusCode))
	if e.ContentType != "" {
		fmt.Fprintf(&b, " (%s)", e.ContentType)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", Retry-After %s", e.RetryAfter)
	}
	if e.Location != "" {
		fmt.Fprintf(&b, ", Location %s", e.Location)
	}
	if len(e.Body) > 0 {
		b.WriteString("\n")
		b.WriteString(strings.ToValidUTF8(string(e.Body), "\uFFFD"))
	}
	return b.String()
}

// origin is base's scheme and host: Path is the whole request path, the
// base's own prefix included.
func origin(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return base
	}
	return u.Scheme + "://" + u.Host
}

// ProtocolError is a success answer that breaks the protocol: not JSON,
// the wrong shape, results for other keys, an unknown result status, or
// larger than the client reads.
type ProtocolError struct {
	Protocol    string // "synctray protocol v1"
	Base        string
	Method      string
	Path        string
	StatusCode  int
	ContentType string
	Reason      string // what is wrong, e.g. `result status "ok" is unknown`
	Body        []byte // the answer's first DetailBytes
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%s %s: answer breaks %s: %s", e.Method, e.Path, e.Protocol, e.Reason)
}

// Summary is the one line people see.
func (e *ProtocolError) Summary() string {
	ans := strconv.Itoa(e.StatusCode)
	if e.ContentType != "" {
		ans += " " + e.ContentType
	}
	return fmt.Sprintf("%s does not speak %s (%s %s answered %s: %s)", e.Base, e.Protocol, e.Method, e.Path, ans, e.Reason)
}

// Detail is everything kept about the answer.
func (e *ProtocolError) Detail() string {
	return fmt.Sprintf("%s %s%s → %s (%s): %s\n%s", e.Method, origin(e.Base), e.Path, status(e.StatusCode), e.ContentType,
		e.Reason, strings.ToValidUTF8(string(e.Body), "\uFFFD"))
}

// Detail is what is kept about err on an action's history: the full
// answer for upstream answers, the error text otherwise.
func Detail(err error) string {
	if err == nil {
		return ""
	}
	if d, ok := err.(interface{ Detail() string }); ok {
		return d.Detail()
	}
	var he *HTTPError
	var pe *ProtocolError
	switch {
	case errors.As(err, &pe):
		return pe.Detail()
	case errors.As(err, &he):
		return he.Detail()
	}
	return err.Error()
}

// ParseRetryAfter reads a Retry-After value (seconds or an HTTP date)
// relative to now; 0 when absent or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
