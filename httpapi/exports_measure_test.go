package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExportMemory measures what a CSV export of many invoices costs in
// memory (issue #20: streamed, constant memory). It is a measurement, not
// a check, and runs only when asked:
//
//	PIC_EXPORT_MEASURE=100000 go test ./httpapi -run TestExportMemory -v
//
// It copies one real invoice's read-model row N times (the export reads
// only that table), then downloads /v1/exports/invoices.csv and reports
// the process's peak RSS and Go heap while streaming, against before.
func TestExportMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PIC_EXPORT_MEASURE"))
	if n <= 0 {
		t.Skip("set PIC_EXPORT_MEASURE=<invoices> to measure the export's memory")
	}
	b := setup(t)
	m := b.signUp(t, "Big Shop")
	b.createInvoice(t, m.secret, `{"asset":"USDT.ETH","amount":"12.5","order_id":"order-1","description":"A mug"}`)
	ctx := context.Background()
	var cols []string
	rows, err := b.db.Read.QueryContext(ctx, `SELECT name FROM pragma_table_info('invoices')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = c
		if c == "invoice_id" {
			sel[i] = `printf('inv_copy%09d', n)`
		}
	}
	start := time.Now()
	if _, err := b.db.Write.ExecContext(ctx, `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?)
		INSERT INTO invoices (`+strings.Join(cols, ", ")+`) SELECT `+strings.Join(sel, ", ")+` FROM c, invoices WHERE invoices.merchant_id = ?`,
		n-1, m.id); err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d invoice rows in %v", n-1, time.Since(start).Round(time.Millisecond))

	runtime.GC()
	rssBefore, heapBefore := rssKiB(t), heapKiB()
	var mu sync.Mutex
	peakRSS, peakHeap := rssBefore, heapBefore
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				r, h := rssKiB(t), heapKiB()
				mu.Lock()
				peakRSS, peakHeap = max(peakRSS, r), max(peakHeap, h)
				mu.Unlock()
			}
		}
	}()
	req, _ := http.NewRequest("GET", b.srv.URL+"/v1/exports/invoices.csv", nil)
	req.Header.Set("Authorization", "Bearer "+m.secret)
	start = time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines, bytes := 0, 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		lines++
		bytes += len(sc.Bytes()) + 1
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	close(done)
	if lines != n+1 {
		t.Fatalf("%d lines, want %d invoices and the header", lines, n)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("export of %d invoices: %.1f MB of CSV in %v; process RSS %d -> peak %d KiB (+%d), Go heap %d -> peak %d KiB (+%d)",
		n, float64(bytes)/1e6, time.Since(start).Round(time.Millisecond), rssBefore, peakRSS, peakRSS-rssBefore, heapBefore, peakHeap, peakHeap-heapBefore)
}

func rssKiB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: ", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib
		}
	}
	return 0
}

func heapKiB() int {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.HeapInuse / 1024)
}
