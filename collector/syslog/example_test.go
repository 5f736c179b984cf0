package syslog_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/syslog"
)

// A degraded control's Compliance Finding, as a receiver sees it: the
// octet count, the RFC 5424 header (local4.err), the structured data, and
// the event's JSON as the message. (Production uses the default "tls"
// transport; this example reads the plaintext stream.)
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	got := make(chan string)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()

	s, err := syslog.New(syslog.Config{Address: ln.Addr().String(), Transport: syslog.TransportTCP})
	if err != nil {
		panic(err)
	}
	outs := s.Write(context.Background(), []collector.Event{{
		UID: "019ac617-3127-7001-80a1-3c9efa1d7f43", ClassUID: 2003, ClassName: "Compliance Finding",
		SeverityID: 4, Time: 1764260000039, RunID: "019ac617-3100-7000-80a1-3c9efa1d7f42",
		Host: "build-07.ci.example.net", Data: []byte(`{"class_uid":2003,"severity_id":4}`),
	}})
	fmt.Println(outs[0].Status)
	if err := s.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output:
	// delivered
	// 264 <163>1 2025-11-27T16:13:20.039Z build-07.ci.example.net sandtrail - compliance_finding [sandtrail@32473 class_uid="2003" severity_id="4" run="019ac617-3100-7000-80a1-3c9efa1d7f42" event_uid="019ac617-3127-7001-80a1-3c9efa1d7f43"] {"class_uid":2003,"severity_id":4}
}
