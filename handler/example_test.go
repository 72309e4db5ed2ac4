package handler_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tickstream/tickstream/handler"
)

// Mount the routes under /sse/ in your own mux. The page's URLs are relative,
// so /sse/ shows the page and it subscribes to /sse/events. Strip the prefix
// with or without its trailing slash: both work.
func Example_mountUnderPrefix() {
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New()))
	mux.Handle("/other/", http.StripPrefix("/other/", handler.New()))
	// Serve mux as usual, e.g. http.ListenAndServe(":8080", mux).

	for _, target := range []string{"/sse/health", "/other/health"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		fmt.Println(rec.Code, rec.Body)
	}
	// Output:
	// 200 {"status":"healthy"}
	// 200 {"status":"healthy"}
}
