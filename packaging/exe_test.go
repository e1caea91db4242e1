package packaging

// The properties of the Windows build bin/synctray.exe (`make windows`),
// read with debug/pe: no wine needed. Like the wine tests it tests the
// artifact, it does not build it (a missing one skips, or fails with
// SYNCTRAY_REQUIRE_PACKAGES=1).

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

// Resource types (winuser.h: RT_*).
const (
	rtIcon      = 3
	rtGroupIcon = 14
	rtVersion   = 16
	rtManifest  = 24
)

// peResource is one resource of the .rsrc tree: type, name (an ID; named
// entries get -1), language, and its data.
type peResource struct {
	typ, name, lang int
	data            []byte
}

// peResources walks the resource directory (IMAGE_DIRECTORY_ENTRY_RESOURCE)
// of f: the three levels type → name → language of
// IMAGE_RESOURCE_DIRECTORY / _ENTRY down to each IMAGE_RESOURCE_DATA_ENTRY,
// whose data it reads from the section that holds the data's RVA.
func peResources(f *pe.File) ([]peResource, error) {
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return nil, fmt.Errorf("not a PE32+ (64-bit) file")
	}
	if oh.NumberOfRvaAndSizes <= pe.IMAGE_DIRECTORY_ENTRY_RESOURCE {
		return nil, fmt.Errorf("no resource data directory")
	}
	dd := oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_RESOURCE]
	if dd.VirtualAddress == 0 || dd.Size == 0 {
		return nil, fmt.Errorf("the resource data directory is empty")
	}
	// read returns n bytes at rva, from whichever section holds them.
	read := func(rva, n uint32) ([]byte, error) {
		for _, s := range f.Sections {
			if rva >= s.VirtualAddress && uint64(rva)+uint64(n) <= uint64(s.VirtualAddress)+uint64(s.Size) {
				b := make([]byte, n)
				if _, err := s.ReadAt(b, int64(rva-s.VirtualAddress)); err != nil {
					return nil, err
				}
				return b, nil
			}
		}
		return nil, fmt.Errorf("RVA %#x+%d is in no section", rva, n)
	}
	rsrc, err := read(dd.VirtualAddress, dd.Size)
	if err != nil {
		return nil, err
	}
	u16 := func(off uint32) uint16 { return binary.LittleEndian.Uint16(rsrc[off:]) }
	u32 := func(off uint32) uint32 { return binary.LittleEndian.Uint32(rsrc[off:]) }

	var out []peResource
	var walk func(off uint32, depth int, path []int) error
	walk = func(off uint32, depth int, path []int) error {
		if depth > 2 || uint64(off)+16 > uint64(len(rsrc)) {
			return fmt.Errorf("bad resource directory at %#x (level %d)", off, depth)
		}
		n := uint32(u16(off+12)) + uint32(u16(off+14)) // named + ID entries
		for i := uint32(0); i < n; i++ {
			e := off + 16 + 8*i
			if uint64(e)+8 > uint64(len(rsrc)) {
				return fmt.Errorf("resource directory entry at %#x past the end", e)
			}
			name, target := u32(e), u32(e+4)
			id := int(name)
			if name&0x80000000 != 0 {
				id = -1 // a named entry (a string); synctray's are all IDs
			}
			p := append(append([]int(nil), path...), id)
			if target&0x80000000 != 0 {
				if err := walk(target&0x7fffffff, depth+1, p); err != nil {
					return err
				}
				continue
			}
			if depth != 2 || uint64(target)+16 > uint64(len(rsrc)) {
				return fmt.Errorf("resource data entry at %#x at level %d", target, depth)
			}
			data, err := read(u32(target), u32(target+4))
			if err != nil {
				return err
			}
			out = append(out, peResource{typ: p[0], name: p[1], lang: p[2], data: data})
		}
		return nil
	}
	return out, walk(0, 0, nil)
}

// verBlock is one node of a version resource (VS_VERSIONINFO,
// StringFileInfo, StringTable, String, VarFileInfo, Var): each is
// wLength, wValueLength, wType, a NUL-terminated UTF-16 key, padding to
// 32 bits, the value, padding, then its children up to wLength.
type verBlock struct {
	key      string
	text     bool   // wType 1: the value is UTF-16 text
	value    []byte // binary value, or the text's UTF-16 bytes
	children []verBlock
}

