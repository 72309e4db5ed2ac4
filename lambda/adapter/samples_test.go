//go:build !js && !wasip1

package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tickstream/tickstream/internal/wiretest"
	"github.com/tickstream/tickstream/lambda/adapter"
)

// moduleDir returns where the go command keeps the source of module path,
// at the version go.mod requires.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", path, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("go list -m %s: no directory; run go mod download", path)
	}
	return dir
}

// sampleResult is what became of a sample event: the request the handler
// saw and the source it came from, or why the event was refused.
type sampleResult struct {
	Source      string       `json:"source,omitempty"`
	Request     *requestSeen `json:"request,omitempty"`
	Unsupported string       `json:"unsupported,omitempty"`
}

// TestSampleEvents feeds every sample event of aws-lambda-go (events/testdata,
// and the function URL events recorded from a live URL in lambdaurl/testdata),
// read from the module cache, through the adapter. Each HTTP event must
// reach the handler as the request net/http would make of it; every other
// event must fail with an UnsupportedEventError, which Lambda reports under
// that type name. The results are pinned in testdata/aws-lambda-go-samples.json
// (rewritten by go test -update).
func TestSampleEvents(t *testing.T) {
	dir := moduleDir(t, "github.com/aws/aws-lambda-go")
	files, err := filepath.Glob(filepath.Join(dir, "events", "testdata", "*.json"))
	if err != nil || len(files) < 100 {
		t.Fatalf("%d sample events in %s (%v), want the 104 aws-lambda-go v1.55.1 has", len(files), dir, err)
	}
	urls, _ := filepath.Glob(filepath.Join(dir, "lambdaurl", "testdata", "*.json"))
	files = append(files, urls...)

	results := map[string]sampleResult{}
	for _, file := range files {
		payload, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(file))) + "/" + filepath.Base(file)
		var result sampleResult
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			e, ok := adapter.EventFromContext(r.Context())
			if !ok {
				t.Errorf("%s: no event in the request's context", name)
				return
			}
			result = sampleResult{Source: e.Source.String(),
				Request: &requestSeen{r.Method, r.URL.String(), r.RequestURI, r.Host, r.RemoteAddr, string(body), r.Header, r.ContentLength}}
		})
		resp, err := adapter.New(h).Invoke(context.Background(), payload)
		if err != nil {
			var unsupported *adapter.UnsupportedEventError
			if !errors.As(err, &unsupported) || !errors.Is(err, adapter.ErrUnsupportedEvent) {
				t.Errorf("%s: error %v (%T), want an UnsupportedEventError", name, err, err)
				continue
			}
			if typ := reflect.TypeOf(err).Elem().Name(); typ != "UnsupportedEventError" {
				t.Errorf("%s: Lambda would report the error type %q", name, typ)
			}
			result.Unsupported = unsupported.Kind
		} else if _, err := io.Copy(io.Discard, resp); err != nil {
			t.Errorf("%s: response: %v", name, err)
		}
		results[name] = result
	}
	got, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Golden(t, filepath.Join("testdata", "aws-lambda-go-samples.json"), append(got, '\n'))
}
