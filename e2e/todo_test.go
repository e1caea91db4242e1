package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The example app, examples/todo, served by --app as a developer would,
// against json-server (npm), a REST backend this project did not write.
const (
	todoAppDir = "../examples/todo"
	todoSeed   = "../examples/todo/db.json"
)

// seedTodos is what examples/todo/db.json holds.
var seedTodos = []todo{
	{ID: "seed-1", Title: "Try synctray"},
	{ID: "seed-2", Title: "Stop the backend and keep working"},
}

// newTodoEnv starts json-server on a copy of the seed, and the host in
// HTTP mode serving examples/todo in front of it, with the page open.
func newTodoEnv(t *testing.T) (*env, *jsonServer) {
	t.Helper()
	js := startJSONServer(t, todoSeed)
	dir, err := filepath.Abs(todoAppDir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, options{appDir: dir, upstreamURL: js.URL, width: 390, height: 844, mobile: true})
	return e, js
}

// item is a todo as the page shows it.
type item struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Done    bool   `json:"done"`
	State   string `json:"state"` // queued | syncing | synced | failed
	Op      string `json:"op"`    // the pending write's method, if any
	Where   string `json:"where"` // "browser": queued in the browser
	Deleted bool   `json:"deleted"`
	Label   string `json:"label"`
}

func (e *env) items() []item {
	e.t.Helper()
	return eval[[]item](e, `[...document.querySelectorAll('#todos li')].map((li) => ({
		id: li.dataset.id, title: li.querySelector('.title').textContent, done: li.querySelector('.done').checked,
		state: li.dataset.state, op: li.dataset.op || '', where: li.dataset.where || '',
		deleted: li.classList.contains('is-deleted'), label: li.querySelector('.state').textContent }))`)
}

// waitItems waits until ok holds for what the page shows.
func (e *env) waitItems(what string, ok func([]item) bool) []item {
	e.t.Helper()
	var got []item
	if !poll(func() bool { got = e.items(); return ok(got) }) {
		e.t.Fatalf("timed out waiting for the page to show %s; it shows %+v", what, got)
	}
	return got
}

// showsExactly: the page shows these todos, in this order, all synced.
func showsExactly(want []todo) func([]item) bool {
	return func(got []item) bool {
		if len(got) != len(want) {
			return false
		}
		for i, w := range want {
			g := got[i]
			if g.ID != w.ID || g.Title != w.Title || g.Done != w.Done || g.State != "synced" || g.Deleted {
				return false
			}
		}
		return true
	}
}

func find(items []item, id string) item {
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	return item{}
}

// addTodo types a title, presses Add and returns the new item's id.
func (e *env) addTodo(title string) string {
	e.t.Helper()
	before := e.items()
	e.do(
		chromedp.SetValue(chromedp.ID("new-title"), title),
		chromedp.Click(chromedp.CSS(`#new button[type="submit"]`)),
	)
	got := e.waitItems("the new todo "+title, func(got []item) bool { return len(got) == len(before)+1 })
	it := got[len(got)-1]
	if it.Title != title || it.ID == "" {
		e.t.Fatalf("after adding %q the page shows %+v last", title, it)
	}
	return it.ID
}

func inItem(id, sel string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`#todos li[data-id=%q] %s`, id, sel))
}

func (e *env) editTodo(id, title string) {
	e.t.Helper()
	e.do(chromedp.Click(inItem(id, ".edit-btn")))
	e.waitJS("the edit box of "+id, fmt.Sprintf(`!document.querySelector('#todos li[data-id=%q] .edit').hidden`, id))
	e.do(chromedp.SetValue(inItem(id, ".edit-title"), title), chromedp.Click(inItem(id, ".save")))
	e.waitItems("the new title of "+id, func(got []item) bool { return find(got, id).Title == title })
}

func (e *env) tickTodo(id string) {
	e.t.Helper()
	e.do(chromedp.Click(inItem(id, ".done")))
	e.waitItems(id+" ticked", func(got []item) bool { return find(got, id).Done })
}

func (e *env) deleteTodo(id string) {
	e.t.Helper()
	e.do(chromedp.Click(inItem(id, ".delete")))
	e.waitItems(id+" marked deleted", func(got []item) bool { return find(got, id).Deleted })
}

