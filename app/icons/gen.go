//go:build ignore

// gen writes synctray's icons (package icons draws them). Run it from the
// module root:
//
//	go run ./app/icons/gen.go
package main

import (
	"log"

	"synctray/app/icons"
)

func main() {
	if err := icons.Write("."); err != nil {
		log.Fatal(err)
	}
}
