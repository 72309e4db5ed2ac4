package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// expressServer runs testdata/express/server.mjs, an Express app with the
// compression middleware (both pinned in its lockfile), and returns its
// base URL.
func expressServer(t *testing.T) string {
	t.Helper()
	if err := expressInstall(); err != nil {
		t.Fatal(err)
	}
	base, _ := startNode(t, "express", nil)
	return base
}

// compressedReadTimes is the ground truth of a compressed read: it GETs url
// as Go's client does by default (asking for gzip and decoding it as it
// arrives) and notes after each read how many decoded bytes had arrived.
func compressedReadTimes(ctx context.Context, url string) ([]readAt, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	reads, err := timedReads(resp.Body)
	if err != nil {
		return reads, "", err
	}
	return reads, map[bool]string{true: "gzip", false: ""}[resp.Uncompressed], nil
}

// TestStreamModeExpress reads an Express app's event stream, which its
// compression middleware holds to the end, and wants the hold blamed on
// compression, with Express's own fix, not on a buffer: the same request
// without compression comes live. The ground truth is a gzip read and an
// uncompressed one taken at the same moment.
func TestStreamModeExpress(t *testing.T) {
	t.Parallel()
	base := expressServer(t)
	target := base + "/events?count=20&interval=100"
	var (
		rep            Report
		code           int
		gzipped, plain []readAt
		enc            string
		errs           [2]error
		wg             sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wg.Go(func() { rep, code = streamJSON(t, "-X", "GET", target) })
	wg.Go(func() { gzipped, enc, errs[0] = compressedReadTimes(ctx, target) })
	wg.Go(func() { plain, errs[1] = readTimes(ctx, target) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("ground truth: %v", err)
	}
	if gt := byteVerdict(gzipped, plain); enc != "gzip" || gt != "held" {
		t.Fatalf("the ground truth says %s (%q) beside the uncompressed read, the test expects held (gzip)", gt, enc)
	}
	want := streamWant([]string{"Express"}, "held", "sse", 20, "ended")
	want.Method = "GET"
	want.Checks[0].Encoding = "br"
	want.Checks[0].Fix = productFix(t, "Express", problemCompression)
	want.Checks[1] = Finding{Name: "compression", Verdict: "holding", Encoding: "br", Fix: productFix(t, "Express", problemCompression)}
	if diff := cmp.Diff(want, rep, streamVerdicts); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}
