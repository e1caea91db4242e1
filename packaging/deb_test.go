//go:build !windows

package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// root is the repository root, seen from this package.
const root = ".."

func tool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		cannot(t, "%s is missing: apt-get install %s", name, pkg)
	}
}

// run runs a command and returns its standard output; it fails the test
// with what the command printed when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

var versionLine = regexp.MustCompile(`(?m)^Version *= *"(.*)"`)

// version is FyneApp.toml's Version, the one version of synctray.
func version(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "FyneApp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := versionLine.FindSubmatch(b)
	if m == nil {
		t.Fatal("FyneApp.toml has no Version")
	}
	return string(m[1])
}

// deb is the path of the built package, bin/synctray_<version>_amd64.deb.
func deb(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(root, "bin", "synctray_"+version(t)+"_amd64.deb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		cannot(t, "%s is not built: run make deb (%v)", p, err)
	}
	tool(t, "dpkg-deb", "dpkg")
	return p
}

// extract unpacks the package's files into a new directory.
func extract(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb(t), dir)
	return dir
}

const (
	desktopPath = "/usr/share/applications/io.github.synctray.desktop"
	manPath     = "/usr/share/man/man1/synctray.1.gz"
	copyPath    = "/usr/share/doc/synctray/copyright"
	iconName    = "io.github.synctray"
)

var iconSizes = []int{16, 24, 32, 48, 64, 128, 256, 512}

// packed is every file the package holds (directories aside), with its
// mode and the repository file it must be a copy of ("" when it is built).
type packedFile struct {
	mode   string
	source string
}

func packed() map[string]packedFile {
	f := map[string]packedFile{
		"/usr/bin/synctray": {"-rwxr-xr-x", ""},
		desktopPath:         {"-rw-r--r--", "packaging/linux/io.github.synctray.desktop"},
		manPath:             {"-rw-r--r--", ""},
		copyPath:            {"-rw-r--r--", ""},
		"/usr/share/icons/hicolor/scalable/apps/" + iconName + ".svg": {"-rw-r--r--", "packaging/linux/icons/scalable.svg"},
	}
	for _, n := range iconSizes {
		f[fmt.Sprintf("/usr/share/icons/hicolor/%dx%d/apps/%s.png", n, n, iconName)] = packedFile{"-rw-r--r--", fmt.Sprintf("packaging/linux/icons/%dx%d.png", n, n)}
	}
	return f
}

func packedNames() []string {
	var names []string
	for n := range packed() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// allowed are the directories a file of the package may be in (FHS; no
// /usr/local, /opt, /etc).
var allowed = []string{"/usr/bin/", "/usr/share/applications/", "/usr/share/icons/hicolor/", "/usr/share/doc/synctray/", "/usr/share/man/man1/"}

// TestDebContents: the package holds exactly the expected files, with
// their modes, owned by root, each a copy of the committed file it comes
// from; its directories are only those leading to them.
func TestDebContents(t *testing.T) {
	p := deb(t)
	want := packed()
	dirs := map[string]bool{}
	for n := range want {
		for d := filepath.Dir(n); d != "/"; d = filepath.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", p)), "\n") {
		// drwxr-xr-x root/root         0 2026-12-01 13:09 ./usr/
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Errorf("unexpected line in dpkg-deb --contents: %q", line)
			continue
		}
		mode, owner, name := f[0], f[1], strings.TrimPrefix(f[5], ".")
		if owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", name, owner)
		}
		if strings.HasPrefix(mode, "d") {
			if !dirs[name] {
				t.Errorf("unexpected directory %s", name)
			}
			continue
		}
		got[name] = true
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("unexpected file %s (%s)", name, mode)
		case mode != w.mode:
			t.Errorf("%s has mode %s, want %s", name, mode, w.mode)
		}
		inside := false
		for _, a := range allowed {
			inside = inside || strings.HasPrefix(name, a)
		}
		if !inside {
			t.Errorf("%s is outside %v", name, allowed)
		}
	}
	for _, n := range packedNames() {
		if !got[n] {
			t.Errorf("the package lacks %s", n)
		}
	}

	dir := extract(t)
	for _, n := range packedNames() {
		src := want[n].source
		if src == "" {
			continue
		}
		a, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Error(err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("the package's %s is not %s: make deb again", n, src)
		}
	}
}

