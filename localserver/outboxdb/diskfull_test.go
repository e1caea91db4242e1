package outboxdb_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
)

func TestWritesPastTheDiskCapSayDiskFull(t *testing.T) {
	db, err := outboxdb.Open(filepath.Join(t.TempDir(), "outbox.db"), outboxdb.Options{MaxPageCount: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable with room = %v, want nil", err)
	}
	var enqErr error
	stored := 0
	for ; stored < 1000; stored++ {
		_, _, enqErr = db.Enqueue(ctx, outbox.NewAction{Key: uuid.Must(uuid.NewV7()).String(), Type: "m",
			Payload: []byte(`"` + strings.Repeat("x", 2000) + `"`)})
		if enqErr != nil {
			break
		}
	}
	if !errors.Is(enqErr, outbox.ErrDiskFull) {
		t.Fatalf("enqueue past the cap: %v, want ErrDiskFull", enqErr)
	}
	if err := db.CheckWritable(ctx); !errors.Is(err, outbox.ErrDiskFull) {
		t.Fatalf("CheckWritable at the cap = %v, want ErrDiskFull", err)
	}
	if c, err := db.Counts(ctx); err != nil || c[outbox.Queued] != stored {
		t.Fatalf("counts = %v, %v; want the %d acknowledged actions kept", c, err, stored)
	}
}
