package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openAIServer serves an OpenAI-compatible chat completions endpoint, POST
// /v1/chat/completions, written from the public wire format: with "stream":
// true, a text/event-stream of chat.completion.chunk objects (no id:, no
// event: lines; the first delta carries the role, each next one a token,
// the last the finish reason), one every interval, then "data: [DONE]". It
// sends no X-Accel-Buffering, as the popular servers do not. max_tokens
// sets how many tokens (default 16, at most 200). Anything else answers
// 400 with the API's error shape. Each record it sends is noted in log.
func openAIServer(t *testing.T, interval time.Duration, log *sendLog) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(status int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, msg)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			fail(http.StatusNotFound, "POST /v1/chat/completions only")
			return
		}
		var req struct {
			Model     string            `json:"model"`
			Messages  []json.RawMessage `json:"messages"`
			Stream    bool              `json:"stream"`
			MaxTokens int               `json:"max_tokens"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || len(req.Messages) == 0 || !req.Stream {
			fail(http.StatusBadRequest, "want a JSON body with messages and \"stream\": true")
			return
		}
		if req.MaxTokens <= 0 {
			req.MaxTokens = 16
		}
		req.MaxTokens = min(req.MaxTokens, 200)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		record := 0
		chunk := func(delta, finish string) {
			log.add(r, record)
			record++
			fmt.Fprintf(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":946684800,"model":%q,`+
				`"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}`+"\n\n", req.Model, delta, finish)
			http.NewResponseController(w).Flush() //nolint:errcheck // a gone client ends the loop below
		}
		chunk(`{"role":"assistant","content":""}`, "null")
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range req.MaxTokens {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			chunk(fmt.Sprintf(`{"content":" token%d"}`, i), "null")
		}
		chunk(`{}`, `"stop"`)
		log.add(r, record)
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// chatRequest is the body of a streamed chat completion of n tokens.
func chatRequest(n int) string {
	return fmt.Sprintf(`{"model":"test","stream":true,"max_tokens":%d,"messages":[{"role":"user","content":"Count."}]}`, n)
}

// npmInstall installs the packages of testdata/dir from its lockfile.
func npmInstall(dir string) error {
	out, err := exec.Command("npm", "ci", "--prefix", filepath.Join("testdata", dir), "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in testdata/%s (Node.js and npm are needed): %v\n%s", dir, err, out)
	}
	return nil
}

var (
	mcpInstall     = sync.OnceValue(func() error { return npmInstall("mcp") })
	expressInstall = sync.OnceValue(func() error { return npmInstall("express") })
)

// startNode runs testdata/dir/server.mjs with Node.js until the test ends,
// waits at most 30 s for its first line, "listening PORT", and returns its
// base URL and what it writes to standard error; each later line of its
// output goes to line, if not nil.
func startNode(t *testing.T, dir string, line func([]byte)) (string, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("node", filepath.Join("testdata", dir, "server.mjs"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	port := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		if lines.Scan() {
			port <- strings.TrimPrefix(lines.Text(), "listening ")
		}
		close(port)
		for lines.Scan() {
			if line != nil {
				line(lines.Bytes())
			}
		}
	}()
	select {
	case n := <-port:
		if n == "" {
			t.Fatalf("node testdata/%s/server.mjs did not say where it listens: %s", dir, stderr.String())
		}
		return "http://127.0.0.1:" + n, &stderr
	case <-time.After(30 * time.Second):
		t.Fatalf("node testdata/%s/server.mjs did not listen within 30s: %s", dir, stderr.String())
	}
	return "", nil
}

// An mcpProcess is a running testdata/mcp/server.mjs.
type mcpProcess struct {
	url  string
	sent sendLog // the notifications it sent
}

// mcpServer runs testdata/mcp/server.mjs, an MCP server on the official
// TypeScript SDK (@modelcontextprotocol/sdk, pinned in its lockfile), and
// returns it. Its tool "count" answers a tools/call with an SSE stream of
// progress notifications, then the result; the notifications it sent, to
// whom and when, are in its sent log.
func mcpServer(t *testing.T) *mcpProcess {
	t.Helper()
	if err := mcpInstall(); err != nil {
		t.Fatal(err)
	}
	p := &mcpProcess{}
	base, stderr := startNode(t, "mcp", func(line []byte) {
		var n send
		if json.Unmarshal(line, &n) == nil {
			p.sent.addSend(n)
		}
	})
	p.url = base + "/mcp"
	// One call first, so that the tests' calls do not wait for Node.js to
	// compile the SDK's code paths.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := stamp(ctx, p.url, "application/json", mcpCall(2, time.Millisecond), true); err != nil {
		t.Fatalf("the first call of the MCP server: %v (%s)", err, stderr.String())
	}
	return p
}

