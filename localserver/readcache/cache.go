// Package readcache is the host's read path to an HTTP upstream (design
// §12, issue 8): it owns GET and HEAD to /upstream/<path>, which it sends
// straight to the upstream with the host-held credentials, and cache.db,
// a SQLite file of the last good answer per URL (and per Vary'd request
// headers), which it serves, marked offline and with its Age, when the
// upstream cannot be reached. So an app opened offline shows the last data
// it saw.
//
// The cache is bounded: bodies over Options.MaxEntry are passed through and
// not stored, and the least recently used entries are evicted to keep the
// total under Options.MaxBytes. The SQLite copy is the source of truth; a
// small, bounded in-memory layer keeps the hottest entries decoded so that
// offline reads do not wait on SQLite.
//
// What is stored: answers 200 to GET, with a body of at most MaxEntry,
// unless the answer says Cache-Control: no-store or Vary: *. Answers
// marked private are stored (this is a private cache: one user's host).
// Answers marked no-cache or must-revalidate are stored and, when the
// upstream is unreachable, served anyway: showing the last data is the
// point of the cache, and the page can tell by Synctray-Cache: offline.
//
// Writes (POST, PUT, PATCH, DELETE) are not this package's: the host's
// outbox takes them before this handler; it answers them 405. Nor is the
// host's guard (Host, Origin, session): the host mounts Handler behind it.
package readcache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"synctray/internal/sqlitedb"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxEntry = 1 << 20
	DefaultHotBytes = 8 << 20
)

const (
	// maxVariants is the most entries kept per URL (one per combination
	// of Vary'd request header values); more evict the least recently
	// used of that URL, so a header that varies wildly cannot fill the
	// cache with one URL or make its lookup slow.
	maxVariants = 8
	// rowOverhead is what an entry counts against MaxBytes beside its
	// body, headers and key: SQLite's row and index overhead, roughly.
	rowOverhead = 64
	// flushAfter is how many pending uses start a background flush.
	flushAfter = 1024
	timeFormat = "2006-01-02T15:04:05.000000000Z"
)

// Options configure Open. Zero values are the documented defaults.
type Options struct {
	// MaxBytes bounds the stored entries in total (body, headers, URL and
	// a per-row overhead); the least recently used are evicted to make
	// room. The file itself can be somewhat larger (SQLite's free pages
	// and WAL). 0: DefaultMaxBytes (64 MiB).
	MaxBytes int64
	// MaxEntry is the largest body stored; larger answers are passed
	// through and not stored. 0: DefaultMaxEntry (1 MiB).
	MaxEntry int64
	// HotBytes bounds the in-memory copy of the most recently used
	// entries that serves reads before SQLite. 0: DefaultHotBytes
	// (8 MiB); negative: no in-memory copy.
	HotBytes int64
	// Now tells the time entries are stored and their Age; nil: time.Now.
	Now func() time.Time
	// Logger receives the cache's own problems (a failed background
	// write); nil: slog.Default().
	Logger *slog.Logger
}

// Stats describe what the cache holds.
type Stats struct {
	Entries int64 // stored answers
	Bytes   int64 // what they count against Options.MaxBytes
}