func TestTodoExample(t *testing.T) {
	t.Run("json-server down: create, edit (PUT), tick (PATCH), delete are queued on the host and reach json-server once each, in order", func(t *testing.T) {
		e, js := newTodoEnv(t)
		e.waitItems("the seed list from json-server", showsExactly(seedTodos))
		e.waitJS("the host's status online", `document.getElementById('conn').dataset.state === 'online'`)

		js.stop()
		a := e.addTodo("buy milk")
		// The first write tells the host the backend is down, and the page
		// says so above the list: a longer status, which moves the list
		// down. Wait for it, as a user would see it, so that the clicks
		// below land where they aim (a click is a point on the screen).
		e.waitJS("the host's status offline, with the problem", `(() => { const c = document.getElementById('conn');
			return c.dataset.state === 'offline' && c.textContent.startsWith('Offline: ') && c.textContent.length > 'Offline: '.length + 10; })()`)
		b := e.addTodo("call mum")
		c := e.addTodo("water the plants")
		e.editTodo(b, "call mum and dad")
		e.tickTodo(a)
		e.deleteTodo(c)

		// Six writes, all queued (none synced, none failed), shown so.
		e.waitJS("six writes pending", `document.documentElement.dataset.pending === '6'`)
		got := e.items()
		for _, id := range []string{a, b, c} {
			if it := find(got, id); it.State != "queued" && it.State != "syncing" {
				t.Fatalf("item %s shows %+v with json-server down, want it queued", id, it)
			}
		}
		if it := find(got, c); !it.Deleted || it.Op != "DELETE" || !strings.Contains(it.Label, "deleting") {
			t.Fatalf("the deleted item shows %+v, want it marked deleting, queued", it)
		}
		if it := find(got, b); it.Title != "call mum and dad" || it.Op != "PUT" {
			t.Fatalf("the edited item shows %+v, want its new title and a queued PUT", it)
		}
		if it := find(got, a); !it.Done || it.Op != "PATCH" {
			t.Fatalf("the ticked item shows %+v, want it done with a queued PATCH", it)
		}
		// The page hands its writes to the host one at a time, in order: wait
		// until the host holds all six.
		held := func() int {
			return eval[int](e, `fetch('/api/status').then((r) => r.json()).then((s) => (s.counts.queued || 0) + (s.counts.syncing || 0))`)
		}
		if !poll(func() bool { return held() == 6 }) {
			t.Fatalf("the host holds %d writes queued, want 6", held())
		}
		if w := js.writes(); len(w) != 0 {
			t.Fatalf("json-server logged writes %q while it was down", w)
		}

		js.start()
		want := []todo{seedTodos[0], seedTodos[1], {ID: a, Title: "buy milk", Done: true}, {ID: b, Title: "call mum and dad"}}
		e.waitItems("every write synced and the final list", showsExactly(want))
		e.waitJS("no write pending", `document.documentElement.dataset.pending === '0'`)
		e.waitJS("the host's status online again", `document.getElementById('conn').dataset.state === 'online'`)

		wantWrites := []string{
			"POST /todos 201", "POST /todos 201", "POST /todos 201",
			"PUT /todos/" + b + " 200", "PATCH /todos/" + a + " 200", "DELETE /todos/" + c + " 200",
		}
		if w := js.writes(); !slices.Equal(w, wantWrites) {
			t.Fatalf("json-server handled %q, want exactly %q (each once, in order)", w, wantWrites)
		}
		if got := js.get(); !slices.Equal(got, want) {
			t.Fatalf("json-server's GET /todos = %+v, want %+v", got, want)
		}
		if got := js.todos(); !slices.Equal(got, want) {
			t.Fatalf("json-server's db.json = %+v, want %+v", got, want)
		}
	})

	t.Run("host down: a create is queued in the browser by sw-sync.js, shown so, and reaches json-server once when the host is back", func(t *testing.T) {
		e, js := newTodoEnv(t)
		e.waitItems("the seed list from json-server", showsExactly(seedTodos))

		e.stopHost()
		// The page finds out at its next status poll and says so above the
		// list (which moves it): wait for that before clicking Add.
		e.waitJS("the page says the host is not running", `document.getElementById('conn').dataset.state === 'host-down'`)
		id := e.addTodo("written with the host down")
		e.waitItems("the new todo queued in this browser", func(got []item) bool {
			it := find(got, id)
			return it.State == "queued" && it.Where == "browser" && it.Label == "queued in this browser"
		})
		q := e.swQueue()
		if len(q) != 1 || q[0].Method != "POST" || q[0].URL != e.origin+"/upstream/todos" || !strings.Contains(q[0].Body, `"id":"`+id+`"`) {
			t.Fatalf("the browser's queue = %+v, want the one POST of %s", q, id)
		}

		e.startHost()
		want := append(slices.Clone(seedTodos), todo{ID: id, Title: "written with the host down"})
		e.waitItems("the todo synced", showsExactly(want))
		e.waitJS("the page says online", `document.getElementById('conn').dataset.state === 'online'`)
		if !poll(func() bool { return len(e.swQueue()) == 0 }) {
			t.Fatalf("the browser's queue = %+v after the replay, want it empty", e.swQueue())
		}
		if w := js.writes(); !slices.Equal(w, []string{"POST /todos 201"}) {
			t.Fatalf("json-server handled %q, want the one POST, once", w)
		}
		if got := js.get(); !slices.Equal(got, want) {
			t.Fatalf("json-server's GET /todos = %+v, want %+v", got, want)
		}
	})

	t.Run("json-server down: a reload shows the list from the host's read cache and says it is offline", func(t *testing.T) {
		e, js := newTodoEnv(t)
		e.waitItems("the seed list from json-server", showsExactly(seedTodos))
		e.waitJS("the list read from the backend", `document.getElementById('data-note').hidden`)

		js.stop()
		e.reload()
		e.waitItems("the seed list from the host's cache", showsExactly(seedTodos))
		e.waitJS("the page says the list is an offline copy", `(() => { const n = document.getElementById('data-note');
			return !n.hidden && n.dataset.source === 'offline' && n.textContent.startsWith('Offline: the backend is not reachable'); })()`)
		hd := eval[map[string]string](e, `fetch('/upstream/todos').then((r) => ({status: String(r.status), cache: r.headers.get('Synctray-Cache') || '', age: r.headers.get('Age') || ''}))`)
		if hd["status"] != "200" || hd["cache"] != "offline" || hd["age"] == "" {
			t.Fatalf("GET /upstream/todos with json-server down = %v, want 200 from the host's cache (Synctray-Cache: offline, Age)", hd)
		}
	})
}
