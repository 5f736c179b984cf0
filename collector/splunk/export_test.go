package splunk

import "net/http"

// SetTransport replaces the sink's HTTP transport, so tests can serve
// requests in memory inside a testing/synctest bubble (real sockets are not
// durably blocking, so fake time would not advance past them).
func SetTransport(s *Sink, rt http.RoundTripper) { s.client.Transport = rt }