// mcpCall is the body of a tools/call of "count" that asks for progress.
func mcpCall(n int, interval time.Duration) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","arguments":{"count":%d,"interval":%d},"_meta":{"progressToken":"p1"}}}`,
		n, interval.Milliseconds())
}

// ndjsonServer serves an Ollama-style stream: application/x-ndjson, one
// JSON object a line every interval, the last with "done": true.
func ndjsonServer(t *testing.T, n int, interval time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range n {
			fmt.Fprintf(w, `{"model":"test","response":" token%d","done":false}`+"\n", i)
			http.NewResponseController(w).Flush() //nolint:errcheck
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
		fmt.Fprint(w, `{"model":"test","response":"","done":true,"done_reason":"stop"}`+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// textServer serves a text stream as the Vercel AI SDK's text protocol
// does: text/plain; charset=utf-8, raw chunks, one every interval.
func textServer(t *testing.T, n int, interval time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for i := range n {
			fmt.Fprintf(w, "word%d ", i)
			http.NewResponseController(w).Flush() //nolint:errcheck
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A stamped record is one record as a ground-truth client got it: when
// it arrived, and its data (the SSE event's data lines, or the line).
type stamped struct {
	at   time.Time
	data string
}

// stamp is the ground truth of one read: when each record arrived, by a
// client that does nothing but read lines and note the time, as `curl -N
// | ts` does. Records are SSE events (a blank line after data), or lines.
// Its requests say X-Ground-Truth: 1, so that servers can tell them apart.
func stamp(ctx context.Context, url, contentType, body string, sseEvents bool) ([]stamped, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("X-Ground-Truth", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	var (
		stamps []stamped
		data   []string
	)
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		now := time.Now()
		if err != nil {
			if err == io.EOF {
				return stamps, nil
			}
			return stamps, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case !sseEvents && line != "":
			stamps = append(stamps, stamped{at: now, data: line})
		case sseEvents && line == "" && data != nil:
			stamps = append(stamps, stamped{at: now, data: strings.Join(data, "\n")})
			data = nil
		case sseEvents && strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// A readAt is how many bytes of a body had arrived by when, at one read.
type readAt struct {
	n  int
	at time.Time
}

// readTimes is the ground truth of a read of any format: it GETs url, as
// `curl -N` does, and notes after each read of the body how many bytes had
// arrived.
func readTimes(ctx context.Context, url string) ([]readAt, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return timedReads(resp.Body)
}

// timedReads reads body to its end and notes, after each read, how many
// bytes had arrived and when.
func timedReads(body io.Reader) ([]readAt, error) {
	var reads []readAt
	buf := make([]byte, 32<<10)
	n := 0
	for {
		k, err := body.Read(buf)
		if k > 0 {
			n += k
			reads = append(reads, readAt{n: n, at: time.Now()})
		}
		if err == io.EOF {
			return reads, nil
		}
		if err != nil {
			return reads, err
		}
	}
}

// byteVerdict judges a path by two ground-truth reads at the same moment,
// through it and direct: each direct read's bytes, how much later the path
// had as many; the verdict as stream mode's -compare gives it.
func byteVerdict(path, direct []readAt) string {
	var added []time.Duration
	j := 0
	for _, d := range direct {
		for j < len(path) && path[j].n < d.n {
			j++
		}
		if j == len(path) {
			break
		}
		added = append(added, path[j].at.Sub(d.at))
	}
	if len(added) == 0 {
		return "unmatched"
	}
	return truthVerdict(added, len(path) == 1 || path[len(path)-1].at.Sub(path[0].at) < together)
}

// truthVerdict is the ground truth's verdict on a path, from the delays it
// added to each record and whether everything came through it at once: the
// thresholds of stream mode's -compare, computed apart from it.
func truthVerdict(added []time.Duration, allAtOnce bool) string {
	switch spread := percentile(added, 99) - max(slices.Min(added), 0); {
	case spread < liveHold:
		return "live"
	case allAtOnce:
		return "held"
	case spread >= bufferedHold:
		return "buffered"
	default:
		return "batched"
	}
}
