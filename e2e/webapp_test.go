package e2e

// The web app's answers to issue 9, items 7–10: what Sync now, Retry and
// Cancel did, the history kept for a reload while the host is down, a
// browser that is not signed in, the Work offline switch, the Ctrl+Enter
// hint, and the order of messages created in the same millisecond.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
	"synctray/upstream"
)

// waitResult waits until the on-screen result line shows a finished
// result (not "Syncing…") and returns its text.
func (e *env) waitResult(what string) string {
	e.t.Helper()
	e.waitJS(what, `(() => { const r = document.getElementById('result');
		return !r.hidden && r.dataset.kind !== 'busy' && r.offsetHeight > 0; })()`)
	return e.text("#result")
}

// clearResult hides the result line, so that the next one is new.
func (e *env) clearResult() {
	e.t.Helper()
	eval[chromedp.Void](e, `(() => { const r = document.getElementById('result'); r.hidden = true; r.textContent = ''; })()`)
}

// checkOneLine fails when text looks like a raw transport error or says
// the same thing twice.
func checkOneLine(t testing.TB, where, text string) {
	t.Helper()
	low := strings.ToLower(text)
	for _, bad := range []string{"dial tcp", "connection refused", "failed to fetch", "sync stopped: sync stopped", "`"} {
		if strings.Contains(low, bad) {
			t.Errorf("%s = %q, has %q", where, text, bad)
		}
	}
}

