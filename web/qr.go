package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QR codes are encoded by github.com/skip2/go-qrcode (pure Go, no cgo,
// the most used Go encoder; its output is checked in our tests by an
// independent decoder) and drawn here as SVG: a vector scales sharply to
// any screen, needs no image endpoint, and goes inline into the page
// without touching the Content-Security-Policy (fill is a presentation
// attribute, not a style).

// qrLevel: Medium recovers 15 % damage, and keeps an EIP-681 token URI
// (about 120 characters) at a size phones read from a screen.
const qrLevel = qrcode.Medium

// qrModules returns the code's dark modules, with the standard 4-module
// quiet zone around them.
func qrModules(content string) ([][]bool, error) {
	q, err := qrcode.New(content, qrLevel)
	if err != nil {
		return nil, fmt.Errorf("web: qr: %w", err)
	}
	return q.Bitmap(), nil
}

// qrPath draws the code as one path of horizontal runs: the size of the
// square in modules and the path's d. checkout.js draws the same SVG from
// them when the amount due changes.
func qrPath(content string) (int, string, error) {
	m, err := qrModules(content)
	if err != nil {
		return 0, "", err
	}
	var d strings.Builder
	for y, row := range m {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	return len(m), d.String(), nil
}

// qrSVG draws the code on a white square: always dark on light, also in
// dark mode, because many scanners cannot read an inverted code. title is
// the accessible name.
func qrSVG(content, title string) (template.HTML, error) {
	size, d, err := qrPath(content)
	if err != nil {
		return "", err
	}
	n := strconv.Itoa(size)
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + n + ` ` + n + `" role="img" shape-rendering="crispEdges" class="qr">` +
		`<title>` + template.HTMLEscapeString(title) + `</title>` +
		`<rect width="` + n + `" height="` + n + `" fill="#fff"/>` +
		`<path fill="#000" d="` + d + `"/></svg>`
	return template.HTML(svg), nil // built from numbers and an escaped title only
}
