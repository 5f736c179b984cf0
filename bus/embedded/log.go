package embedded

import (
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// logAdapter routes the server's logs to zerolog.
type logAdapter struct {
	log zerolog.Logger
	// fatal holds the first fatal message. The server's own logger exits
	// the process on Fatalf; a library must not, so Start reports it.
	fatal atomic.Pointer[string]
}

var _ server.Logger = (*logAdapter)(nil)

func (l *logAdapter) Noticef(format string, v ...any) { l.log.Info().Msgf(format, v...) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *logAdapter) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *logAdapter) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l *logAdapter) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

// Fatalf logs at fatal level without exiting, and records the message.
func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.fatal.CompareAndSwap(nil, &msg)
	l.log.WithLevel(zerolog.FatalLevel).Msg(msg)
}