func (b verBlock) String() string { // the text value, without its NUL
	if !b.text {
		return ""
	}
	u := make([]uint16, len(b.value)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b.value[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

func align4(n int) int { return (n + 3) &^ 3 }

// parseVerBlock parses the block at the start of b (offsets in a version
// resource are aligned relative to its start: b always starts aligned).
func parseVerBlock(b []byte) (verBlock, int, error) {
	if len(b) < 6 {
		return verBlock{}, 0, fmt.Errorf("version block of %d bytes", len(b))
	}
	length := int(binary.LittleEndian.Uint16(b))
	valueLen := int(binary.LittleEndian.Uint16(b[2:]))
	typ := binary.LittleEndian.Uint16(b[4:])
	if length < 6 || length > len(b) {
		return verBlock{}, 0, fmt.Errorf("version block length %d of %d bytes", length, len(b))
	}
	b = b[:length]
	var blk verBlock
	blk.text = typ == 1
	i := 6
	var key []uint16
	for ; ; i += 2 {
		if i+2 > len(b) {
			return blk, 0, fmt.Errorf("unterminated version block key")
		}
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			i += 2
			break
		}
		key = append(key, c)
	}
	blk.key = string(utf16.Decode(key))
	i = align4(i)
	if blk.text {
		valueLen *= 2 // in UTF-16 units for text
	}
	if i+valueLen > len(b) {
		return blk, 0, fmt.Errorf("%s: value of %d bytes past the block's end", blk.key, valueLen)
	}
	blk.value = b[i : i+valueLen]
	i = align4(i + valueLen)
	for i < len(b) {
		c, n, err := parseVerBlock(b[i:])
		if err != nil {
			return blk, 0, fmt.Errorf("%s: %v", blk.key, err)
		}
		blk.children = append(blk.children, c)
		i = align4(i + n)
	}
	return blk, length, nil
}

// TestExeProperties: bin/synctray.exe is a 64-bit GUI-subsystem program
// (no console window when started from Explorer; it attaches to its
// parent's console for CLI output, see console_windows.go) whose .rsrc
// holds an icon group naming icons that are there, a manifest, and a
// version resource whose VS_FIXEDFILEINFO and ProductVersion/FileVersion
// strings carry FyneApp.toml's Version.
func TestExeProperties(t *testing.T) {
	exe := wineArtifact(t, "synctray.exe", "make windows")
	version := wineAppVersion(t)
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	defer f.Close()

	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x, want IMAGE_FILE_MACHINE_AMD64 (%#x)", f.Machine, pe.IMAGE_FILE_MACHINE_AMD64)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("%s is not a PE32+ (64-bit) program", exe)
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Errorf("subsystem %d, want IMAGE_SUBSYSTEM_WINDOWS_GUI (%d): built without -H windowsgui?", oh.Subsystem, pe.IMAGE_SUBSYSTEM_WINDOWS_GUI)
	}
	if f.Section(".rsrc") == nil {
		t.Errorf("no .rsrc section")
	}
	res, err := peResources(f)
	if err != nil {
		t.Fatalf("resource directory: %v", err)
	}
	byType := map[int][]peResource{}
	icons := map[int][]byte{}
	for _, r := range res {
		byType[r.typ] = append(byType[r.typ], r)
		if r.typ == rtIcon {
			icons[r.name] = r.data
		}
	}
	t.Logf("subsystem %d; %d resources: %d RT_ICON, %d RT_GROUP_ICON, %d RT_VERSION, %d RT_MANIFEST",
		oh.Subsystem, len(res), len(byType[rtIcon]), len(byType[rtGroupIcon]), len(byType[rtVersion]), len(byType[rtManifest]))

	// The icon: a GRPICONDIR (reserved 0, type 1, count) and count
	// 14-byte GRPICONDIRENTRYs, each naming an RT_ICON by ID; each icon
	// is a PNG or a DIB (BITMAPINFOHEADER, 40 bytes).
	if len(byType[rtGroupIcon]) == 0 {
		t.Errorf("no RT_GROUP_ICON resource: the exe has no icon")
	}
	for _, g := range byType[rtGroupIcon] {
		d := g.data
		if len(d) < 6 || binary.LittleEndian.Uint16(d) != 0 || binary.LittleEndian.Uint16(d[2:]) != 1 {
			t.Errorf("RT_GROUP_ICON %d is not a GRPICONDIR: % x", g.name, d[:min(len(d), 6)])
			continue
		}
		n := int(binary.LittleEndian.Uint16(d[4:]))
		if n == 0 || len(d) < 6+14*n {
			t.Errorf("RT_GROUP_ICON %d: %d icons in %d bytes", g.name, n, len(d))
			continue
		}
		for i := 0; i < n; i++ {
			e := d[6+14*i:]
			id := int(binary.LittleEndian.Uint16(e[12:]))
			w, h := int(e[0]), int(e[1])
			if w == 0 {
				w = 256
			}
			if h == 0 {
				h = 256
			}
			img, ok := icons[id]
			switch {
			case !ok:
				t.Errorf("RT_GROUP_ICON %d names RT_ICON %d, which is missing", g.name, id)
			case bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")):
				t.Logf("icon %d: %dx%d PNG, %d bytes", id, w, h, len(img))
			case len(img) >= 4 && binary.LittleEndian.Uint32(img) == 40:
				t.Logf("icon %d: %dx%d DIB, %d bytes", id, w, h, len(img))
			default:
				t.Errorf("RT_ICON %d is neither a PNG nor a DIB: % x", id, img[:min(len(img), 8)])
			}
		}
	}

	if len(byType[rtManifest]) == 0 {
		t.Errorf("no RT_MANIFEST resource")
	} else if m := byType[rtManifest][0].data; !bytes.Contains(m, []byte("<assembly")) {
		t.Errorf("the RT_MANIFEST is no assembly manifest: %.200q", m)
	}

	// The version: VS_VERSIONINFO → VS_FIXEDFILEINFO, and StringFileInfo →
	// StringTable → ProductVersion, FileVersion strings.
	if len(byType[rtVersion]) != 1 {
		t.Fatalf("%d RT_VERSION resources, want 1", len(byType[rtVersion]))
	}
	root, _, err := parseVerBlock(byType[rtVersion][0].data)
	if err != nil {
		t.Fatalf("RT_VERSION: %v", err)
	}
	if root.key != "VS_VERSION_INFO" || len(root.value) < 52 || binary.LittleEndian.Uint32(root.value) != 0xFEEF04BD {
		t.Fatalf("RT_VERSION is no VS_VERSIONINFO with a VS_FIXEDFILEINFO (key %q, %d-byte value)", root.key, len(root.value))
	}
	// dwFileVersionMS/LS and dwProductVersionMS/LS: major.minor.patch.build.
	four := func(off int) [4]int {
		ms, ls := binary.LittleEndian.Uint32(root.value[off:]), binary.LittleEndian.Uint32(root.value[off+4:])
		return [4]int{int(ms >> 16), int(ms & 0xffff), int(ls >> 16), int(ls & 0xffff)}
	}
	fileV, prodV := four(8), four(16)
	var want [3]int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &want[0], &want[1], &want[2]); err != nil {
		t.Fatalf("FyneApp.toml's Version %q is not major.minor.patch: %v", version, err)
	}
	for name, v := range map[string][4]int{"file": fileV, "product": prodV} {
		if [3]int{v[0], v[1], v[2]} != want {
			t.Errorf("VS_FIXEDFILEINFO %s version %d.%d.%d.%d, want %s.x (FyneApp.toml)", name, v[0], v[1], v[2], v[3], version)
		}
	}
	strs := map[string]string{}
	for _, sfi := range root.children {
		if sfi.key != "StringFileInfo" {
			continue
		}
		for _, table := range sfi.children {
			for _, s := range table.children {
				strs[s.key] = s.String()
			}
		}
	}
	t.Logf("VS_FIXEDFILEINFO file %v, product %v; strings %q", fileV, prodV, strs)
	for _, k := range []string{"ProductVersion", "FileVersion"} {
		got, ok := strs[k]
		switch {
		case !ok:
			t.Errorf("the version resource has no %s string", k)
		case got != version && !strings.HasPrefix(got, version+"."):
			t.Errorf("%s = %q, want FyneApp.toml's %q (or %s.<build>)", k, got, version, version)
		}
	}
	if got := strs["ProductName"]; got != "synctray" {
		t.Errorf("ProductName = %q, want synctray", got)
	}
}
