// Command debcopyright writes the Debian package's copyright file
// (machine-readable format 1.0) for a synctray binary: synctray's own
// terms, then the license of every Go module compiled into the binary (as
// its build information lists them: `go version -m`), of the Go standard
// library and of the C code the modules carry (GLFW, SQLite). Their BSD and
// MIT style licenses ask that a binary distribution reproduce them.
//
//	go run ./packaging/debcopyright bin/synctray > copyright
//
// The modules' license files come from the module cache (`go mod download`,
// which a build has filled already).
package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// header is synctray's own part. The repository has no license file and
// the README grants none: all rights reserved.
const header = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: synctray
Comment: /usr/bin/synctray is statically linked with the Go modules listed
 below (the module path and version its build information records) and the
 Go standard library. Their sources are the module versions of the same
 name on proxy.golang.org.

Files: *
Copyright: 2026 The synctray authors
License: all-rights-reserved
 All rights reserved. No license to copy, modify or redistribute synctray is
 granted beyond what the authors grant in writing.
`

// sqlite is the notice of SQLite, which github.com/mattn/go-sqlite3 compiles
// in (sqlite3-binding.c) and which has no license file of its own.
const sqlite = `
Files: github.com/mattn/go-sqlite3/sqlite3-binding.c
Copyright: none (public domain)
License: public-domain
 The author disclaims copyright to this source code. In place of a legal
 notice, here is a blessing:
 .
 May you do good and not evil.
 May you find forgiveness for yourself and forgive others.
 May you share freely, never taking more than you give.
`

func main() {
	log.SetFlags(0)
	log.SetPrefix("debcopyright: ")
	if len(os.Args) != 2 {
		log.Fatal("usage: debcopyright BINARY")
	}
	out, err := generate(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(out)
}

func generate(binary string) ([]byte, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(header)

	goroot, err := goCmd("env", "GOROOT")
	if err != nil {
		return nil, err
	}
	if err := stanza(&b, "Go standard library "+info.GoVersion, "go", strings.TrimSpace(string(goroot)), []string{"LICENSE", "PATENTS"}); err != nil {
		return nil, err
	}

	var args []string
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		args = append(args, d.Path+"@"+d.Version)
	}
	dirs, err := moduleDirs(args)
	if err != nil {
		return nil, err
	}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		dir := dirs[m.Path+"@"+m.Version]
		files, err := licenseFiles(dir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s@%s: no license file in %s", m.Path, m.Version, dir)
		}
		if err := stanza(&b, "Go module "+m.Path+" "+m.Version, d.Path, dir, files); err != nil {
			return nil, err
		}
		if d.Path == "github.com/mattn/go-sqlite3" {
			b.WriteString(sqlite)
		}
	}
	return b.Bytes(), nil
}

// moduleDirs maps each path@version to its directory in the module cache.
func moduleDirs(mods []string) (map[string]string, error) {
	out, err := goCmd(append([]string{"mod", "download", "-json"}, mods...)...)
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if m.Error != "" {
			return nil, fmt.Errorf("%s@%s: %s", m.Path, m.Version, m.Error)
		}
		dirs[m.Path+"@"+m.Version] = m.Dir
	}
	return dirs, nil
}

func goCmd(args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

var licenseName = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense)`)

// licenseFiles are a module's license files (relative to dir): those at its
// root, and those in its subdirectories (up to two deep) for code or data
// of other origin it carries, such as fonts or C sources, but not in
// testdata or in commands (cmd), which are not compiled into synctray.
func licenseFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			name := e.Name()
			if rel != "." && (name == "testdata" || name == "cmd" || strings.HasPrefix(name, "example") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || strings.Count(rel, string(filepath.Separator)) >= 2) {
				return filepath.SkipDir
			}
			return nil
		}
		if licenseName.MatchString(e.Name()) {
			files = append(files, rel)
		}
		return nil
	})
	sort.Slice(files, func(i, j int) bool {
		di, dj := strings.Count(files[i], "/"), strings.Count(files[j], "/")
		if di != dj {
			return di < dj
		}
		return files[i] < files[j]
	})
	return files, err
}

