package web

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"regexp"
	"strconv"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/acceptcryptohere/gateway/domain"
)

func TestWalletURI(t *testing.T) {
	assets := domain.DefaultAssets()
	lookup := func(code string) domain.Asset {
		a, err := assets.Lookup(code)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		asset, address, amount string
		want                   string
	}{
		{"BTC", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "0.00123456",
			"bitcoin:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq?amount=0.00123456"},
		{"BTC", "simbtc1qabc", "1", "bitcoin:simbtc1qabc?amount=1"},
		// 0.05 ETH = 5e16 wei, written out in full.
		{"ETH", "0x89205A3A3b2A69De6Dbf7f01ED13B2108B2c43e7", "0.05",
			"ethereum:0x89205A3A3b2A69De6Dbf7f01ED13B2108B2c43e7@1?value=50000000000000000"},
		{"ETH", "0xabc", "0.000000000000000001", "ethereum:0xabc@1?value=1"},
		// ERC-20: the token contract is the target, the amount in base units (6 decimals).
		{"USDT.ETH", "0x89205A3A3b2A69De6Dbf7f01ED13B2108B2c43e7", "49.990001",
			"ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?address=0x89205A3A3b2A69De6Dbf7f01ED13B2108B2c43e7&uint256=49990001"},
		{"TRX", "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8", "12.5", "tron:TJRabPrwbZy45sbavfcjinPJC18kjpRTv8?amount=12.5"},
		{"USDT.TRON", "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8", "49.99",
			"tron:TJRabPrwbZy45sbavfcjinPJC18kjpRTv8?amount=49.99&token=TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"},
	}
	for _, tt := range tests {
		got, err := WalletURI(lookup(tt.asset), tt.address, domain.MustAmount(tt.amount), 1)
		if err != nil {
			t.Errorf("%s %s: %v", tt.asset, tt.amount, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tt.asset, tt.amount, got, tt.want)
		}
	}

	// Refused: an address that would need escaping, more decimals than the asset has.
	if _, err := WalletURI(lookup("BTC"), "bc1q?amount=100", domain.MustAmount("1"), 1); err == nil {
		t.Error("an address with URI syntax in it was accepted")
	}
	if _, err := WalletURI(lookup("USDT.ETH"), "0xabc", domain.MustAmount("1.0000001"), 1); err == nil {
		t.Error("7 decimals for a 6-decimal token were accepted")
	}
}

// TestQRCodeDecodes draws the checkout's SVG, rasterises the path it
// contains, and reads it back with an independent decoder (ZXing's Go
// port): the code carries exactly the wallet URI, amount included.
func TestQRCodeDecodes(t *testing.T) {
	assets := domain.DefaultAssets()
	for _, tc := range []struct{ asset, address, amount string }{
		{"BTC", "simbtc1q5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1", "0.01000001"},
		{"ETH", "0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e", "0.123456789012345678"},
		{"USDT.ETH", "0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e", "49.990001"},
		{"USDT.TRON", "Tsim5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d", "1000000.000001"},
		{"TRX", "Tsim5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d", "3.5"},
	} {
		a, err := assets.Lookup(tc.asset)
		if err != nil {
			t.Fatal(err)
		}
		uri, err := WalletURI(a, tc.address, domain.MustAmount(tc.amount), 1)
		if err != nil {
			t.Fatal(err)
		}
		svg, err := qrSVG(uri, "QR")
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeQR(rasteriseSVG(t, string(svg), 6))
		if err != nil {
			t.Fatalf("%s: decode: %v", tc.asset, err)
		}
		if got != uri {
			t.Errorf("%s: QR decodes to %q, want %q", tc.asset, got, uri)
		}
	}
}

// decodeQR reads one QR code from an image.
func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

var (
	svgViewBox = regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`)
	svgRun     = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
)

// rasteriseSVG paints what qrSVG draws (a white square, then black runs)
// at scale pixels per module.
func rasteriseSVG(t *testing.T, svg string, scale int) image.Image {
	t.Helper()
	m := svgViewBox.FindStringSubmatch(svg)
	if m == nil {
		t.Fatalf("no viewBox in %s", svg)
	}
	n, _ := strconv.Atoi(m[1])
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	runs := svgRun.FindAllStringSubmatch(svg, -1)
	if len(runs) == 0 {
		t.Fatal("no modules in the SVG")
	}
	for _, r := range runs {
		x, _ := strconv.Atoi(r[1])
		y, _ := strconv.Atoi(r[2])
		w, _ := strconv.Atoi(r[3])
		for py := y * scale; py < (y+1)*scale; py++ {
			for px := x * scale; px < (x+w)*scale; px++ {
				img.SetGray(px, py, color.Gray{Y: 0})
			}
		}
	}
	return img
}

// decodePNG reads a QR code from PNG bytes (the browser test's screenshots).
func decodePNG(data []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	return decodeQR(img)
}