// depends parses a Depends field: package name → its version constraint.
func depends(field string) map[string]string {
	d := map[string]string{}
	for _, dep := range strings.Split(field, ",") {
		dep = strings.TrimSpace(dep)
		name, constraint, _ := strings.Cut(dep, " ")
		d[name] = strings.Trim(strings.TrimSpace(constraint), "()")
	}
	return d
}

// dlopened are the X11 libraries GLFW loads with dlopen, by name: C strings
// (NUL-terminated) libX*.so.N in the binary.
var dlopened = regexp.MustCompile(`\x00(libX[A-Za-z0-9_-]*\.so\.[0-9]+)\x00`)

// libraries are the shared libraries the binary needs: those it links
// (objdump -p: NEEDED) and those GLFW loads.
func libraries(t *testing.T, binary string) []string {
	t.Helper()
	tool(t, "objdump", "binutils")
	seen := map[string]bool{}
	var libs []string
	add := func(l string) {
		if !seen[l] {
			seen[l] = true
			libs = append(libs, l)
		}
	}
	for _, line := range strings.Split(run(t, "objdump", "-p", binary), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "NEEDED" {
			add(f[1])
		}
	}
	if len(libs) == 0 {
		t.Fatalf("objdump -p %s shows no NEEDED library: not the cgo binary?", binary)
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dlopened.FindAllSubmatch(b, -1) {
		add(string(m[1]))
	}
	return libs
}

// owner is the installed Debian package that holds a library.
func owner(t *testing.T, lib string) string {
	t.Helper()
	for _, dir := range []string{"/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/"} {
		out, err := exec.Command("dpkg", "-S", dir+lib).Output()
		if err == nil {
			pkg, _, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
			return pkg
		}
	}
	t.Fatalf("no installed package holds %s (dpkg -S); install the run-time libraries (make deps)", lib)
	return ""
}

var glibcVersion = regexp.MustCompile(`GLIBC_([0-9.]+)`)

// TestDebControl: name, FyneApp.toml's version, architecture, and a
// Depends that names the package of every library the packed binary needs
// and the newest glibc it uses.
func TestDebControl(t *testing.T) {
	p := deb(t)
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Recommends", "Maintainer", "Description"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "--field", p, f))
	}
	for f, want := range map[string]string{"Package": "synctray", "Version": version(t), "Architecture": "amd64"} {
		if fields[f] != want {
			t.Errorf("%s: %q, want %q", f, fields[f], want)
		}
	}
	for _, f := range []string{"Maintainer", "Description"} {
		if fields[f] == "" {
			t.Errorf("no %s", f)
		}
	}
	if !strings.Contains(fields["Recommends"], "xdg-utils") {
		t.Errorf("Recommends %q lacks xdg-utils (xdg-open)", fields["Recommends"])
	}

	deps := depends(fields["Depends"])
	binary := filepath.Join(extract(t), "usr/bin/synctray")
	tool(t, "dpkg", "dpkg")
	for _, lib := range libraries(t, binary) {
		pkg := owner(t, lib)
		if _, ok := deps[pkg]; !ok {
			t.Errorf("/usr/bin/synctray needs %s, from %s, which Depends (%s) lacks: add it to packaging/linux/nfpm.yaml", lib, pkg, fields["Depends"])
		}
	}

	// glibc: at least the newest symbol version the binary uses.
	newest := ""
	for _, m := range glibcVersion.FindAllStringSubmatch(run(t, "objdump", "-T", binary), -1) {
		if newest == "" || exec.Command("dpkg", "--compare-versions", m[1], "gt", newest).Run() == nil {
			newest = m[1]
		}
	}
	c := deps["libc6"]
	v, ok := strings.CutPrefix(c, ">= ")
	if !ok {
		t.Fatalf("Depends has libc6 %q, want libc6 (>= %s)", c, newest)
	}
	if exec.Command("dpkg", "--compare-versions", v, "ge", newest).Run() != nil {
		t.Errorf("Depends has libc6 (>= %s), but the binary uses GLIBC_%s", v, newest)
	}
}