func TestSyncFeedback(t *testing.T) {
	t.Run("Sync now shows how many messages it sent", func(t *testing.T) {
		e := newEnv(t, options{})
		e.setWorkOffline(true) // the host keeps them until Sync now
		var keys []string
		for i := range 3 {
			keys = append(keys, e.send(fmt.Sprintf("held on the host %d", i)))
		}
		e.waitShown("host", keys...)
		e.do(chromedp.Click(chromedp.ID("sync-now")))
		if got := e.waitResult("the Sync now result"); got != "3 sent" {
			t.Fatalf("result = %q, want %q", got, "3 sent")
		}
		e.waitApplied(keys...)
		if got := e.text("#announce"); !strings.Contains(got, "3 sent") {
			t.Errorf("aria-live = %q, want it to say 3 sent", got)
		}
	})

	t.Run("upstream down: the host's line and when it retries, never a transport error", func(t *testing.T) {
		e := newEnv(t, options{})
		e.upServer.SetFaults(upstream.Faults{Down: true})
		key := e.send("waits for the upstream")
		e.waitShown("host", key)
		e.do(chromedp.Click(chromedp.ID("sync-now")))
		got := e.waitResult("the Sync now result")
		_, body := e.hostAPI("GET", "/api/status", "")
		var st struct {
			NextAttempt *time.Time `json:"next_attempt"`
			LastError   string     `json:"last_error"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^Upstream .+ — will retry at \d{1,2}:\d{2}`).MatchString(got) || st.NextAttempt == nil {
			t.Fatalf("result = %q (status next_attempt %v), want the host's line and \"— will retry at HH:MM\"", got, st.NextAttempt)
		}
		checkOneLine(t, "result", got)
		announced := e.text("#announce")
		checkOneLine(t, "aria-live", announced)
		if !strings.Contains(announced, got) {
			t.Errorf("aria-live = %q, want the same words as the screen: %q", announced, got)
		}
	})

	t.Run("blocked: Sync blocked and the host's problem", func(t *testing.T) {
		e := newEnv(t, options{upstreamToken: "not-the-hosts"})
		key := e.send("the upstream will not take it")
		e.waitShown("host", key)
		e.waitJS("the pill says blocked", `document.getElementById('conn').dataset.state === 'blocked'`)
		e.do(chromedp.Click(chromedp.ID("sync-now")))
		got := e.waitResult("the Sync now result")
		_, body := e.hostAPI("GET", "/api/status", "")
		var st struct {
			State   string                   `json:"state"`
			Problem struct{ Message string } `json:"problem"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if want := "Sync blocked: " + st.Problem.Message; st.State != "blocked" || got != want {
			t.Fatalf("result = %q (host state %q), want %q", got, st.State, want)
		}
		checkOneLine(t, "result", got)
	})

	t.Run("Retry on a refused message says it is queued again", func(t *testing.T) {
		e := newEnv(t, options{})
		key := testsupport.NewKey()
		if code, body := e.hostAPI("POST", "/api/actions", `{"type":"message","payload":{"text":"too rude","_reject":"message too rude"}}`, "Idempotency-Key", key); code/100 != 2 {
			t.Fatalf("enqueue: %d %s", code, body)
		}
		e.waitShown("failed", key)
		e.do(clickIn(key, "Retry"))
		if got := e.waitResult("the Retry result"); !strings.HasPrefix(got, "Queued again") {
			t.Fatalf("result = %q, want it to say the message is queued again", got)
		}
	})
}

func TestReloadWhileHostDown(t *testing.T) {
	e := newEnv(t, options{})
	mine := e.send("sent before the host went away")
	e.waitShown("sent", mine)
	other := testsupport.NewKey()
	if _, err := e.upClient.Send(t.Context(), []upstream.Action{{
		Key: other, Type: "message", Payload: json.RawMessage(`{"text":"from another device"}`), CreatedAt: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
	e.waitShown("other", other)
	if got := eval[string](e, `document.body.dataset.refresh`); got != "poll" {
		t.Fatalf("refresh = %q, want poll: this test is about normal use, not Periodic Sync", got)
	}
	// Normal use: the page loads its data again (a reload, as a poll would),
	// and the worker keeps the answers it passes through.
	e.reload()
	e.waitShown("other", other)
	e.waitJS("the worker kept the messages and actions", `caches.open('synctray-data').then(async (c) => {
		const m = await c.match('/api/messages?limit=100'); const a = await c.match('/api/actions?limit=200');
		return !!m && !!a && (await m.json()).messages.some((x) => x.key === '`+other+`') &&
			(await a.json()).actions.some((x) => x.key === '`+mine+`'); })`)

	e.stopHost()
	e.reload()
	e.waitJS("the page says the host is unreachable", `document.getElementById('conn').dataset.state === 'host-down'`)
	e.waitShown("sent", mine)
	e.waitShown("other", other)
	e.waitJS("the page says how old the list is", `/^Offline — showing messages from \d{1,2}:\d{2}/.test(document.getElementById('data-note').textContent)`)
}

func TestNotSignedIn(t *testing.T) {
	e := newEnv(t, options{})
	// A browser profile without the session cookie.
	ctx, cancel := chromedp.NewContext(e.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.origin+"/")); err != nil {
		t.Fatal(err)
	}
	e.waitJSIn(ctx, "the app started", `document.documentElement.dataset.ready === 'true'`)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signed-out page: pill %q, notice %q", evalIn[string](e, ctx, `document.getElementById('conn').outerHTML`), evalIn[string](e, ctx, `document.getElementById('notice').outerHTML`))
		}
	})
	e.waitJSIn(ctx, "the pill says not signed in", `document.getElementById('conn').dataset.state === 'signed-out'`)
	if got := evalIn[string](e, ctx, `document.getElementById('conn').textContent`); got != "Not signed in" {
		t.Fatalf("pill = %q, want Not signed in", got)
	}
	e.waitJSIn(ctx, "the sign-in notice", `!document.getElementById('notice').hidden`)
	notice := evalIn[string](e, ctx, `document.getElementById('notice').textContent`)
	if !strings.Contains(notice, "Run synctray open (or use the tray's Open synctray) to sign in") || strings.Contains(notice, "`") {
		t.Fatalf("notice = %q, want: Run synctray open (or use the tray's Open synctray) to sign in, without backticks", notice)
	}
	if codes := evalIn[[]string](e, ctx, `[...document.querySelectorAll('#notice code')].map((c) => c.textContent)`); !slices.Equal(codes, []string{"synctray open"}) {
		t.Fatalf("notice code elements = %q, want [synctray open]", codes)
	}

	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("text"), "written before signing in"),
		chromedp.Click(chromedp.CSS(`#compose button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	e.waitJSIn(ctx, "the message is listed", `[...document.querySelectorAll('#messages .msg-text')].some((p) => p.textContent === 'written before signing in')`)
	time.Sleep(300 * time.Millisecond) // let it settle
	got := evalIn[shown](e, ctx, `(() => { const li = document.querySelector('#messages li');
		return { key: li.dataset.key, state: li.dataset.state, text: li.querySelector('.msg-text').textContent,
			reason: (li.querySelector('.reason') || {}).textContent || '' }; })()`)
	if got.State == "failed" || strings.Contains(got.Reason, "`") {
		t.Fatalf("message shown as %+v, want it kept (not failed) and no backticks in the reason", got)
	}
	if got.State != "browser" || !strings.Contains(got.Reason, "sign in") {
		t.Fatalf("message shown as %+v, want it queued in this browser until sign-in", got)
	}
}

func TestComposeAndQueueControls(t *testing.T) {
	e := newEnv(t, options{proxy: true})

	t.Run("the Send button says Ctrl+Enter sends, next to it", func(t *testing.T) {
		e.in(t)
		hint := eval[struct {
			Text    string  `json:"text"`
			Visible bool    `json:"visible"`
			Gap     float64 `json:"gap"`
		}](e, `(() => { const b = document.querySelector('#compose button[type="submit"]');
			const h = document.getElementById(b.getAttribute('aria-describedby'));
			const br = b.getBoundingClientRect(), hr = h.getBoundingClientRect();
			return { text: h.textContent, visible: hr.width > 0 && hr.height > 0,
				gap: Math.max(0, hr.top - br.bottom, br.top - hr.bottom, hr.left - br.right, br.left - hr.right) }; })()`)
		if hint.Text != "Ctrl+Enter sends" || !hint.Visible || hint.Gap > 24 {
			t.Fatalf("Send's description = %+v, want a visible \"Ctrl+Enter sends\" within 24 px of the button", hint)
		}
	})

	t.Run("the Work offline switch sets the host's mode and follows it", func(t *testing.T) {
		e.in(t)
		sw := eval[struct {
			Role    string `json:"role"`
			Name    string `json:"name"`
			Checked bool   `json:"checked"`
		}](e, `(() => { const s = document.getElementById('work-offline');
			return { role: s.getAttribute('role'), name: s.labels[0].textContent.trim(), checked: s.checked }; })()`)
		if sw.Role != "switch" || sw.Name != "Work offline" || sw.Checked {
			t.Fatalf("switch = %+v, want an unchecked switch named Work offline", sw)
		}
		e.waitJS("the switch is usable", `!document.getElementById('work-offline').disabled`)
		e.do(chromedp.Click(chromedp.ID("work-offline")))
		ok := poll(func() bool {
			_, body := e.hostAPI("GET", "/api/status", "")
			return strings.Contains(string(body), `"work_offline":true`)
		})
		if !ok {
			t.Fatal("the host is not working offline after the switch was turned on")
		}
		e.waitJS("the pill says working offline", `document.getElementById('conn').dataset.state === 'work-offline'`)
		e.setWorkOffline(false) // the tray turns it off
		e.waitJS("the switch follows the host", `!document.getElementById('work-offline').checked`)
		e.setWorkOffline(true)
		e.waitJS("the switch follows the host", `document.getElementById('work-offline').checked`)
	})

	t.Run("Cancel on a host-queued message cancels it; a 409 shows the host's reason", func(t *testing.T) {
		e.in(t)
		e.setWorkOffline(true)
		key := e.send("cancel me")
		e.waitShown("host", key)
		e.clearResult()
		e.do(clickIn(key, "Cancel"))
		e.waitShown("cancelled", key)
		if got := e.waitResult("the Cancel result"); !strings.HasPrefix(got, "Cancelled") {
			t.Fatalf("result = %q, want Cancelled", got)
		}

		again := e.send("cancelled elsewhere first")
		e.waitShown("host", again)
		e.clearResult()
		e.proxy.cancelTwice.Store(true)
		defer e.proxy.cancelTwice.Store(false)
		e.do(clickIn(again, "Cancel"))
		got := e.waitResult("the Cancel result")
		var id int64
		for _, a := range e.hostActions() {
			if a.Key == again {
				id = a.ID
			}
		}
		code, body := e.hostAPI("POST", fmt.Sprintf("/api/actions/%d/cancel", id), "")
		var herr struct{ Error struct{ Message string } }
		json.Unmarshal(body, &herr)
		if code != 409 || herr.Error.Message == "" || got != "Cannot cancel: "+herr.Error.Message {
			t.Fatalf("result = %q, want \"Cannot cancel: \" and the host's 409 message (%d %s)", got, code, body)
		}
		e.waitShown("cancelled", again)
	})

	t.Run("messages created in the same millisecond are listed newest first by the host's id", func(t *testing.T) {
		e.in(t)
		e.setWorkOffline(true)
		// Three UUIDv7 keys of one millisecond whose random parts sort
		// against the order they were enqueued in.
		ms := fmt.Sprintf("%012x", time.Now().UnixMilli())
		prefix := ms[:8] + "-" + ms[8:] + "-7"
		keys := []string{prefix + "fff-bfff-ffffffffffff", prefix + "888-8888-888888888888", prefix + "000-8000-000000000000"}
		for i, k := range keys {
			if code, body := e.hostAPI("POST", "/api/actions", fmt.Sprintf(`{"type":"message","payload":{"text":"same ms %d"}}`, i), "Idempotency-Key", k); code/100 != 2 {
				t.Fatalf("enqueue: %d %s", code, body)
			}
		}
		e.waitShown("host", keys...)
		var order []string
		for _, m := range e.messages() {
			if slices.Contains(keys, m.Key) {
				order = append(order, m.Key)
			}
		}
		if want := []string{keys[2], keys[1], keys[0]}; !slices.Equal(order, want) {
			t.Fatalf("list order = %q, want newest (highest host id) first: %q", order, want)
		}
	})
}

// hostActions lists the host's actions, newest first.
func (e *env) hostActions() []struct {
	ID  int64  `json:"id"`
	Key string `json:"key"`
} {
	e.t.Helper()
	_, body := e.hostAPI("GET", "/api/actions?limit=200", "")
	var res struct {
		Actions []struct {
			ID  int64  `json:"id"`
			Key string `json:"key"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		e.t.Fatal(err)
	}
	return res.Actions
}
