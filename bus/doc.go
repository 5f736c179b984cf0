// Package bus is everything sandtrail knows about NATS, in one place: the
// subject layout, connecting (TLS, credentials, reconnection), and the
// JetStream streams events and dead letters are kept in.
//
// Subjects. Events go to sandtrail.events.<class_uid>.<severity_id>.<host>
// ([EventSubject]), so a consumer filters by OCSF class, severity and host
// without decoding ([EventFilter], which the collector's sink filters and
// replay use; [FilterClass], [FilterClassSeverity]). Dead letters go
// to sandtrail.dlq.<reason> ([DLQSubject]). No other package writes a
// subject by hand.
//
// Connections. [Connect] turns a [ConnConfig] into a *nats.Conn that
// reconnects forever with backoff and jitter and logs its life through the
// zerolog.Logger it is given. Credentials are [Secret] values: printing or
// logging them shows "[REDACTED]". Failed first connects name their cause
// ([ErrAuthorization], [ErrTLS], [ErrNoServer]).
//
// Streams. [EnsureStreams] creates the events and dead-letter streams or
// checks that the existing ones are configured as asked; it never reuses a
// stream that differs silently ([ConflictError]).
//
// The subpackage bus/embedded runs a NATS server in-process, for
// single-binary deployments and tests. bus/testdata/auth.conf is an
// example server config with a least-privilege user for the supervisor and
// one for the collector.
package bus
