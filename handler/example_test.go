package handler_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tickstream/tickstream/handler"
)

// Mount the routes under /sse/ in your own mux. The page's URLs are relative,
// so /sse/ shows the page and it subscribes to /sse/events.
func Example_mountUnderPrefix() {
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New()))
	// Serve mux as usual, e.g. http.ListenAndServe(":8080", mux).

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/sse/health", nil))
	fmt.Println(rec.Code, rec.Body)
	// Output: 200 {"status":"healthy"}
}
