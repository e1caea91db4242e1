// Package icons draws synctray's one mark and every icon derived from it:
// the application icon (desktop, windows, notifications), the tray's
// state icons, the web app's icons and the mark in its header.
//
// The PNGs are committed; app/icons/gen.go writes them again:
//
//	go run ./app/icons/gen.go
//
// and the package's test checks that the committed files are what this
// code draws.
package icons

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The mark, in its own units (centre 0,0; it reaches out to Extent): a
// ring split into two arcs that chase each other clockwise, each ending in
// an arrowhead (sync), around an upward arrow (the outbox sending).
const (
	ringR     = 0.66 // radius of the ring's centre line
	ringW     = 0.22 // width of the ring
	gapDeg    = 28   // each gap between an arrowhead and the next arc
	headDeg   = 34   // angular length of an arrowhead
	headHalf  = 0.25 // half the width of an arrowhead's base
	firstTail = 135.0 + gapDeg/2
	bodyDeg   = 180 - gapDeg - headDeg

	// Extent is how far the mark reaches from its centre.
	Extent = ringR + headHalf
)

// The centre arrow: a head (tip, base corners) on a stem.
var (
	arrowTip  = vec{0, -0.35}
	arrowBase = 0.0 // y of the head's base
	arrowHalf = 0.24
	stemHalf  = 0.085
	stemEnd   = 0.31
)

// markParts are the mark's pieces in mark units.
func markParts() []shape {
	var parts []shape
	for _, tail := range []float64{firstTail, firstTail + 180} {
		end := tail + bodyDeg
		parts = append(parts,
			arc(vec{}, ringR, ringW, tail, end+1), // +1°: under the head, no seam
			polygon(polar(ringR-headHalf, end), polar(ringR, end+headDeg), polar(ringR+headHalf, end)),
		)
	}
	parts = append(parts,
		rounded(polygon(arrowTip, vec{arrowHalf - 0.02, arrowBase}, vec{-arrowHalf + 0.02, arrowBase}), 0.02),
		roundedBox(vec{-stemHalf, arrowBase - 0.05}, vec{stemHalf, stemEnd}, 0.03),
	)
	return parts
}

// mark is the mark centred at c, scaled so that one mark unit is s icon units.
func mark(c vec, s float64) shape {
	m := union(markParts()...)
	return func(p vec) float64 { return m(p.sub(c).scale(1/s)) * s }
}

func hex(s string) color.NRGBA {
	var c color.NRGBA
	fmt.Sscanf(s, "#%02x%02x%02x", &c.R, &c.G, &c.B)
	c.A = 255
	return c
}

// Colours. Brand is the web app's teal (style.css --brand, the manifest's
// theme_color); the states are the tray's.
var (
	Brand      = hex("#0f766e")
	brandLight = hex("#14958a")
	white      = hex("#ffffff")
)

// State is a tray state.
type State int

const (
	Synced State = iota
	Queued
	Offline
	Error
)

// States are the tray states, in order.
var States = []State{Synced, Queued, Offline, Error}

func (s State) String() string { return [...]string{"synced", "queued", "offline", "error"}[s] }

// Colour is the colour of the state's tile.
func (s State) Colour() color.NRGBA {
	return [...]color.NRGBA{hex("#2e9e52"), hex("#2f7fd8"), hex("#7a8089"), hex("#d93636")}[s]
}

// Hex is Colour as #rrggbb.
func (s State) Hex() string {
	c := s.Colour()
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}

// TraySize is the size of the tray icons (panels ask for 16–48 px; 64
// scales down cleanly).
const TraySize = 64

// TraySample is a pixel of every tray icon that shows the state's colour
// plain (left of the mark, clear of the badge); traytest reads it.
var TraySample = image.Pt(7, 32)

// tile is the rounded square every icon stands on.
func tile(margin float64) shape {
	return roundedBox(vec{margin, margin}, vec{1 - margin, 1 - margin}, 0.22*(1-2*margin))
}

