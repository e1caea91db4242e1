package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
	"synctray/upstream"
)

func TestPush(t *testing.T) {
	t.Run("a push message shows a notification and updates the open page", func(t *testing.T) {
		e := newEnv(t, options{query: "?pushtimeout=300", grant: []string{"notifications"}})
		regID := e.registrationID()
		key := testsupport.NewKey()
		data, _ := json.Marshal(map[string]any{
			"kind": "message", "title": "New message", "body": "hello from carol", "tag": "message", "url": "/", "count": 1,
			"event": map[string]any{"seq": 7, "kind": "message", "message": map[string]any{
				"cursor": 41, "key": key, "type": "message", "payload": map[string]string{"text": "hello from carol"},
				"applied_at": time.Now().UTC().Format(time.RFC3339Nano),
			}},
		})
		if _, err := chromedp.Call(e.ctx, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
			Origin: e.origin, RegistrationID: regID, Data: string(data),
		}); err != nil {
			t.Fatalf("deliver push: %v", err)
		}

		// The worker tells the page once showNotification has resolved. Ask
		// for the notifications only then: Chromium drops a notification
		// that getNotifications() reads before it is displayed.
		e.waitShown("other", key)
		if got := e.shownAs(key).Text; got != "hello from carol" {
			t.Fatalf("page shows %q, want the pushed message", got)
		}
		type note struct{ Title, Body, Tag, URL string }
		notes := eval[[]note](e, `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) =>
			ns.map((n) => ({Title: n.title, Body: n.body, Tag: n.tag, URL: n.data && n.data.url})))`)
		if len(notes) != 1 || notes[0] != (note{"New message", "hello from carol", "message", "/"}) {
			t.Fatalf("notifications = %+v, want one titled New message with the body, tag and url", notes)
		}
	})

	t.Run("PushManager.subscribe never settles here: the app says push is unavailable and live updates come over /ws", func(t *testing.T) {
		e := newEnv(t, options{query: "?pushtimeout=300", grant: []string{"notifications"}})
		e.waitJS("the push status settles", `document.getElementById('push-status').dataset.state === 'unavailable'`)
		if got := e.text("#push-status"); !strings.HasPrefix(got, "Push unavailable: live updates while open, desktop notifications from the tray") {
			t.Fatalf("push status = %q, want it to say push is unavailable", got)
		}

		// Another client posts straight to the upstream.
		key := testsupport.NewKey()
		if _, err := e.upClient.Send(t.Context(), []upstream.Action{{
			Key: key, Type: "message", Payload: json.RawMessage(`{"text":"from another device"}`), CreatedAt: time.Now(),
		}}); err != nil {
			t.Fatal(err)
		}
		e.waitShown("other", key)
		if got := e.shownAs(key).Text; got != "from another device" {
			t.Fatalf("page shows %q, want the other client's message", got)
		}
	})
}