// checkDepends runs packaging/linux/check-depends.sh (what `make deb` runs
// before packing) with PATH path ("" for ours) and returns its exit code
// and stderr.
func checkDepends(t *testing.T, binary, yaml, path string) (int, string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", filepath.Join(root, "packaging/linux/check-depends.sh"), binary, yaml)
	if path != "" {
		cmd.Env = append(os.Environ(), "PATH="+path)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("check-depends.sh: %v", err)
	return -1, ""
}

// TestDebDependsCheck: the Depends check of `make deb` passes on the packed
// binary and nfpm.yaml, fails naming the package when nfpm.yaml lacks one
// the binary needs, and fails naming binutils, instead of passing without
// looking, when objdump or strings is missing.
func TestDebDependsCheck(t *testing.T) {
	binary := filepath.Join(extract(t), "usr/bin/synctray")
	tool(t, "objdump", "binutils")
	tool(t, "strings", "binutils")
	tool(t, "dpkg", "dpkg")
	yaml := filepath.Join(root, "packaging/linux/nfpm.yaml")
	if code, stderr := checkDepends(t, binary, yaml, ""); code != 0 {
		t.Fatalf("check-depends.sh on the packed binary: exit %d\n%s", code, stderr)
	}

	// nfpm.yaml without libgl1, which the binary links (libGL.so.1).
	b, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	short := bytes.Replace(b, []byte("\n  - libgl1\n"), []byte("\n"), 1)
	if bytes.Equal(short, b) {
		t.Fatal("nfpm.yaml's depends has no line '  - libgl1'")
	}
	bad := filepath.Join(t.TempDir(), "nfpm.yaml")
	if err := os.WriteFile(bad, short, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := checkDepends(t, binary, bad, ""); code != 1 || !strings.Contains(stderr, "libgl1 is not in") {
		t.Errorf("check-depends.sh with a depends list lacking libgl1: exit %d, stderr %q; want 1 naming libgl1", code, stderr)
	}

	// A PATH with every tool the script uses but objdump, or strings.
	for _, missing := range []string{"objdump", "strings"} {
		dir := t.TempDir()
		for _, c := range []string{"awk", "grep", "sort", "tr", "head", "cut", "dpkg", "dpkg-query", "objdump", "strings"} {
			if c == missing {
				continue
			}
			p, err := exec.LookPath(c)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if err := os.Symlink(p, filepath.Join(dir, c)); err != nil {
				t.Fatal(err)
			}
		}
		code, stderr := checkDepends(t, binary, yaml, dir)
		if code != 1 || !strings.Contains(stderr, missing+" is missing") || !strings.Contains(stderr, "apt-get install binutils") {
			t.Errorf("check-depends.sh without %s: exit %d, stderr %q; want 1, naming %s and binutils", missing, code, stderr, missing)
		}
	}
}

// TestDebDesktopFile: the packed .desktop file passes desktop-file-validate,
// starts synctray from PATH, names the packed icon and says what
// FyneApp.toml's LinuxAndBSD section says.
func TestDebDesktopFile(t *testing.T) {
	dir := extract(t)
	tool(t, "desktop-file-validate", "desktop-file-utils")
	path := filepath.Join(dir, desktopPath)
	out, err := exec.Command("desktop-file-validate", path).CombinedOutput()
	if err != nil {
		t.Fatalf("desktop-file-validate: %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("desktop-file-validate: %s", out) // hints only
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			entry[k] = v
		}
	}
	toml, err := os.ReadFile(filepath.Join(root, "FyneApp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tomlString := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + ` *= *"(.*)"`).FindSubmatch(toml)
		if m == nil {
			t.Fatalf("FyneApp.toml has no %s", key)
		}
		return string(m[1])
	}
	tomlList := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + ` *= *\[(.*)\]`).FindSubmatch(toml)
		if m == nil {
			t.Fatalf("FyneApp.toml has no %s", key)
		}
		var items []string
		for _, s := range strings.Split(string(m[1]), ",") {
			items = append(items, strings.Trim(strings.TrimSpace(s), `"`)+";")
		}
		return strings.Join(items, "")
	}
	want := map[string]string{
		"Type":        "Application",
		"Name":        tomlString("Name"),
		"GenericName": tomlString("GenericName"),
		"Comment":     tomlString("Comment"),
		"Categories":  tomlList("Categories"),
		"Keywords":    tomlList("Keywords"),
		"Exec":        "synctray",
		"Icon":        tomlString("ID"),
		"Terminal":    "false",
	}
	for k, v := range want {
		if entry[k] != v {
			t.Errorf("%s=%q, want %q", k, entry[k], v)
		}
	}
	for _, n := range iconSizes {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("usr/share/icons/hicolor/%dx%d/apps/%s.png", n, n, entry["Icon"]))); err != nil {
			t.Errorf("Icon=%s: %v", entry["Icon"], err)
		}
	}
}

