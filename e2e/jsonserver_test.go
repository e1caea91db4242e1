package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
)

// jsonServerBin is json-server 0.17.4 as .ci/node/package-lock.json pins
// it, installed by `make deps` and .ci/run (jsonServerInstall).
const (
	jsonServerBin     = "../.ci/node/node_modules/json-server/lib/cli/bin.js"
	jsonServerInstall = "npm ci --no-audit --no-fund --prefix .ci/node"
)

// jsonServer is a json-server (a REST backend from npm, not written by
// this project) run as a child process on a fixed port, over a db.json of
// its own, so that it can be stopped and started again on the same URL.
type jsonServer struct {
	t    testing.TB
	URL  string // http://127.0.0.1:PORT
	addr string
	db   string // its db.json

	mu  sync.Mutex
	cmd *exec.Cmd
	log bytes.Buffer // its stdout and stderr, over every run
}

// startJSONServer copies seed to a temporary db.json and starts
// json-server on it; it is killed when the test ends.
func startJSONServer(t testing.TB, seed string) *jsonServer {
	t.Helper()
	if _, err := os.Stat(jsonServerBin); err != nil {
		t.Fatalf("json-server is required for this test and is not installed (%v): run `make node-deps` or `%s` at the repository root", err, jsonServerInstall)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for json-server: %v (apt-get install nodejs npm)", err)
	}
	b, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	s := &jsonServer{t: t, addr: testsupport.FreeAddr(t), db: filepath.Join(t.TempDir(), "db.json")}
	s.URL = "http://" + s.addr
	if err := os.WriteFile(s.db, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("json-server's log:\n%s", s.output())
		}
	})
	s.start()
	return s
}

// start runs json-server and waits until it answers GET /todos.
func (s *jsonServer) start() {
	s.t.Helper()
	bin, err := filepath.Abs(jsonServerBin)
	if err != nil {
		s.t.Fatal(err)
	}
	_, port, _ := strings.Cut(s.addr, ":")
	cmd := exec.Command("node", bin, "--host", "127.0.0.1", "--port", port, filepath.Base(s.db))
	cmd.Dir = filepath.Dir(s.db)
	cmd.Stdout, cmd.Stderr = lockedWriter{&s.mu, &s.log}, lockedWriter{&s.mu, &s.log}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start json-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	ok := poll(func() bool {
		resp, err := http.Get(s.URL + "/todos")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		s.t.Fatalf("json-server did not answer on %s within %s; its log:\n%s", s.URL, wait, s.output())
	}
}

// stop kills json-server and waits until it is gone and its port closed.
func (s *jsonServer) stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	poll(func() bool {
		resp, err := http.Get(s.URL + "/todos")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
}

func (s *jsonServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// ansi matches the colour codes of json-server's request log.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// requestLine matches one line of the request log: "POST /todos 201 ...".
var requestLine = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) (\d{3}) `)

// writes returns the writes json-server logged, as "METHOD /path STATUS",
// in the order it handled them, over all its runs.
func (s *jsonServer) writes() []string {
	var out []string
	for _, line := range strings.Split(ansi.ReplaceAllString(s.output(), ""), "\n") {
		m := requestLine.FindStringSubmatch(strings.TrimSpace(line))
		if m != nil && m[1] != "GET" && m[1] != "HEAD" {
			out = append(out, m[1]+" "+m[2]+" "+m[3])
		}
	}
	return out
}

// todo is an item of the example app as json-server stores it.
type todo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

// todos reads db.json as json-server last wrote it (it writes the file on
// every change), which works with json-server stopped too.
func (s *jsonServer) todos() []todo {
	s.t.Helper()
	b, err := os.ReadFile(s.db)
	if err != nil {
		s.t.Fatal(err)
	}
	var db struct {
		Todos []todo `json:"todos"`
	}
	if err := json.Unmarshal(b, &db); err != nil {
		s.t.Fatalf("json-server's db.json: %v\n%s", err, b)
	}
	return db.Todos
}

// get returns json-server's own answer to GET /todos.
func (s *jsonServer) get() []todo {
	s.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.URL + "/todos")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []todo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		s.t.Fatal(err)
	}
	return list
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b == nil {
		return 0, errors.New("closed")
	}
	return w.b.Write(p)
}
