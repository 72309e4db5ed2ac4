//go:build !js && !wasip1

package handler_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tickstream/tickstream/handler"
)

// Serve the routes as tickstream's runner does: detached streams (a tenth of
// the memory per stream), a server configured by the handler, and a graceful
// shutdown that ends every open stream at once, cleanly, after its last
// whole event.
func Example_server() {
	h := handler.New(handler.WithDetachedStreams())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	h.ConfigureServer(srv)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go srv.Serve(ln)

	// A client reads two events of a stream.
	resp, err := http.Get("http://" + ln.Addr().String() + "/events?interval=10ms")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	for seen := 0; seen < 2; {
		line, err := body.ReadString('\n')
		if err != nil {
			fmt.Println(err)
			return
		}
		if strings.HasPrefix(line, "id: ") {
			fmt.Print(line)
			seen++
		}
	}

	// Shut down: the server and the handler's streams together, within 5 s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", h.Shutdown(ctx))

	// The client's response ended normally, after a whole event.
	rest, err := io.ReadAll(body)
	fmt.Println("clean end:", err == nil && strings.HasSuffix(string(rest), "\n\n"))
	// Output:
	// id: 1
	// id: 2
	// shutdown: <nil>
	// clean end: true
}