var usageCommand = regexp.MustCompile(`(?m)^  synctray ([a-z]+)`)

// TestDebManPage: the man page is gzipped without a name or a time (gzip
// -9n), is the committed packaging/linux/synctray.1, renders without a
// warning, and names every command `synctray --help` lists.
func TestDebManPage(t *testing.T) {
	dir := extract(t)
	gz, err := os.ReadFile(filepath.Join(dir, manPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(gz) < 10 || !bytes.Equal(gz[4:8], []byte{0, 0, 0, 0}) || gz[3]&0x08 != 0 {
		t.Errorf("%s carries a time or a file name: gzip -n", manPath)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "packaging/linux/synctray.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(page, src) {
		t.Errorf("the package's man page is not packaging/linux/synctray.1: make deb again")
	}

	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = bytes.NewReader(page)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff -man -ww: %v\n%s", err, out)
		}
	} else {
		t.Log("groff is missing (groff-base): the page's roff is not checked")
	}

	cmd := exec.Command(filepath.Join(dir, "usr/bin/synctray"), "--help")
	help, _ := cmd.CombinedOutput() // exit status aside: the text is what counts
	cmds := usageCommand.FindAllStringSubmatch(string(help), -1)
	if len(cmds) < 3 {
		t.Fatalf("synctray --help lists %d commands:\n%s", len(cmds), help)
	}
	for _, c := range cmds {
		if !regexp.MustCompile(`(?m)^\.B[IR]? ` + c[1] + `\b`).Match(page) {
			t.Errorf("the man page does not describe %q (synctray --help lists it)", c[1])
		}
	}
}

// TestDebCopyright: the copyright file is in the machine-readable format
// and carries the license of the Go standard library and of every module
// compiled into the packed binary.
func TestDebCopyright(t *testing.T) {
	dir := extract(t)
	b, err := os.ReadFile(filepath.Join(dir, copyPath))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.HasPrefix(text, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("%s does not start with the Format line of the machine-readable format", copyPath)
	}
	for _, want := range []string{"\nFiles: *\n", "\nFiles: go/*\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", copyPath, strings.TrimSpace(want))
		}
	}
	info, err := buildinfo.ReadFile(filepath.Join(dir, "usr/bin/synctray"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) == 0 {
		t.Fatal("the packed binary lists no modules")
	}
	for _, d := range info.Deps {
		if !strings.Contains(text, "\nFiles: "+d.Path+"/*\n") {
			t.Errorf("%s lacks the license of %s %s, which the binary holds", copyPath, d.Path, d.Version)
		}
	}
	// Every paragraph has the fields the format asks for.
	for _, para := range strings.Split(text, "\n\n")[1:] {
		for _, f := range []string{"Files:", "Copyright:", "License:"} {
			if !regexp.MustCompile(`(?m)^` + f + ` \S`).MatchString(para) {
				t.Errorf("a paragraph lacks %s:\n%.300s", f, para)
			}
		}
	}
}

// excluded says whether dpkg's path-exclude settings (minimal container
// images drop /usr/share/man and /usr/share/doc) keep a file from being
// installed: the last path-exclude or path-include that matches wins.
func excluded(name string) bool {
	cfgs, _ := filepath.Glob("/etc/dpkg/dpkg.cfg.d/*")
	cfgs = append([]string{"/etc/dpkg/dpkg.cfg"}, cfgs...)
	out := false
	for _, cfg := range cfgs {
		b, err := os.ReadFile(cfg)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			kind := ""
			for _, k := range []string{"path-exclude", "path-include"} {
				if strings.HasPrefix(line, k) {
					kind = k
				}
			}
			if kind == "" {
				continue
			}
			pattern := strings.TrimLeft(line[len(kind):], "= \t")
			// fnmatch without FNM_PATHNAME: * also matches /.
			re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
			if regexp.MustCompile(re).MatchString(name) {
				out = kind == "path-exclude"
			}
		}
	}
	return out
}

