package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// drainLimit bounds how much of an unread response body is discarded so
// that its connection can be reused.
const drainLimit = 64 << 10

// NewClient returns an HTTP client with its own copy of
// http.DefaultTransport using tlsCfg (nil: the defaults).
func NewClient(tlsCfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr}
}

// ReadBody reads at most limit bytes of resp's body, discards up to 64 KiB
// more (letting the connection be reused) and closes it.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return b, err
}

// RequestErr prefers the cause of ctx (a sink's ErrClosed, the caller's
// cancellation) over the HTTP client's wrapping of it.
func RequestErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// RetryAfter parses a Retry-After header, delay-seconds (capped at a day)
// or an HTTP date after now; 0 when absent, invalid or past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Truncate returns s cut to n bytes, with "..." when it was longer.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ParseURL parses a sink's http or https base URL, config field "url". u is
// url.Parse's result even when err is not nil (nil only when that failed);
// a URL with user info is refused, hint saying how to pass credentials
// instead.
func ParseURL(raw, hint string) (u *url.URL, err error) {
	u, perr := url.Parse(raw)
	switch {
	case raw == "":
		err = errors.New("url is required")
	case perr != nil:
		err = fmt.Errorf("url: %w", perr)
	case u.Scheme != "http" && u.Scheme != "https":
		err = fmt.Errorf("url %q: scheme must be http or https", raw)
	case u.Host == "":
		err = fmt.Errorf("url %q: no host", raw)
	case u.User != nil:
		err = fmt.Errorf("url %q: must not carry credentials; %s", u.Redacted(), hint)
	}
	return u, err
}
