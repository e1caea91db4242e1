//go:build ignore

// gen draws the tray icons (one per state) and the application icon as
// PNGs in this directory. The shapes are signed distance fields, so every
// edge is anti-aliased exactly and the icons stay crisp when a panel
// scales them down to 16–24 px. Run it from the module root:
//
//	go run ./app/icons/gen.go
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

type vec struct{ x, y float64 }

// shape returns the signed distance (in icon units, 0..1) from p to its edge; < 0 is inside.
type shape func(p vec) float64

func circle(c vec, r float64) shape {
	return func(p vec) float64 { return math.Hypot(p.x-c.x, p.y-c.y) - r }
}

func ring(c vec, r, w float64) shape {
	return func(p vec) float64 { return math.Abs(math.Hypot(p.x-c.x, p.y-c.y)-r) - w/2 }
}

// stroke is a polyline of width w with round caps and joins.
func stroke(w float64, pts ...vec) shape {
	return func(p vec) float64 {
		d := math.Inf(1)
		for i := 0; i+1 < len(pts); i++ {
			a, b := pts[i], pts[i+1]
			ab := vec{b.x - a.x, b.y - a.y}
			ap := vec{p.x - a.x, p.y - a.y}
			t := (ap.x*ab.x + ap.y*ab.y) / (ab.x*ab.x + ab.y*ab.y)
			t = math.Max(0, math.Min(1, t))
			d = math.Min(d, math.Hypot(ap.x-t*ab.x, ap.y-t*ab.y))
		}
		return d - w/2
	}
}

func roundedBox(min, max vec, r float64) shape {
	return func(p vec) float64 {
		cx, cy := (min.x+max.x)/2, (min.y+max.y)/2
		hx, hy := (max.x-min.x)/2-r, (max.y-min.y)/2-r
		qx, qy := math.Abs(p.x-cx)-hx, math.Abs(p.y-cy)-hy
		out := math.Hypot(math.Max(qx, 0), math.Max(qy, 0))
		return out + math.Min(math.Max(qx, qy), 0) - r
	}
}

func union(ss ...shape) shape {
	return func(p vec) float64 {
		d := math.Inf(1)
		for _, s := range ss {
			d = math.Min(d, s(p))
		}
		return d
	}
}

// layer is a shape filled with a colour (which may vary with the position).
type layer struct {
	s   shape
	col func(p vec) color.NRGBA
}

func solid(c color.NRGBA) func(vec) color.NRGBA { return func(vec) color.NRGBA { return c } }

func render(size int, layers ...layer) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	px := 1 / float64(size) // one pixel in icon units
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := vec{(float64(x) + 0.5) * px, (float64(y) + 0.5) * px}
			var r, g, b, a float64
			for _, l := range layers {
				cov := math.Max(0, math.Min(1, 0.5-l.s(p)/px))
				if cov == 0 {
					continue
				}
				c := l.col(p)
				la := cov * float64(c.A) / 255
				// "over" with straight alpha
				na := la + a*(1-la)
				if na > 0 {
					r = (float64(c.R)*la + r*a*(1-la)) / na
					g = (float64(c.G)*la + g*a*(1-la)) / na
					b = (float64(c.B)*la + b*a*(1-la)) / na
				}
				a = na
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(r + 0.5), uint8(g + 0.5), uint8(b + 0.5), uint8(a*255 + 0.5)})
		}
	}
	return img
}

var white = color.NRGBA{255, 255, 255, 255}

// badge is a state icon: a disc in the state's colour with a darker rim and a white glyph.
func badge(size int, base, rim color.NRGBA, glyph shape) *image.NRGBA {
	c := vec{0.5, 0.5}
	return render(size,
		layer{circle(c, 0.47), solid(rim)},
		layer{circle(c, 0.42), solid(base)},
		layer{glyph, solid(white)},
	)
}

func save(dir, name string, img image.Image) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		log.Fatal(err)
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func main() {
	dir := "app/icons"
	if _, err := os.Stat(dir); err != nil {
		dir = "."
	}
	const tray = 64 // panels ask for 16–48 px; 64 scales down cleanly
	const w = 0.1   // glyph stroke width

	save(dir, "synced.png", badge(tray, color.NRGBA{0x2e, 0x9e, 0x52, 255}, color.NRGBA{0x1d, 0x6b, 0x37, 255},
		stroke(w, vec{0.29, 0.52}, vec{0.44, 0.67}, vec{0.72, 0.37})))
	save(dir, "queued.png", badge(tray, color.NRGBA{0x2f, 0x7f, 0xd8, 255}, color.NRGBA{0x1b, 0x55, 0x9a, 255},
		union(stroke(w, vec{0.5, 0.73}, vec{0.5, 0.29}), stroke(w, vec{0.32, 0.46}, vec{0.5, 0.28}, vec{0.68, 0.46}))))
	save(dir, "offline.png", badge(tray, color.NRGBA{0x7a, 0x80, 0x89, 255}, color.NRGBA{0x4e, 0x53, 0x5a, 255},
		union(ring(vec{0.5, 0.5}, 0.2, 0.085), stroke(0.085, vec{0.3, 0.7}, vec{0.7, 0.3}))))
	save(dir, "error.png", badge(tray, color.NRGBA{0xd9, 0x36, 0x36, 255}, color.NRGBA{0x94, 0x1f, 0x1f, 255},
		union(stroke(0.11, vec{0.5, 0.27}, vec{0.5, 0.55}), circle(vec{0.5, 0.72}, 0.065))))

	// The application icon: a tray with an arrow going up, on a blue tile.
	top, bottom := color.NRGBA{0x3d, 0x8f, 0xe6, 255}, color.NRGBA{0x1b, 0x55, 0x9a, 255}
	gradient := func(p vec) color.NRGBA {
		t := math.Max(0, math.Min(1, (p.y-0.06)/0.88))
		mix := func(a, b uint8) uint8 { return uint8(float64(a)*(1-t) + float64(b)*t + 0.5) }
		return color.NRGBA{mix(top.R, bottom.R), mix(top.G, bottom.G), mix(top.B, bottom.B), 255}
	}
	save(dir, "icon.png", render(512,
		layer{roundedBox(vec{0.06, 0.06}, vec{0.94, 0.94}, 0.2), gradient},
		layer{union(
			stroke(0.07, vec{0.25, 0.55}, vec{0.25, 0.75}, vec{0.75, 0.75}, vec{0.75, 0.55}),
			stroke(0.07, vec{0.5, 0.63}, vec{0.5, 0.25}),
			stroke(0.07, vec{0.35, 0.4}, vec{0.5, 0.25}, vec{0.65, 0.4}),
		), solid(white)},
	))
}
