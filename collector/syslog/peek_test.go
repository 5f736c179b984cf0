package syslog

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/internal/receivers/rsyslog"
)

// TestStillOpen: the check before each batch tells an open connection from
// one the receiver closed, over plain TCP and TLS, at once and whatever
// the scheduler does (it looks at the socket; no read deadline decides).
func TestStillOpen(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			client, server := connPair(t, useTLS)
			if err := stillOpen(client); err != nil {
				t.Fatalf("open connection: got %v, want nil", err)
			}
			if _, err := client.Write([]byte("3 abc")); err != nil {
				t.Fatal(err)
			}
			if err := stillOpen(client); err != nil {
				t.Fatalf("open connection after a write: got %v, want nil", err)
			}
			server.Close()
			// The close reaches the client through the loopback at once,
			// but give the kernel a moment all the same.
			var err error
			for range 100 {
				if err = stillOpen(client); err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err == nil {
				t.Fatal("closed by the peer: stillOpen says open after 1 s")
			}
			t.Logf("closed by the peer: %v", err)
		})
	}
}

// connPair returns the two ends of a loopback TCP connection, with a TLS
// 1.3 session (handshake done, session ticket in flight) on top when
// useTLS.
func connPair(t *testing.T, useTLS bool) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	if !useTLS {
		return client, server
	}
	pki := rsyslog.NewPKI(t)
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ts := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
	tc := tls.Client(client, &tls.Config{RootCAs: pool, ServerName: pki.ServerName, MinVersion: tls.VersionTLS13})
	done := make(chan error, 1)
	go func() { done <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close(); ts.Close() })
	return tc, ts
}
