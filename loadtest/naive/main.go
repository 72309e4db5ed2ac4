// Command naive is the simplest SSE server net/http allows: a ticker per
// stream, one write and one flush per event. It is only a baseline for the
// performance table in the README, measured with loadtest beside
// tickstream and go-httpbin:
//
//	go run ./loadtest/naive -addr 127.0.0.1:8090
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen on `host:port`")
	flag.Parse()
	http.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		flusher := w.(http.Flusher)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for id := 1; ; id++ {
			fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"id\":%d,\"timestamp\":%q,\"message\":\"Event #%d\"}\n\n",
				id, id, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), id)
			flusher.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-ticker.C:
			}
		}
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
