// Command panicker is a Lambda function whose handler misbehaves, for the
// end-to-end tests of how the adapter copes: /before panics before the
// response begins; /stubborn writes one event and then never returns,
// ignoring its context; /ok answers "ok"; any other path panics after its
// first event.
package main

import (
	"io"
	"net/http"

	"github.com/tickstream/tickstream/lambda/adapter"
	"github.com/tickstream/tickstream/lambda/runtimeapi"
)

func main() {
	runtimeapi.Start(adapter.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/before":
			panic("boom before the response")
		case "/ok":
			io.WriteString(w, "ok")
			return
		case "/stubborn":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			select {}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		http.NewResponseController(w).Flush()
		panic("boom after the first event")
	})).Invoke)
}
