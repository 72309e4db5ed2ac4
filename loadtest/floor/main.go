// Command floor is the least a goroutine-per-stream SSE server can do, the
// floor of any Go server built that way: raw sockets, one goroutine and one
// timer per stream, one write per event, and nothing else (no deadlines, no
// limits, no departure watch beyond a failed write, no shutdown). It is only
// a baseline for the performance table, measured with loadtest beside
// tickstream, go-httpbin and the naive net/http loop:
//
//	go run ./loadtest/floor -addr 127.0.0.1:8091
//
// Every request on a connection, whatever it asks, gets an endless chunked
// stream of /events ticks, one a second.
package main

import (
	"bufio"
	"flag"
	"log"
	"net"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen on `host:port`")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go stream(conn)
	}
}

const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
	"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"

// stream reads the request's head and writes a tick every second until a
// write fails.
func stream(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1024)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 { // the blank line that ends the head
			break
		}
	}
	var buf [256]byte
	b := append(buf[:0], head...)
	timer := time.NewTimer(0)
	for id := int64(1); ; id++ {
		<-timer.C
		b = appendTick(b, id, time.Now())
		if _, err := conn.Write(b); err != nil {
			return
		}
		b = b[:0]
		timer.Reset(time.Second)
	}
}

// appendTick appends the id-th tick as one chunk: the bytes of
// tickstream's /events frame.
func appendTick(dst []byte, id int64, now time.Time) []byte {
	var frame [160]byte
	f := append(frame[:0], "id: "...)
	f = strconv.AppendInt(f, id, 10)
	f = append(f, "\nevent: tick\ndata: {\"id\":"...)
	f = strconv.AppendInt(f, id, 10)
	f = append(f, ",\"timestamp\":\""...)
	f = now.UTC().AppendFormat(f, "2006-01-02T15:04:05.000Z")
	f = append(f, "\",\"message\":\"Event #"...)
	f = strconv.AppendInt(f, id, 10)
	f = append(f, "\"}\n\n"...)
	dst = strconv.AppendInt(dst, int64(len(f)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, f...)
	return append(dst, "\r\n"...)
}