// Cache is the on-disk store of upstream answers. Create it with Open; it
// is safe for concurrent use.
type Cache struct {
	db       *sqlitedb.DB
	maxBytes int64
	maxEntry int64
	now      func() time.Time
	log      *slog.Logger
	hot      *hotLayer // nil: none

	// Reads prepared once (database/sql prepares them again on each
	// pooled connection as needed).
	variantsStmt *sql.Stmt
	entryStmt    *sql.Stmt

	// writeMu serialises write transactions and guards total.
	writeMu sync.Mutex
	total   int64

	// mu guards the LRU counter and the uses not yet written.
	mu      sync.Mutex
	seq     int64
	pending map[int64]int64 // entry id → its last use

	flushCh   chan struct{}
	done      chan struct{}
	flusher   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// entry is one stored answer.
type entry struct {
	id       int64
	url      string
	variant  []byte
	vary     []string
	header   http.Header
	body     []byte
	storedAt time.Time
	size     int64
}

// Open opens the cache file at path (the host's <data-dir>/cache.db),
// creating it with mode 0600 if needed, through internal/sqlitedb and its
// migrations. A file that is not a database or is damaged is only a cache:
// it is removed and made anew, with a warning in the log.
func Open(path string, o Options) (*Cache, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntry <= 0 {
		o.MaxEntry = DefaultMaxEntry
	}
	if o.HotBytes == 0 {
		o.HotBytes = DefaultHotBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: migrations})
	if err != nil && sqlitedb.IsCorrupt(err) {
		o.Logger.Warn("read cache: the cache file is damaged; starting an empty one", "path", path, "err", err)
		for _, p := range sqlitedb.Files(path) {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return nil, fmt.Errorf("read cache: remove damaged file: %w", rerr)
			}
		}
		db, err = sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: migrations})
	}
	if err != nil {
		return nil, fmt.Errorf("read cache: %w", err)
	}
	c := &Cache{
		db: db, maxBytes: o.MaxBytes, maxEntry: o.MaxEntry, now: o.Now, log: o.Logger,
		pending: make(map[int64]int64),
		flushCh: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if o.HotBytes > 0 {
		c.hot = newHotLayer(o.HotBytes)
	}
	// A cache entry lost in a power cut is fetched again: the cache does
	// not need an fsync per commit (WAL with synchronous=NORMAL stays
	// consistent). The writer is one long-lived connection.
	if _, err := db.W.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		db.Close()
		return nil, fmt.Errorf("read cache: set synchronous: %w", err)
	}
	if err := db.W.QueryRowContext(ctx, "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(used), 0) FROM entries").Scan(&c.total, &c.seq); err != nil {
		db.Close()
		return nil, fmt.Errorf("read cache: read totals: %w", err)
	}
	if c.variantsStmt, err = db.R.PrepareContext(ctx, "SELECT id, vary, variant FROM entries WHERE url = ?"); err == nil {
		c.entryStmt, err = db.R.PrepareContext(ctx, "SELECT header, body, stored_at, size FROM entries WHERE id = ?")
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read cache: prepare reads: %w", err)
	}
	c.flusher.Add(1)
	go c.flushLoop()
	return c, nil
}

// Close writes the pending uses and closes the file; it keeps the first
// error. The Cache must not be used after.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.flusher.Wait()
		err := c.flushUses(context.Background())
		c.closeErr = errors.Join(err, c.variantsStmt.Close(), c.entryStmt.Close(), c.db.Close())
		if c.closeErr != nil {
			c.closeErr = fmt.Errorf("read cache: close: %w", c.closeErr)
		}
	})
	return c.closeErr
}

// Stats counts what the cache file holds.
func (c *Cache) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	if err := c.db.R.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").Scan(&s.Entries, &s.Bytes); err != nil {
		return Stats{}, fmt.Errorf("read cache: stats: %w", err)
	}
	return s, nil
}

// lookup finds the entry stored for url whose Vary'd request headers have
// the values they have in h (the request as sent upstream); nil when none.
func (c *Cache) lookup(ctx context.Context, url string, h http.Header) (*entry, error) {
	if c.hot != nil {
		if e := c.hot.get(url, h); e != nil {
			c.use(e.id)
			return e, nil
		}
	}
	var gen uint64
	if c.hot != nil {
		gen = c.hot.generation()
	}
	e, err := c.read(ctx, url, h)
	if err != nil || e == nil {
		return nil, err
	}
	c.use(e.id)
	if c.hot != nil {
		c.hot.add(e, gen)
	}
	return e, nil
}

// read is lookup from SQLite.
func (c *Cache) read(ctx context.Context, url string, h http.Header) (*entry, error) {
	rows, err := c.variantsStmt.QueryContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("read cache: look up: %w", err)
	}
	defer rows.Close()
	e := &entry{url: url}
	found := false
	for rows.Next() {
		var vary string
		var variant []byte
		if err := rows.Scan(&e.id, &vary, &variant); err != nil {
			return nil, fmt.Errorf("read cache: look up: %w", err)
		}
		names := splitNames(vary)
		if want := variantOf(names, h); string(want) == string(variant) {
			e.vary, e.variant, found = names, variant, true
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cache: look up: %w", err)
	}
	rows.Close()
	if !found {
		return nil, nil
	}
	var header, storedAt string
	err = c.entryStmt.QueryRowContext(ctx, e.id).Scan(&header, &e.body, &storedAt, &e.size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // evicted meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("read cache: read entry: %w", err)
	}
	if err := json.Unmarshal([]byte(header), &e.header); err != nil {
		return nil, fmt.Errorf("read cache: read entry headers: %w", err)
	}
	if e.storedAt, err = time.Parse(timeFormat, storedAt); err != nil {
		return nil, fmt.Errorf("read cache: read entry time: %w", err)
	}
	return e, nil
}

