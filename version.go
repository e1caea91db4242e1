package main

import (
	_ "embed"
	"regexp"

	"synctray/app"
)

// FyneApp.toml is the one source of the version: `fyne package` reads it
// for the packages' metadata, the Makefile for the .deb and the installer,
// and the binary here.
//
//go:embed FyneApp.toml
var fyneAppTOML []byte

func init() {
	if m := regexp.MustCompile(`(?m)^Version\s*=\s*"([^"]+)"`).FindSubmatch(fyneAppTOML); m != nil {
		app.Version = string(m[1])
	}
}