// stanza writes one Files paragraph for each directory of a component
// with license files: their texts as the License, and the root's NOTICE
// and PATENTS files (which are no licenses) as a Comment of the root's
// paragraph. A directory with several license files (fonts, code of two
// origins) says that each of its files is under one of them.
func stanza(b *bytes.Buffer, what, path, dir string, files []string) error {
	var notes []string
	var dirs []string
	byDir := map[string][]string{}
	for _, f := range files {
		up := strings.ToUpper(filepath.Base(f))
		sub := filepath.Dir(f)
		if sub == "." && (strings.HasPrefix(up, "NOTICE") || strings.HasPrefix(up, "PATENTS")) {
			notes = append(notes, f)
			continue
		}
		if byDir[sub] == nil {
			dirs = append(dirs, sub)
		}
		byDir[sub] = append(byDir[sub], f)
	}
	read := func(f string) (string, error) {
		t, err := os.ReadFile(filepath.Join(dir, f))
		return string(t), err
	}
	for _, sub := range dirs {
		pattern := path + "/*"
		if sub != "." {
			pattern = path + "/" + sub + "/*"
		}
		var texts, names, holders []string
		for _, f := range byDir[sub] {
			t, err := read(f)
			if err != nil {
				return err
			}
			texts = append(texts, t)
			names = append(names, f+" ("+classify(t)+")")
			holders = append(holders, copyrights(t)...)
		}
		if sub == "." {
			for _, n := range notes {
				t, err := read(n)
				if err != nil {
					return err
				}
				holders = append(holders, copyrights(t)...)
			}
		}
		fmt.Fprintf(b, "\nFiles: %s\n", pattern)
		if len(holders) == 0 {
			fmt.Fprintf(b, "Copyright: the authors of %s (see the license)\n", what)
		} else {
			fmt.Fprintf(b, "Copyright: %s\n", strings.Join(unique(holders), "\n "))
		}
		comment := what + ": " + strings.Join(byDir[sub], ", ")
		if len(texts) == 1 {
			fmt.Fprintf(b, "License: %s\n%s", classify(texts[0]), field(texts[0]))
		} else {
			// One text per file, each under its name.
			var all strings.Builder
			fmt.Fprintf(&all, "Each file in %s is under one of these licenses: %s.\n", pattern, strings.Join(names, ", "))
			for i, t := range texts {
				fmt.Fprintf(&all, "\n%s:\n\n%s\n", byDir[sub][i], strings.TrimRight(t, "\n"))
			}
			fmt.Fprintf(b, "License: other\n%s", field(all.String()))
		}
		if sub == "." {
			for _, n := range notes {
				t, err := read(n)
				if err != nil {
					return err
				}
				comment += "\n\n" + n + ":\n\n" + t
			}
		}
		fmt.Fprintf(b, "Comment: %s", strings.TrimPrefix(field(comment), " "))
	}
	return nil
}

func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var (
	copyrightLine = regexp.MustCompile(`(?im)^\s*(?:copyright\s*)?(?:\(c\)|©|copyright)\s+(.*\S)\s*$`)
	year          = regexp.MustCompile(`\d{4}`)
	reserved      = regexp.MustCompile(`(?i)\s*all rights reserved.*$`)
)

// copyrights are the holders a license text names ("Copyright (c) 2014
// The Go Authors"): lines that start with a copyright sign and hold a year.
func copyrights(text string) []string {
	var holders []string
	for _, m := range copyrightLine.FindAllStringSubmatch(text, -1) {
		h := strings.TrimSpace(m[1])
		for _, p := range []string{"(c)", "(C)", "©"} {
			h = strings.TrimSpace(strings.TrimPrefix(h, p))
		}
		h = strings.TrimSuffix(reserved.ReplaceAllString(h, ""), ",")
		if year.MatchString(h) {
			holders = append(holders, h)
		}
	}
	return holders
}

// classify names a license text by its Debian/SPDX short name, or
// "other" when it is none of the common ones (the text follows anyway).
func classify(text string) string {
	t := strings.ToLower(strings.Join(strings.Fields(text), " "))
	has := func(s string) bool { return strings.Contains(t, s) }
	switch {
	case has("apache license") && has("version 2.0"):
		return "Apache-2.0"
	case has("mozilla public license") && has("2.0"):
		return "MPL-2.0"
	case has("sil open font license") || has("sil open font license"):
		return "OFL-1.1"
	case has("bitstream vera"):
		return "Bitstream-Vera"
	case has("redistribution and use in source and binary forms"):
		if has("neither the name") || has("names of its contributors") || has("name of the copyright holder") {
			return "BSD-3-clause"
		}
		return "BSD-2-clause"
	case has("permission is hereby granted, free of charge"):
		return "Expat"
	case has("permission to use, copy, modify, and/or distribute") || has("permission to use, copy, modify, and distribute"):
		return "ISC"
	case has("provided 'as-is'") && has("altered source versions"):
		return "Zlib"
	}
	return "other"
}

// field is text as the continuation lines of a field: each line indented
// by one space, empty lines as " .".
func field(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n \t"), "\n") {
		l = strings.TrimRight(strings.ReplaceAll(l, "\t", "    "), " ")
		if l == "" {
			l = "."
		}
		b.WriteString(" " + l + "\n")
	}
	return b.String()
}