// use records that entry id was just used, for the LRU order. Uses are
// written with the next store, in the background once many wait, and at
// Close; a crash loses only some of that order.
func (c *Cache) use(id int64) {
	c.mu.Lock()
	c.seq++
	c.pending[id] = c.seq
	n := len(c.pending)
	c.mu.Unlock()
	if n >= flushAfter {
		select {
		case c.flushCh <- struct{}{}:
		default:
		}
	}
}

func (c *Cache) nextSeq() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.seq
}

// takeUses hands over the pending uses; giveBackUses returns them after a
// failed write, keeping newer ones.
func (c *Cache) takeUses() map[int64]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	c.pending = make(map[int64]int64, len(p))
	return p
}

func (c *Cache) giveBackUses(p map[int64]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, s := range p {
		if s > c.pending[id] {
			c.pending[id] = s
		}
	}
}

func (c *Cache) flushLoop() {
	defer c.flusher.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.flushCh:
			if err := c.flushUses(context.Background()); err != nil {
				c.log.Warn("read cache: write uses", "err", err)
			}
		}
	}
}

// flushUses writes the pending uses in one transaction.
func (c *Cache) flushUses(ctx context.Context) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	uses := c.takeUses()
	if len(uses) == 0 {
		return nil
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error { return writeUses(ctx, tx, uses) })
	if err != nil {
		c.giveBackUses(uses)
		return fmt.Errorf("read cache: write uses: %w", err)
	}
	return nil
}

