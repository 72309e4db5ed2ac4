package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	// Registers -update, so that go test ./... -update, which rewrites the
	// golden files, runs here too.
	_ "github.com/tickstream/tickstream/internal/wiretest"
)

func TestParseConfigBounds(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-url", "http://example.com/events"}, `-url "http://example.com/events": only loopback addresses are allowed`},
		{[]string{"-url", "http://10.0.0.1/events"}, `-url "http://10.0.0.1/events": only loopback addresses are allowed`},
		{[]string{"-url", "https://127.0.0.1/events"}, `-url "https://127.0.0.1/events": want an http:// URL`},
		{[]string{"-streams", "0"}, "-streams 0: want 1 to 20000"},
		{[]string{"-streams", "20001"}, "-streams 20001: want 1 to 20000"},
		{[]string{"-hold", "11m"}, "-hold 11m0s: want more than 0 and at most 10m0s"},
		{[]string{"-hold", "0s"}, "-hold 0s: want more than 0 and at most 10m0s"},
		{[]string{"-source-addrs", "251"}, "-source-addrs 251: want 1 to 250"},
		{[]string{"-interval", "0s"}, "-interval 0s: want more than 0"},
		{[]string{"-dials", "0"}, "-dials 0: want at least 1"},
		{[]string{"-client", "curl"}, `-client "curl": want raw or nethttp`},
	} {
		_, err := parseConfig(tt.args, io.Discard)
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseConfig(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
	if _, err := parseConfig([]string{"-url", "http://localhost:1/x", "-streams", "20000"}, io.Discard); err != nil {
		t.Errorf("a valid configuration: %v", err)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := range 100 {
		h.add(time.Duration(i+1) * time.Millisecond) // 1ms .. 100ms
	}
	h.add(-time.Second) // early: counted as 0
	h.add(time.Minute)  // beyond the last bucket
	want := percentiles{P50: 50*time.Millisecond + bucketWidth, P99: 100*time.Millisecond + bucketWidth, Max: time.Minute}
	if diff := cmp.Diff(want, h.percentiles()); diff != "" {
		t.Errorf("percentiles (-want +got):\n%s", diff)
	}
	var empty histogram
	if got := empty.percentiles(); got != (percentiles{}) {
		t.Errorf("empty histogram: %+v", got)
	}
}

func TestDataID(t *testing.T) {
	for _, tt := range []struct {
		line string
		id   int64
		ok   bool
	}{
		{`data: {"id":42,"timestamp":"x"}` + "\n", 42, true},
		{`data: {"id":0,"timestamp":1700000000000}` + "\n", 0, true},
		{`id: 42` + "\n", 0, false},
		{`data: {"seq":1}` + "\n", 0, false},
		{`data: {"id":"x"}` + "\n", 0, false},
	} {
		id, ok := dataID([]byte(tt.line))
		if id != tt.id || ok != tt.ok {
			t.Errorf("dataID(%q) = %d, %v; want %d, %v", tt.line, id, ok, tt.id, tt.ok)
		}
	}
}

// TestLoadTestCounts runs the tool against a server whose streams skip an id
// and repeat one, and checks the report's counts exactly.
func TestLoadTestCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(id int) {
			fmt.Fprintf(w, "id: %d\ndata: {\"id\":%d}\n\n", id, id)
			w.(http.Flusher).Flush()
		}
		send(1)
		time.Sleep(300 * time.Millisecond) // the hold begins once every stream has its first event
		for _, id := range []int{2, 3, 5, 5, 6} {
			send(id)
		}
		<-r.Context().Done()
	})}
	go srv.Serve(ln)
	defer srv.Close()

	for _, client := range []string{"raw", "nethttp"} {
		cfg, err := parseConfig([]string{"-url", "http://" + ln.Addr().String() + "/events", "-streams", "20",
			"-hold", "1s", "-interval", "10ms", "-source-addrs", "3", "-client", client}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r, err := loadTest(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("held %d events %d gaps %d repeats %d failed %v", r.Held, r.Events, r.Gaps, r.Repeats, r.Failed)
		if want := "held 20 events 100 gaps 20 repeats 20 failed map[]"; got != want {
			t.Errorf("-client %s: report: %s, want %s", client, got, want)
		}
	}
	cfg, err := parseConfig([]string{"-url", "http://" + ln.Addr().String() + "/events", "-streams", "20",
		"-hold", "1s", "-interval", "10ms", "-source-addrs", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	cfg.url.Path = "/missing"
	r, err := loadTest(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Held != 0 || r.Failed["status 404"] != 20 {
		t.Errorf("against a 404: held %d, failed %v; want none held and 20 with status 404", r.Held, r.Failed)
	}
	var out strings.Builder
	r.writeText(&out)
	if !strings.Contains(out.String(), "failed         20: status 404") {
		t.Errorf("text report:\n%s", out.String())
	}
}
