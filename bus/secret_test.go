package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

func TestSecretRedacted(t *testing.T) {
	const value = "hunter2-very-secret"
	cfg := bus.ConnConfig{User: "supervisor", Password: value, Token: value}
	s := bus.Secret(value)

	var zl strings.Builder
	zlog := zerolog.New(&zl)
	zlog.Info().Interface("cfg", cfg).Stringer("s", s).Any("a", s).Interface("i", s).Msg("x")
	var sl strings.Builder
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "s", s, "cfg", cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}

	renderings := map[string]string{
		"%v cfg":   fmt.Sprintf("%v", cfg),
		"%+v cfg":  fmt.Sprintf("%+v", cfg),
		"%#v cfg":  fmt.Sprintf("%#v", cfg),
		"%+v &cfg": fmt.Sprintf("%+v", &cfg),
		"%s":       fmt.Sprintf("%s", s),
		"%q":       fmt.Sprintf("%q", s),
		"%x":       fmt.Sprintf("%x", s),
		"%d":       fmt.Sprintf("%d", s),
		"String":   s.String(),
		"json":     string(js),
		"zerolog":  zl.String(),
		"slog":     sl.String(),
	}
	for name, got := range renderings {
		if strings.Contains(got, value) || strings.Contains(got, fmt.Sprintf("%x", value)) {
			t.Errorf("%s: got %s, which shows the secret", name, got)
		}
		if !strings.Contains(got, "[REDACTED]") {
			t.Errorf("%s: got %s, want [REDACTED]", name, got)
		}
	}
	if got := s.Reveal(); got != value {
		t.Errorf("Reveal: got %q, want %q", got, value)
	}
}

// TestConnectNeverLogsSecrets runs connections with a password and with a
// token through their whole life, logging at trace level, and checks that
// neither secret appears in the log.
func TestConnectNeverLogsSecrets(t *testing.T) {
	const token = "token-never-in-logs-7f3a"
	tokenConf := writeConfig(t, fmt.Sprintf("authorization { token: %q }\n", token))
	tests := []struct {
		name   string
		conf   string
		cfg    bus.ConnConfig
		secret string
	}{
		{"password", "testdata/auth.conf", bus.ConnConfig{User: "supervisor", Password: supervisorPassword}, supervisorPassword},
		{"token", tokenConf, bus.ConnConfig{Token: token}, token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, embedded.Config{ConfigFile: tt.conf})
			log, logs := testLogger(t)
			tt.cfg.URLs = []string{s.ClientURL()}
			tt.cfg.ConnectTimeout = slowAuth
			ctx, cancel := context.WithTimeout(t.Context(), 3*slowAuth)
			defer cancel()

			nc, err := bus.Connect(ctx, tt.cfg, log)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			// A permission violation is logged asynchronously, with the
			// server's message.
			if err := nc.Publish("not.allowed.anywhere", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
			nc.Close()
			<-closed

			// A failed connect with a wrong secret of the same shape.
			bad := tt.cfg
			bad.Password, bad.Token = "", ""
			if tt.cfg.Password.IsSet() {
				bad.Password = bus.Secret(tt.secret + "-wrong")
			} else {
				bad.Token = bus.Secret(tt.secret + "-wrong")
			}
			if nc, err := bus.Connect(ctx, bad, log); err == nil {
				nc.Close()
				t.Fatal("Connect with a wrong secret: got no error")
			} else {
				log.Error().Err(err).Interface("cfg", bad).Msg("as a caller would log it")
			}

			out := logs.String()
			if !strings.Contains(out, "nats connected") {
				t.Errorf("log: got %s, want a connected line", out)
			}
			if strings.Contains(out, tt.secret) {
				t.Errorf("log shows the secret:\n%s", out)
			}
			if got := fmt.Sprintf("%+v", tt.cfg); strings.Contains(got, tt.secret) {
				t.Errorf("%%+v of the config shows the secret: %s", got)
			}
		})
	}
}