func writeUses(ctx context.Context, tx *sql.Tx, uses map[int64]int64) error {
	if len(uses) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, "UPDATE entries SET used = ? WHERE id = ?")
	if err != nil {
		return err
	}
	defer st.Close()
	for id, s := range uses {
		if _, err := st.ExecContext(ctx, s, id); err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in a write transaction; the caller holds writeMu.
func (c *Cache) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.db.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// entrySize is what e counts against MaxBytes.
func entrySize(e *entry, header []byte) int64 {
	return int64(len(e.body)+len(header)+len(e.url)+len(e.variant)) + rowOverhead
}

// store keeps e (url, variant, vary, header, body, storedAt set) in place
// of the entry with the same key, evicting the least recently used
// entries to stay under MaxBytes. An entry that cannot fit is not stored
// (stored false, no error).
func (c *Cache) store(ctx context.Context, e *entry) (stored bool, err error) {
	if int64(len(e.body)) > c.maxEntry {
		return false, nil
	}
	header, err := json.Marshal(e.header)
	if err != nil {
		return false, fmt.Errorf("read cache: store: %w", err)
	}
	e.size = entrySize(e, header)
	if e.size > c.maxBytes {
		return false, nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	uses := c.takeUses()
	var gone []int64
	freed := int64(0)
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		gone, freed = nil, 0
		if err := writeUses(ctx, tx, uses); err != nil {
			return err
		}
		// drop deletes the entries the query selects (id, size), in its
		// order, while enough holds (nil: all of them); n is how many.
		drop := func(enough func() bool, query string, args ...any) (n int, err error) {
			rows, err := tx.QueryContext(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			type row struct{ id, size int64 }
			var rs []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.size); err != nil {
					rows.Close()
					return 0, err
				}
				rs = append(rs, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, err
			}
			for _, r := range rs {
				if enough != nil && enough() {
					break
				}
				if _, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE id = ?", r.id); err != nil {
					return n, err
				}
				gone = append(gone, r.id)
				freed += r.size
				n++
			}
			return n, nil
		}
		// The same key, and the URL's other variants past the cap.
		if _, err := drop(nil, "SELECT id, size FROM entries WHERE url = ? AND variant = ?", e.url, e.variant); err != nil {
			return err
		}
		if _, err := drop(nil, "SELECT id, size FROM entries WHERE url = ? ORDER BY used DESC LIMIT -1 OFFSET ?", e.url, maxVariants-1); err != nil {
			return err
		}
		// Least recently used first, until the new entry fits.
		fits := func() bool { return c.total-freed+e.size <= c.maxBytes }
		for !fits() {
			n, err := drop(fits, "SELECT id, size FROM entries ORDER BY used LIMIT 32")
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		return tx.QueryRowContext(ctx,
			`INSERT INTO entries (url, variant, vary, header, body, size, stored_at, used)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			e.url, e.variant, strings.Join(e.vary, ","), string(header), e.body, e.size,
			e.storedAt.UTC().Format(timeFormat), c.nextSeq()).Scan(&e.id)
	})
	if err != nil {
		c.giveBackUses(uses)
		return false, fmt.Errorf("read cache: store: %w", err)
	}
	c.total += e.size - freed
	if c.hot != nil {
		c.hot.replace(gone, e)
	}
	return true, nil
}

// forget removes every entry stored for url (its resource is gone).
func (c *Cache) forget(ctx context.Context, url string) error {
	// Most such answers have nothing stored: look before taking the writer.
	var n int
	if err := c.db.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM entries WHERE url = ?", url).Scan(&n); err != nil {
		return fmt.Errorf("read cache: forget: %w", err)
	}
	if n == 0 {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var freed int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(size), 0) FROM entries WHERE url = ?", url).Scan(&freed); err != nil || freed == 0 {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE url = ?", url)
		return err
	})
	if err != nil {
		return fmt.Errorf("read cache: forget: %w", err)
	}
	c.total -= freed
	if c.hot != nil {
		c.hot.dropURL(url)
	}
	return nil
}

// splitNames parses the stored, comma-joined Vary names.
func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// varyNames are the request header names an answer's Vary values name,
// canonical, sorted and without repeats; star reports "Vary: *".
func varyNames(values []string) (names []string, star bool) {
	for _, v := range values {
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			switch {
			case n == "":
			case n == "*":
				return nil, true
			default:
				names = append(names, http.CanonicalHeaderKey(n))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// variantOf is the key part for the values h has for names: a SHA-256, so
// that values such as a host-held Authorization are not kept in the file.
func variantOf(names []string, h http.Header) []byte {
	s := sha256.New()
	for _, n := range names {
		s.Write([]byte(n))
		s.Write([]byte{0})
		for _, v := range h.Values(n) {
			s.Write([]byte(v))
			s.Write([]byte{0})
		}
		s.Write([]byte{1})
	}
	return s.Sum(nil)
}

// hotLayer keeps the most recently used entries in memory, at most max
// bytes of them. It is a copy: every change to SQLite updates or drops it,
// and an entry read from SQLite is added only if nothing was written
// since the read began (gen).
type hotLayer struct {
	mu    sync.Mutex
	max   int64
	size  int64
	gen   uint64
	lru   *list.List // of *entry, most recent first
	byID  map[int64]*list.Element
	byURL map[string][]*list.Element
}

func newHotLayer(max int64) *hotLayer {
	return &hotLayer{max: max, lru: list.New(), byID: map[int64]*list.Element{}, byURL: map[string][]*list.Element{}}
}

func (h *hotLayer) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

func (h *hotLayer) get(url string, hdr http.Header) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, el := range h.byURL[url] {
		e := el.Value.(*entry)
		if string(variantOf(e.vary, hdr)) == string(e.variant) {
			h.lru.MoveToFront(el)
			return e
		}
	}
	return nil
}

// add keeps e if nothing changed since generation gen.
func (h *hotLayer) add(e *entry, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen {
		return
	}
	h.insert(e)
}

// replace drops the entries with the ids gone and keeps e, after a store.
func (h *hotLayer) replace(gone []int64, e *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, id := range gone {
		if el, ok := h.byID[id]; ok {
			h.remove(el)
		}
	}
	h.insert(e)
}

func (h *hotLayer) dropURL(url string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, el := range slices.Clone(h.byURL[url]) {
		h.remove(el)
	}
}

func (h *hotLayer) insert(e *entry) {
	if _, ok := h.byID[e.id]; ok || e.size > h.max/4 {
		return
	}
	el := h.lru.PushFront(e)
	h.byID[e.id] = el
	h.byURL[e.url] = append(h.byURL[e.url], el)
	h.size += e.size
	for h.size > h.max {
		h.remove(h.lru.Back())
	}
}

func (h *hotLayer) remove(el *list.Element) {
	e := el.Value.(*entry)
	h.lru.Remove(el)
	delete(h.byID, e.id)
	els := slices.DeleteFunc(h.byURL[e.url], func(x *list.Element) bool { return x == el })
	if len(els) == 0 {
		delete(h.byURL, e.url)
	} else {
		h.byURL[e.url] = els
	}
	h.size -= e.size
}