// AppIcon is the application icon: the white mark on a teal tile.
func AppIcon(size int) *image.NRGBA {
	const m = 0.06
	return render(size,
		layer{s: tile(m), col: gradient(brandLight, Brand, m, 1-m)},
		layer{s: mark(vec{0.5, 0.5}, 0.34/Extent), col: solid(white)},
	)
}

// FullBleed is the mark on a square filled to the edges (for masks the
// platform applies: maskable PWA icons, the Apple touch icon). The mark
// reaches radius reach (icon units) from the centre.
func FullBleed(size int, reach float64) *image.NRGBA {
	return render(size,
		layer{s: roundedBox(vec{-1, -1}, vec{2, 2}, 0), col: gradient(brandLight, Brand, 0, 1)},
		layer{s: mark(vec{0.5, 0.5}, reach/Extent), col: solid(white)},
	)
}

// Tray geometry (icon units). The mark sits a little up and left in every
// state, so that it never moves, and the lower right corner holds the
// badge: a disc kept apart from the mark by a ring of the tile's colour
// (the tile's outline stays whole on any panel).
var (
	trayMarkC = vec{0.455, 0.455}
	trayMarkR = 0.385
	badgeC    = vec{0.785, 0.785}
	badgeR    = 0.165
	badgeGap  = 0.05
)

// Tray is the tray icon of a state: the white mark on a tile in the
// state's colour, with a white badge for the states that want attention
// (queued: a dot; offline: a dash; error: '!').
func Tray(s State, size int) *image.NRGBA {
	const m = 0.02
	col := s.Colour()
	layers := []layer{
		{s: tile(m), col: solid(col)},
		{s: mark(trayMarkC, trayMarkR/Extent), col: solid(white)},
	}
	var glyph shape
	switch s {
	case Queued:
		glyph = nil // the white dot is the badge itself
	case Offline:
		glyph = segment(0.07, badgeC.add(vec{-0.08, 0}), badgeC.add(vec{0.08, 0}))
	case Error:
		glyph = union(
			segment(0.07, badgeC.add(vec{0, -0.095}), badgeC.add(vec{0, 0.025})),
			circle(badgeC.add(vec{0, 0.09}), 0.037),
		)
	default:
		return render(size, layers...)
	}
	layers = append(layers,
		layer{s: circle(badgeC, badgeR+badgeGap), col: solid(col)},
		layer{s: circle(badgeC, badgeR), col: solid(white)},
	)
	if glyph != nil {
		layers = append(layers, layer{s: glyph, col: solid(col)})
	}
	return render(size, layers...)
}

// Files are the drawn icons by their path from the module root.
func Files() map[string]*image.NRGBA {
	app := AppIcon(512)
	f := map[string]*image.NRGBA{
		"app/icons/icon.png":                app,
		"assets/icons/icon-512.png":         app,
		"assets/icons/icon-192.png":         AppIcon(192),
		"assets/icons/maskable-512.png":     FullBleed(512, 0.29), // inside the 0.4 safe circle
		"assets/icons/apple-touch-icon.png": FullBleed(180, 0.37), // iOS rounds the corners itself
	}
	for _, s := range States {
		f["app/icons/"+s.String()+".png"] = Tray(s, TraySize)
	}
	for _, n := range HicolorSizes {
		f[HicolorPath(n)] = AppIcon(n)
	}
	return f
}

// HicolorSizes are the sizes of the application icon in the Linux
// package (the hicolor theme's /usr/share/icons/hicolor/NxN/apps).
var HicolorSizes = []int{16, 24, 32, 48, 64, 128, 256, 512}

// HicolorPath is where the application icon of size n is committed for
// the Linux package (packaging/linux/nfpm.yaml packs it).
func HicolorPath(n int) string { return fmt.Sprintf("packaging/linux/icons/%dx%d.png", n, n) }

// AppIconSVGPath is where the scalable application icon is committed for
// the Linux package (hicolor/scalable/apps).
const AppIconSVGPath = "packaging/linux/icons/scalable.svg"