// TestDebInstall installs the package with apt-get, as a user would, runs
// the installed synctray, then removes it and checks that nothing of it is
// left (files, dpkg's records: it has no conffiles to keep), then purges
// it and checks again. Root only; it will not touch a machine where synctray is
// installed already, nor overwrite a file it would install.
func TestDebInstall(t *testing.T) {
	p := deb(t)
	if os.Geteuid() != 0 {
		cannot(t, "installing the package needs root")
	}
	tool(t, "apt-get", "apt")
	tool(t, "dpkg-query", "dpkg")

	// One install test at a time on this machine.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "synctray-deb-install-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "synctray").Output(); err == nil && strings.TrimSpace(string(out)) != "un" {
		t.Skipf("a synctray package is on this machine already (dpkg status %q): not replacing it", strings.TrimSpace(string(out)))
	}
	var files []string
	for _, n := range packedNames() {
		if excluded(n) {
			t.Logf("%s: excluded by dpkg's path-exclude here, not checked", n)
			continue
		}
		files = append(files, n)
		if _, err := os.Lstat(n); !errors.Is(err, os.ErrNotExist) {
			t.Skipf("%s exists already (installed by hand?): not overwriting it", n)
		}
	}

	apt := func(args ...string) {
		t.Helper()
		cmd := exec.Command("apt-get", append([]string{"-y", "-q", "-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		// Whatever failed above: leave the machine as it was.
		if out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "synctray").Output(); err == nil && strings.TrimSpace(string(out)) != "un" {
			if out, err := exec.Command("dpkg", "--purge", "synctray").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge synctray: %v\n%s", err, out)
			}
		}
	})

	// --no-install-recommends: no network; every Depends is installed here.
	apt("install", "--no-install-recommends", p)

	out := run(t, "/usr/bin/synctray", "version")
	if want := "synctray " + version(t); !strings.HasPrefix(out, want+" ") && strings.TrimSpace(out) != want {
		t.Errorf("/usr/bin/synctray version: %q, want %q…", out, want)
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(run(t, "dpkg", "-L", "synctray"), "\n") {
		listed[l] = true
	}
	want := packed()
	for _, n := range files {
		if !listed[n] {
			t.Errorf("dpkg -L synctray does not list %s", n)
		}
		fi, err := os.Stat(n)
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if fi.Mode().String() != want[n].mode {
			t.Errorf("installed %s has mode %s, want %s", n, fi.Mode(), want[n].mode)
		}
	}
	if _, err := exec.LookPath("man"); err == nil && !excluded(manPath) {
		if got := strings.TrimSpace(run(t, "man", "-w", "synctray")); got != manPath {
			t.Errorf("man -w synctray: %q, want %s", got, manPath)
		}
	}

	// The package has no conffiles and no maintainer scripts: then dpkg
	// has nothing to keep until a purge, and `apt-get remove` alone must
	// leave nothing of it, not even its records in /var/lib/dpkg/info.
	if c := strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Conffiles}", "synctray")); c != "" {
		t.Errorf("the package has conffiles (%s): apt-get remove keeps them until a purge; the checks below assume none", c)
	}
	for _, script := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if _, err := os.Lstat("/var/lib/dpkg/info/synctray." + script); err == nil {
			t.Errorf("the package has a %s script; the checks below assume none", script)
		}
	}
	infoBefore, _ := filepath.Glob("/var/lib/dpkg/info/synctray.*")
	if len(infoBefore) == 0 {
		t.Errorf("installed, yet no /var/lib/dpkg/info/synctray.* (the check of dpkg's records after remove would test nothing)")
	}
	t.Logf("installed: dpkg holds %v", infoBefore)
	// gone checks that nothing of the package is left after step.
	gone := func(step string) {
		t.Helper()
		for _, n := range append(files, "/usr/share/doc/synctray") {
			if _, err := os.Lstat(n); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after %s, %s is still there (%v)", step, n, err)
			}
		}
		if info, _ := filepath.Glob("/var/lib/dpkg/info/synctray.*"); len(info) > 0 {
			t.Errorf("after %s, dpkg still holds %v", step, info)
		}
		// Status-Abbrev: wanted state, then current state; n is "not
		// installed" (no record at all is fine too).
		out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "synctray").Output()
		st := strings.TrimSpace(string(out))
		if err == nil && (len(st) < 2 || st[1] != 'n') {
			t.Errorf("after %s, dpkg status of synctray is %q, want not installed (?n)", step, st)
		}
		t.Logf("after %s: dpkg-query status %q (err %v)", step, st, err)
	}

	apt("remove", "synctray")
	gone("apt-get remove")
	// Purge with dpkg: apt forgets a package it has no archive for once it
	// is removed (and this one has no conffiles to leave behind anyway).
	run(t, "dpkg", "--purge", "synctray")
	gone("dpkg --purge")
}
