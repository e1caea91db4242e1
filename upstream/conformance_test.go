package upstream_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"synctray/internal/sqlitedb"
	"synctray/upstream"
	"synctray/upstream/storetest"
)

func TestSQLiteStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.DB {
		path := filepath.Join(t.TempDir(), "upstream.db")
		return storetest.DB{
			Open: func() (upstream.Store, error) { return upstream.OpenStore(path) },
			BumpSchema: func() error {
				db, err := sql.Open("sqlite3", sqlitedb.DSN(path, ""))
				if err != nil {
					return err
				}
				defer db.Close()
				var v int
				if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
					return err
				}
				_, err = db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1))
				return err
			},
		}
	})
}