// MarkSVGPath is where the web app's header mark goes.
const MarkSVGPath = "assets/icons/mark.svg"

// MarkSVG is the mark alone, in white, as SVG (the web app's header, on the
// teal bar). It draws the same geometry as the PNGs.
func MarkSVG() []byte {
	e := svgNum(Extent)
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"-%s -%s %s %s\" fill=\"#fff\">\n", e, e, svgNum(2*Extent), svgNum(2*Extent))
	b.WriteString("<title>synctray</title>\n")
	b.WriteString(markSVG())
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// AppIconSVG is AppIcon as SVG (icon units: a 1×1 view box drawn at 512
// px): the teal tile with its gradient and the white mark, the same
// geometry as the PNGs.
func AppIconSVG() []byte {
	const m = 0.06 // AppIcon's margin
	n := svgNum
	var b strings.Builder
	b.WriteString("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"512\" height=\"512\" viewBox=\"0 0 1 1\">\n")
	b.WriteString("<title>synctray</title>\n")
	fmt.Fprintf(&b, "<defs><linearGradient id=\"tile\" gradientUnits=\"userSpaceOnUse\" x1=\"0\" y1=\"%s\" x2=\"0\" y2=\"%s\">"+
		"<stop offset=\"0\" stop-color=\"%s\"/><stop offset=\"1\" stop-color=\"%s\"/></linearGradient></defs>\n",
		n(m), n(1-m), hexOf(brandLight), hexOf(Brand))
	fmt.Fprintf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"%s\" fill=\"url(#tile)\"/>\n",
		n(m), n(m), n(1-2*m), n(1-2*m), n(0.22*(1-2*m)))
	fmt.Fprintf(&b, "<g fill=\"#fff\" transform=\"translate(0.5 0.5) scale(%s)\">\n", n(0.34/Extent))
	b.WriteString(markSVG())
	b.WriteString("</g>\n</svg>\n")
	return []byte(b.String())
}

func hexOf(c color.NRGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// svgNum is v with at most four decimals, without trailing zeros.
func svgNum(v float64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// markSVG is the mark's elements in mark units (centre 0,0), white.
func markSVG() string {
	f := svgNum
	pt := func(p vec) string { return f(p.x) + " " + f(p.y) }
	var b strings.Builder
	for _, tail := range []float64{firstTail, firstTail + 180} {
		end := tail + bodyDeg
		fmt.Fprintf(&b, "<path d=\"M%s A%s %s 0 0 1 %s\" fill=\"none\" stroke=\"#fff\" stroke-width=\"%s\" stroke-linecap=\"round\"/>\n",
			pt(polar(ringR, tail)), f(ringR), f(ringR), pt(polar(ringR, end+1)), f(ringW))
		fmt.Fprintf(&b, "<path d=\"M%s L%s L%s Z\"/>\n",
			pt(polar(ringR-headHalf, end)), pt(polar(ringR, end+headDeg)), pt(polar(ringR+headHalf, end)))
	}
	fmt.Fprintf(&b, "<path d=\"M%s L%s L%s Z\" stroke=\"#fff\" stroke-width=\"0.04\" stroke-linejoin=\"round\"/>\n",
		pt(arrowTip), pt(vec{arrowHalf - 0.02, arrowBase}), pt(vec{-arrowHalf + 0.02, arrowBase}))
	fmt.Fprintf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"0.03\"/>\n",
		f(-stemHalf), f(arrowBase-0.05), f(2*stemHalf), f(stemEnd-arrowBase+0.05))
	return b.String()
}

// Encode is the PNG of an image as committed (best compression; opaque
// images are written as RGB).
func Encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes every icon under root (the module root).
func Write(root string) error {
	files := Files()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := Encode(files[n])
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, n)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, n), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, AppIconSVGPath), AppIconSVG(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, MarkSVGPath), MarkSVG(), 0o644)
}
