package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

func TestConnConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     bus.ConnConfig
		wantErr string
	}{
		{"two auth methods", bus.ConnConfig{User: "u", Password: "p", Token: "t"}, "only one of"},
		{"creds and nkey", bus.ConnConfig{CredsFile: "a.creds", NKeySeedFile: "a.nk"}, "only one of"},
		{"user without password", bus.ConnConfig{User: "u"}, "User and Password go together"},
		{"password without user", bus.ConnConfig{Password: "p"}, "User and Password go together"},
		{"credentials in URL", bus.ConnConfig{URLs: []string{"nats://u:hunter2@127.0.0.1:4222"}}, "carries credentials"},
		{"bad scheme", bus.ConnConfig{URLs: []string{"http://127.0.0.1:4222"}}, `scheme "http"`},
		{"no host", bus.ConnConfig{URLs: []string{"nats://:4222"}}, "has no host"},
		{"cert without key", bus.ConnConfig{TLS: bus.TLSConfig{CertFile: "c.pem"}}, "CertFile and TLS.KeyFile go together"},
		{"negative timeout", bus.ConnConfig{ConnectTimeout: -time.Second}, "ConnectTimeout is negative"},
		{"max below min", bus.ConnConfig{ReconnectWait: time.Second, MaxReconnectWait: time.Millisecond}, "below ReconnectWait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := testLogger(t)
			nc, err := bus.Connect(t.Context(), tt.cfg, log)
			if err == nil {
				nc.Close()
				t.Fatalf("Connect: got no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Connect: got %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Connect: error %q shows the password", err)
			}
		})
	}
}

func TestConnectDefaultsToLocalhost(t *testing.T) {
	// The zero ConnConfig dials nats://127.0.0.1:4222. Whether or not
	// something listens there, the error or the URL shows where it went.
	log, _ := testLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, bus.ConnConfig{}, log)
	if err == nil {
		defer nc.Close()
		if got := nc.ConnectedUrl(); got != bus.DefaultURL {
			t.Errorf("ConnectedUrl: got %s, want %s", got, bus.DefaultURL)
		}
		return
	}
	if !strings.Contains(err.Error(), bus.DefaultURL) {
		t.Errorf("Connect: got %q, want it to name %s", err, bus.DefaultURL)
	}
}

func TestConnectWrongCredentials(t *testing.T) {
	s := startServer(t, embedded.Config{ConfigFile: "testdata/auth.conf"})
	tests := []struct {
		name string
		cfg  bus.ConnConfig
	}{
		{"wrong password", bus.ConnConfig{User: "supervisor", Password: "not-the-password"}},
		{"unknown user", bus.ConnConfig{User: "mallory", Password: supervisorPassword}},
		{"no credentials", bus.ConnConfig{}},
		{"token instead", bus.ConnConfig{Token: "some-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.URLs = []string{s.ClientURL()}
			tt.cfg.ConnectTimeout = slowAuth
			log, _ := testLogger(t)
			nc, err := bus.Connect(t.Context(), tt.cfg, log)
			if err == nil {
				nc.Close()
				t.Fatal("Connect: got no error, want an authorization error")
			}
			if !errors.Is(err, bus.ErrAuthorization) {
				t.Errorf("Connect: got %q, want errors.Is ErrAuthorization", err)
			}
			if !strings.Contains(err.Error(), "authorization failed") {
				t.Errorf("Connect: got %q, want it to say authorization failed", err)
			}
			t.Logf("error: %v", err)

			// A daemon waiting for its server still learns at once that
			// its credentials are wrong.
			tt.cfg.RetryOnFailedConnect = true
			nc, err = bus.Connect(t.Context(), tt.cfg, log)
			if err == nil {
				nc.Close()
				t.Fatal("Connect with RetryOnFailedConnect: got no error, want an authorization error")
			}
			if !errors.Is(err, bus.ErrAuthorization) {
				t.Errorf("Connect with RetryOnFailedConnect: got %q, want errors.Is ErrAuthorization", err)
			}
		})
	}
}

// closedPort returns a TCP port on 127.0.0.1 that refuses connections
// for the rest of the test: a socket is bound to it but never listens, so
// no other process can take the port in the meantime.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

func TestConnectServerDown(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(closedPort(t))
	log, _ := testLogger(t)
	nc, err := bus.Connect(t.Context(), bus.ConnConfig{URLs: []string{url}}, log)
	if err == nil {
		nc.Close()
		t.Fatal("Connect: got no error, want one")
	}
	if !errors.Is(err, bus.ErrNoServer) {
		t.Errorf("Connect: got %q, want errors.Is ErrNoServer", err)
	}
	for _, want := range []string{"no NATS server reachable", url, "RetryOnFailedConnect"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Connect: got %q, want it to contain %q", err, want)
		}
	}
	t.Logf("error: %v", err)
}

func TestConnectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	log, _ := testLogger(t)
	nc, err := bus.Connect(ctx, bus.ConnConfig{}, log)
	if err == nil {
		nc.Close()
		t.Fatal("Connect: got no error, want context.Canceled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Connect: got %q, want context.Canceled", err)
	}
}

// TestConnectRetryOnFailedConnect connects to a port where no server runs
// yet, then starts one there. The port is free when picked; should another
// process take it before the server starts, the test starts over with a
// new port (the server could not listen, which says nothing of Connect).
func TestConnectRetryOnFailedConnect(t *testing.T) {
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if retryOnFailedConnect(t, port) {
			return
		}
		if attempt == 5 {
			t.Fatalf("port %d was taken before the server started, 5 times in a row", port)
		}
		t.Logf("port %d was taken before the server started; starting over", port)
	}
}

// retryOnFailedConnect runs one attempt of TestConnectRetryOnFailedConnect;
// false: the server could not listen on port.
func retryOnFailedConnect(t *testing.T, port int) bool {
	t.Helper()
	log, logs := testLogger(t)
	cfg := bus.ConnConfig{
		URLs:                 []string{"nats://127.0.0.1:" + strconv.Itoa(port)},
		RetryOnFailedConnect: true,
		ReconnectWait:        20 * time.Millisecond,
		MaxReconnectWait:     100 * time.Millisecond,
	}
	nc, err := bus.Connect(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("IsConnected: got true before any server runs")
	}

	slog, _ := testLogger(t)
	sctx, scancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer scancel()
	s, err := embedded.Start(sctx, embedded.Config{Listen: "127.0.0.1:" + strconv.Itoa(port), StoreDir: t.TempDir(),
		Logger: slog.Level(zerolog.InfoLevel)})
	if errors.Is(err, syscall.EADDRINUSE) || err != nil && strings.Contains(err.Error(), "address already in use") {
		return false
	}
	if err != nil {
		t.Fatalf("embedded.Start: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = poll(ctx, 10*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("status %s", nc.Status())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("not connected once the server is up: %v", err)
	}
	if !strings.Contains(logs.String(), "nats unreachable, retrying in the background") {
		t.Errorf("log: got %s, want the retry notice", logs)
	}
	return true
}

func TestConnectTLS(t *testing.T) {
	p := newTestPKI(t)
	conf := writeConfig(t, fmt.Sprintf(`
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}
`, p.ServerCert, p.ServerKey, p.CAFile))
	s := startServer(t, embedded.Config{ConfigFile: conf})
	url := s.ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("ClientURL: got %s, want a tls:// URL", url)
	}
	mtls := bus.TLSConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}

	t.Run("ok", func(t *testing.T) {
		for _, name := range []string{"", testServerName} {
			tc := mtls
			tc.ServerName = name
			nc := connect(t, bus.ConnConfig{URLs: []string{url}, TLS: tc})
			if err := nc.Flush(); err != nil {
				t.Errorf("ServerName %q: Flush: %v", name, err)
			}
			if _, err := nc.TLSConnectionState(); err != nil {
				t.Errorf("ServerName %q: TLSConnectionState: %v", name, err)
			}
		}
	})

	fails := []struct {
		name  string
		tls   bus.TLSConfig
		wants []string
	}{
		{
			name:  "name mismatch",
			tls:   bus.TLSConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey, ServerName: "evil.example"},
			wants: []string{"certificate/name mismatch", "evil.example", "TLS.ServerName"},
		},
		{
			name:  "unknown authority",
			tls:   bus.TLSConfig{CertFile: p.ClientCert, KeyFile: p.ClientKey},
			wants: []string{"unknown authority", "TLS.CAFile"},
		},
		{
			name: "no client certificate",
			tls:  bus.TLSConfig{CAFile: p.CAFile},
			// Depending on timing the client sees the server's alert or
			// only the closed connection; both name the fix.
			wants: []string{"TLS handshake failed", "TLS.CertFile"},
		},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := testLogger(t)
			nc, err := bus.Connect(t.Context(), bus.ConnConfig{URLs: []string{url}, TLS: tt.tls}, log)
			if err == nil {
				nc.Close()
				t.Fatal("Connect: got no error, want a TLS error")
			}
			if !errors.Is(err, bus.ErrTLS) {
				t.Errorf("Connect: got %q, want errors.Is ErrTLS", err)
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Connect: got %q, want it to contain %q", err, want)
				}
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("plain client", func(t *testing.T) {
		log, _ := testLogger(t)
		plain := "nats://" + strings.TrimPrefix(url, "tls://")
		nc, err := bus.Connect(t.Context(), bus.ConnConfig{URLs: []string{plain}}, log)
		if err == nil {
			nc.Close()
			t.Fatal("Connect: got no error, want one")
		}
		// The server requires TLS; the client switches to it and then
		// fails on the unknown CA of the test PKI.
		if !errors.Is(err, bus.ErrTLS) {
			t.Errorf("Connect: got %q, want errors.Is ErrTLS", err)
		}
		t.Logf("error: %v", err)
	})
}
