// Command panicker is a Lambda function whose handler panics, for the
// end-to-end test of how the adapter reports panics: /before panics before
// the response begins, any other path after its first event.
package main

import (
	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/tickstream/tickstream/lambda/adapter"
)

func main() {
	lambda.Start(adapter.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/before" {
			panic("boom before the response")
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		http.NewResponseController(w).Flush()
		panic("boom after the first event")
	})).Invoke)
}
